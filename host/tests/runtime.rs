//! The host library: compile cache, discovery index, instance reuse, and a runtime that
//! survives hostile invocations, against the isolated real engine (`make test` runs these
//! with the release build's dependencies, beside the binary-driven tests in `tests/`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth::credentials::Credentials;
use berth::runtime::{Artifacts, HostContext, Limits, Runtime, RuntimeConfig, Source};
use berth::spec::{RawParams, Status};
use berth_test_support::*;

/// A tokio runtime for the library's async API.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn engine() -> Arc<berth::engine::EngineClient> {
    Arc::new(berth::engine::EngineClient::connect(&docker_host(), berth::engine::Timeouts::default()).unwrap())
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: Some(cache.to_path_buf()), ..Default::default() }).unwrap()
}

fn ctx() -> HostContext {
    HostContext::new(engine(), Arc::new(Credentials::from_store(Default::default())))
}

fn cwasm_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect()
}

#[test]
fn cache_is_used_and_corrupt_entries_are_rebuilt() {
    let b = Berth::system();
    let cache = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let r1 = runtime(cache.path());
        let catalog = r1.discover(b.actions.path()).await.unwrap();
        let (file, _) = catalog.action("system.version").unwrap();
        assert_eq!(r1.prepare(file).unwrap().source, Source::Compiled);
        let entries = cwasm_files(cache.path());
        assert_eq!(entries.len(), 1, "one entry per component");

        // A fresh runtime (a new process) loads it from the cache.
        let r2 = runtime(cache.path());
        let catalog = r2.discover(b.actions.path()).await.unwrap();
        let (file, spec) = catalog.action("system.version").unwrap();
        let p = r2.prepare(file).unwrap();
        assert_eq!(p.source, Source::Cached);
        let params = spec.validate(RawParams::Pairs(vec![])).unwrap();
        let out = r2.invoke(&p, ctx(), spec, params, Artifacts::default(), Limits::default()).await;
        assert_eq!(out.result.status, Status::Success, "{:?}", out.result);

        // Corrupt one byte in the middle: detected, recompiled, rewritten.
        let mut bytes = std::fs::read(&entries[0]).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&entries[0], &bytes).unwrap();
        let r3 = runtime(cache.path());
        assert_eq!(r3.prepare(file).unwrap().source, Source::Compiled);
        let r4 = runtime(cache.path());
        assert_eq!(r4.prepare(file).unwrap().source, Source::Cached, "the rebuilt entry is used again");

        // Truncated, and garbage: the same.
        let len = std::fs::metadata(&entries[0]).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&entries[0]).unwrap().set_len(len / 3).unwrap();
        assert_eq!(runtime(cache.path()).prepare(file).unwrap().source, Source::Compiled);
        std::fs::write(&entries[0], b"garbage").unwrap();
        let r5 = runtime(cache.path());
        let p = r5.prepare(file).unwrap();
        assert_eq!(p.source, Source::Compiled);
        let params = spec.validate(RawParams::Pairs(vec![])).unwrap();
        let out = r5.invoke(&p, ctx(), spec, params, Artifacts::default(), Limits::default()).await;
        assert_eq!(out.result.status, Status::Success);
    });
}

#[test]
fn discovery_uses_the_index_and_loads_only_the_owner() {
    let b = Berth::hostile();
    let cache = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let r1 = runtime(cache.path());
        let c1 = r1.discover(b.actions.path()).await.unwrap();
        assert_eq!(r1.loaded(), 2, "a cold discovery loads every component to describe it");
        assert!(c1.action("test.spin").is_some() && c1.action("system.ping").is_some());

        let r2 = runtime(cache.path());
        let c2 = r2.discover(b.actions.path()).await.unwrap();
        assert_eq!(r2.loaded(), 0, "a warm discovery loads nothing");
        let (file, _) = c2.action("system.ping").unwrap();
        r2.prepare(file).unwrap();
        assert_eq!(r2.loaded(), 1, "running an action loads only its component");

        // Replacing a component changes its fingerprint: it is described again.
        let path = b.actions.path().join("system.wasm");
        std::fs::remove_file(&path).unwrap();
        std::fs::copy(hostile_wasm(), b.actions.path().join("system.wasm")).unwrap();
        let r3 = runtime(cache.path());
        let c3 = r3.discover(b.actions.path()).await.unwrap();
        // It declares the family another file holds: both are refused, each naming both.
        assert!(c3.action("system.ping").is_none(), "system.wasm no longer holds the system family");
        assert!(c3.action("test.spin").is_none(), "two files declare the test family: neither is loaded");
        for f in ["test.wasm", "system.wasm"] {
            assert!(c3.skipped.iter().any(|(p, why)| p.ends_with(f) && why.contains("family 'test' is declared by")), "{f}: {:?}", c3.skipped);
        }
    });
}

