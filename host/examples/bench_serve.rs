//! `berth serve` figures (part of `make bench`), measured in one run against calling the
//! engine directly: added latency per invocation, the durable job store's cost per async job,
//! and system.ping throughput at 32 concurrent clients (`tests/bench.sh` measures the served
//! process under wrk, and its RSS with 1,000 invocations in flight).
//!
//! usage: bench_serve ACTIONS_DIR DOCKER_HOST [CERT_DIR]
//!
//! With CERT_DIR (ca.pem, cert.pem, key.pem; the engine's certificate names localhost),
//! DOCKER_HOST is a TLS engine, and only the added latency is measured: the direct client
//! and berth serve both reach it over mutual TLS on pooled connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::{EngineClient, OutBody, Timeouts};
use berth::server::{Config, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let actions = std::path::PathBuf::from(args.next().expect("usage: bench_serve ACTIONS_DIR DOCKER_HOST"));
    let host = args.next().expect("usage: bench_serve ACTIONS_DIR DOCKER_HOST");
    let certs = args.next().map(std::path::PathBuf::from);
    let tls_line = match &certs {
        Some(d) => format!("tls = {{ ca = \"{0}/ca.pem\", cert = \"{0}/cert.pem\", key = \"{0}/key.pem\" }}\n", d.display()),
        None => String::new(),
    };
    let cache = tempfile::tempdir()?;
    let hash = hex::encode(berth::server::config::hash_token("bench"));
    let cfg = Config::parse(&format!(
        "[server]\ncache = \"{0}\"\nstate_dir = \"{0}/state\"\nmax_concurrent = 1000\nengine_requests_per_second = 0\nengine_max_connections = 0\n[[tenant]]\nname = \"bench\"\ntoken_sha256 = \"{hash}\"\nengine = \"{host}\"\n{tls_line}allow = [\"system.*\"]\n[tenant.limits]\nconcurrency = 1000\nrequests_per_minute = 10000000\n",
        cache.path().display()
    ))
    .map_err(|e| anyhow::anyhow!(e))?;
    let server = Server::new(cfg, actions).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(berth::server::serve(server, listener));

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1100).build_http();
    let call = {
        let client = client.clone();
        move |action: &'static str, body: &'static str| {
            let client = client.clone();
            async move {
                let req = http::Request::post(format!("http://{addr}/v1/actions/{action}"))
                    .header("authorization", "Bearer bench")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap();
                let resp = client.request(req).await.expect("request");
                let status = resp.status();
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                if status != 200 {
                    eprintln!("{action}: {status} {}", String::from_utf8_lossy(&body));
                }
                status == 200
            }
        }
    };
    let endpoint = berth::engine::Endpoint::new(&host, certs.as_ref().map(|d| berth::engine::tls::TlsSettings::from_dir(d, true)));
    let engine = Arc::new(EngineClient::connect_to(&endpoint, Timeouts::default())?);
    engine.api_version().await.map_err(|e| anyhow::anyhow!("{e}"))?;

    // Added latency: the same engine call, direct and through berth serve (HTTP + auth +
    // policy + a fresh sandboxed instance), interleaved.
    let (mut direct, mut via) = (Vec::new(), Vec::new());
    for i in 0..2200 {
        let t = Instant::now();
        let r = engine.send(http::Method::GET, "/_ping", "", &http::HeaderMap::new(), OutBody::Empty).await?;
        berth::engine::read_capped(r.into_body(), 1 << 16, Duration::from_secs(5)).await?;
        let d = t.elapsed();
        let t = Instant::now();
        assert!(call("system.ping", "{}").await);
        if i >= 200 {
            direct.push(d);
            via.push(t.elapsed());
        }
    }
    let (d50, d99, v50, v99) = (pct(&mut direct, 0.5), pct(&mut direct, 0.99), pct(&mut via, 0.5), pct(&mut via, 0.99));
    println!("{:<52} p50 {d50:>8.1} µs   p99 {d99:>8.1} µs", "GET /_ping, engine direct");
    println!("{:<52} p50 {v50:>8.1} µs   p99 {v99:>8.1} µs", "system.ping through berth serve");
    println!("{:<52} p50 {:>8.1} µs   p99 {:>8.1} µs", "added latency per invocation", v50 - d50, v99 - d99);
    if certs.is_some() {
        return Ok(());
    }

    // What the durable job store adds per async job (SQLite, WAL, in a temp state directory):
    // record it running, count the tenant's running jobs (the cap), store its result, answer
    // a poll. Sync invocations never touch the store.
    {
        use berth::server::store::{NewJob, Store, StoreConfig};
        let dir = tempfile::tempdir()?;
        let cfg = StoreConfig { state_dir: dir.path().into(), database_url: None, lease: Duration::from_secs(10), config_sha256: "bench".into() };
        let store = Store::open(&cfg, "bench").await.map_err(|e| anyhow::anyhow!(e))?;
        let params = serde_json::json!({"max_duration": 1});
        let result =
            serde_json::json!({"status": "success", "message": "Docker engine answered /_ping", "data": [{"ok": true}], "summary": {"api_version": "1.41"}});
        let mut per_job = Vec::new();
        for i in 0..2200 {
            let id = format!("{i:032x}");
            let t = Instant::now();
            store.running("bench").await.map_err(|e| anyhow::anyhow!(e))?;
            store
                .start(NewJob { id: &id, tenant: "bench", action: "system.ping", params: &params, keep_results: 100 })
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            store.finish(&id, &result).await.map_err(|e| anyhow::anyhow!(e))?;
            store.get("bench", &id).await.map_err(|e| anyhow::anyhow!(e))?.expect("stored");
            if i >= 200 {
                per_job.push(t.elapsed());
            }
        }
        let (p50, p99) = (pct(&mut per_job, 0.5), pct(&mut per_job, 0.99));
        println!("{:<52} p50 {p50:>8.1} µs   p99 {p99:>8.1} µs", "durable job store (SQLite) per async job");
    }

    // Throughput at 32 concurrent clients.
    let secs = 5.0;
    let started = Instant::now();
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed().as_secs_f64() < secs {
                    assert!(call("system.ping", "{}").await);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await?;
    }
    println!(
        "{:<52} {:>8.0} req/s ({total} in {secs} s, zero errors)",
        "system.ping throughput, 32 concurrent clients",
        total as f64 / started.elapsed().as_secs_f64()
    );

    Ok(())
}
