//! The documented deployment, for real: berth serve as a swarm service of two replicas
//! (`host/deploy/swarm/berth-stack.yml`), its config a swarm config and its database URL a
//! swarm secret, sharing one PostgreSQL. On a single-node swarm of an isolated engine the test
//! starts, with the image `host/deploy/image.sh` builds from the release build.

use berth_test_support as common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::{hash, http};
use common::*;
use serde_json::Value;

const TOKEN: &str = "soar-token";

fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new("docker").arg("-H").arg(host).args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs}s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A prefix P with ports P1 and P2 free on loopback (the replicas' ports, by task slot).
fn port_prefix() -> u32 {
    loop {
        let p = 2000 + fastrand_u32() % 4500;
        if (1..=2).all(|slot| std::net::TcpListener::bind(("127.0.0.1", (p * 10 + slot) as u16)).is_ok()) {
            return p;
        }
    }
}

fn fastrand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() ^ std::process::id()
}

#[test]
fn berth_serve_runs_as_a_two_replica_swarm_service_on_postgresql() {
    let base = PathBuf::from(format!("/tmp/berth-deploy-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let host = engines.start(base.join("engine"), &[]);
    let swarm_addr = format!("127.0.0.1:{}", free_port());
    docker(&host, &["swarm", "init", "--advertise-addr", &swarm_addr, "--listen-addr", &swarm_addr]);
    let pg = Postgres::start();
    let socket = host.trim_start_matches("unix://");

    // The image with the one family the test runs (the stock image holds every family).
    let actions = tempfile::tempdir().unwrap();
    std::fs::copy(wasm("berth-action-system"), actions.path().join("system.wasm")).unwrap();
    let image = Command::new(workspace().join("host/deploy/image.sh"))
        .arg("berth:deploy-test")
        .env("DOCKER_HOST", &host)
        .env("BERTH_BIN", berth_bin())
        .env("BERTH_ACTIONS", actions.path())
        .output()
        .unwrap();
    assert!(image.status.success(), "image.sh: {}", String::from_utf8_lossy(&image.stderr));

    let config = format!(
        "[server]\nactions = \"/usr/lib/berth/actions\"\ncache = \"/var/cache/berth\"\nstate_dir = \"/tmp/berth\"\nmax_concurrent = 16\npool_memory_mib = 64\n\
         database_url_file = \"/run/secrets/berth_database_url\"\njob_lease_secs = 4\nshutdown_delay_secs = 1\nshutdown_grace_secs = 2\n\n\
         [[tenant]]\nname = \"soar\"\ntoken_sha256 = \"{}\"\nengine = \"unix:///var/run/docker.sock\"\nallow = [\"system.*\"]\n",
        hash(TOKEN)
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("berth.toml"), &config).unwrap();
    std::fs::write(work.path().join("db"), &pg.url).unwrap();
    docker(&host, &["config", "create", "berth_config", work.path().join("berth.toml").to_str().unwrap()]);
    docker(&host, &["secret", "create", "berth_database_url", work.path().join("db").to_str().unwrap()]);

    let prefix = port_prefix();
    let deploy = Command::new("docker")
        .args(["-H", &host, "stack", "deploy", "-c"])
        .arg(workspace().join("host/deploy/swarm/berth-stack.yml"))
        .arg("berth")
        .env("BERTH_IMAGE", "berth:deploy-test")
        .env("BERTH_PORT_PREFIX", prefix.to_string())
        .env("BERTH_ENGINE_SOCKET", socket)
        .output()
        .unwrap();
    assert!(deploy.status.success(), "stack deploy: {}", String::from_utf8_lossy(&deploy.stderr));
    let replicas: Vec<String> = (1..=2).map(|slot| format!("127.0.0.1:{prefix}{slot}")).collect();
    for r in &replicas {
        eventually(120, &format!("replica {r} ready"), || (http(r, "GET", "/readyz", None, None).0 == 200).then_some(()));
    }
    let services = docker(&host, &["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]);
    assert!(services.contains("berth_serve 2/2"), "{services}");

    // Each replica serves; a job started on one is answered by the other.
    for r in &replicas {
        let (st, j) = http(r, "POST", "/v1/actions/system.version", Some(TOKEN), Some("{}"));
        assert_eq!(st, 200, "{j}");
        assert_eq!(j["summary"]["api_version"], "1.41");
    }
    let start = |r: &str, body: &str| -> String {
        let (st, j) = http(r, "POST", "/v1/actions/system.events?async=true", Some(TOKEN), Some(body));
        assert_eq!(st, 202, "{j}");
        j["job"].as_str().unwrap().to_string()
    };
    let short = start(&replicas[0], r#"{"max_duration": 1}"#);
    let done: Value = eventually(30, "the job done, seen from the other replica", || {
        let (_, j) = http(&replicas[1], "GET", &format!("/v1/jobs/{short}"), Some(TOKEN), None);
        (j["status"] == "done").then_some(j)
    });
    assert_eq!(done["result"]["summary"]["ended_by"], "max_duration", "{done}");

    // Stopping a replica's task (as a rolling update does): SIGTERM, drain, its long job
    // interrupted, answered by the other replica; swarm starts the task again.
    let long = start(&replicas[0], r#"{"max_duration": 600}"#);
    let task = docker(&host, &["ps", "-q", "--filter", "name=berth_serve.1."]);
    assert!(!task.is_empty(), "the task of slot 1");
    docker(&host, &["stop", "-t", "30", &task]);
    let j: Value = eventually(30, "the long job interrupted", || {
        let (_, j) = http(&replicas[1], "GET", &format!("/v1/jobs/{long}"), Some(TOKEN), None);
        (j["status"] != "running").then_some(j)
    });
    assert_eq!(j["status"], "interrupted", "{j}");
    assert!(j["message"].as_str().unwrap().contains("grace period"), "{j}");
    let logs = Command::new("docker").args(["-H", &host, "logs", &task]).output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    assert!(logs.contains("SIGTERM: draining") && logs.contains("1 async jobs interrupted"), "{logs}");
    eventually(120, "slot 1 back", || (http(&replicas[0], "GET", "/readyz", None, None).0 == 200).then_some(()));
    let (st, j) = http(&replicas[0], "GET", &format!("/v1/jobs/{short}"), Some(TOKEN), None);
    assert_eq!((st, j["status"].as_str()), (200, Some("done")), "the restarted replica answers from the shared store: {j}");

    docker(&host, &["stack", "rm", "berth"]);
}
