//! In-process runtime costs, with the engine's latency left out (part of `make bench`):
//! compile, cache load, instantiate (on-demand and pooled), instantiate + call, and the
//! latency berth adds to a real `system.ping` over calling the engine directly, and the CPU a
//! call costs: the engine call alone, `floor.ping` (the sandbox around that one call, no SDK)
//! and `system.ping`.
//!
//! usage: bench_runtime ACTIONS_DIR [DOCKER_HOST [FLOOR_DIR]]

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::credentials::Credentials;
use berth::engine::{EngineClient, OutBody, Timeouts};
use berth::runtime::{Artifacts, HostContext, Limits, Runtime, RuntimeConfig};
use berth::spec::RawParams;

/// The pool `berth serve` makes by default.
const POOL: berth::runtime::PoolSpec = berth::runtime::PoolSpec { instances: 256, memory_mib: berth::runtime::pool::DEFAULT_MEMORY_MIB };

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    (mean, us(v[v.len() / 2]), us(v[v.len() * 99 / 100]))
}

fn line(what: &str, v: Vec<Duration>) {
    let (mean, p50, p99) = stats(v);
    println!("{what:<44} mean {mean:>9.1} µs   p50 {p50:>9.1} µs   p99 {p99:>9.1} µs");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: bench_runtime ACTIONS_DIR [DOCKER_HOST]"));
    let host = args.next();
    let floor_dir = args.next().map(std::path::PathBuf::from);
    let wasm = std::fs::read(dir.join("system.wasm"))?;
    let cache = tempfile::tempdir()?;

    // Compile (Cranelift) versus load from the cache.
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().into()), ..Default::default() })?;
    let t = Instant::now();
    rt.engine().precompile_component(&wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
    let compile = t.elapsed();
    let catalog = rt.discover(&dir).await?;
    let (file, spec) = catalog.action("system.ping").expect("system.ping");
    let mut loads = Vec::new();
    for _ in 0..20 {
        let fresh = Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().into()), map_cache_files: true, ..Default::default() })?;
        let t = Instant::now();
        fresh.prepare(file)?;
        loads.push(t.elapsed());
    }
    println!("{:<44} {:>9.1} ms", "compile system.wasm (Cranelift)", compile.as_secs_f64() * 1e3);
    line("load from cache (checksum + map + InstancePre)", loads);

    if std::env::var_os("BENCH_ONLY_POOLED").is_some() {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().into()), pool: Some(POOL), ..Default::default() })?;
        let p = rt.prepare(file)?;
        for _ in 0..200_000 {
            rt.instantiate_only(&p).await?;
        }
        return Ok(());
    }
    for pooling in [false, true] {
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().into()), pool: pooling.then_some(POOL), ..Default::default() })?;
        let p = rt.prepare(file)?;
        let label = if pooling { "pooled" } else { "on-demand" };
        for _ in 0..200 {
            rt.instantiate_only(&p).await?;
        }
        let mut inst = Vec::new();
        for _ in 0..5000 {
            let t = Instant::now();
            rt.instantiate_only(&p).await?;
            inst.push(t.elapsed());
        }
        line(&format!("instantiate ({label}, fresh Store)"), inst);
        let mut call = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            rt.describe(&p).await?;
            call.push(t.elapsed());
        }
        line(&format!("instantiate + call describe() ({label})"), call);
    }

    if let Some(host) = host {
        let engine = Arc::new(EngineClient::connect(&host, Timeouts::default())?);
        engine.api_version().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let rt = Runtime::new(RuntimeConfig { cache_dir: Some(cache.path().into()), pool: Some(POOL), ..Default::default() })?;
        let p = rt.prepare(file)?;
        let ctx = HostContext::new(engine.clone(), Arc::new(Credentials::from_store(Default::default())));
        let params = spec.validate(RawParams::Pairs(vec![]))?;
        let (mut direct, mut via) = (Vec::new(), Vec::new());
        for i in 0..1200 {
            let t = Instant::now();
            let resp = engine.send(http::Method::GET, "/_ping", "", &http::HeaderMap::new(), OutBody::Empty).await?;
            berth::engine::read_capped(resp.into_body(), 1 << 20, Duration::from_secs(5)).await?;
            let d = t.elapsed();
            let t = Instant::now();
            let out = rt.invoke(&p, ctx.clone(), spec, params.clone(), Artifacts::default(), Limits::default()).await;
            let v = t.elapsed();
            assert!(out.result.error.is_none(), "{:?}", out.result);
            if i >= 200 {
                direct.push(d);
                via.push(v);
            }
        }
        let (dm, d50, d99) = stats(direct);
        let (vm, v50, v99) = stats(via.clone());
        println!("{:<44} mean {dm:>9.1} µs   p50 {d50:>9.1} µs   p99 {d99:>9.1} µs", "  (direct, measured)");
        println!("{:<44} mean {vm:>9.1} µs   p50 {v50:>9.1} µs   p99 {v99:>9.1} µs", "system.ping through berth (pooled)");
        println!("{:<44} p50 {:>9.1} µs   p99 {:>9.1} µs", "added latency per invocation", v50 - d50, v99 - d99);

        if let Some(floor_dir) = floor_dir {
            let floor = rt.discover(&floor_dir).await?;
            let (floor_file, floor_spec) = floor.action("floor.ping").expect("floor.ping");
            let floor_pre = rt.prepare(floor_file)?;
            let floor_params = floor_spec.validate(RawParams::Pairs(vec![]))?;
            // The process's CPU time (user + system) per call, in blocks of 300 calls of each
            // kind taken in turn, 40 rounds, the order rotated each round: a phase of the
            // machine falls on all three alike. The median block of each.
            let cpu = || {
                let mut u: libc::rusage = unsafe { std::mem::zeroed() };
                unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
                let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                secs(u.ru_utime) + secs(u.ru_stime)
            };
            const BLOCK: usize = 300;
            let mut per_call: [Vec<f64>; 3] = Default::default();
            for round in 0..40 {
                for k in 0..3 {
                    let k = (k + round) % 3;
                    let before = cpu();
                    for _ in 0..BLOCK {
                        match k {
                            0 => {
                                let resp = engine.send(http::Method::GET, "/_ping", "", &http::HeaderMap::new(), OutBody::Empty).await?;
                                berth::engine::read_capped(resp.into_body(), 1 << 20, Duration::from_secs(5)).await?;
                            }
                            1 => assert!(rt
                                .invoke(&floor_pre, ctx.clone(), floor_spec, floor_params.clone(), Artifacts::default(), Limits::default())
                                .await
                                .result
                                .error
                                .is_none()),
                            _ => {
                                assert!(rt.invoke(&p, ctx.clone(), spec, params.clone(), Artifacts::default(), Limits::default()).await.result.error.is_none())
                            }
                        }
                    }
                    per_call[k].push((cpu() - before) * 1e6 / BLOCK as f64);
                }
            }
            let [direct, floor, ping] = per_call.map(|mut v| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            });
            println!("{:<44} engine call {direct:.1} µs   floor.ping {floor:.1} µs   system.ping {ping:.1} µs", "CPU per call (median of 40 blocks)");
        }
    }
    Ok(())
}
