//! Playbook-grade correctness against the real engine: the differences from the docker CLI
//! that a playbook author would trip on, each with a test that fails without its fix.

use berth_test_support as common;

use std::time::{Duration, Instant};

use common::*;
use http::Method;
use serde_json::{json, Value};

fn berth() -> Berth {
    Berth::with(&[("system.wasm", system_wasm()), ("container.wasm", wasm("berth-action-container")), ("image.wasm", wasm("berth-action-image"))])
}

fn run_ok(b: &Berth, args: &[&str]) -> Value {
    b.run(args).ok().clone()
}

/// A container of the test image, started, running `cmd`; removed on drop.
struct Ctr(String);

impl Ctr {
    fn start(cmd: &str) -> Ctr {
        let body = json!({"Image": test_image(), "Cmd": ["sh", "-c", cmd], "HostConfig": {"NetworkMode": "none"}}).to_string().into_bytes();
        let (st, v) = api(Method::POST, "/containers/create", "", Some(("application/json", body)));
        assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
        let id = serde_json::from_slice::<Value>(&v).unwrap()["Id"].as_str().unwrap().to_string();
        let (st, _) = api(Method::POST, &format!("/containers/{id}/start"), "", None);
        assert_eq!(st, 204);
        Ctr(id)
    }

    fn wait(&self) {
        api(Method::POST, &format!("/containers/{}/wait", self.0), "", None);
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        api(Method::DELETE, &format!("/containers/{}", self.0), "force=1", None);
    }
}

#[test]
fn image_tag_splits_a_tag_out_of_repo_and_reports_what_was_made() {
    let b = berth();
    test_image();
    let repo = unique("fresh");
    let j = run_ok(&b, &["run", "image.tag", &format!("name={TEST_IMAGE}"), &format!("repo={repo}:v9")]);
    assert_eq!(j["summary"]["image"], format!("{repo}:v9"), "{j}");
    assert_eq!(api(Method::GET, &format!("/images/{repo}:v9/json"), "", None).0, 200, "the reference reported was made");
    assert_eq!(api(Method::GET, &format!("/images/{repo}:latest/json"), "", None).0, 404, "and no other");
    let r = b.run(&["run", "image.tag", &format!("name={TEST_IMAGE}"), &format!("repo={repo}:v9"), "tag=other"]);
    r.expect_code(2);
    assert!(r.message().contains("already has the tag"), "{r:#?}");
    api(Method::DELETE, &format!("/images/{repo}:v9"), "", None);
}

#[test]
fn logs_keep_the_newest_lines_and_say_what_was_cut() {
    let b = berth();
    let c = Ctr::start("for i in $(seq 1 30); do echo line$i; done");
    c.wait();
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), "max_lines=10"]);
    let out = j["data"][0]["stdout"].as_str().unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"line21"), "{out}");
    assert_eq!(lines.last(), Some(&"line30"), "{out}");
    assert_eq!(lines.len(), 10);
    assert_eq!(j["summary"]["truncated"], true);
    assert!(j["message"].as_str().unwrap().contains("older lines were cut"), "{j}");
    // Under the cap nothing is cut; tail=-1 is "all", as for the engine and the docker CLI.
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), "tail=-1"]);
    assert_eq!(j["data"][0]["stdout"].as_str().unwrap().lines().count(), 30);
    assert_eq!(j["summary"]["truncated"], false);
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), "tail=5"]);
    assert_eq!(j["data"][0]["stdout"].as_str().unwrap().lines().next(), Some("line26"));
}

#[test]
fn logs_since_keeps_fractional_seconds() {
    let b = berth();
    let c = Ctr::start("echo first; sleep 1; echo second");
    c.wait();
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), "timestamps=true"]);
    let out = j["data"][0]["stdout"].as_str().unwrap().to_string();
    let second = out.lines().find(|l| l.ends_with("second")).unwrap();
    let ts = second.split_whitespace().next().unwrap(); // 2026-11-23T19:40:01.123456789Z
    let (head, frac) = ts.trim_end_matches('Z').split_once('.').unwrap();
    let nanos: u64 = format!("{frac:0<9}")[..9].parse().unwrap();
    if !(10_000_000..=990_000_000).contains(&nanos) {
        return; // too close to a whole second to tell the fraction apart; rare
    }
    let after = format!("{head}.{:09}Z", nanos + 1_000_000);
    let before = format!("{head}.{:09}Z", nanos - 1_000_000);
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), &format!("since={after}")]);
    assert!(!j["data"][0]["stdout"].as_str().unwrap().contains("second"), "since 1 ms after the line excludes it: {j}");
    let j = run_ok(&b, &["run", "container.logs", &format!("id={}", c.0), &format!("since={before}")]);
    assert_eq!(j["data"][0]["stdout"].as_str().unwrap().trim(), "second", "{j}");
}