#[test]
fn the_runtime_survives_hostile_invocations_and_reuses_instance_pre() {
    let b = Berth::hostile();
    let cache = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let r = runtime(cache.path());
        let catalog = r.discover(b.actions.path()).await.unwrap();
        let run = |name: &str, limits: Limits| {
            let (file, spec) = catalog.action(name).unwrap();
            let p = r.prepare(file).unwrap();
            let params = spec.validate(RawParams::Pairs(vec![])).unwrap();
            let spec = spec.clone();
            let r = &r;
            async move { r.invoke(&p, ctx(), &spec, params, Artifacts::default(), limits).await }
        };
        let tight = Limits { cpu: Duration::from_millis(200), memory_bytes: 16 << 20, ..Limits::default() };
        let spin = run("test.spin", tight).await;
        assert!(spin.result.message.contains("CPU limit"), "{:?}", spin.result);
        let bomb = run("test.alloc", tight).await;
        assert!(bomb.result.message.contains("memory limit"), "{:?}", bomb.result);
        let panic = run("test.panic", tight).await;
        assert!(panic.result.message.contains("crashed"), "{:?}", panic.result);
        // Same runtime, same InstancePre, fresh Store: still fine.
        for _ in 0..3 {
            let ok = run("system.ping", Limits::default()).await;
            assert_eq!(ok.result.status, Status::Success, "{:?}", ok.result);
            assert_eq!(ok.calls.len(), 1);
            assert_eq!(ok.calls[0].path, "/_ping");
            assert_eq!(ok.calls[0].status, 200);
        }
        assert_eq!(r.loaded(), 2, "each component prepared once");
    });
}

#[test]
fn a_spinning_guest_leaves_its_thread_to_timers_and_sockets() {
    // One worker (`berth serve` on a small machine) runs a guest that spins through 1 s of
    // CPU and, beside it, a task that sleeps 1 ms at a time. At every epoch tick (10 ms) the
    // guest yields and the worker polls its timers and sockets before running the guest
    // again, so the sleeper wakes up to a hundred times (47 seen on a loaded machine). When
    // the guest was only woken again, the worker polled its driver every 61st task poll (0.6 s
    // here): the sleeper woke once, and `berth serve` on one worker starved its accepts and
    // engine answers (the fair-share bench never finished).
    let b = Berth::hostile();
    let cache = tempfile::tempdir().unwrap();
    let one = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = cache.path().to_path_buf();
    // Both tasks on the one worker (`block_on` itself runs on the caller's thread).
    one.block_on(async {
        tokio::spawn(async move {
            let r = runtime(&dir);
            let catalog = r.discover(b.actions.path()).await.unwrap();
            let (file, spec) = catalog.action("test.spin").unwrap();
            let p = r.prepare(file).unwrap();
            let params = spec.validate(RawParams::Pairs(vec![])).unwrap();
            let woke = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let count = woke.clone();
            let sleeper = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
            let limits = Limits { cpu: Duration::from_secs(1), ..Limits::default() };
            let spin = r.invoke(&p, ctx(), spec, params, Artifacts::default(), limits).await;
            drop(b);
            sleeper.abort();
            assert!(spin.result.message.contains("CPU limit"), "{:?}", spin.result);
            let woke = woke.load(std::sync::atomic::Ordering::SeqCst);
            assert!(woke >= 10, "the sleeper woke {woke} times while the guest spun for 1 s");
        })
        .await
    })
    .unwrap();
}
