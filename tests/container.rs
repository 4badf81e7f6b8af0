//! The `container` family against the isolated real engine (busybox test image).

use berth_test_support as common;

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
    // A wait over a second is said on stderr when asked (--progress), silent otherwise.
    let slow = create(&b, &unique("slowwait"), &[r#"cmd=["sleep","5"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={slow}")]);
    let r = b.run(&["--progress", "run", "container.wait", &format!("id={slow}")]);
    r.ok();
    assert!(r.stderr.contains("waiting for the engine: POST /containers/") && r.stderr.contains("/wait"), "{r:#?}");
    let quiet = create(&b, &unique("quietwait"), &[r#"cmd=["sleep","2"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={quiet}")]);
    let r = b.run(&["run", "container.wait", &format!("id={quiet}")]);
    r.ok();
    assert!(!r.stderr.contains("waiting for the engine"), "{r:#?}");

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

#[test]
fn export_keeps_memory_flat_on_a_large_container() {
    let b = berth();
    let id = create(&b, &unique("big"), &[r#"cmd=["dd","if=/dev/zero","of=/big","bs=1048576","count=256"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    assert_eq!(run_ok(&b, &["run", "container.wait", &format!("id={id}")])["summary"]["exit_code"], 0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.tar");
    let own = b.measured(&dir.path().join("cache"), &["run", "container.inspect", &format!("id={id}")]);
    let (r, peak) = own.run_peak_rss(&["run", "container.export", &format!("id={id}"), "--out", out.to_str().unwrap()]);
    let j = r.ok();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size > 256 << 20, "{size}");
    assert_eq!(j["summary"]["size"].as_u64().unwrap(), size);
    assert_memory_flat(&r, peak, size);
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn stats_one_shot_and_samples() {
    let b = berth();
    let id = create(&b, &unique("stats"), &[r#"cmd=["sh","-c","while true; do :; done"]"#, "memory=67108864"]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    let j = run_ok(&b, &["run", "container.stats", &format!("id={id}")]);
    let f = &j["data"][0]["figures"];
    let cpu = f["cpu_percent"].as_f64().unwrap();
    assert!(cpu > 1.0 && cpu <= 100.0 * 64.0, "a busy loop should show CPU: {f}");
    assert!(f["memory_usage"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["memory_limit"], 67108864, "{f}");
    let mp = f["memory_percent"].as_f64().unwrap();
    assert!(mp > 0.0 && mp < 100.0, "{f}");
    assert!(f["pids"].as_u64().unwrap() >= 1, "{f}");
    let j = run_ok(&b, &["run", "container.stats", &format!("id={id}"), "samples=2"]);
    assert_eq!(j["summary"]["samples"], 2);
    assert!(j["data"][1]["figures"]["cpu_percent"].as_f64().unwrap() > 1.0, "{j}");
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn archive_put_then_get_round_trips_a_file() {
    let b = berth();
    let id = create(&b, &unique("archive"), &[r#"cmd=["sleep","300"]"#]);
    let dir = tempfile::tempdir().unwrap();
    // A tar holding hello.txt.
    let input = dir.path().join("in.tar");
    {
        let mut t = tar::Builder::new(std::fs::File::create(&input).unwrap());
        let data = b"hello from berth\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "hello.txt", &data[..]).unwrap();
        t.finish().unwrap();
    }
    run_ok(&b, &["run", "container.archive-put", &format!("id={id}"), "path=/tmp", "--in", input.to_str().unwrap()]);
    let info = run_ok(&b, &["run", "container.archive-info", &format!("id={id}"), "path=/tmp/hello.txt"]);
    assert_eq!(info["data"][0]["name"], "hello.txt");
    assert_eq!(info["data"][0]["size"], 17);
    let out = dir.path().join("out.tar");
    let j = run_ok(&b, &["run", "container.archive-get", &format!("id={id}"), "path=/tmp/hello.txt", "--out", out.to_str().unwrap()]);
    assert_eq!(j["data"][0]["stat"]["size"], 17);
    let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let mut found = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("hello.txt") {
            std::io::Read::read_to_string(&mut e, &mut found).unwrap();
        }
    }
    assert_eq!(found, "hello from berth\n");
    let r = b.run(&["run", "container.archive-info", &format!("id={id}"), "path=/nope/missing"]);
    r.expect_code(1);
    b.run(&["run", "container.archive-get", &format!("id={id}"), "path=relative"]).expect_code(2);
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn exec_returns_exit_code_stdout_and_stderr() {
    let b = berth();
    let id = create(&b, &unique("exec"), &[r#"cmd=["sleep","300"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    let j = run_ok(&b, &["run", "container.exec", &format!("id={id}"), r#"cmd=["sh","-c","echo hi; echo oops >&2; exit 7"]"#]);
    assert_eq!(j["summary"]["exit_code"], 7);
    assert_eq!(j["data"][0]["stdout"], "hi\n");
    assert_eq!(j["data"][0]["stderr"], "oops\n");
    // stdin from a param.
    let j = run_ok(&b, &["run", "container.exec", &format!("id={id}"), "cmd=cat", "stdin=piped in"]);
    assert_eq!(j["data"][0]["stdout"], "piped in");
    assert_eq!(j["summary"]["exit_code"], 0);
    // A command that outlives the timeout is reported, not waited for.
    let r = b.run_within(Duration::from_secs(30), &["run", "container.exec", &format!("id={id}"), "cmd=sleep 30", "timeout=1"]);
    r.expect_code(1);
    assert!(r.message().contains("did not finish within 1s"), "{r:#?}");

    // The exec operations one by one.
    let c = run_ok(&b, &["run", "exec.create", &format!("id={id}"), r#"cmd=["sh","-c","echo step; exit 4"]"#]);
    let exec_id = c["summary"]["exec_id"].as_str().unwrap().to_string();
    let s = run_ok(&b, &["run", "exec.start", &format!("id={exec_id}")]);
    assert_eq!(s["data"][0]["stdout"], "step\n");
    std::thread::sleep(Duration::from_millis(200));
    let i = run_ok(&b, &["run", "exec.inspect", &format!("id={exec_id}")]);
    assert_eq!(i["summary"]["exit_code"], 4);
    // resize needs a TTY exec that is running.
    let c = run_ok(&b, &["run", "exec.create", &format!("id={id}"), "cmd=sleep 20", "tty=true"]);
    let tty_exec = c["summary"]["exec_id"].as_str().unwrap().to_string();
    run_ok(&b, &["run", "exec.start", &format!("id={tty_exec}"), "detach=true", "tty=true"]);
    run_ok(&b, &["run", "exec.resize", &format!("id={tty_exec}"), "h=40", "w=100"]);
    b.run(&["run", "exec.inspect", "id=no-such-exec"]).expect_code(1);
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

#[test]
fn attach_collects_output_with_stdin_and_resize_works_on_a_tty() {
    let b = berth();
    let id = create(
        &b,
        &unique("attach"),
        &[r#"cmd=["sh","-c","read line; echo got:$line; echo bye >&2"]"#, "body={\"OpenStdin\":true,\"StdinOnce\":true,\"AttachStdin\":true}"],
    );
    run_ok(&b, &["run", "container.start", &format!("id={id}")]);
    let j = run_ok(&b, &["run", "container.attach", &format!("id={id}"), "stdin=hello\n", "timeout=20"]);
    assert_eq!(j["data"][0]["stdout"], "got:hello\n", "{j}");
    assert_eq!(j["data"][0]["stderr"], "bye\n", "{j}");
    assert_eq!(j["summary"]["ended_by"], "exit");
    // Stopped now: logs=true answers its past output at once, not at the timeout.
    let started = std::time::Instant::now();
    let j = run_ok(&b, &["run", "container.attach", &format!("id={id}"), "logs=true", "timeout=30"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "waited {:?} for a stopped container", started.elapsed());
    assert_eq!((j["data"][0]["stdout"].as_str(), j["data"][0]["stderr"].as_str()), (Some("got:hello\n"), Some("bye\n")), "{j}");
    assert_eq!(j["summary"]["ended_by"], "exit");
    // Without logs it is refused, as the docker CLI refuses it.
    b.run(&["run", "container.attach", &format!("id={id}")]).expect_code(1);

    // A container that keeps running: attach stops at the timeout.
    let live = create(&b, &unique("attach-live"), &[r#"cmd=["sleep","300"]"#, "tty=true"]);
    run_ok(&b, &["run", "container.start", &format!("id={live}")]);
    let j = run_ok(&b, &["run", "container.attach", &format!("id={live}"), "timeout=1"]);
    assert_eq!(j["summary"]["ended_by"], "timeout");
    run_ok(&b, &["run", "container.resize", &format!("id={live}"), "h=30", "w=120"]);

    let r = b.run(&["run", "container.attach-ws", &format!("id={live}")]);
    r.expect_code(2);
    assert!(r.message().contains("use container.attach"), "{r:#?}");
    for c in [&id, &live] {
        api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
    }
}

#[test]
fn run_to_completion_and_snapshot() {
    let b = berth();
    let image = format!("image={}", test_image());
    let j = run_ok(&b, &["run", "container.run", &image, r#"cmd=["sh","-c","echo ran; echo warn >&2; exit 5"]"#]);
    assert_eq!(j["summary"]["exit_code"], 5);
    assert_eq!(j["data"][0]["stdout"], "ran\n");
    assert_eq!(j["data"][0]["stderr"], "warn\n");
    let id = j["summary"]["id"].as_str().unwrap();
    assert_eq!(api(Method::GET, &format!("/containers/{id}/json"), "", None).0, 404, "removed by default");

    let name = unique("kept");
    let j = run_ok(&b, &["run", "container.run", &image, "cmd=true", &format!("name={name}"), "remove=false"]);
    assert_eq!(j["summary"]["exit_code"], 0);
    assert_eq!(api(Method::GET, &format!("/containers/{name}/json"), "", None).0, 200);

    let r = b.run_within(Duration::from_secs(30), &["run", "container.run", &image, "cmd=sleep 30", "timeout=1"]);
    r.expect_code(1);
    assert!(r.message().contains("did not exit within 1s"), "{r:#?}");

    // Snapshot the kept container into an image, with a change applied.
    let repo = format!("berth-test/{}", unique("snap"));
    let j = run_ok(
        &b,
        &["run", "container.snapshot", &format!("id={name}"), &format!("repo={repo}"), "tag=v1", "comment=forensic", "author=berth", "changes=ENV SNAP=1"],
    );
    let image_id = j["summary"]["image_id"].as_str().unwrap().to_string();
    let img = api_json(Method::GET, &format!("/images/{}/json", image_id), "");
    assert_eq!(img["Comment"], "forensic");
    assert_eq!(img["Author"], "berth");
    assert!(img["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "SNAP=1"), "{img}");
    assert!(img["RepoTags"].as_array().unwrap().iter().any(|t| t.as_str() == Some(&format!("{repo}:v1"))));
    api(Method::DELETE, &format!("/containers/{name}"), "force=1", None);
    api(Method::DELETE, &format!("/images/{image_id}"), "force=1", None);
}

#[test]
fn splunk_soar_aliases_produce_their_data_paths() {
    let b = berth();
    let name = unique("soar");
    let body = format!(
        r#"request_body={{"Image":"{}","Cmd":["sh","-c","touch /tmp/soar; sleep 300"],"Labels":{{"soar":"{name}"}},"HostConfig":{{"NetworkMode":"none"}}}}"#,
        test_image()
    );
    let j = run_ok(&b, &["run", "create container", &format!("name={name}"), &body]);
    let id = j["data"][0]["create"]["Id"].as_str().unwrap().to_string();
    assert!(j["data"][0]["create"]["message"].as_str().unwrap().contains("Created"));
    assert!(j["data"][0]["create"].get("Warnings").is_some());
    run_ok(&b, &["run", "start container", &format!("id={id}"), "detachkeys=ctrl-x"]);
    std::thread::sleep(Duration::from_millis(300));

    let filters = format!(r#"filters={{"label":["soar={name}"]}}"#);
    let j = run_ok(&b, &["run", "list container", "all=true", "limit=5", "size=false", &filters]);
    assert_eq!(j["data"][0]["containers"][0]["Id"], id.as_str());
    assert!(j["data"][0]["containers"][0]["Names"].is_array());
    assert_eq!(j["summary"]["total_objects"], 1);

    let j = run_ok(&b, &["run", "inspect container", &format!("id={id}"), "size=true"]);
    assert_eq!(j["data"][0]["containerStats"]["Id"], id.as_str());

    let j = run_ok(&b, &["run", "get container filesystem changes", &format!("id={id}")]);
    let fs = j["data"][0]["filesystem"].as_array().unwrap();
    assert!(fs.iter().any(|c| c["Path"] == "/tmp/soar" && c["Kind"] == "Added"), "{j}");

    let j = run_ok(&b, &["run", "update container", &format!("id={id}"), r#"request_body={"CpuShares": 256}"#]);
    assert!(j["data"][0]["update_stats"].get("Warnings").is_some(), "{j}");
    assert!(j["data"][0]["update_stats"]["message"].is_string());
    assert_eq!(api_json(Method::GET, &format!("/containers/{id}/json"), "")["HostConfig"]["CpuShares"], 256);

    run_ok(&b, &["run", "restart container", &format!("id={id}"), "delay=1"]);
    let renamed = unique("soar-renamed");
    run_ok(&b, &["run", "rename container", &format!("id={id}"), &format!("name={renamed}")]);
    let repo = format!("berth-test/{}", unique("soarsnap"));
    let j = run_ok(&b, &["run", "take container snapshot", &format!("container={id}"), &format!("repo={repo}"), "tag=t", "pause=true", "request_body={}"]);
    let snap = j["data"][0]["Id"].as_str().unwrap().to_string();
    run_ok(&b, &["run", "kill container", &format!("id={id}")]);
    assert_eq!(state(&id)["ExitCode"], 137, "SIGKILL by default");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("soar.tar");
    let j = run_ok(&b, &["run", "export container", &format!("id={id}"), "--out", out.to_str().unwrap()]);
    assert_eq!(j["summary"]["total_objects"], 1);
    assert!(out.exists());
    run_ok(&b, &["run", "stop container", &format!("id={id}")]);
    let j = run_ok(&b, &["run", "delete stopped containers", &filters]);
    assert_eq!(j["summary"]["total_objects"], 1);
    assert_eq!(j["data"][0]["ContainersDeleted"][0], id.as_str());

    // remove container with its own parameter names.
    let other = create(&b, &unique("soar-rm"), &[r#"cmd=["sleep","300"]"#]);
    run_ok(&b, &["run", "container.start", &format!("id={other}")]);
    run_ok(&b, &["run", "remove container", &format!("id={other}"), "volumes=true", "force=true", "link=false"]);
    assert_eq!(api(Method::GET, &format!("/containers/{other}/json"), "", None).0, 404);
    api(Method::DELETE, &format!("/images/{snap}"), "force=1", None);

    // Every alias is listed with its SOAR name.
    let list = b.run(&["actions", "--json"]);
    let names: Vec<String> = list.json()["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    for alias in [
        "list container",
        "inspect container",
        "get container filesystem changes",
        "update container",
        "restart container",
        "export container",
        "stop container",
        "start container",
        "rename container",
        "kill container",
        "remove container",
        "delete stopped containers",
        "create container",
        "take container snapshot",
    ] {
        assert!(names.iter().any(|n| n == alias), "{alias} missing");
    }
}

#[test]
fn every_container_and_exec_operation_has_an_action() {
    let b = berth();
    let list = b.run(&["actions", "--json"]);
    let names: Vec<String> = list.json()["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    for op in [
        "container.list",
        "container.create",
        "container.inspect",
        "container.top",
        "container.logs",
        "container.changes",
        "container.export",
        "container.stats",
        "container.resize",
        "container.start",
        "container.stop",
        "container.restart",
        "container.kill",
        "container.update",
        "container.rename",
        "container.pause",
        "container.unpause",
        "container.attach",
        "container.attach-ws",
        "container.wait",
        "container.remove",
        "container.archive-info",
        "container.archive-get",
        "container.archive-put",
        "container.prune",
        "exec.create",
        "exec.start",
        "exec.inspect",
        "exec.resize",
        "container.exec",
        "container.run",
        "container.snapshot",
    ] {
        assert!(names.iter().any(|n| n == op), "{op} missing");
    }
}
