//! The engine client of the host library, held long-lived as `berth serve` holds it, across
//! a real dockerd going down and coming back: idempotent calls are retried with backoff,
//! creates never (a counting relay sees every request).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_test_support::*;

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

#[test]
fn idempotent_calls_are_retried_across_a_restart_and_creates_never() {
    let base = PathBuf::from(format!("/tmp/berth-retry-{}", std::process::id()));
    let dir = base.join("e");
    let mut engines = Engines(Vec::new());
    let unix = engines.start(dir.clone(), &[]);
    build_test_image(&unix);
    let (relay, seen, gate) = counting_relay(unix.strip_prefix("unix://").unwrap());
    let b = Berth::families_at(&["system", "container"], relay.clone());
    b.run(&["run", "system.version"]).ok();

    // A long-lived client (as in `berth serve`) has negotiated; then the daemon goes down.
    // A create is sent once, fails at once, and is not retried.
    let client = berth::engine::EngineClient::connect(&relay, berth::engine::Timeouts::default()).unwrap();
    let headers = http::HeaderMap::new();
    let version = rt().block_on(client.send(http::Method::GET, "/version", "", &headers, berth::engine::OutBody::Empty));
    assert_eq!(version.unwrap().status(), 200);
    engines.kill(&dir);
    seen.lock().unwrap().clear();
    let name = unique("once");
    let body = serde_json::json!({"Image": TEST_IMAGE, "HostConfig": {"NetworkMode": "none"}}).to_string();
    let mut h = http::HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    let started = Instant::now();
    let r = rt().block_on(client.send(http::Method::POST, "/containers/create", &format!("name={name}"), &h, berth::engine::OutBody::Bytes(body.into())));
    assert!(r.is_err(), "the daemon is down");
    assert!(started.elapsed() < Duration::from_secs(2), "not retried: no backoff was waited ({:?})", started.elapsed());
    assert_eq!(count_requests(&seen.lock().unwrap().clone(), "POST", "/containers/create"), 1, "the create reached the engine's side exactly once");
    // A GET on the same client is retried with backoff, and fails only after the last try.
    seen.lock().unwrap().clear();
    let r = rt().block_on(client.send(http::Method::GET, "/version", "", &headers, berth::engine::OutBody::Empty));
    assert!(r.is_err());
    assert_eq!(count_requests(&seen.lock().unwrap().clone(), "GET", "/version"), 1 + client.retry.attempts as usize);

    // A GET sent while the daemon is down succeeds once it is back. The daemon restarts
    // behind the shut gate of the relay (still down to berth: each connection is closed
    // unanswered); the gate opens once berth's first try has been refused, so that the try
    // happens while down whatever the machine's speed, and the back-off has tries left.
    gate.store(false, std::sync::atomic::Ordering::SeqCst);
    engines.start(dir.clone(), &[]);
    seen.lock().unwrap().clear();
    let b2 = b.clone();
    let pending = std::thread::spawn(move || b2.run_within(Duration::from_secs(60), &["run", "system.version"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_requests(&seen.lock().unwrap(), "HEAD", "/_ping") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    gate.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = pending.join().unwrap();
    r.ok();
    let tries = count_requests(&seen.lock().unwrap(), "HEAD", "/_ping");
    assert!(tries >= 2, "retried until the daemon was back: {tries}");
    // The create of before never happened.
    let (status, _) = api_at(&unix, http::Method::GET, &format!("/containers/{name}/json"), "", None);
    assert_eq!(status, 404);

    // With the daemon up, one create through the relay is exactly one request.
    seen.lock().unwrap().clear();
    b.run(&["run", "container.create", &format!("image={TEST_IMAGE}"), &format!("name={name}"), "network_mode=none"]).ok();
    assert_eq!(count_requests(&seen.lock().unwrap(), "POST", "/containers/create"), 1);
    api_at(&unix, http::Method::DELETE, &format!("/containers/{name}"), "force=1", None);
}
