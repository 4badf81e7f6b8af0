//! The swarm families against a real two-node swarm: two isolated dockerds of this machine
//! (their own sockets, data roots and swarm ports on 127.0.0.1), the first initialised as the
//! manager through berth, the second joined as a worker through berth.

use berth_test_support as common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use http::Method;
use serde_json::{json, Value};

const FAMILIES: &[&str] = &["swarm", "node", "service", "task", "secret", "config"];

fn ok(b: &Berth, args: &[&str]) -> Value {
    let r = b.run(args);
    r.ok().clone()
}

fn item(v: &Value) -> &Value {
    &v["data"][0]
}

/// Polls `f` for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {secs}s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_two_node_swarm_end_to_end() {
    let base = PathBuf::from(format!("/tmp/berth-swarm-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let (dir_a, dir_b) = (base.join("a"), base.join("b"));
    let a = engines.start(dir_a.clone(), &[]);
    let b = engines.start(dir_b.clone(), &[]);
    build_test_image(&a);
    build_test_image(&b);
    let ma = Berth::families_at(FAMILIES, a.clone());
    let wb = Berth::families_at(FAMILIES, b.clone());
    let (pa, pb) = (free_port(), free_port());

    // ---- swarm: init, inspect (no tokens), join-tokens, join -------------------------
    let addr_a = format!("127.0.0.1:{pa}");
    let init = ok(&ma, &["run", "swarm.init", &format!("listen_addr={addr_a}"), &format!("advertise_addr={addr_a}")]);
    let manager_id = item(&init)["node_id"].as_str().unwrap().to_string();
    let inspect = ok(&ma, &["run", "swarm.inspect"]);
    assert!(item(&inspect).get("JoinTokens").is_none(), "swarm.inspect must not show join tokens");
    assert!(!inspect.to_string().contains("SWMTKN"), "{inspect}");
    let tokens = ok(&ma, &["run", "swarm.join-tokens"]);
    let worker_token = item(&tokens)["worker"].as_str().unwrap().to_string();
    assert!(worker_token.starts_with("SWMTKN-"), "{tokens}");
    assert!(!tokens["message"].as_str().unwrap().contains("SWMTKN"), "tokens never go in the (audited) message");
    let join = wb.run(&[
        "run",
        "swarm.join",
        &format!("remote_addrs={addr_a}"),
        &format!("join_token={worker_token}"),
        &format!("listen_addr=127.0.0.1:{pb}"),
        &format!("advertise_addr=127.0.0.1:{pb}"),
    ]);
    let joined = join.ok();
    assert_eq!(joined["parameter"]["join_token"], "<redacted>", "the join token is a secret param");
    assert!(!joined.to_string().contains(&worker_token));
    let worker_id = item(joined)["node_id"].as_str().unwrap().to_string();

    // ---- node: list, inspect, update ------------------------------------------------
    eventually(20, "two ready nodes", || {
        let l = ok(&ma, &["run", "node.list"]);
        l["data"].as_array().unwrap().iter().filter(|n| n["Status"]["State"] == "ready").count() == 2
    });
    // `self`, as the docker CLI reads it: the node of the engine asked.
    assert_eq!(item(&ok(&ma, &["run", "node.inspect", "id=self"]))["ID"], manager_id.as_str());
    let n = ok(&ma, &["run", "node.inspect", &format!("id={worker_id}")]);
    assert_eq!(n["summary"]["availability"], "active");
    ok(&ma, &["run", "node.update", &format!("id={worker_id}"), r#"labels={"zone":"b","tier":"edge"}"#]);
    ok(&ma, &["run", "node.update", &format!("id={worker_id}"), "labels_remove=tier"]);
    let n = api_json_at(&a, &format!("/nodes/{worker_id}"));
    assert_eq!(n["Spec"]["Labels"], json!({"zone": "b"}));
    let e = ma.run(&["run", "node.update", &format!("id={worker_id}"), "availability=sleepy"]);
    e.expect_code(2);
    assert!(e.message().contains("availability"), "{}", e.message());

    // ---- secrets and configs ----------------------------------------------------------
    let pw = unique("pw");
    let s = ma.run(&["run", "secret.create", &format!("name={pw}"), "data=hunter2", r#"labels={"app":"web"}"#]);
    assert_eq!(s.ok()["parameter"]["data"], "<redacted>");
    let secret_id = s.ok()["summary"]["id"].as_str().unwrap().to_string();
    let si = ok(&ma, &["run", "secret.inspect", &format!("id={pw}")]);
    assert!(!si.to_string().contains("hunter2") && item(&si)["Spec"].get("Data").is_none());
    ok(&ma, &["run", "secret.update", &format!("id={pw}"), r#"labels={"app":"web","rotated":"no"}"#]);
    assert_eq!(api_json_at(&a, &format!("/secrets/{secret_id}"))["Spec"]["Labels"]["rotated"], "no");
    let sl = ok(&ma, &["run", "secret.list", r#"filters={"label":["app=web"]}"#]);
    assert_eq!(sl["summary"]["total_objects"], 1);
    let cfg = unique("cfg");
    ok(&ma, &["run", "config.create", &format!("name={cfg}"), "data=mode=prod"]);
    let ci = ok(&ma, &["run", "config.inspect", &format!("id={cfg}")]);
    assert_eq!(item(&ci)["Spec"]["DataText"], "mode=prod");
    ok(&ma, &["run", "config.update", &format!("id={cfg}"), r#"labels={"env":"prod"}"#]);
    assert_eq!(ok(&ma, &["run", "config.list", r#"filters={"label":["env=prod"]}"#])["summary"]["total_objects"], 1);
    // Labels merge as docker's --label-add and --label-rm do; replacing is explicit.
    ok(&ma, &["run", "secret.update", &format!("id={pw}"), r#"labels={"tier":"a"}"#, "labels_remove=rotated"]);
    assert_eq!(api_json_at(&a, &format!("/secrets/{secret_id}"))["Spec"]["Labels"], json!({"app": "web", "tier": "a"}));
    ok(&ma, &["run", "config.update", &format!("id={cfg}"), r#"labels={"only":"1"}"#, "replace_labels=true"]);
    assert_eq!(api_json_at(&a, &format!("/configs/{cfg}"))["Spec"]["Labels"], json!({"only": "1"}));
    ma.run(&["run", "config.update", &format!("id={cfg}")]).expect_code(2);
    ok(&ma, &["run", "config.update", &format!("id={cfg}"), r#"labels={"env":"prod"}"#, "labels_remove=only"]);
    let e = ma.run(&["run", "secret.create", &format!("name={}", unique("x"))]);
    e.expect_code(2);
    assert!(e.message().contains("needs 'data'"), "{}", e.message());

    // ---- through berth serve: join tokens and secret data stay out of the audit and logs --
    let tenants =
        format!("[[tenant]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\nengine = \"{a}\"\nallow = [\"swarm.*\", \"secret.*\"]\n", common::serve::hash("ops-token"));
    let serve = common::serve::Serve::start(&[("swarm.wasm", wasm("berth-action-swarm")), ("secret.wasm", wasm("berth-action-secret"))], &tenants);
    let (status, t) = serve.run("ops-token", "swarm.join-tokens", json!({}));
    assert_eq!(status, 200, "{t}");
    let token = t["data"][0]["worker"].as_str().unwrap().to_string();
    let leaked = unique("leak");
    let (status, c) = serve.run("ops-token", "secret.create", json!({"name": leaked, "data": "s3cr3t-value"}));
    assert_eq!(status, 200, "{c}");
    let audit = serve.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    let text = format!("{audit:?}{}", serve.log());
    assert!(!text.contains(&token) && !text.contains("SWMTKN") && !text.contains("s3cr3t"), "a secret reached the audit or the log: {text}");
    assert_eq!(audit[1]["params"]["data"], "<redacted>");
    drop(serve);
    api_at(&a, Method::DELETE, &format!("/secrets/{leaked}"), "", None);

    // ---- services and tasks -----------------------------------------------------------
    let web = unique("web");
    // The task reads its secret and config, says so, and exits at once on SIGTERM.
    let cmd = format!("sh -c 'echo started; wc -c < /run/secrets/{pw}; cat /{cfg}; echo; trap \"exit 0\" TERM; while :; do sleep 1; done'");
    let created = ok(
        &ma,
        &[
            "run",
            "service.create",
            &format!("name={web}"),
            &format!("image={TEST_IMAGE}"),
            &format!("command={cmd}"),
            "replicas=2",
            &format!("secrets={pw}"),
            &format!("configs={cfg}"),
            r#"labels={"app":"web"}"#,
        ],
    );
    let service_id = created["summary"]["id"].as_str().unwrap().to_string();
    let conv = ok(&ma, &["run", "service.wait-converged", &format!("id={web}"), "timeout=60"]);
    assert_eq!(item(&conv)["running"], 2);
    let tasks = ok(&ma, &["run", "task.list", &format!(r#"filters={{"service":["{web}"],"desired-state":["running"]}}"#)]);
    assert_eq!(tasks["summary"]["total_objects"], 2);
    let nodes: std::collections::BTreeSet<String> = tasks["data"].as_array().unwrap().iter().map(|t| t["NodeID"].as_str().unwrap().to_string()).collect();
    assert_eq!(nodes.len(), 2, "one task on each node: {nodes:?}");
    // Named as `docker service ps` names them: service.slot, and the node's hostname.
    let mut names: Vec<String> = tasks["data"].as_array().unwrap().iter().map(|t| t["Name"].as_str().unwrap_or_default().to_string()).collect();
    names.sort();
    assert_eq!(names, [format!("{web}.1"), format!("{web}.2")], "{tasks}");
    let hostname = api_json_at(&a, "/info")["Name"].as_str().unwrap().to_string();
    for t in tasks["data"].as_array().unwrap() {
        assert_eq!(t["ServiceName"], web.as_str());
        assert_eq!(t["NodeHostname"], hostname.as_str(), "both nodes run on this machine: {t}");
    }
    let task_id = tasks["data"][0]["ID"].as_str().unwrap().to_string();
    let ti = ok(&ma, &["run", "task.inspect", &format!("id={task_id}")]);
    assert_eq!(ti["summary"]["state"], "running");
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(last.contains("started") && last.contains("mode=prod") && last.contains('7')) {
        assert!(Instant::now() < deadline, "task logs: {last:?}");
        std::thread::sleep(Duration::from_millis(200));
        let tl = ok(&ma, &["run", "task.logs", &format!("id={task_id}")]);
        last = tl.to_string();
    }
    let sl = ok(&ma, &["run", "service.logs", &format!("id={web}"), "tail=100"]);
    assert_eq!(sl["summary"]["stdout_lines"], 6, "3 lines from each of the 2 tasks: {sl}");
    let sl = ok(&ma, &["run", "service.logs", &format!("id={web}"), "max_lines=2"]);
    assert_eq!(sl["summary"]["truncated"], true, "bounded like container logs: {sl}");
    let svcs = ok(&ma, &["run", "service.list", r#"filters={"label":["app=web"]}"#]);
    assert_eq!(svcs["summary"]["total_objects"], 1);
    assert_eq!(svcs["data"][0]["ServiceStatus"]["RunningTasks"], 2);
    // Update with the version, then roll back to the previous spec.
    let before = api_json_at(&a, &format!("/services/{service_id}"));
    ok(&ma, &["run", "service.update", &format!("id={web}"), r#"env={"LEVEL":"debug"}"#]);
    let after = api_json_at(&a, &format!("/services/{service_id}"));
    assert_eq!(after["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"], json!(["LEVEL=debug"]));
    assert!(after["Version"]["Index"].as_u64() > before["Version"]["Index"].as_u64());
    let stale = ma.run(&["run", "service.update", &format!("id={web}"), "force=true", &format!("version={}", before["Version"]["Index"])]);
    stale.expect_code(1);
    assert!(
        stale.message().contains("out of sequence") || stale.message().contains("version"),
        "a stale version is refused by the engine: {}",
        stale.message()
    );
    ok(&ma, &["run", "service.rollback", &format!("id={web}")]);
    eventually(30, "rollback", || api_json_at(&a, &format!("/services/{service_id}"))["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"].is_null());
    ok(&ma, &["run", "service.wait-converged", &format!("id={web}"), "timeout=60"]);
    let si = ok(&ma, &["run", "service.inspect", &format!("id={web}"), "insert_defaults=true"]);
    assert!(si["message"].as_str().unwrap().contains("2 replicas"), "{}", si["message"]);

    // ---- updates merge, as the docker CLI's --env-add and --label-add do -------------------
    let merge = unique("merge");
    let spec_of = |name: &str| api_json_at(&a, &format!("/services/{name}"))["Spec"].clone();
    let env_of = |spec: &Value| -> std::collections::BTreeSet<String> {
        spec["TaskTemplate"]["ContainerSpec"]["Env"].as_array().into_iter().flatten().map(|e| e.as_str().unwrap().to_string()).collect()
    };
    let set = |items: &[&str]| -> std::collections::BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
    ok(
        &ma,
        &[
            "run",
            "service.create",
            &format!("name={merge}"),
            &format!("image={TEST_IMAGE}"),
            "replicas=0",
            r#"env={"FOO":"bar","KEEP":"1"}"#,
            r#"labels={"svc":"x","tier":"a"}"#,
        ],
    );
    ok(&ma, &["run", "service.update", &format!("id={merge}"), r#"env={"FOO":"baz"}"#, r#"labels={"stage":"2"}"#]);
    let spec = spec_of(&merge);
    assert_eq!(env_of(&spec), set(&["FOO=baz", "KEEP=1"]), "one variable rotated, the rest kept: {spec}");
    assert_eq!(spec["Labels"], json!({"svc": "x", "tier": "a", "stage": "2"}), "{spec}");
    // The docker CLI, on the same service, keeps what it is not given too.
    let docker = ["/usr/bin/docker", "/usr/local/bin/docker"].into_iter().find(|p| std::path::Path::new(p).exists()).expect("the docker CLI (docker.io)");
    let out = std::process::Command::new(docker)
        .args(["-H", &a, "service", "update", "--detach", "--env-add", "FOO=qux", "--label-add", "cli=1", &merge])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = spec_of(&merge);
    assert_eq!(env_of(&spec), set(&["FOO=qux", "KEEP=1"]), "{spec}");
    // Removing is explicit, as --env-rm and --label-rm.
    ok(&ma, &["run", "service.update", &format!("id={merge}"), "env_remove=KEEP", "labels_remove=stage,cli"]);
    let spec = spec_of(&merge);
    assert_eq!(env_of(&spec), set(&["FOO=qux"]), "{spec}");
    assert_eq!(spec["Labels"], json!({"svc": "x", "tier": "a"}), "{spec}");
    ok(&ma, &["run", "service.remove", &format!("id={merge}")]);

    // ---- a label-scoped tenant on the swarm -----------------------------------------------
    let policy = base.join("red.toml");
    std::fs::write(&policy, format!("label_scope = \"team=red\"\n[engine_policy]\nimages = [\"{TEST_IMAGE}\"]\nregistries = [\"docker.io\"]\n")).unwrap();
    let p = policy.to_str().unwrap();
    let denied = |args: &[&str], why: &str| {
        let mut all = vec!["--policy", p, "run"];
        all.extend_from_slice(args);
        let r = ma.run(&all);
        r.expect_code(3);
        assert!(r.message().contains(why), "{args:?}: {}", r.message());
    };
    // Directly, a service bind-mounts the host's root: the engine runs it.
    let direct = json!({"Name": unique("rootfs"), "TaskTemplate": {"ContainerSpec": {"Image": TEST_IMAGE, "Command": ["sleep", "1"],
        "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}}, "Mode": {"Replicated": {"Replicas": 0}}});
    let (status, body) = api_at(&a, Method::POST, "/services/create", "", Some(("application/json", direct.to_string().into_bytes())));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let direct_id = serde_json::from_slice::<Value>(&body).unwrap()["ID"].as_str().unwrap().to_string();
    assert_eq!(api_at(&a, Method::DELETE, &format!("/services/{direct_id}"), "", None).0, 200);
    // Through berth, the same spec is refused, and so are capabilities and the host network.
    let mounts = r#"mounts=[{"Type":"bind","Source":"/","Target":"/host"}]"#;
    let img = format!("image={TEST_IMAGE}");
    denied(&["service.create", "name=evil", &img, mounts], "TaskTemplate.ContainerSpec.Mounts");
    denied(&["service.create", "name=evil", &img, r#"spec={"TaskTemplate":{"ContainerSpec":{"CapabilityAdd":["SYS_ADMIN"]}}}"#], "capability SYS_ADMIN");
    denied(&["service.create", "name=evil", &img, "networks=host"], "host network");
    // Another tenant's (here: unlabelled) service, secret and task, and the swarm itself.
    denied(&["service.scale", &format!("id={web}"), "replicas=9"], "outside this tenant's scope");
    denied(&["service.create", "name=thief", &img, &format!("secrets={pw}")], "outside this tenant's scope");
    denied(&["secret.inspect", &format!("id={pw}")], "outside this tenant's scope");
    denied(&["task.logs", &format!("id={task_id}")], "outside this tenant's scope");
    denied(&["task.list"], "filter the task list by service");
    denied(&["node.drain", &format!("id={worker_id}")], "not available to a label-scoped tenant");
    denied(&["swarm.join-tokens"], "not available to a label-scoped tenant");
    // Red's own service: labelled down to its task containers, seen only by red.
    let red_svc = unique("red");
    let r = ma.run(&["--policy", p, "run", "service.create", &format!("name={red_svc}"), &img, "command=sleep 600", "replicas=0"]);
    r.ok();
    let spec = api_json_at(&a, &format!("/services/{red_svc}"))["Spec"].clone();
    assert_eq!(spec["Labels"]["team"], "red");
    assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Labels"]["team"], "red");
    assert_eq!(spec["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"], json!(512i64 << 20), "the tenant's memory cap");
    let listed = ma.run(&["--policy", p, "run", "service.list"]);
    let names: Vec<&str> = listed.ok()["data"].as_array().unwrap().iter().map(|s| s["Spec"]["Name"].as_str().unwrap()).collect();
    assert_eq!(names, vec![red_svc.as_str()]);
    ma.run(&["--policy", p, "run", "service.remove", &format!("id={red_svc}")]).ok();

    // ---- the incident: drain the worker, scale to zero, rotate the leaked secret -------
    let drained = ok(&ma, &["run", "node.drain", &format!("id={worker_id}"), "timeout=60"]);
    assert_eq!(drained["summary"]["tasks_left"], 0);
    // Done means stopped: no task container of the service still runs on the worker (its
    // tasks ignore SIGTERM, so each takes the 10 s stop timeout after being told to stop).
    let left =
        api_json_at(&b, &format!("/containers/json?filters={}", pct(&json!({"label": [format!("com.docker.swarm.service.id={service_id}")]}).to_string())));
    assert_eq!(left.as_array().unwrap().len(), 0, "containers still running on the drained node: {left}");
    let running = api_json_at(&a, &format!("/tasks?filters={}", pct(&json!({"service": [service_id], "desired-state": ["running"]}).to_string())));
    assert!(running.as_array().unwrap().iter().all(|t| t["NodeID"] == manager_id.as_str()), "every task moved to the manager: {running}");
    let rotated = ok(&ma, &["run", "secret.rotate", &format!("id={pw}"), "data=correct-horse"]);
    assert_eq!(rotated["summary"]["services_updated"], 1);
    let new_secret = item(&rotated)["new_id"].as_str().unwrap().to_string();
    assert!(!rotated.to_string().contains("correct-horse"));
    let spec = api_json_at(&a, &format!("/services/{service_id}"));
    let refs = &spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"];
    assert_eq!(refs[0]["SecretID"], new_secret.as_str());
    assert_eq!(refs[0]["File"]["Name"], pw.as_str(), "the file the service reads keeps its name");
    assert_eq!(api_at(&a, Method::GET, &format!("/secrets/{secret_id}"), "", None).0, 404, "the leaked secret is gone");
    let scaled = ok(&ma, &["run", "service.scale", &format!("id={web}"), "replicas=0", "wait=true", "timeout=60"]);
    assert_eq!(item(&scaled)["previous_replicas"], 2);
    let running = api_json_at(&a, &format!("/tasks?filters={}", pct(&json!({"service": [service_id], "desired-state": ["running"]}).to_string())));
    assert_eq!(running.as_array().unwrap().len(), 0, "{running}");
    ok(&ma, &["run", "node.update", &format!("id={worker_id}"), "availability=active"]);

    // ---- swarm update, token rotation, autolock and unlock ------------------------------
    ok(&ma, &["run", "swarm.update", "task_history_limit=2", "rotate_worker_token=true"]);
    let tokens2 = ok(&ma, &["run", "swarm.join-tokens"]);
    assert_ne!(item(&tokens2)["worker"], worker_token.as_str(), "the worker token was rotated");
    assert_eq!(api_json_at(&a, "/swarm")["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"], 2);
    let m1 = item(&ok(&ma, &["run", "swarm.join-tokens", "rotate=manager"]))["manager"].clone();
    assert_ne!(m1, item(&tokens2)["manager"]);
    let none = ok(&ma, &["run", "swarm.unlockkey"]);
    assert!(none["message"].as_str().unwrap().contains("not autolocked"), "{none}");
    ok(&ma, &["run", "swarm.update", "autolock=true"]);
    let key = item(&ok(&ma, &["run", "swarm.unlockkey"]))["unlock_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("SWMKEY-"), "{key}");

    // ---- the worker leaves; the manager removes it ------------------------------------------
    ok(&wb, &["run", "swarm.leave"]);
    eventually(30, "the worker is down", || api_json_at(&a, &format!("/nodes/{worker_id}"))["Status"]["State"] == "down");
    ok(&ma, &["run", "node.remove", &format!("id={worker_id}")]);
    assert_eq!(ok(&ma, &["run", "node.list"])["summary"]["total_objects"], 1);

    // A restarted autolocked manager comes back locked; swarm.unlock opens it.
    engines.kill(&dir_a);
    let a2 = engines.start(dir_a.clone(), &[]);
    assert_eq!(a2, a);
    eventually(20, "the manager is locked", || api_json_at(&a, "/info")["Swarm"]["LocalNodeState"] == "locked");
    let bad = ma.run(&["run", "swarm.unlock", "unlock_key=SWMKEY-1-wrong"]);
    bad.expect_code(1);
    let unlocked = ma.run(&["run", "swarm.unlock", &format!("unlock_key={key}")]);
    assert_eq!(unlocked.ok()["parameter"]["unlock_key"], "<redacted>");
    eventually(20, "the manager is active", || api_json_at(&a, "/info")["Swarm"]["LocalNodeState"] == "active");
    ok(&ma, &["run", "service.remove", &format!("id={web}")]);
    ok(&ma, &["run", "config.remove", &format!("id={cfg}")]);
    ok(&ma, &["run", "secret.remove", &format!("id={new_secret}")]);
    ok(&ma, &["run", "swarm.leave", "force=true"]);
    assert_eq!(api_json_at(&a, "/info")["Swarm"]["LocalNodeState"], "inactive");
}

fn api_json_at(host: &str, path_and_query: &str) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let (status, body) = api_at(host, Method::GET, path, query, None);
    assert!((200..300).contains(&status), "{path}: {status} {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn pct(s: &str) -> String {
    urlenc(s)
}

/// The docker CLI's path on this machine.
fn docker_cli() -> &'static str {
    ["/usr/bin/docker", "/usr/local/bin/docker"].into_iter().find(|p| std::path::Path::new(p).exists()).expect("the docker CLI (docker.io)")
}

/// Runs the docker CLI against `host`; its stdout and stderr.
fn docker(host: &str, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(docker_cli()).arg("-H").arg(host).args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Lines as a sorted list: the order of lines from different tasks is not defined.
fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn swarm_views_match_the_docker_cli() {
    let base = PathBuf::from(format!("/tmp/berth-swarm-cli-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let a = engines.start(base.clone(), &[]);
    build_test_image(&a);
    docker(&a, &["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", &format!("127.0.0.1:{}", free_port())]);
    let b = Berth::families_at(FAMILIES, a.clone());
    let svc = unique("cmp");
    let cmd = "echo out from $HOSTNAME; echo err from $HOSTNAME >&2; sleep 600";
    docker(&a, &["service", "create", "--detach", "--name", &svc, "--replicas", "2", "--stop-grace-period", "1s", TEST_IMAGE, "sh", "-c", cmd]);
    ok(&b, &["run", "service.wait-converged", &format!("id={svc}"), "timeout=60"]);
    eventually(20, "both tasks logged", || docker(&a, &["service", "logs", &svc]).0.lines().count() == 2);

    // service logs: each line named service.slot.task@node, stdout and stderr apart.
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &[]),
        (&["timestamps=true"], &["--timestamps"]),
        (&["no_task_ids=true"], &["--no-task-ids"]),
        (&["no_trunc=true"], &["--no-trunc"]),
        (&["no_resolve=true"], &["--no-resolve"]),
        (&["raw=true"], &["--raw"]),
    ];
    for (params, flags) in cases {
        let mut args = vec!["run", "service.logs"];
        let id = format!("id={svc}");
        args.push(&id);
        args.extend_from_slice(params);
        let ours = ok(&b, &args);
        let mut cli = vec!["service", "logs"];
        cli.extend_from_slice(flags);
        cli.push(&svc);
        let (out, err) = docker(&a, &cli);
        assert_eq!(sorted_lines(item(&ours)["stdout"].as_str().unwrap()), sorted_lines(&out), "stdout with {params:?} / {flags:?}");
        assert_eq!(sorted_lines(item(&ours)["stderr"].as_str().unwrap()), sorted_lines(&err), "stderr with {params:?} / {flags:?}");
    }

    // task list and logs: names, nodes and lines as docker service ps and logs give them.
    let tasks = ok(&b, &["run", "task.list", &format!(r#"filters={{"service":["{svc}"]}}"#)]);
    let ours: Vec<String> = sorted_lines(
        &tasks["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{} {} {}\n", t["ID"].as_str().unwrap(), t["Name"].as_str().unwrap(), t["NodeHostname"].as_str().unwrap()))
            .collect::<String>(),
    );
    let cli = sorted_lines(&docker(&a, &["service", "ps", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.Node}}", &svc]).0);
    assert_eq!(ours, cli);
    let task = tasks["data"][0]["ID"].as_str().unwrap();
    let tl = ok(&b, &["run", "task.logs", &format!("id={task}")]);
    assert_eq!(item(&tl)["stdout"].as_str().unwrap(), docker(&a, &["service", "logs", task]).0);

    // services and nodes as docker service ls and node ls show them, and `self`.
    let listed = ok(&b, &["run", "service.list"]);
    let ours: Vec<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s["ID"].as_str().unwrap(), s["Spec"]["Name"].as_str().unwrap(), s["Spec"]["Mode"]["Replicated"]["Replicas"]))
        .collect();
    let cli: Vec<String> = docker(&a, &["service", "ls", "--format", "{{.ID}} {{.Name}} {{.Replicas}}"])
        .0
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0], f[1], f[2].split('/').nth(1).unwrap())
        })
        .map(|(id, name, want)| {
            let full = listed["data"].as_array().unwrap().iter().find(|s| s["ID"].as_str().unwrap().starts_with(id)).unwrap()["ID"].as_str().unwrap();
            format!("{full} {name} {want}")
        })
        .collect();
    assert_eq!(ours, cli);
    let nodes = ok(&b, &["run", "node.list"]);
    let n = item(&nodes);
    let cli = docker(&a, &["node", "ls", "--format", "{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}"]).0;
    assert_eq!(
        format!(
            "{} {} {} {} {}\n",
            n["ID"].as_str().unwrap(),
            n["Description"]["Hostname"].as_str().unwrap(),
            title(n["Status"]["State"].as_str().unwrap()),
            title(n["Spec"]["Availability"].as_str().unwrap()),
            if n["ManagerStatus"]["Leader"] == true { "Leader" } else { "?" }
        ),
        cli
    );
    let me = ok(&b, &["run", "node.inspect", "id=self"]);
    let cli: Value = serde_json::from_str(&docker(&a, &["node", "inspect", "self"]).0).unwrap();
    assert_eq!(item(&me)["ID"], cli[0]["ID"]);
    let si = ok(&b, &["run", "service.inspect", &format!("id={svc}")]);
    let cli: Value = serde_json::from_str(&docker(&a, &["service", "inspect", &svc]).0).unwrap();
    assert_eq!(item(&si)["Spec"], cli[0]["Spec"]);

    // A scale down that waits ends when the tasks have stopped, not when they were told to:
    // these ignore SIGTERM (sh as PID 1) and stop at the end of their 4 s grace period.
    let slow = unique("slow");
    docker(&a, &["service", "create", "--detach", "--name", &slow, "--stop-grace-period", "4s", TEST_IMAGE, "sh", "-c", "sleep 600"]);
    ok(&b, &["run", "service.wait-converged", &format!("id={slow}"), "timeout=60"]);
    let started = Instant::now();
    ok(&b, &["run", "service.scale", &format!("id={slow}"), "replicas=0", "wait=true", "timeout=60"]);
    let (left, _) = docker(&a, &["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={slow}")]);
    assert_eq!(left.trim(), "", "a task container still runs after the scale returned ({:?})", started.elapsed());
    assert!(started.elapsed() >= Duration::from_secs(3), "{:?}", started.elapsed());
    let e = b.run(&["run", "service.scale", &format!("id={slow}"), "replicas=1", "wait=true", "timeout=1"]);
    if e.code != 0 {
        assert!(e.message().contains("did not converge within 1s") && e.message().contains("tasks running"), "{e:#?}");
    }
    docker(&a, &["service", "rm", &slow]);

    // A scale and a drain, each read back through the docker CLI.
    ok(&b, &["run", "service.scale", &format!("id={svc}"), "replicas=3", "wait=true", "timeout=60"]);
    let (ls, _) = docker(&a, &["service", "ls", "--filter", &format!("name={svc}"), "--format", "{{.Replicas}}"]);
    assert_eq!(ls.trim(), "3/3");
    let node = n["ID"].as_str().unwrap();
    let drained = ok(&b, &["run", "node.drain", &format!("id={node}"), "timeout=60"]);
    assert_eq!(drained["summary"]["tasks_left"], 0, "{drained}");
    // The replacements wait for a node: none runs, and no task container is left.
    let (ps, _) = docker(&a, &["service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", &svc]);
    assert!(ps.lines().all(|l| l.starts_with("Pending")), "{ps}");
    let (containers, _) = docker(&a, &["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={svc}")]);
    assert_eq!(containers.trim(), "", "no task container runs on a drained single node");
    let (avail, _) = docker(&a, &["node", "inspect", "self", "--format", "{{.Spec.Availability}}"]);
    assert_eq!(avail.trim(), "drain");
    docker(&a, &["service", "rm", &svc]);
    docker(&a, &["swarm", "leave", "--force"]);
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
