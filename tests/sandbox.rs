//! Hostile components against the sandbox, through the real `berth` binary and engine.

use berth_test_support as common;

use std::time::Duration;

use common::*;
use http::Method;
use serde_json::Value;

#[test]
fn read_only_action_issuing_post_is_denied() {
    // An exited container the refused prune would have removed.
    test_image();
    let name = unique("keep");
    let body = serde_json::json!({"Image": TEST_IMAGE, "Cmd": ["true"]}).to_string().into_bytes();
    let (s, _) = api(Method::POST, "/containers/create", &format!("name={name}"), Some(("application/json", body)));
    assert_eq!(s, 201);

    let r = Berth::hostile().run(&["run", "test.post-readonly"]);
    r.expect_code(3);
    assert!(r.message().contains("read-only: POST /containers/prune refused"), "{r:#?}");
    assert_eq!(r.json()["error"]["kind"], "denied");
    // The engine never saw it.
    let (s, _) = api(Method::GET, &format!("/containers/{name}/json"), "", None);
    assert_eq!(s, 200);
    api(Method::DELETE, &format!("/containers/{name}"), "force=1", None);
}

#[test]
fn a_component_that_swallows_a_denial_still_fails() {
    let r = Berth::hostile().run(&["run", "test.delete-readonly"]);
    r.expect_code(3);
    assert!(r.message().contains("read-only: DELETE"), "{r:#?}");
}

#[test]
fn spinning_component_is_stopped_by_the_cpu_deadline() {
    let b = Berth::hostile();
    let r = b.run_within(Duration::from_secs(60), &["run", "test.spin", "--cpu-secs", "1"]);
    r.expect_code(4);
    assert!(r.message().contains("CPU limit of 1s exceeded"), "{r:#?}");
    assert_eq!(r.json()["error"]["kind"], "limit", "a cap is not a policy refusal");
    // The wall-clock cap also stops it when the CPU cap is generous.
    let r = b.run_within(Duration::from_secs(60), &["run", "test.spin", "--cpu-secs", "100", "--timeout-secs", "1"]);
    r.expect_code(4);
    assert!(r.message().contains("wall-clock limit of 1s exceeded"), "{r:#?}");
    assert_eq!(r.json()["error"]["kind"], "limit");
    // And the host is fine afterwards.
    b.run(&["run", "system.ping"]).ok();
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let r = Berth::hostile().run_within(Duration::from_secs(60), &["run", "test.alloc", "mb=512", "--memory-mb", "32"]);
    r.expect_code(4);
    assert!(r.message().contains("memory limit of 32 MiB exceeded"), "{r:#?}");
    // Under the cap it works.
    let ok = Berth::hostile().run(&["run", "test.alloc", "mb=4", "--memory-mb", "32"]);
    assert_eq!(ok.ok()["message"], "allocated 4 MiB");
}

#[test]
fn files_sockets_env_and_args_are_out_of_reach() {
    let r = Berth::hostile().env("SECRET_ENV", "x").run(&["run", "test.escape"]);
    let j = r.ok();
    let d = &j["data"][0];
    assert!(d["file"].as_str().unwrap().starts_with("error:"), "{d}");
    assert!(d["dir"].as_str().unwrap().starts_with("error:"), "{d}");
    assert!(d["socket"].as_str().unwrap().starts_with("error:"), "{d}");
    assert_eq!(d["env"], Value::Array(vec![]));
    assert_eq!(d["args"], Value::Array(vec![]));
}

#[test]
fn corrupt_wasm_is_skipped_with_a_warning() {
    let b = Berth::system();
    std::fs::write(b.actions.path().join("broken.wasm"), b"\0asm\x0d\0\x01\0 this is not a component").unwrap();
    std::fs::write(b.actions.path().join("empty.wasm"), b"").unwrap();
    let r = b.run(&["run", "system.version"]);
    r.ok();
    assert!(r.stderr.contains("skipped component") && r.stderr.contains("broken.wasm"), "{r:#?}");
    assert!(r.stderr.contains("empty.wasm"), "{r:#?}");
    let list = b.run(&["actions", "--json"]);
    assert_eq!(list.expect_code(0).json()["actions"].as_array().unwrap().len(), 8, "the seven system actions and the SOAR test connectivity alias");
}

#[test]
fn files_declaring_the_same_family_are_all_refused_and_named() {
    // Never settled by file order: both copies are refused, each naming both files; the
    // other families keep working.
    let b = Berth::with(&[("a-system.wasm", system_wasm()), ("b-system.wasm", system_wasm()), ("test.wasm", hostile_wasm())]);
    let r = b.run(&["actions", "-o", "pretty"]);
    r.expect_code(0);
    assert!(r.stderr.contains("family 'system' is declared by") && r.stderr.contains("a-system.wasm") && r.stderr.contains("b-system.wasm"), "{r:#?}");
    let skipped = r.stdout.split("SKIPPED COMPONENTS").nth(1).unwrap_or_else(|| panic!("no skipped section: {r:#?}"));
    assert!(skipped.contains("a-system.wasm") && skipped.contains("b-system.wasm") && skipped.contains("each is refused"), "{r:#?}");
    assert!(r.stdout.contains("test.raw"), "{r:#?}");
    b.run(&["run", "system.ping"]).expect_code(2);
    b.run(&["run", "test.raw", "method=GET", "path=/_ping"]).ok();
}

