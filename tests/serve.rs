//! `berth serve` with several tenants against the isolated real engine: policies side by side,
//! hostile tenants contained while others succeed, audit, jobs, hot drop-in.

use berth_test_support as common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;
use http::Method;
use serde_json::{json, Value};

fn components() -> Vec<(&'static str, PathBuf)> {
    vec![("system.wasm", system_wasm()), ("container.wasm", wasm("berth-action-container")), ("test.wasm", hostile_wasm())]
}

#[test]
fn two_tenants_with_different_policies_side_by_side() {
    test_image();
    let tenants = format!(
        r#"
[[tenant]]
name = "red"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["system.*", "container.*", "!container.remove"]
label_scope = "team=red"
artifacts_dir = "{{dir}}/red"
[tenant.engine_policy]
images = ["berth-test/busybox:*"]

[[tenant]]
name = "blue"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
read_only = true
"#,
        hash("red-token"),
        hash("blue-token")
    );
    let s = Serve::start(&components(), &tenants);

    // Tokens: missing or wrong is 401.
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping", None, Some("{}")).0, 401);
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping", Some("nope"), Some("{}")).0, 401);
    let (st, j) = s.run("red-token", "system.ping", json!({}));
    assert_eq!((st, j["status"].as_str()), (200, Some("success")), "{j}");

    // Red's creates get its label; another team's container is out of its reach.
    let (st, j) = s.run("red-token", "container.create", json!({"image": TEST_IMAGE, "cmd": ["sleep", "300"], "network_mode": "none"}));
    assert_eq!(st, 200, "{j}");
    let red_id = j["summary"]["id"].as_str().unwrap().to_string();
    assert_eq!(api_json(Method::GET, &format!("/containers/{red_id}/json"), "")["Config"]["Labels"]["team"], "red");
    let body =
        json!({"Image": TEST_IMAGE, "Cmd": ["sleep", "300"], "Labels": {"team": "blue"}, "HostConfig": {"NetworkMode": "none"}}).to_string().into_bytes();
    let (_, created) = api(Method::POST, "/containers/create", "", Some(("application/json", body)));
    let blue_id = serde_json::from_slice::<Value>(&created).unwrap()["Id"].as_str().unwrap().to_string();
    api(Method::POST, &format!("/containers/{blue_id}/start"), "", None);
    for (action, params) in
        [("container.stop", json!({"id": blue_id, "t": 1})), ("container.inspect", json!({"id": blue_id})), ("container.kill", json!({"id": blue_id}))]
    {
        let (st, j) = s.run("red-token", action, params);
        assert_eq!(st, 403, "{action}: {j}");
        assert!(j["message"].as_str().unwrap().contains("outside this tenant's scope"), "{j}");
    }
    assert_eq!(api_json(Method::GET, &format!("/containers/{blue_id}/json"), "")["State"]["Running"], true, "the other team's container was touched");
    let (st, j) = s.run("red-token", "container.remove", json!({"id": blue_id, "force": true}));
    assert_eq!(st, 403, "{j}");
    let (_, j) = s.run("red-token", "container.list", json!({"all": true}));
    let ids: Vec<&str> = j["data"].as_array().unwrap().iter().map(|c| c["Id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![red_id.as_str()], "red sees only its own: {j}");
    let (st, _) = s.run("red-token", "container.start", json!({"id": red_id}));
    assert_eq!(st, 200);

    // Blue is read-only: a mutating action is refused; a component issuing DELETE is denied.
    let (st, j) = s.run("blue-token", "container.stop", json!({"id": red_id}));
    assert_eq!(st, 403, "{j}");
    let (st, j) = s.run("blue-token", "test.delete-readonly", json!({}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("DELETE"), "{j}");
    let (_, j) = s.run("blue-token", "container.list", json!({"all": true}));
    assert!(j["summary"]["total_objects"].as_u64().unwrap() >= 2, "blue is unscoped: {j}");

    // The catalog is filtered to what each tenant may run.
    let (_, cat) = http(&s.addr, "GET", "/v1/actions", Some("blue-token"), None);
    let names: Vec<&str> = cat["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"container.list") && !names.contains(&"container.stop"), "{names:?}");
    assert!(cat["actions"][0]["schema"]["type"] == "object");
    let (_, cat) = http(&s.addr, "GET", "/v1/actions", Some("red-token"), None);
    let names: Vec<&str> = cat["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"container.stop") && !names.contains(&"container.remove") && !names.contains(&"test.spin"), "{names:?}");

    // Artifacts land in the tenant's directory and download from there only.
    let (st, j) = http(&s.addr, "POST", "/v1/actions/container.export?out=red.tar", Some("red-token"), Some(&json!({"id": red_id}).to_string()));
    assert_eq!(st, 200, "{j}");
    let (st, bytes) = http_raw(&s.addr, "GET", "/v1/artifacts/red.tar", Some("red-token"), None);
    assert_eq!(st, 200);
    assert_eq!(bytes.len() as u64, j["summary"]["size"].as_u64().unwrap());
    assert!(s.path().join("red/red.tar").exists());
    assert_eq!(http(&s.addr, "GET", "/v1/artifacts/red.tar", Some("blue-token"), None).0, 404);
    assert_eq!(http(&s.addr, "GET", "/v1/artifacts/..%2Fblue", Some("red-token"), None).0, 400);

    // Every refusal is audited with its reason.
    let audit = s.audit();
    assert!(
        audit.iter().any(|r| r["tenant"] == "red" && r["action"] == "container.remove" && r["denied"].as_str().is_some_and(|d| d.contains("may not run"))),
        "{audit:?}"
    );
    assert!(audit.iter().any(|r| r["tenant"] == "blue" && r["action"] == "test.delete-readonly" && r["engine_calls"][0]["refused"].is_string()), "{audit:?}");
    // Chain of custody: the export's file, size and sha256 are audited.
    assert!(
        audit.iter().any(|r| r["tenant"] == "red"
            && r["action"] == "container.export"
            && r["artifact"] == "red.tar"
            && r["sha256"] == j["summary"]["sha256"]
            && r["size"] == j["summary"]["size"]),
        "{audit:?}"
    );

    // Metrics.
    assert_eq!(http(&s.addr, "GET", "/metrics", None, None).0, 401, "metrics need their token");
    assert_eq!(http(&s.addr, "GET", "/metrics", Some("red-token"), None).0, 401, "a tenant token is not the metrics token");
    let (_, m) = http_raw(&s.addr, "GET", "/metrics", Some(METRICS_TOKEN), None);
    let m = String::from_utf8_lossy(&m);
    assert!(m.contains("berth_invocations_total{tenant=\"red\",action=\"system.ping\"} 1"), "{m}");
    assert!(m.contains("berth_denials_total{tenant=\"blue\""), "{m}");
    assert!(m.contains("berth_invocation_seconds_count{tenant=\"red\",action=\"system.ping\"} 1"), "{m}");
    assert!(
        m.lines().any(|l| l.starts_with("berth_invocation_seconds_bucket{")
            && l.contains("le=\"+Inf\"")
            && l.contains("tenant=\"red\",action=\"system.ping\"")
            && l.ends_with(" 1")),
        "{m}"
    );

    for c in [&red_id, &blue_id] {
        api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
    }
}

#[test]
fn hostile_tenants_are_contained_while_others_succeed() {
    let tenants = format!(
        r#"
[[tenant]]
name = "hostile"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["test.*"]
[tenant.limits]
memory_mb = 32
cpu_secs = 1
timeout_secs = 5
engine_calls = 50
response_bytes = 20000
concurrency = 8

[[tenant]]
name = "green"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["system.*"]
"#,
        hash("hostile-token"),
        hash("green-token")
    );
    let s = Serve::start(&components(), &tenants);
    let addr = s.addr.clone();
    let hostile: Vec<_> = [
        ("test.spin", json!({}), "CPU limit"),
        ("test.alloc", json!({"mb": 512}), "memory limit"),
        ("test.big-read", json!({"n": 1000}), "response byte limit"),
        ("test.flood", json!({"n": 1000}), "engine call limit"),
    ]
    .into_iter()
    .map(|(action, params, want)| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let (st, j) = http(&addr, "POST", &format!("/v1/actions/{action}"), Some("hostile-token"), Some(&params.to_string()));
            (action, want, st, j)
        })
    })
    .collect();
    // Meanwhile the other tenant's calls go through.
    let mut ok = 0;
    for _ in 0..20 {
        let (st, j) = s.run("green-token", "system.ping", json!({}));
        assert_eq!(st, 200, "{j}");
        ok += 1;
    }
    for h in hostile {
        let (action, want, st, j) = h.join().unwrap();
        assert_eq!(st, 403, "{action}: {j}");
        assert!(j["message"].as_str().unwrap().contains(want), "{action}: {j}");
    }
    assert_eq!(ok, 20);
    // Outside the allowlist: 403, audited.
    let (st, _) = s.run("hostile-token", "system.info", json!({}));
    assert_eq!(st, 403);
    assert!(s.audit().iter().any(|r| r["tenant"] == "hostile" && r["action"] == "system.info" && r["denied"].is_string()));

    // A slow-loris client is cut off; the server keeps answering.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"POST /v1/actions/system.ping HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let (st, _) = s.run("green-token", "system.ping", json!({}));
    assert_eq!(st, 200);
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = slow.write_all(b"X-Slow: 1\r\n");
    let mut buf = [0u8; 256];
    // The server answers (408) and closes, or just closes; a read timeout means it did not.
    let closed = match slow.read(&mut buf) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    assert!(closed && started.elapsed() < Duration::from_secs(30), "the slow client was not cut off");
}

#[test]
fn a_burst_of_1000_invocations_across_16_tenants() {
    let mut tenants = String::new();
    for i in 0..16 {
        tenants.push_str(&format!(
            "[[tenant]]\nname = \"t{i}\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.ping\"]\n[tenant.limits]\nconcurrency = 4\n\n",
            hash(&format!("token-{i}"))
        ));
    }
    let s = Serve::start(&[("system.wasm", system_wasm())], &tenants);
    let addr = s.addr.clone();
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for n in 0..1000 / 32 + 1 {
                    let i = w * (1000 / 32 + 1) + n;
                    if i >= 1000 {
                        break;
                    }
                    let token = format!("token-{}", i % 16);
                    let (st, j) = http(&addr, "POST", "/v1/actions/system.ping", Some(&token), Some("{}"));
                    if st != 200 || j["status"] != "success" {
                        failures.push((st, j));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<_> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
    let audit = s.audit();
    assert_eq!(audit.iter().filter(|r| r["action"] == "system.ping" && r["status"] == "success").count(), 1000);
    for i in 0..16 {
        let n = audit.iter().filter(|r| r["tenant"] == format!("t{i}")).count();
        assert!(n == 62 || n == 63, "tenant t{i}: {n} records");
    }
}

#[test]
fn async_jobs_hot_drop_in_and_pins() {
    let tenants = format!(
        r#"
[[tenant]]
name = "ops"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
[tenant.assets]
spare = "{{engine}}"
down = "unix://{{dir}}/no-engine.sock"

[[tenant]]
name = "pinned"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
pins = {{ system = "{}" }}
"#,
        hash("ops-token"),
        hash("pinned-token"),
        "0".repeat(64)
    );
    let s = Serve::start(&[("system.wasm", system_wasm())], &tenants);
    // Async: a job id, then the result; cancel stops a long one.
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.events?async=true", Some("ops-token"), Some(r#"{"max_duration": 1}"#));
    assert_eq!(st, 202, "{j}");
    let id = j["job"].as_str().unwrap().to_string();
    let started = Instant::now();
    let done = loop {
        let (_, j) = http(&s.addr, "GET", &format!("/v1/jobs/{id}"), Some("ops-token"), None);
        if j["status"] == "done" {
            break j;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{j}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["result"]["summary"]["ended_by"], "max_duration");
    assert_eq!(http(&s.addr, "GET", &format!("/v1/jobs/{id}"), Some("pinned-token"), None).0, 404, "jobs are per tenant");
    let (_, j) = http(&s.addr, "POST", "/v1/actions/system.events?async=true", Some("ops-token"), Some(r#"{"max_duration": 600}"#));
    let long = j["job"].as_str().unwrap().to_string();
    let (_, j) = http(&s.addr, "DELETE", &format!("/v1/jobs/{long}"), Some("ops-token"), None);
    assert_eq!(j["status"], "cancelled");

    // Assets: the engine a request talks to is picked by name.
    let (st, _) = http(&s.addr, "POST", "/v1/actions/system.ping?asset=spare", Some("ops-token"), Some("{}"));
    assert_eq!(st, 200);
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.ping?asset=down", Some("ops-token"), Some("{}"));
    assert_eq!(st, 502, "{j}");
    assert!(j["message"].as_str().unwrap().contains("cannot connect"), "{j}");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.ping?asset=nope", Some("ops-token"), Some("{}"));
    assert_eq!(st, 400, "{j}");
    assert!(j["message"].as_str().unwrap().contains("unknown asset 'nope'"), "{j}");

    // A pinned digest that does not match is refused.
    let (st, j) = s.run("pinned-token", "system.ping", json!({}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("pins"), "{j}");

    // Hot drop-in: a new component is picked up without a restart.
    assert_eq!(s.run("ops-token", "container.list", json!({})).0, 404);
    std::fs::copy(wasm("berth-action-container"), s.path().join("actions/container.wasm")).unwrap();
    let started = Instant::now();
    loop {
        let (st, j) = s.run("ops-token", "container.list", json!({}));
        if st == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not picked up: {st} {j}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    // And one that goes away is gone; an invocation already running finishes on it.
    let (_, j) = http(&s.addr, "POST", "/v1/actions/system.events?async=true", Some("ops-token"), Some(r#"{"max_duration": 4}"#));
    let running = j["job"].as_str().unwrap().to_string();
    std::fs::remove_file(s.path().join("actions/system.wasm")).unwrap();
    let started = Instant::now();
    while s.run("ops-token", "system.ping", json!({})).0 != 404 {
        // Well within the 30 s backstop poll: the directory watcher saw it.
        assert!(started.elapsed() < Duration::from_secs(10), "the removal was not noticed by the watcher");
        std::thread::sleep(Duration::from_millis(250));
    }
    let finished = loop {
        let (_, j) = http(&s.addr, "GET", &format!("/v1/jobs/{running}"), Some("ops-token"), None);
        if j["status"] != "running" {
            break j;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(finished["result"]["status"], "success", "{finished}");
    std::fs::remove_file(s.path().join("actions/container.wasm")).unwrap();
    let started = Instant::now();
    while s.run("ops-token", "container.list", json!({})).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_bad_config_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = common::serve::refused_start("[[tenant]]\nname = \"x\"\ntoken_sha256 = \"abc\"\nallow = [\"*\"]\n", dir.path());
    assert!(err.contains("line 3") && err.contains("token_sha256"), "{err}");
}

#[test]
fn metrics_on_a_listener_of_their_own() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{port}");
    let tenants = format!("[[tenant]]\nname = \"m\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", hash("m-token"));
    let s = Serve::start_with(&components(), &format!("metrics_listen = \"{metrics}\""), &tenants);
    assert_eq!(s.run("m-token", "system.ping", json!({})).0, 200);
    let started = Instant::now();
    let body = loop {
        let (st, b) = http_raw(&metrics, "GET", "/metrics", None, None);
        if st == 200 {
            break String::from_utf8_lossy(&b).into_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the metrics listener did not answer: {}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("berth_invocations_total{tenant=\"m\",action=\"system.ping\"} 1"), "{body}");
    // The metrics listener serves nothing else.
    assert_eq!(http(&metrics, "POST", "/v1/actions/system.ping", Some("m-token"), Some("{}")).0, 404);
}

#[test]
fn the_openapi_document_matches_the_routes() {
    let tenants = format!(
        "[[tenant]]\nname = \"o\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\nartifacts_dir = \"{{dir}}/o\"\n",
        hash("o-token")
    );
    let s = Serve::start(&components(), &tenants);
    let (st, doc) = http(&s.addr, "GET", "/v1/openapi.json", None, None);
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut n = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            n += 1;
            let concrete = path.replace("{action}", "system.ping").replace("{id}", "nope").replace("{name}", "nope");
            let token = if op.get("security").is_some_and(|s| s.as_array().is_some_and(Vec::is_empty)) { None } else { Some("o-token") };
            let token = if path == "/metrics" { Some(METRICS_TOKEN) } else { token };
            let (st, body) = http(&s.addr, &method.to_uppercase(), &concrete, token, Some("{}"));
            assert_ne!(body["error"], "no such endpoint", "{method} {path} is documented but not routed");
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(documented.iter().any(|c| *c == &st.to_string()), "{method} {path} answered {st}, not among {documented:?}");
        }
    }
    assert_eq!(n, 10, "the ten routes of the router are documented");
    // And the converse: an undocumented path is not routed.
    assert_eq!(http(&s.addr, "GET", "/v1/nothing", Some("o-token"), None).1["error"], "no such endpoint");
}

#[test]
fn one_rate_limit_per_engine_shared_by_all_tenants() {
    // Two tenants on the same engine: 4 requests per second between them, burst 1.
    let tenants = format!(
        r#"
[[tenant]]
name = "a"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["system.*"]

[[tenant]]
name = "b"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["system.*"]
"#,
        hash("a-token"),
        hash("b-token")
    );
    let s = Serve::start_with(&[("system.wasm", system_wasm())], "engine_requests_per_second = 4\nengine_burst = 1\nengine_max_wait_secs = 5", &tenants);
    assert_eq!(s.run("a-token", "system.ping", json!({})).0, 200);
    let started = std::time::Instant::now();
    for i in 0..8 {
        let token = if i % 2 == 0 { "a-token" } else { "b-token" };
        let (status, body) = s.run(token, "system.ping", json!({}));
        assert_eq!(status, 200, "{body}");
    }
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(1500), "8 engine calls at 4/s shared by both tenants: {took:?}");
    let (_, m) = http_raw(&s.addr, "GET", "/metrics", Some(METRICS_TOKEN), None);
    let m = String::from_utf8_lossy(&m);
    let throttled = m.lines().find(|l| l.starts_with("berth_engine_throttled_total{")).unwrap_or_else(|| panic!("{m}"));
    assert!(!throttled.ends_with(" 0"), "{throttled}");
    assert!(throttled.contains(&docker_host()), "by engine: {throttled}");
}

#[test]
fn an_engine_busy_past_the_wait_fails_clearly() {
    let tenants = format!("[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", hash("a-token"));
    let s = Serve::start_with(&[("system.wasm", system_wasm())], "engine_requests_per_second = 1\nengine_burst = 1\nengine_max_wait_secs = 0.05", &tenants);
    let mut busy = None;
    for _ in 0..4 {
        let (status, body) = s.run("a-token", "system.ping", json!({}));
        if status != 200 {
            busy = Some(body);
            break;
        }
    }
    let body = busy.expect("a request past the cap fails");
    assert!(body["message"].as_str().unwrap().contains("is busy: berth sends it at most 1 requests per second"), "{body}");
    let (_, m) = http_raw(&s.addr, "GET", "/metrics", Some(METRICS_TOKEN), None);
    let m = String::from_utf8_lossy(&m);
    assert!(m.lines().any(|l| l.starts_with("berth_engine_busy_total{") && !l.ends_with(" 0")), "{m}");
}

/// Clients that hang up while their invocations wait for a guest CPU slot: each cancelled
/// invocation must leave the slot to the next, so the server keeps answering. (A queued
/// invocation handed the slot just before its client went away once kept it: with one slot on
/// two cores, every later invocation then waited out its wall-clock limit.)
#[test]
fn clients_that_hang_up_mid_invocation_leave_the_server_answering() {
    let tenants = format!(
        "[[tenant]]\nname = \"t\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n[tenant.limits]\nconcurrency = 64\nmax_queued = 1000\nrequests_per_minute = 1000000\n",
        hash("token-t")
    );
    let s = Serve::start(&[("system.wasm", system_wasm())], &tenants);
    let req = "POST /v1/actions/system.version HTTP/1.1\r\nHost: berth\r\nAuthorization: Bearer token-t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let hang_ups: Vec<_> = (0..32)
        .map(|w| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    if let Ok(mut c) = TcpStream::connect(&addr) {
                        let _ = c.write_all(req.as_bytes());
                        // Hang up at once or a moment later: while queued, while running.
                        std::thread::sleep(Duration::from_micros((w * 37 + i * 211) % 3000));
                    }
                }
            })
        })
        .collect();
    for h in hang_ups {
        h.join().unwrap();
    }
    // Every slot is free again: plain invocations answer at once.
    for _ in 0..20 {
        let t = Instant::now();
        let addr = s.addr.clone();
        let done = std::thread::spawn(move || http(&addr, "POST", "/v1/actions/system.ping", Some("token-t"), Some("{}")));
        while !done.is_finished() && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(done.is_finished(), "system.ping got no answer within 20 s after clients hung up: a CPU slot was lost");
        let (st, j) = done.join().unwrap();
        assert_eq!((st, j["status"].as_str()), (200, Some("success")), "{j}");
    }
}

/// `berth serve` with only `server` lines of its own (the harness's defaults left out) and
/// one tenant, optionally under an address-space limit (`prlimit --as`): its process, its
/// address and what it printed at start.
struct Bare {
    child: std::process::Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bare {
    fn start(server: &str, tenant_extra: &str, address_space: Option<u64>) -> Result<Bare, String> {
        let dir = tempfile::tempdir().unwrap();
        let actions = dir.path().join("actions");
        std::fs::create_dir(&actions).unwrap();
        std::fs::copy(system_wasm(), actions.join("system.wasm")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = format!(
            "[server]\nlisten = \"{addr}\"\nactions = \"{}\"\ncache = \"{}\"\nstate_dir = \"{}/state\"\n{server}\n[[tenant]]\nname = \"p\"\ntoken_sha256 = \"{}\"\nengine = \"{}\"\nallow = [\"system.*\"]\n{tenant_extra}\n",
            actions.display(),
            shared_cache().display(),
            dir.path().display(),
            hash("p-token"),
            docker_host()
        );
        std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
        let mut cmd = match address_space {
            Some(bytes) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--as={bytes}")).arg(berth_bin());
                c
            }
            None => Command::new(berth_bin()),
        };
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = cmd.args(["serve", "--config"]).arg(dir.path().join("c.toml")).env_remove("RUST_BACKTRACE").stderr(log).spawn().unwrap();
        let mut b = Bare { child, addr, dir };
        let started = Instant::now();
        while http(&b.addr, "GET", "/healthz", None, None).0 != 200 {
            if let Some(status) = b.child.try_wait().unwrap() {
                return Err(format!("{status}: {}", b.log()));
            }
            assert!(started.elapsed() < Duration::from_secs(60), "berth serve did not start: {}", b.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The process's virtual size, bytes.
    fn vm_size(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = s.lines().find(|l| l.starts_with("VmSize:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        kib << 10
    }
}

#[test]
fn the_instance_pool_is_sized_for_the_host() {
    const GIB: u64 = 1 << 30;
    // The default pool: 256 instances, reported at start, well inside a 39-bit address space.
    let s = Bare::start("", "", None).unwrap();
    let log = s.log();
    assert!(log.contains("instance pool: 256 instances, 512 memories of 256 MiB;") && log.contains("GiB of address space reserved"), "{log}");
    let size = s.vm_size();
    assert!(size <= 256 * GIB, "VmSize {} GiB with the default pool", size / GIB);
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping", Some("p-token"), Some("{}")).0, 200);
    drop(s);
    // A smaller pool from the config.
    let s = Bare::start("max_concurrent = 8\npool_memory_mib = 64", "", None).unwrap();
    assert!(s.log().contains("instance pool: 8 instances, 16 memories of 64 MiB;"), "{}", s.log());
    assert!(s.vm_size() < 32 * GIB, "VmSize {} GiB with 8 instances", s.vm_size() / GIB);
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping", Some("p-token"), Some("{}")).0, 200);
    drop(s);
    // A host that cannot reserve the pool (here: a 64 GiB address-space limit) still serves,
    // allocating on demand, and says so.
    let s = Bare::start("", "", Some(64 * GIB)).unwrap();
    assert!(s.log().contains("instances allocated on demand: a pool of 256 instances needs"), "{}", s.log());
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.ping", Some("p-token"), Some("{}"));
    assert_eq!(st, 200, "{j}");
    drop(s);
    // A tenant whose memory limit the pool could not give is refused at start, named.
    let e = Bare::start("pool_memory_mib = 64", "[tenant.limits]\nmemory_mb = 128", None).err().expect("refused");
    assert!(e.contains("tenant.limits.memory_mb") && e.contains("server.pool_memory_mib = 64"), "{e}");
}

#[test]
fn readyz_says_whether_every_engine_answers() {
    let up = format!("[[tenant]]\nname = \"up\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", hash("up-token"));
    let s = Serve::start(&components(), &up);
    let (st, j) = http(&s.addr, "GET", "/readyz", None, None);
    assert_eq!((st, j["engines"].as_u64(), j["answering"].as_u64()), (200, Some(1), Some(1)), "{j}");
    drop(s);
    // A second tenant's engine is down: not ready, while /healthz (the server itself) is fine.
    let down = format!(
        "{up}\n[[tenant]]\nname = \"down\"\ntoken_sha256 = \"{}\"\nengine = \"unix:///nonexistent/berth-readyz.sock\"\nallow = [\"system.*\"]\n",
        hash("down-token")
    );
    let s = Serve::start(&components(), &down);
    let (st, j) = http(&s.addr, "GET", "/readyz", None, None);
    assert_eq!((st, j["status"].as_str(), j["engines"].as_u64(), j["answering"].as_u64()), (503, Some("not ready"), Some(2), Some(1)), "{j}");
    assert!(!j.to_string().contains("nonexistent") && !j.to_string().contains("down"), "no addresses or tenant names: {j}");
    assert_eq!(http(&s.addr, "GET", "/healthz", None, None).0, 200);
}

#[test]
fn unknown_actions_get_near_names_the_tenant_may_run() {
    let tenants = format!("[[tenant]]\nname = \"sys\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", hash("sys-token"));
    let s = Serve::start(&[("system.wasm", system_wasm()), ("container.wasm", wasm("berth-action-container"))], &tenants);
    let (st, j) = s.run("sys-token", "system.pnig", json!({}));
    assert_eq!(st, 404, "{j}");
    assert!(j["message"].as_str().unwrap().contains("did you mean system.ping"), "{j}");
    // Nothing the tenant may not run is named.
    let (st, j) = s.run("sys-token", "container.lst", json!({}));
    assert_eq!(st, 404, "{j}");
    assert!(!j["message"].as_str().unwrap().contains("did you mean"), "{j}");
    // Numbers as platforms send them: an integral float is that integer, a numeric string is
    // taken, anything else named.
    let (st, j) = s.run("sys-token", "system.events", json!({"max_events": 1.0, "until": "0s", "since": "10m"}));
    assert_eq!(st, 200, "{j}");
    assert_eq!(j["parameter"]["max_events"], 1, "{j}");
    let (st, j) = s.run("sys-token", "system.events", json!({"max_events": 1.5, "until": "0s"}));
    assert_eq!(st, 400, "{j}");
    assert!(j["message"].as_str().unwrap().contains("parameter 'max_events' must be an integer, got 1.5"), "{j}");
    // A parameter by another spelling.
    let (st, j) = s.run("sys-token", "system.events", json!({"max-events": 1, "until": "0s"}));
    assert_eq!(st, 400, "{j}");
    assert!(j["message"].as_str().unwrap().contains("did you mean max_events"), "{j}");
}
