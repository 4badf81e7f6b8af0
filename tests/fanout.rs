//! Fan-out: one action over several engines, each in its own sandbox. Two real engines (the
//! isolated dockerd and Podman), one that is down and one that accepts and never answers (a
//! fake server: a fault the real engine cannot produce on demand). The slow and the down one
//! fail alone; the incident scenario runs across them.

use berth_test_support as common;

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::serve::{hash, http, Serve};
use common::*;
use http::Method;
use serde_json::{json, Value};

/// A unix socket that accepts connections and never answers; kept open for the test.
fn silent_engine() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let l = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    (dir, format!("unix://{}", path.display()))
}

/// Seconds an asset may take. Generous: Podman's first answers are slow on a loaded machine, and
/// the test only needs the silent engines to pass it.
const ASSET_TIMEOUT: u64 = 10;

/// Podman's first `/version` spawns its storage layer; make it once, outside the timed run.
fn warm_podman() {
    let (st, _) = api_at(&podman_host(), Method::GET, "/version", "", None);
    assert_eq!(st, 200, "podman answers");
}

fn asset_args(silent: &str) -> Vec<String> {
    vec![
        "--asset".into(),
        format!("docker={}", docker_host()),
        "--asset".into(),
        format!("podman={}", podman_host()),
        "--asset".into(),
        "down=unix:///nonexistent/berth-down.sock".into(),
        "--asset".into(),
        format!("slow={silent}"),
        "--asset".into(),
        format!("stalled={silent}"),
        "--asset-timeout".into(),
        ASSET_TIMEOUT.to_string(),
    ]
}