#[test]
fn attaching_to_a_stopped_container_fails_at_once() {
    let b = berth();
    let c = Ctr::start("true");
    c.wait();
    // Compile the component first, so the timing below is the action's own.
    b.run(&["run", "container.inspect", &format!("id={}", c.0)]).ok();
    let r = b.run_within(Duration::from_secs(25), &["run", "container.attach", &format!("id={}", c.0), "timeout=30"]);
    r.expect_code(1);
    assert!(r.message().contains("cannot attach to a stopped container"), "{r:#?}");
    assert!(r.elapsed < Duration::from_secs(10), "it did not wait for the timeout: {:?}", r.elapsed);
}

#[test]
fn string_commands_split_as_a_shell_would() {
    let b = berth();
    let j = run_ok(&b, &["run", "container.run", &format!("image={}", test_image()), "network_mode=none", "cmd=sh -c 'echo \"a   b\"'"]);
    assert_eq!(j["data"][0]["stdout"], "a   b\n", "{j}");
    let r = b.run(&["run", "container.run", &format!("image={}", test_image()), "cmd=sh -c 'unclosed"]);
    r.expect_code(2);
    assert!(r.message().contains("well-quoted"), "{r:#?}");
}

#[test]
fn every_cli_failure_prints_an_action_result() {
    let b = berth();
    for args in [&["run", "system.ping", "all"][..], &["run", "no.such.action"], &["run", "system.events", "max_events=x"]] {
        let r = b.run(args);
        r.expect_code(2);
        let j = r.json();
        assert_eq!((j["status"].as_str(), j["error"]["kind"].as_str()), (Some("failed"), Some("bad_params")), "{args:?}: {r:#?}");
        assert!(!j["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn container_wait_has_a_timeout() {
    let b = berth();
    let c = Ctr::start("sleep 60");
    b.run(&["run", "container.inspect", &format!("id={}", c.0)]).ok();
    let started = Instant::now();
    let r = b.run_within(Duration::from_secs(30), &["run", "container.wait", &format!("id={}", c.0), "timeout=1"]);
    r.expect_code(1);
    assert!(r.message().contains("did not stop within 1s"), "{r:#?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A container that stops is waited for, with its code.
    let c2 = Ctr::start("exit 5");
    let j = run_ok(&b, &["run", "container.wait", &format!("id={}", c2.0), "timeout=30"]);
    assert_eq!(j["summary"]["exit_code"], 5);
}

#[test]
fn the_soar_create_alias_names_its_own_params() {
    let b = berth();
    let r = b.run(&["run", "create container", "name=x", "request_body={\"Cmd\": [\"true\"]}"]);
    r.expect_code(2);
    assert!(r.message().contains("request_body") && !r.message().contains("'image'"), "{r:#?}");
}

#[test]
fn a_non_zero_exit_code_can_fail_the_action() {
    let b = berth();
    let c = Ctr::start("sleep 60");
    let j = run_ok(&b, &["run", "container.exec", &format!("id={}", c.0), "cmd=sh -c 'echo oops >&2; exit 3'"]);
    assert_eq!(j["summary"]["exit_code"], 3, "by default a non-zero code is data, not a failure");
    let r = b.run(&["run", "container.exec", &format!("id={}", c.0), "cmd=sh -c 'echo partial-result; echo oops >&2; exit 3'", "fail_on_exit_code=true"]);
    r.expect_code(1);
    let m = r.message();
    assert!(m.contains("exited with code 3") && m.contains("stdout: partial-result") && m.contains("stderr: oops"), "the failure keeps stdout: {r:#?}");
    let r = b.run(&[
        "run",
        "container.run",
        &format!("image={}", test_image()),
        "network_mode=none",
        "cmd=sh -c 'echo done-so-far; exit 2'",
        "fail_on_exit_code=true",
    ]);
    r.expect_code(1);
    assert!(r.message().contains("exited with code 2") && r.message().contains("stdout: done-so-far"), "{r:#?}");
}
