//! `berth serve` loses nothing on a restart: async jobs, their results and their fate live in
//! the job store (SQLite in the state directory here). Killed with -9, a server's running
//! jobs read `interrupted` after the restart, never 404 and never re-run; results not fetched
//! yet are still there. SIGTERM drains: `/readyz` turns unready first, requests in flight
//! finish, jobs that finish within the grace period keep their results, the rest are
//! interrupted.

use berth_test_support as common;

use std::time::{Duration, Instant};

use common::serve::{hash, http, refused_start, Serve};
use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "ops-token";

fn tenants() -> String {
    format!("[[tenant]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", hash(TOKEN))
}

fn start_job(s: &Serve, action: &str, params: Value) -> String {
    let (st, j) = http(&s.addr, "POST", &format!("/v1/actions/{action}?async=true"), Some(TOKEN), Some(&params.to_string()));
    assert_eq!(st, 202, "{j}");
    j["job"].as_str().unwrap().to_string()
}

fn poll(s: &Serve, id: &str) -> (u16, Value) {
    http(&s.addr, "GET", &format!("/v1/jobs/{id}"), Some(TOKEN), None)
}

/// Polls until the job is no longer running.
fn settled(s: &Serve, id: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (st, j) = poll(s, id);
        assert_eq!(st, 200, "{j}");
        if j["status"] != "running" {
            return j;
        }
        assert!(started.elapsed() < within, "still running: {j}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_9_interrupts_running_jobs_and_keeps_unfetched_results() {
    let mut s = Serve::start_with(&[("system.wasm", wasm("berth-action-system"))], "state_dir = \"{dir}/state\"", &tenants());
    let long = start_job(&s, "system.events", json!({"max_duration": 600}));
    let short = start_job(&s, "system.events", json!({"max_duration": 1}));
    // The short one finishes; nobody fetches its result before the kill.
    std::thread::sleep(Duration::from_secs(3));
    assert!(s.path().join("state/berth.sqlite3").exists());
    s.kill9_and_restart();

    let (st, j) = poll(&s, &long);
    assert_eq!(st, 200, "a job that was running is reported, never 404: {j}");
    assert_eq!(j["status"], "interrupted", "{j}");
    let msg = j["message"].as_str().unwrap();
    assert!(msg.contains("berth serve stopped while the job ran") && msg.contains("not re-run"), "{msg}");
    assert!(j["finished"].is_string() && j["created"].is_string(), "{j}");
    let (st, j) = poll(&s, &short);
    assert_eq!((st, j["status"].as_str()), (200, Some("done")), "{j}");
    assert_eq!(j["result"]["summary"]["ended_by"], "max_duration", "{j}");
    // Still there after this fetch, and still per tenant.
    assert_eq!(poll(&s, &short).1["status"], "done");
    // Cancelling what was interrupted changes nothing.
    let (_, j) = http(&s.addr, "DELETE", &format!("/v1/jobs/{long}"), Some(TOKEN), None);
    assert_eq!(j["status"], "interrupted");
    assert_eq!(poll(&s, "0123456789abcdef0123456789abcdef").0, 404, "a job that never existed is 404");
    // The audit trail of each job is complete across the restart.
    let trail =
        |id: &str| -> Vec<String> { s.audit().iter().filter(|r| r["job"] == id).map(|r| r["event"].as_str().unwrap_or_default().to_string()).collect() };
    assert_eq!(trail(&long), ["started", "interrupted"]);
    assert_eq!(trail(&short), ["started", "done"]);

    // A second kill while a result is unfetched and a job runs: the same again.
    let again = start_job(&s, "system.events", json!({"max_duration": 600}));
    let quick = start_job(&s, "system.ping", json!({}));
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9_and_restart();
    assert_eq!(poll(&s, &again).1["status"], "interrupted");
    assert_eq!(poll(&s, &quick).1["result"]["status"], "success");
    // New jobs run as before, and the job cap counts only what runs.
    let next = start_job(&s, "system.ping", json!({}));
    assert_eq!(settled(&s, &next, Duration::from_secs(30))["result"]["status"], "success");
}

#[test]
fn a_second_server_on_the_same_state_directory_is_refused() {
    let s = Serve::start_with(&[("system.wasm", wasm("berth-action-system"))], "state_dir = \"{dir}/state\"", &tenants());
    let cfg = std::fs::read_to_string(s.path().join("tenants.toml")).unwrap();
    let other = cfg.replace(&s.addr, &format!("127.0.0.1:{}", free_port()));
    let err = refused_start(&other, s.path());
    assert!(err.contains("in use by another berth serve") && err.contains("state_dir"), "{err}");
    // A state directory that cannot be made: named.
    std::fs::write(s.path().join("afile"), "").unwrap();
    let err = refused_start(&other.replace(&format!("{}/state", s.path().display()), &format!("{}/afile/state", s.path().display())), s.path());
    assert!(err.contains("cannot create the state directory") && err.contains("afile/state"), "{err}");
}

enum Ping {
    Refused,
    /// Connected, and the server closed without reading the request (a backlog connection).
    NotRead,
    /// Part of a response, then the end: a request cut.
    Cut(usize),
    Answered(u16, Value),
}

/// One ping on a connection of its own, telling a refused connection from a cut response.
fn ping(addr: &str) -> Ping {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(addr) else { return Ping::Refused };
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req =
        format!("POST /v1/actions/system.ping HTTP/1.1\r\nHost: b\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 2\r\n\r\n{{}}");
    if c.write_all(req.as_bytes()).is_err() {
        return Ping::NotRead;
    }
    let mut resp = Vec::new();
    let _ = c.read_to_end(&mut resp);
    if resp.is_empty() {
        return Ping::NotRead;
    }
    let text = String::from_utf8_lossy(&resp).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return Ping::Cut(resp.len()) };
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: Option<usize> = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)));
    if len.is_some_and(|n| n != body.len()) {
        return Ping::Cut(resp.len());
    }
    Ping::Answered(status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn sigterm_drains_finishes_in_flight_work_and_interrupts_the_rest() {
    // Two workers (a runtime and a listener each): the drain spans both.
    let extra = "state_dir = \"{dir}/state\"\nshutdown_delay_secs = 1.5\nshutdown_grace_secs = 8\nworkers = 2";
    let mut s = Serve::start_with(&[("system.wasm", wasm("berth-action-system"))], extra, &tenants());
    assert_eq!(http(&s.addr, "GET", "/readyz", None, None).0, 200);
    let finishing = start_job(&s, "system.events", json!({"max_duration": 3}));
    let endless = start_job(&s, "system.events", json!({"max_duration": 600}));
    // Load: a sync request that takes 4 s, and pings in a loop, across the stop.
    let addr = s.addr.clone();
    let slow = std::thread::spawn(move || http(&addr, "POST", "/v1/actions/system.events", Some(TOKEN), Some(r#"{"max_duration": 4}"#)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pingers: Vec<_> = (0..4)
        .map(|_| {
            let addr = s.addr.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut refused, mut other) = (0, 0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match ping(&addr) {
                        Ping::Answered(200, _) => ok += 1,
                        // Admitted to a connection as the server stopped: said so, not cut.
                        Ping::Answered(503, j) if j["message"].as_str().unwrap_or_default().contains("stopping") => refused += 1,
                        // The listener is closed, or the connection sat in its backlog when it closed.
                        Ping::Refused | Ping::NotRead => refused += 1,
                        Ping::Answered(st, j) => other.push(format!("{st} {j}")),
                        Ping::Cut(bytes) => other.push(format!("cut after {bytes} bytes")),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                (ok, refused, other)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    s.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // Unready first, while it still serves.
    let (st, j) = http(&s.addr, "GET", "/readyz", None, None);
    assert_eq!((st, j["status"].as_str()), (503, Some("draining")), "{j}");
    assert_eq!(s.run(TOKEN, "system.ping", json!({})).0, 200, "still serving during the delay");
    let status = s.wait_exit(Duration::from_secs(20)).unwrap_or_else(|| panic!("berth serve did not stop: {}", s.log()));
    assert!(status.success(), "{status}: {}", s.log());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (st, j) = slow.join().unwrap();
    assert_eq!(st, 200, "the request in flight finished: {j}");
    assert_eq!(j["summary"]["ended_by"], "max_duration", "{j}");
    let (mut ok, mut refused) = (0, 0);
    for p in pingers {
        let (o, r, other) = p.join().unwrap();
        assert!(other.is_empty(), "requests cut or refused by a response: {other:?}");
        ok += o;
        refused += r;
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused after the listener closed {refused}");
    assert!(s.log().contains("(2 workers") && s.log().contains("1 async jobs interrupted"), "{}", s.log());

    s.start_again();
    let j = poll(&s, &finishing).1;
    assert_eq!(
        (j["status"].as_str(), j["result"]["summary"]["ended_by"].as_str()),
        (Some("done"), Some("max_duration")),
        "finished within the grace period: {j}"
    );
    let j = poll(&s, &endless).1;
    assert_eq!(j["status"], "interrupted", "{j}");
    assert!(j["message"].as_str().unwrap().contains("grace period"), "{j}");
    // The audit log holds the job that finished during the drain.
    let audited = s.audit().iter().filter(|r| r["action"] == "system.events" && r["status"] == "success").count();
    assert!(audited >= 2, "the finished job and the sync request are audited: {audited}");
}

/// Waits until at least `margin` of the current minute is left, so a count per minute is not
/// split between two windows.
fn clear_of_a_minute_boundary(margin: u64) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60;
    if secs + margin >= 60 {
        std::thread::sleep(Duration::from_secs(61 - secs));
    }
}

#[test]
fn two_replicas_on_one_postgresql_share_jobs_limits_and_leases() {
    let pg = Postgres::start();
    let extra = format!("database_url = \"{}\"\njob_lease_secs = 3", pg.url);
    let tenants = format!(
        "{}\n[[tenant]]\nname = \"capped\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n[tenant.limits]\nmax_jobs = 1\n\n[[tenant]]\nname = \"rated\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n[tenant.limits]\nrequests_per_minute = 5\n",
        tenants(),
        hash("capped-token"),
        hash("rated-token")
    );
    let comps = [("system.wasm", wasm("berth-action-system"))];
    let mut a = Serve::start_with(&comps, &extra, &tenants);
    let b = Serve::start_with(&comps, &extra, &tenants);

    // A job started on one replica is polled and cancelled on the other.
    let quick = start_job(&a, "system.ping", json!({}));
    let long = start_job(&a, "system.events", json!({"max_duration": 600}));
    assert_eq!(settled(&b, &quick, Duration::from_secs(30))["result"]["status"], "success");
    assert_eq!(poll(&b, &long).1["status"], "running");
    let (st, j) = http(&b.addr, "DELETE", &format!("/v1/jobs/{long}"), Some(TOKEN), None);
    assert_eq!((st, j["status"].as_str()), (200, Some("cancelled")), "{j}");
    assert_eq!(poll(&a, &long).1["status"], "cancelled");
    assert_eq!(http(&b.addr, "GET", &format!("/v1/jobs/{quick}"), Some("capped-token"), None).0, 404, "jobs stay per tenant");

    // The async-job cap holds across replicas.
    let (st, j) = http(&a.addr, "POST", "/v1/actions/system.events?async=true", Some("capped-token"), Some(r#"{"max_duration": 600}"#));
    assert_eq!(st, 202, "{j}");
    let capped = j["job"].as_str().unwrap().to_string();
    let (st, j) = http(&b.addr, "POST", "/v1/actions/system.events?async=true", Some("capped-token"), Some(r#"{"max_duration": 600}"#));
    assert_eq!(st, 429, "{j}");
    assert!(j["message"].as_str().unwrap().contains("max_jobs"), "{j}");
    http(&b.addr, "DELETE", &format!("/v1/jobs/{capped}"), Some("capped-token"), None);
    let (st, j) = http(&b.addr, "POST", "/v1/actions/system.ping?async=true", Some("capped-token"), Some("{}"));
    assert_eq!(st, 202, "a cancelled job no longer counts: {j}");

    // The request rate holds across replicas: 5 a minute in all, not 5 each.
    clear_of_a_minute_boundary(20);
    let codes: Vec<u16> =
        (0..8).map(|i| http(if i % 2 == 0 { &a.addr } else { &b.addr }, "POST", "/v1/actions/system.ping", Some("rated-token"), Some("{}")).0).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 3, "{codes:?}");

    // A replica that dies mid-job: the other marks its job interrupted once the lease runs out.
    let orphan = start_job(&a, "system.events", json!({"max_duration": 600}));
    std::thread::sleep(Duration::from_millis(500));
    a.kill9();
    let killed = Instant::now();
    let j = settled(&b, &orphan, Duration::from_secs(20));
    assert_eq!(j["status"], "interrupted", "{j}");
    assert!(j["message"].as_str().unwrap().contains("stopped renewing its lease"), "{j}");
    // The last renewal was at most a heartbeat (1 s for a 3 s lease) before the kill.
    assert!(killed.elapsed() >= Duration::from_millis(1500), "not before the lease ran out: {:?}", killed.elapsed());

    // A replica with another tenants config, and a schema newer than this binary, are refused.
    let cfg = std::fs::read_to_string(a.path().join("tenants.toml")).unwrap().replace(&a.addr, &format!("127.0.0.1:{}", free_port()));
    let other = format!("{cfg}\n[[tenant]]\nname = \"extra\"\ntoken_sha256 = \"{}\"\nallow = [\"system.*\"]\n", hash("extra-token"));
    let err = refused_start(&other, a.path());
    assert!(err.contains("different tenants config") && !err.contains("password"), "{err}");
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql").arg(&pg.url).args(["-qAtc", sql]).output().unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(psql("SELECT value FROM berth_meta WHERE key = 'schema_version'"), "1");
    psql("UPDATE berth_meta SET value = 99 WHERE key = 'schema_version'");
    let err = refused_start(&cfg, a.path());
    assert!(err.contains("schema version 99, newer than this berth"), "{err}");
    psql("UPDATE berth_meta SET value = 1 WHERE key = 'schema_version'");

    // A read-only database: a new replica is refused, and a running one's async starts answer
    // 503 naming it once its connection is made again (here: the database cut it).
    psql("ALTER DATABASE postgres SET default_transaction_read_only = on");
    let err = refused_start(&cfg, a.path());
    assert!(err.contains("read-only transaction"), "{err}");
    psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid()");
    let started = Instant::now();
    loop {
        let (st, j) = http(&b.addr, "POST", "/v1/actions/system.ping?async=true", Some(TOKEN), Some("{}"));
        assert_eq!(st, 503, "{j}");
        if j.to_string().contains("read-only transaction") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{j}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(b.run(TOKEN, "system.ping", json!({})).0, 200, "sync actions do not need the store");

    // The database down: jobs cannot start or be polled (503, said plainly); sync actions run.
    pg.stop();
    let (st, j) = http(&b.addr, "POST", "/v1/actions/system.ping?async=true", Some(TOKEN), Some("{}"));
    assert_eq!(st, 503, "{j}");
    let msg = j["message"].as_str().or(j["error"].as_str()).unwrap_or_default().to_string();
    assert!(msg.contains("job store (PostgreSQL at postgres://berth@127.0.0.1"), "{j}");
    assert_eq!(poll(&b, &quick).0, 503);
    assert_eq!(b.run(TOKEN, "system.ping", json!({})).0, 200, "sync actions do not need the store");
}