#[test]
fn describe_bombs_and_broken_components_are_skipped_with_the_reason() {
    let b = Berth::with(&[("system.wasm", system_wasm()), ("bomb.wasm", wasm("berth-test-bomb")), ("broken.wasm", wasm("berth-test-broken"))]);
    let r = b.run(&["actions", "-o", "pretty"]);
    r.expect_code(0);
    let skipped = r.stdout.split("SKIPPED COMPONENTS").nth(1).unwrap_or_else(|| panic!("no skipped section: {r:#?}"));
    assert!(skipped.contains("bomb.wasm") && (skipped.contains("100000 actions (at most 1000)") || skipped.contains("memory limit")), "{r:#?}");
    assert!(skipped.contains("broken.wasm") && skipped.contains("describe() failed"), "{r:#?}");
    assert!(r.stdout.contains("system.ping") && !r.stdout.contains("bomb.a1 "), "{r:#?}");
    b.run(&["run", "system.ping"]).ok();
}

#[test]
fn bad_engine_paths_methods_and_headers_are_refused() {
    let r = Berth::hostile().run(&["run", "test.bad-paths"]);
    let j = r.ok();
    let results: Vec<(String, String)> =
        j["data"].as_array().unwrap().iter().map(|d| (d["path"].as_str().unwrap().to_string(), d["result"].as_str().unwrap_or("").to_string())).collect();
    for (path, result) in &results {
        assert!(!result.starts_with("SENT"), "{path} reached the engine: {result}");
        assert!(!result.is_empty(), "{path}: no error");
    }
    let get = |p: &str| results.iter().find(|(k, _)| k == p).unwrap().1.clone();
    assert!(get("/containers/../../etc/passwd").contains("'..'"));
    assert!(get("/v1.41/info").contains("version prefix"));
    assert!(get("http://evil.example/info").contains("must start with '/'"));
    assert!(get("//evil/info").contains("scheme or host"));
    assert!(get("/images/a%2F..%2Fb/json").contains("'..'"));
    assert!(get("/info?x=1").contains("query"));
    assert!(get("PATCH /info").contains("not used by the Engine API"));
    assert!(get("X-Registry-Auth header").contains("set by the host"));
}

#[test]
fn engine_call_and_response_byte_caps() {
    let b = Berth::hostile();
    let r = b.run(&["run", "test.flood", "n=1000", "--max-engine-calls", "50"]);
    r.expect_code(4);
    assert!(r.message().contains("engine call limit of 50 per invocation reached"), "{r:#?}");
    b.run(&["run", "test.flood", "n=20", "--max-engine-calls", "50"]).ok();

    let r = b.run(&["run", "test.big-read", "n=100", "--max-response-bytes", "20000"]);
    r.expect_code(4);
    assert!(r.message().contains("response byte limit of 20000 per invocation exceeded"), "{r:#?}");
}

#[test]
fn guest_output_goes_to_the_logs() {
    let r = Berth::hostile().env("BERTH_LOG", "info").run(&["run", "test.print"]);
    r.ok();
    assert!(r.stderr.contains("hello from guest stdout") && r.stderr.contains("hello from guest stderr"), "{r:#?}");
    assert!(!r.stdout.contains("hello from guest"), "guest output must not pollute the result: {r:#?}");
}

#[test]
fn a_panicking_component_fails_cleanly() {
    let r = Berth::hostile().run(&["run", "test.panic"]);
    r.expect_code(1);
    assert!(r.message().contains("crashed") && r.message().contains("deliberate panic in test.panic"), "{r:#?}");
    assert_eq!(r.json()["error"]["kind"], "internal");
}

#[test]
fn artifacts_stream_through_the_host_atomically() {
    let image = test_image();
    let b = Berth::hostile();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.tar");
    let r = b.run(&["run", "test.save", &format!("name={image}"), "--out", out.to_str().unwrap()]);
    let j = r.ok();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(j["data"][0]["size"].as_u64().unwrap(), bytes.len() as u64);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(j["data"][0]["sha256"], sha);
    let mut ar = tar::Archive::new(&bytes[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");

    // Load it back from an input artifact.
    let r = b.run(&["run", "test.load", "--in", out.to_str().unwrap()]);
    assert!(r.ok()["data"][0]["response"].as_str().unwrap().contains("Loaded image"), "{r:#?}");

    // A failed save writes nothing, not even a temp file.
    let missing = dir.path().join("missing.tar");
    let r = b.run(&["run", "test.save", "name=berth-test/no-such-image:nope", "--out", missing.to_str().unwrap()]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 404);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("image.tar")], "partial files left behind");

    // Artifacts that were not given, or do not exist, are named clearly.
    let r = b.run(&["run", "test.save", &format!("name={image}")]);
    r.expect_code(2);
    assert!(r.message().contains("artifact 'out' was not provided"), "{r:#?}");
    let r = b.run(&["run", "test.load", "--in", "/nonexistent/in.tar"]);
    r.expect_code(2);
    assert!(r.message().contains("cannot open input artifact 'in'"), "{r:#?}");
}
