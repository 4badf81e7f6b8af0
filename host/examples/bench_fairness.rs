//! Fair share under a flood (part of `make bench`): a quiet tenant's `system.ping` p50 through
//! `berth serve`, idle and while another tenant keeps 1,000 CPU-bound invocations in flight.
//! Target: the flooded p50 stays within 2x of the idle p50.
//!
//! usage: bench_fairness ACTIONS_DIR DOCKER_HOST   (ACTIONS_DIR holds system.wasm and a
//! component with the `test.spin` action)

use std::time::{Duration, Instant};

use berth::server::{Config, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn p50(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let actions = std::path::PathBuf::from(args.next().expect("usage: bench_fairness ACTIONS_DIR DOCKER_HOST"));
    let host = args.next().expect("usage: bench_fairness ACTIONS_DIR DOCKER_HOST");
    let cache = tempfile::tempdir()?;
    let quiet = hex::encode(berth::server::config::hash_token("quiet"));
    let flood = hex::encode(berth::server::config::hash_token("flood"));
    let cfg = Config::parse(&format!(
        "[server]\ncache = \"{0}\"\nstate_dir = \"{0}/state\"\nmax_concurrent = 1100\n\
         [[tenant]]\nname = \"quiet\"\ntoken_sha256 = \"{quiet}\"\nengine = \"{host}\"\nallow = [\"system.*\"]\n[tenant.limits]\nrequests_per_minute = 10000000\n\
         [[tenant]]\nname = \"flood\"\ntoken_sha256 = \"{flood}\"\nengine = \"{host}\"\nallow = [\"test.*\"]\n[tenant.limits]\ncpu_secs = 600\ntimeout_secs = 600\nmax_queued = 1000\nrequests_per_minute = 10000000\n",
        cache.path().display()
    ))
    .map_err(|e| anyhow::anyhow!(e))?;
    // The server on a runtime of its own, as `berth serve` runs it.
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let addr = server_rt.block_on(async {
        let server = Server::new(cfg, actions).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(berth::server::serve(server, listener));
        anyhow::Ok(addr)
    })?;
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    client_rt.block_on(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1100).build_http();
        let call = |token: &'static str, action: &'static str| {
            let client = client.clone();
            async move {
                let req = http::Request::post(format!("http://{addr}/v1/actions/{action}"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap();
                let t = Instant::now();
                let resp = client.request(req).await;
                let ok = match resp {
                    Ok(r) => {
                        let st = r.status();
                        let _ = r.into_body().collect().await;
                        st == 200
                    }
                    Err(_) => false,
                };
                (ok, t.elapsed())
            }
        };
        let pings = |n: usize| async move {
            let mut v = Vec::new();
            for _ in 0..n {
                let (ok, d) = call("quiet", "system.ping").await;
                assert!(ok, "system.ping failed");
                v.push(d);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            v
        };
        pings(50).await;
        let mut idle = pings(300).await;
        let mut flooding = Vec::new();
        for _ in 0..1000 {
            flooding.push(tokio::spawn(call("flood", "test.spin")));
        }
        // Let the flood reach its steady state: slots full, the rest queued.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut busy = pings(300).await;
        for f in &flooding {
            f.abort();
        }
        let (i, b) = (p50(&mut idle), p50(&mut busy));
        println!("quiet tenant system.ping p50, idle                      {i:8.2} ms");
        println!("quiet tenant system.ping p50, 1000 CPU-bound in flight  {b:8.2} ms");
        let ok = b <= 2.0 * i;
        println!("flooded / idle                                          {:8.2}x   target <= 2x   {}", b / i, if ok { "PASS" } else { "MISS" });
    });
    drop(server_rt);
    Ok(())
}
