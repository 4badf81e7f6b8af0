//! The `container` family against the isolated real engine (busybox test image).

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use serde_json::{json, Value};

fn berth() -> Berth {
    Berth::with(&[("container.wasm", wasm("berth-action-container"))])
}

/// Creates a container through berth; returns its id.
fn create(b: &Berth, name: &str, extra: &[&str]) -> String {
    let image = format!("image={}", test_image());
    let name = format!("name={name}");
    let mut args = vec!["run", "container.create", image.as_str(), name.as_str()];
    args.extend_from_slice(extra);
    let r = b.run(&args);
    r.ok()["summary"]["id"].as_str().unwrap().to_string()
}

fn state(id: &str) -> Value {
    api_json(Method::GET, &format!("/containers/{id}/json"), "")["State"].clone()
}

fn run_ok(b: &Berth, args: &[&str]) -> Value {
    b.run_within(Duration::from_secs(60), args).ok().clone()
}

#[test]
fn lifecycle_with_state_checked_after_each_step() {
    let b = berth();
    let name = unique("life");
    let id = create(&b, &name, &[r#"cmd=["sleep","300"]"#, "labels={\"berth.test\":\"life\"}"]);
    assert_eq!(state(&id)["Status"], "created");
    let j = run_ok(&b, &["run", "container.inspect", &format!("id={name}")]);
    assert_eq!(j["summary"]["status"], "created");
    assert_eq!(j["data"][0]["Config"]["Labels"]["berth.test"], "life");

    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    assert_eq!(state(&id)["Status"], "running");
    // Starting again is not an error: nothing changed.
    assert_eq!(run_ok(&b, &["run", "container.start", &format!("id={id}")])["summary"]["changed"], false);

    run_ok(&b, &["run", "container.pause", &format!("id={id}")]);
    assert_eq!(state(&id)["Status"], "paused");
    // Starting a paused container is a conflict with the engine's own words.
    let r = b.run(&["run", "container.start", &format!("id={id}")]);
    r.expect_code(1);
    assert!(r.message().to_lowercase().contains("paused"), "{r:#?}");

    run_ok(&b, &["run", "container.unpause", &format!("id={id}")]);
    assert_eq!(state(&id)["Status"], "running");

    run_ok(&b, &["run", "container.stop", &format!("id={id}"), "t=1"]);
    assert_eq!(state(&id)["Status"], "exited");

    run_ok(&b, &["run", "container.restart", &format!("id={id}"), "t=1"]);
    assert_eq!(state(&id)["Status"], "running");

    run_ok(&b, &["run", "container.kill", &format!("id={id}"), "signal=SIGKILL"]);
    let s = state(&id);
    assert_eq!(s["Running"], false, "{s}");
    assert_eq!(s["ExitCode"], 137, "{s}");

    run_ok(&b, &["run", "container.remove", &format!("id={id}")]);
    let (status, _) = api(Method::GET, &format!("/containers/{id}/json"), "", None);
    assert_eq!(status, 404);
}

#[test]
fn rename_update_top_and_wait() {
    let b = berth();
    let name = unique("ops");
    let id = create(&b, &name, &[r#"cmd=["sleep","300"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);

    let renamed = unique("renamed");
    run_ok(&b, &["run", "container.rename", &format!("id={id}"), &format!("name={renamed}")]);
    assert_eq!(api_json(Method::GET, &format!("/containers/{id}/json"), "")["Name"], format!("/{renamed}"));

    run_ok(&b, &["run", "container.update", &format!("id={id}"), "memory=67108864", "memory_swap=-1", "cpu_shares=512"]);
    let hc = api_json(Method::GET, &format!("/containers/{id}/json"), "")["HostConfig"].clone();
    assert_eq!(hc["Memory"], 67108864);
    assert_eq!(hc["CpuShares"], 512);

    let top = run_ok(&b, &["run", "container.top", &format!("id={id}")]);
    assert!(top["data"].as_array().unwrap().iter().any(|p| p["CMD"].as_str().is_some_and(|c| c.contains("sleep 300"))), "{top}");
    assert!(top["summary"]["total_processes"].as_u64().unwrap() >= 1);

    // wait returns the exit code.
    let wid2 = create(&b, &unique("wait"), &[r#"cmd=["sh","-c","exit 3"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={wid2}")]);
    let j = run_ok(&b, &["run", "container.wait", &format!("id={wid2}")]);
    assert_eq!(j["summary"]["exit_code"], 3);
    assert_eq!(j["data"][0]["StatusCode"], 3);

    for c in [&id, &wid2] {
        api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
    }
}

#[test]
fn logs_split_stdout_and_stderr_with_and_without_tty() {
    let b = berth();
    let script = r#"cmd=["sh","-c","echo out1; echo err1 >&2; echo out2"]"#;
    let plain = create(&b, &unique("logs"), &[script]);
    let tty = create(&b, &unique("logs-tty"), &[script, "tty=true"]);
    for id in [&plain, &tty] {
        run_ok(&b, &["run", "container.start", &format!("id={id}")]);
        run_ok(&b, &["run", "container.wait", &format!("id={id}")]);
    }
    let j = run_ok(&b, &["run", "container.logs", &format!("id={plain}")]);
    assert_eq!(j["data"][0]["stdout"], "out1\nout2\n", "{j}");
    assert_eq!(j["data"][0]["stderr"], "err1\n", "{j}");
    assert_eq!(j["data"][0]["tty"], false);
    assert_eq!(j["summary"]["stdout_lines"], 2);

    let j = run_ok(&b, &["run", "container.logs", &format!("id={tty}")]);
    let out = j["data"][0]["stdout"].as_str().unwrap();
    assert!(out.contains("out1") && out.contains("err1") && out.contains("out2"), "{j}");
    assert_eq!(j["data"][0]["stderr"], "");
    assert_eq!(j["data"][0]["tty"], true);

    // stderr only, tail, timestamps.
    let j = run_ok(&b, &["run", "container.logs", &format!("id={plain}"), "stdout=false"]);
    assert_eq!(j["data"][0]["stdout"], "");
    assert_eq!(j["data"][0]["stderr"], "err1\n");
    let counted = create(&b, &unique("tail"), &[r#"cmd=["sh","-c","for i in 1 2 3; do echo line$i; done"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={counted}")]);
    run_ok(&b, &["run", "container.wait", &format!("id={counted}")]);
    let j = run_ok(&b, &["run", "container.logs", &format!("id={counted}"), "tail=1"]);
    assert_eq!(j["data"][0]["stdout"], "line3\n", "{j}");
    let j = run_ok(&b, &["run", "container.logs", &format!("id={plain}"), "timestamps=true", "stderr=false"]);
    assert!(j["data"][0]["stdout"].as_str().unwrap().lines().all(|l| l.contains('T') && l.ends_with(|c: char| c.is_ascii_digit())), "{j}");

    // follow is bounded by max_duration on a container that keeps running.
    let live = create(&b, &unique("live"), &[r#"cmd=["sh","-c","echo started; sleep 300"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={live}")]);
    std::thread::sleep(Duration::from_millis(300));
    let j = run_ok(&b, &["run", "container.logs", &format!("id={live}"), "follow=true", "max_duration=1"]);
    assert_eq!(j["summary"]["ended_by"], "max_duration");
    assert_eq!(j["data"][0]["stdout"], "started\n");

    b.run(&["run", "container.logs", &format!("id={plain}"), "tail=lots"]).expect_code(2);
    for c in [&plain, &tty, &live, &counted] {
        api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
    }
}

#[test]
fn export_streams_a_tar_into_the_out_artifact() {
    let b = berth();
    let id = create(&b, &unique("export"), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctr.tar");
    let j = run_ok(&b, &["run", "container.export", &format!("id={id}"), "--out", out.to_str().unwrap()]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(j["summary"]["size"].as_u64().unwrap(), bytes.len() as u64);
    use sha2::Digest;
    assert_eq!(j["summary"]["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    let names: Vec<String> = tar::Archive::new(&bytes[..]).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");

    // An unknown container: exit 1 with the engine's words, and no file at all.
    let missing = dir.path().join("missing.tar");
    let r = b.run(&["run", "container.export", "id=no-such-container-berth", "--out", missing.to_str().unwrap()]);
    r.expect_code(1);
    assert!(r.message().contains("No such container"), "{r:#?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn prune_removes_exited_and_leaves_running_alone() {
    let b = berth();
    let label = unique("prune");
    let labels = format!("labels={{\"berth.prune\":\"{label}\"}}");
    let exited = create(&b, &unique("exited"), &[r#"cmd=["true"]"#, &labels]);
    let running = create(&b, &unique("running"), &[r#"cmd=["sleep","300"]"#, &labels]);
    run_ok(&b, &["run", "container.start", &format!("id={exited}")]);
    run_ok(&b, &["run", "container.wait", &format!("id={exited}")]);
    run_ok(&b, &["run", "container.start", &format!("id={running}")]);

    let filters = format!("filters={{\"label\":[\"berth.prune={label}\"]}}");
    let j = run_ok(&b, &["run", "container.prune", &filters]);
    let deleted: Vec<&str> = j["data"][0]["ContainersDeleted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(deleted, vec![exited.as_str()], "{j}");
    assert_eq!(j["summary"]["total_objects"], 1);
    assert_eq!(api(Method::GET, &format!("/containers/{exited}/json"), "", None).0, 404);
    assert_eq!(state(&running)["Running"], true);

    // list sees the running one through the same label filter.
    let j = run_ok(&b, &["run", "container.list", &filters]);
    assert_eq!(j["summary"]["total_objects"], 1);
    assert_eq!(j["data"][0]["Id"], running.as_str());
    api(Method::DELETE, &format!("/containers/{running}"), "force=1", None);
}

#[test]
fn changes_map_kinds_to_words() {
    let b = berth();
    let id = create(&b, &unique("changes"), &[r#"cmd=["sh","-c","echo x > /tmp/added && rm /bin/yes"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    run_ok(&b, &["run", "container.wait", &format!("id={id}")]);
    let j = run_ok(&b, &["run", "container.changes", &format!("id={id}")]);
    let changes = j["data"].as_array().unwrap();
    let kind = |p: &str| changes.iter().find(|c| c["Path"] == p).map(|c| c["Kind"].clone());
    assert_eq!(kind("/tmp/added"), Some(json!("Added")), "{j}");
    assert_eq!(kind("/tmp"), Some(json!("Modified")), "{j}");
    assert_eq!(kind("/bin/yes"), Some(json!("Deleted")), "{j}");
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn errors_404_409_400_and_bad_params() {
    let b = berth();
    let r = b.run(&["run", "container.inspect", "id=no-such-container-berth"]);
    r.expect_code(1);
    assert!(r.message().contains("No such container: no-such-container-berth"), "{r:#?}");
    assert_eq!(r.json()["error"]["status"], 404);
    assert_eq!(r.stderr.lines().count(), 1, "one clear line: {r:#?}");

    let id = create(&b, &unique("conflict"), &[r#"cmd=["sleep","300"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    let r = b.run(&["run", "container.remove", &format!("id={id}")]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 409, "{r:#?}");
    assert!(r.message().contains("running"), "{r:#?}");
    run_ok(&b, &["run", "container.remove", &format!("id={id}"), "force=true"]);

    let body = format!(r#"body={{"Image":"{}","HostConfig":{{"RestartPolicy":{{"Name":"sometimes"}}}}}}"#, test_image());
    let r = b.run(&["run", "container.create", &body]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 400, "{r:#?}");

    // Wrong before any engine call: exit 2.
    for (args, want) in [
        (vec!["run", "container.create", "name=x"], "parameter 'image' is required"),
        (vec!["run", "container.inspect"], "missing required parameter 'id' (string)"),
        (vec!["run", "container.stop", "id=x", "t=soon"], "parameter 't' must be an integer"),
        (vec!["run", "container.create", "image=x", "restart_policy=sometimes"], "restart_policy"),
        (vec!["run", "container.wait", "id=x", "condition=later"], "condition"),
    ] {
        let r = b.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:#?}");
    }
}