#[test]
fn cli_fan_out_merges_rows_and_fails_the_down_and_slow_engines_alone() {
    let (_keep, silent) = silent_engine();
    warm_podman();
    let b = Berth::families(&["system"]);
    let mut args = vec!["run".to_string(), "system.version".to_string()];
    args.extend(asset_args(&silent));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let r = b.run(&refs);
    let took = started.elapsed();
    let j = r.ok().clone();
    // Concurrent: the two silent engines' timeouts overlap (one after the other would take 2×).
    assert!(took < Duration::from_secs(ASSET_TIMEOUT * 2 - 2), "took {took:?}");
    let assets: Vec<&str> = j["data"].as_array().unwrap().iter().map(|r| r["asset"].as_str().unwrap()).collect();
    assert_eq!(assets, ["docker", "podman"], "{j:#}");
    assert_eq!(j["summary"]["assets"]["docker"]["status"], "success");
    assert_eq!(j["summary"]["assets"]["podman"]["status"], "success");
    assert_ne!(j["summary"]["assets"]["down"]["status"], "success");
    assert_eq!(j["summary"]["assets"]["slow"]["status"], "timeout");
    assert_eq!(j["summary"]["assets"]["stalled"]["status"], "timeout");
    assert_eq!(j["summary"]["assets_failed"], 3);
    // Every engine down: the merged result fails, with each one's status.
    let mut all_bad = vec!["run", "system.ping", "--asset", "down=unix:///nonexistent/berth-down.sock", "--asset-timeout", "2"];
    let slow_arg = format!("slow={silent}");
    all_bad.extend(["--asset", slow_arg.as_str()]);
    let r = b.run(&all_bad);
    r.expect_code(1);
    assert_eq!(r.json()["summary"]["assets"]["slow"]["status"], "timeout");
    // Bad fan-out requests are usage errors.
    b.run(&["run", "system.ping", "--asset", "a=unix:///x", "--asset", "a=unix:///y"]).expect_code(2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tar");
    b.run(&["run", "system.ping", "--asset", "a=unix:///x", "--out", out.to_str().unwrap()]).expect_code(2);
}

#[test]
fn serve_fans_out_over_a_tenants_assets() {
    let (_keep, silent) = silent_engine();
    let tenants = format!(
        "[[tenant]]\nname = \"ir\"\ntoken_sha256 = \"{}\"\nallow = [\"system.*\", \"response.hunt\"]\n[tenant.assets]\ndocker = \"{{engine}}\"\npodman = \"{}\"\nslow = \"{silent}\"\n",
        hash("ir-token"),
        podman_host()
    );
    warm_podman();
    let s = Serve::start(&[("system.wasm", wasm("berth-action-system")), ("response.wasm", wasm("berth-action-response"))], &tenants);
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.version?assets=*&asset_timeout=10", Some("ir-token"), Some("{}"));
    assert_eq!(st, 200, "{j}");
    assert_eq!(j["summary"]["assets"]["docker"]["status"], "success", "{j:#}");
    assert_eq!(j["summary"]["assets"]["podman"]["status"], "success", "{j:#}");
    assert_eq!(j["summary"]["assets"]["slow"]["status"], "timeout", "{j:#}");
    assert!(j["data"].as_array().unwrap().iter().all(|r| r["asset"].is_string()));
    // A list of some, an unknown one, both forms at once.
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.ping?assets=docker,podman", Some("ir-token"), Some("{}"));
    assert_eq!((st, j["summary"]["assets_succeeded"].clone()), (200, json!(2)), "{j}");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.ping?assets=docker,nope", Some("ir-token"), Some("{}"));
    assert_eq!(st, 400);
    assert!(j["message"].as_str().unwrap().contains("unknown asset 'nope'"), "{j}");
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping?assets=docker&asset=docker", Some("ir-token"), Some("{}")).0, 400);
}

/// The incident, across engines: hunt everywhere, quarantine the match where it runs,
/// collect its forensic bundle and check the manifest, then release.
#[test]
fn incident_scenario_across_assets() {
    let (_keep, silent) = silent_engine();
    warm_podman();
    let b = Berth::families(&["response"]);
    let name = unique("ir-victim");
    let body = json!({"Image": test_image(), "Cmd": ["sh", "-c", "echo x > /tmp/dropper; exec sleep 600"], "Env": ["MINER_POOL=stratum://pool"], "HostConfig": {"NetworkMode": "none"}});
    let (st, v) = api(Method::POST, "/containers/create", &format!("name={name}"), Some(("application/json", body.to_string().into_bytes())));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    let id = serde_json::from_slice::<Value>(&v).unwrap()["Id"].as_str().unwrap().to_string();
    assert_eq!(api(Method::POST, &format!("/containers/{id}/start"), "", None).0, 204);

    let mut args = vec!["run".to_string(), "response.hunt".into(), "env=MINER_*".into()];
    args.extend(asset_args(&silent));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let hunt = b.run(&refs).ok().clone();
    let hit = hunt["data"].as_array().unwrap().iter().find(|r| r["Id"] == id.as_str()).unwrap_or_else(|| panic!("{hunt:#}"));
    assert_eq!(hit["asset"], "docker");
    assert_eq!(hunt["summary"]["assets"]["slow"]["status"], "timeout");

    // On the asset it was found on.
    b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-77"]).ok();
    assert_eq!(api_json(Method::GET, &format!("/containers/{id}/json"), "")["State"]["Status"], "paused");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar");
    let j = b.run(&["run", "response.forensic-bundle", &format!("container={id}"), "--out", out.to_str().unwrap()]).ok().clone();
    let bytes = std::fs::read(&out).unwrap();
    use sha2::Digest;
    assert_eq!(j["summary"]["sha256"], hex::encode(sha2::Sha256::digest(&bytes)).as_str());
    let mut members = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        members.insert(e.path().unwrap().to_string_lossy().into_owned(), data);
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    for m in manifest["members"].as_array().unwrap() {
        // A member over one tar part (8 MiB) would be NAME.0000, …; this container's are smaller.
        let data = &members[m["name"].as_str().unwrap()];
        assert_eq!(m["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(data)), "{m}");
    }
    b.run(&["run", "response.release", &format!("container={id}")]).ok();
    assert_eq!(api_json(Method::GET, &format!("/containers/{id}/json"), "")["State"]["Status"], "running");
    api(Method::DELETE, &format!("/containers/{id}"), "force=true", None);
}
