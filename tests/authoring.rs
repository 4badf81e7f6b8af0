//! Writing your own actions, against the isolated real engine: the Python and JavaScript
//! SDKs and example families, the versioned contract (a 0.1 component still runs; an
//! unsupported one is named), `berth check`, `install`, `new` and `actions --strict`.

use berth_test_support as common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use http::Method;
use serde_json::{json, Value};

/// A started container of the test image: `(id, name)`; removed by [`remove`].
fn container(name_prefix: &str, cmd: &[&str], host_config: Value) -> (String, String) {
    let name = unique(name_prefix);
    let body = json!({"Image": test_image(), "Cmd": cmd, "HostConfig": host_config, "NetworkDisabled": true});
    let (st, v) = api(Method::POST, "/containers/create", &format!("name={name}"), Some(("application/json", body.to_string().into_bytes())));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    let id = serde_json::from_slice::<Value>(&v).unwrap()["Id"].as_str().unwrap().to_string();
    let (st, v) = api(Method::POST, &format!("/containers/{id}/start"), "", None);
    assert_eq!(st, 204, "{}", String::from_utf8_lossy(&v));
    (id, name)
}

fn remove(id: &str) {
    api(Method::DELETE, &format!("/containers/{id}"), "force=true", None);
}

fn installed(files: &[PathBuf]) -> Berth {
    let b = Berth::with(&[]);
    for f in files {
        let r = b.run(&["install", f.to_str().unwrap(), "-o", "pretty"]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert!(r.stdout.contains("sha256 ") && r.stdout.contains("pins = {"), "{r:#?}");
    }
    b
}

#[test]
fn python_hunt_finds_the_container_with_its_processes_and_changes() {
    let b = installed(&[component("hunt")]);
    let (id, name) = container("hunted", &["sh", "-c", "echo x > /tmp/dropped; exec sleep 300"], json!({}));
    let (calm, _) = container("calm", &["sleep", "300"], json!({}));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let j = b.run(&["run", "hunt.containers-by-image", &format!("image={}", test_image())]).ok().clone();
    let rows = j["data"].as_array().unwrap();
    let row = rows.iter().find(|r| r["Id"] == id.as_str()).unwrap_or_else(|| panic!("{j:#}"));
    assert_eq!(row["Name"], name.as_str());
    assert_eq!(row["matched_by"], "image id");
    assert!(row["processes"].as_array().unwrap().iter().any(|p| p["CMD"].as_str().unwrap_or("").contains("sleep 300")), "{row:#}");
    assert!(row["changes"].as_array().unwrap().iter().any(|c| c["Path"] == "/tmp/dropped" && c["Kind"] == "added"), "{row:#}");
    assert!(rows.iter().any(|r| r["Id"] == calm.as_str()));
    assert_eq!(j["summary"]["image_id"], api_json(Method::GET, &format!("/images/{}/json", test_image()), "")["Id"]);
    // By the image's id too, and an image nobody runs matches nothing.
    let image_id = j["summary"]["image_id"].as_str().unwrap().to_string();
    let by_id = b.run(&["run", "hunt.containers-by-image", &format!("image={image_id}")]).ok().clone();
    assert!(by_id["data"].as_array().unwrap().iter().any(|r| r["Id"] == id.as_str()));
    let none = b.run(&["run", "hunt.containers-by-image", "image=no-such-image:never"]).ok().clone();
    assert_eq!(none["summary"]["total_objects"], 0);
    remove(&id);
    remove(&calm);
}

#[test]
fn js_posture_scores_the_container_that_reaches_the_host() {
    let b = installed(&[component("posture")]);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("docker.sock");
    std::fs::write(&sock, "").unwrap();
    let bind = format!("{}:/run/docker.sock", sock.display());
    let (risky, _) = container("risky", &["sleep", "300"], json!({"PidMode": "host", "Binds": [bind]}));
    let (calm, _) = container("calm", &["sleep", "300"], json!({}));
    let j = b.run(&["run", "posture.risky-containers", "min_score=2"]).ok().clone();
    let rows = j["data"].as_array().unwrap();
    let row = rows.iter().find(|r| r["Id"] == risky.as_str()).unwrap_or_else(|| panic!("{j:#}"));
    let ids: Vec<&str> = row["risks"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"engine-socket") && ids.contains(&"host-pid"), "{row:#}");
    assert!(row["score"].as_i64().unwrap() >= 16, "{row:#}");
    // The calm one only runs as root: below the threshold.
    assert!(!rows.iter().any(|r| r["Id"] == calm.as_str()), "{j:#}");
    assert!(j["summary"]["highest_score"].as_i64().unwrap() >= 16);
    remove(&risky);
    remove(&calm);
}

/// The SDKs' error shapes, streams and the gate on declared operations, in both languages.
#[test]
fn python_and_js_sdks_map_errors_streams_and_declared_operations() {
    let b = installed(&[component("py-probe"), component("js-probe")]);
    for (fam, exc, frame) in [("pyprobe", "KeyError: 'missing-key'", "in _deep"), ("jsprobe", "TypeError:", "deep@")] {
        // An uncaught exception is `internal` with its type, message and innermost frames.
        let r = b.run(&["run", &format!("{fam}.crash")]);
        r.expect_code(1);
        assert_eq!(r.json()["error"]["kind"], "internal", "{r:#?}");
        let m = r.message();
        assert!(m.starts_with(exc) && m.contains(frame), "{fam}: {m}");
        assert!(!m.contains("unreachable") && !m.contains("unexpected exception"), "{m}");
        // A structured error keeps its kind.
        let r = b.run(&["run", &format!("{fam}.refuse")]);
        r.expect_code(3);
        assert_eq!((r.json()["error"]["kind"].as_str(), r.message().as_str()), (Some("denied"), format!("{fam} refuses on purpose").as_str()));
        // The engine's 404 arrives as an engine error with its status and message.
        let r = b.run(&["run", &format!("{fam}.inspect-missing"), "name=no-such-container-here"]);
        r.expect_code(1);
        assert_eq!(r.json()["error"], json!({"kind": "engine", "status": 404}), "{r:#?}");
        assert!(r.message().contains("no-such-container-here"), "{r:#?}");
        // A stream read to its end through the body-stream resource.
        let (id, _) = container("evt", &["true"], json!({}));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
        let since = now - 60;
        let j = b.run(&["run", &format!("{fam}.events"), &format!("since={since}"), &format!("until={now}")]).ok().clone();
        assert!(j["data"].as_array().unwrap().iter().any(|e| e["Actor"]["ID"] == id.as_str()), "{fam}: {j:#}");
        remove(&id);
        // A tar written member by member: bytes, and an engine response streamed to disk.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar");
        let j = b.run(&["run", &format!("{fam}.bundle"), "--out", out.to_str().unwrap()]).ok().clone();
        let bytes = std::fs::read(&out).unwrap();
        use sha2::Digest;
        assert_eq!(j["data"][0]["sha256"], hex::encode(sha2::Sha256::digest(&bytes)).as_str(), "{fam}");
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = std::collections::BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut d).unwrap();
            seen.insert(e.path().unwrap().to_string_lossy().into_owned(), d);
        }
        assert_eq!(String::from_utf8_lossy(&seen["note.txt"]), format!("collected by {fam}"));
        let v: Value = serde_json::from_slice(&seen["engine/version.json"]).unwrap();
        assert!(v["ApiVersion"].is_string(), "{v}");
        for (name, data) in &seen {
            assert_eq!(j["data"][0]["members"][name], hex::encode(sha2::Sha256::digest(data)).as_str(), "{fam} {name}");
        }
        // Declared ContainerList only: GET /info, which the engine answers directly, is refused.
        let r = b.run(&["run", &format!("{fam}.undeclared")]);
        r.expect_code(3);
        assert!(r.message().contains("declares the engine operations ContainerList; SystemInfo (GET /info) is not among them"), "{r:#?}");
    }
    let (st, _) = api(Method::GET, "/info", "", None);
    assert_eq!(st, 200, "the same call works against the engine directly");
    // The declarations show in describe.
    let d = b.run(&["describe", "pyprobe.undeclared", "--json"]);
    assert_eq!(d.json()["operations"], json!(["ContainerList"]));
}

#[test]
fn a_component_built_for_contract_0_1_still_loads_and_runs() {
    let legacy = wasm("berth-test-legacy-v01");
    let b = Berth::with(&[("legacy.wasm", legacy.clone()), ("system.wasm", system_wasm())]);
    let r = b.run(&["check", legacy.to_str().unwrap(), "--json"]);
    r.expect_code(0);
    assert_eq!((r.json()["contract"].as_str(), r.json()["contract_section"].as_str()), (Some("0.1"), Some("0.1.0")));
    assert!(r.json()["warnings"].to_string().contains("built for berth:connector 0.1"), "{r:#?}");
    let j = b.run(&["run", "legacy.ping"]).ok().clone();
    assert_eq!(j["data"][0]["reply"], "OK");
    let v = b.run(&["run", "legacy.version"]).ok().clone();
    let api_version = api_json(Method::GET, "/version", "")["ApiVersion"].clone();
    assert_eq!(v["data"][0]["value"], api_version, "read through the 0.1 body-stream");
    // Beside it, a current (0.2) family declares its operations.
    let s = b.run(&["check", system_wasm().to_str().unwrap(), "--json"]);
    assert_eq!(s.json()["contract"], "0.2");
    b.run(&["run", "system.ping"]).ok();
}

/// Rewrites the 5-byte version after the `berth:contract` section name.
fn restamp(src: &Path, version: &[u8; 5]) -> Vec<u8> {
    let mut bytes = std::fs::read(src).unwrap();
    let at = bytes.windows(14).position(|w| w == b"berth:contract").expect("a contract section") + 14;
    bytes[at..at + 5].copy_from_slice(version);
    bytes
}

#[test]
fn unsupported_mismatched_broken_and_clashing_components_are_reported_and_the_rest_keep_working() {
    let scratch = tempfile::tempdir().unwrap();
    let old = scratch.path().join("old.wasm");
    std::fs::write(&old, restamp(&wasm("berth-test-legacy-v01"), b"0.0.9")).unwrap();
    let liar = scratch.path().join("liar.wasm");
    std::fs::write(&liar, restamp(&wasm("berth-test-legacy-v01"), b"0.2.0")).unwrap();

    let b = Berth::with(&[]);
    let r = b.run(&["check", old.to_str().unwrap()]);
    r.expect_code(1);
    assert!(r.stderr.contains("built for berth:connector 0.0; this host supports 0.1–0.2"), "{r:#?}");
    let r = b.run(&["check", liar.to_str().unwrap()]);
    r.expect_code(1);
    assert!(r.stderr.contains("section says 0.2 but it exports berth:connector/actions@0.1.0"), "{r:#?}");
    let r = b.run(&["check", component("js-needs-http").to_str().unwrap()]);
    r.expect_code(1);
    assert!(r.stderr.contains("wasi:http/types") && r.stderr.contains("-d http -d fetch-event"), "{r:#?}");
    let r = b.run(&["check", scratch.path().join("missing.wasm").to_str().unwrap()]);
    r.expect_code(1);
    std::fs::write(scratch.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let r = b.run(&["check", scratch.path().join("core.wasm").to_str().unwrap()]);
    assert!(r.code == 1 && r.stderr.contains("core wasm module"), "{r:#?}");

    // In an actions directory: each bad one is skipped with its reason, the rest work.
    let dir = Berth::with(&[
        ("system.wasm", system_wasm()),
        ("system-copy.wasm", system_wasm()),
        ("old.wasm", old.clone()),
        ("broken.wasm", wasm("berth-test-broken")),
        ("needs-http.wasm", component("js-needs-http")),
    ]);
    let r = dir.run(&["actions", "-o", "pretty"]);
    r.expect_code(0);
    for why in
        ["family 'system' is declared by", "built for berth:connector 0.0", "describe() failed: wasm trap", "deliberately broken describe()", "wasi:http/types"]
    {
        assert!(r.stdout.contains(why), "{why}: {r:#?}");
    }
    assert!(r.stdout.contains("SKIPPED COMPONENTS") && r.stdout.contains("system-copy.wasm"), "{r:#?}");
    let r = dir.run(&["actions", "--strict", "--json"]);
    r.expect_code(1);
    let skipped = r.json()["skipped"].as_array().unwrap().clone();
    assert!(
        skipped.iter().any(|s| s["component"].as_str().unwrap_or_default().ends_with("system-copy.wasm")
            && s["why"].as_str().unwrap_or_default().contains("family 'system' is declared by")),
        "--json carries the skipped components: {skipped:?}"
    );
    Berth::system().run(&["actions", "--strict", "--json"]).expect_code(0);

    // Installing a family another file already holds is refused, and nothing is written.
    let before: Vec<_> = std::fs::read_dir(dir.actions.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let renamed = scratch.path().join("renamed.wasm");
    std::fs::copy(system_wasm(), &renamed).unwrap();
    let only_copy = Berth::with(&[("sys-old.wasm", system_wasm())]);
    let r = only_copy.run(&["install", renamed.to_str().unwrap()]);
    r.expect_code(1);
    assert!(r.stderr.contains("family 'system' is already installed from") && r.stderr.contains("nothing was installed"), "{r:#?}");
    assert_eq!(std::fs::read_dir(only_copy.actions.path()).unwrap().count(), 1);
    let after: Vec<_> = std::fs::read_dir(dir.actions.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after);
}

#[test]
fn install_precompiles_so_the_first_run_compiles_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let b = Berth::with(&[]).env("BERTH_CACHE", cache.path().to_str().unwrap()).env("BERTH_LOG", "berth=debug");
    let r = b.run(&["install", component("posture").to_str().unwrap(), "--json"]);
    r.expect_code(0);
    let sha = r.json()["report"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(r.json()["path"].as_str().unwrap(), b.actions.path().join("posture.wasm").to_str().unwrap());
    assert!(r.json()["precompiled"].as_bool().unwrap());
    let entries =
        || std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect::<Vec<_>>();
    assert!(entries().iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with(&sha)), "{:?}", entries());
    let run = b.run(&["run", "posture.risky-containers"]);
    run.ok();
    assert!(run.stderr.contains("source=Cached"), "the first run after install loads the precompiled component: {}", run.stderr);
    assert!(!run.stderr.contains("source=Compiled"));
    // Installing the same file again replaces it in place.
    let again = b.run(&["install", b.actions.path().join("posture.wasm").to_str().unwrap(), "--json"]);
    again.expect_code(0);
    assert_eq!(std::fs::read_dir(b.actions.path()).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wasm")).count(), 1);
}

/// `make -C dir test` of a scaffold, with the toolchains `make components` installed.
fn scaffold_builds_and_passes(lang: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("demo-{lang}");
    let dir = tmp.path().join(&name);
    let out = Command::new(berth_bin()).args(["new", &name, "--lang", lang, "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ws = workspace();
    let tc = ws.join("target/toolchains");
    let actions = tempfile::tempdir().unwrap();
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&dir)
        .arg("test")
        .env("BERTH", berth_bin())
        .env("DOCKER_HOST", docker_host())
        .env("BERTH_CACHE", shared_cache())
        .env("BERTH_ACTIONS", actions.path())
        .env("COMPONENTIZE_PY", tc.join("py/bin/componentize-py"))
        .env("COMPONENTIZE_JS", tc.join("js/node_modules/.bin/componentize-js"));
    if lang == "rust" {
        // Build in the workspace's target dir with its lock file: the SDK's dependencies are
        // already compiled there.
        std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        make.env("CARGO_TARGET_DIR", ws.join("target"));
    }
    let out = make.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{lang}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{name}: ok")), "{stdout}");
    assert!(stdout.contains(&format!("{name}.summary: ok")), "{stdout}");
    assert!(stdout.contains("contract: built for berth:connector 0.2"), "{stdout}");
    if lang == "rust" {
        // The first real edit: the sample action renamed. The family's test names no action,
        // so it tests the renamed one.
        let lib = dir.join("src/lib.rs");
        let src = std::fs::read_to_string(&lib).unwrap().replace(&format!("\"{name}.summary\""), &format!("\"{name}.overview\""));
        std::fs::write(&lib, src).unwrap();
        let out = make.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "after a rename: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("{name}.overview: ok")) && !stdout.contains(&format!("{name}.summary")), "{stdout}");
    }
    // A second scaffold into the same directory writes nothing.
    let again = Command::new(berth_bin()).args(["new", &name, "--lang", lang, "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn scaffold_rust() {
    scaffold_builds_and_passes("rust");
}

#[test]
fn scaffold_python() {
    scaffold_builds_and_passes("python");
}

#[test]
fn scaffold_js() {
    scaffold_builds_and_passes("js");
}

/// The SDK references (actions/sdk-python/REFERENCE.md, actions/sdk-js/REFERENCE.md): their
/// examples, built as one family each by `make components`, install and run on the engine as
/// the text says.
#[test]
fn sdk_reference_examples_build_and_run_as_documented() {
    let b = installed(&[component("pyref"), component("jsref")]);
    let dir = tempfile::tempdir().unwrap();
    for fam in ["pyref", "jsref"] {
        let run = |args: &[&str]| {
            let mut all = vec!["run".to_string(), format!("{fam}.{}", args[0])];
            all.extend(args[1..].iter().map(|s| s.to_string()));
            b.run(&all.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let j = run(&["ping"]).ok().clone();
        assert_eq!(j["data"][0], json!({"ok": true, "api_version": "1.41"}), "{fam}: {j}");
        let j = run(&["params", "name=web", "count=5.0", "token=s3cret"]).ok().clone();
        assert_eq!(j["data"][0]["count"], 5, "{fam}: integral floats are integers: {j}");
        assert_eq!((j["data"][0]["labels"]["team"].as_str(), j["data"][0]["token_given"].as_bool()), (Some("red"), Some(true)), "{fam}: {j}");
        assert_eq!(j["parameter"]["token"], "<redacted>");
        run(&["params"]).expect_code(2);
        let (id, _) = container(&format!("{fam}-ref"), &["sleep", "30"], json!({}));
        let j = run(&["containers"]).ok().clone();
        assert!(j["data"].as_array().unwrap().iter().any(|c| c["Id"] == id.as_str()), "{fam}: {j}");
        assert!(j["summary"]["running"].as_u64().unwrap() >= 1 && j["summary"]["total_objects"].as_u64().unwrap() >= 1, "{fam}: {j}");
        let vol = unique(&format!("{fam}-vol"));
        let j = run(&["volume-roundtrip", &format!("name={vol}")]).ok().clone();
        assert_eq!(j["data"][0]["Labels"]["made-by"], fam, "{j}");
        assert_eq!(j["summary"]["engine_api"], "1.41", "{j}");
        assert_eq!(api(Method::GET, &format!("/volumes/{vol}"), "", None).0, 404, "removed again");
        let j = run(&["events"]).ok().clone();
        let events = j["data"].as_array().unwrap();
        assert!(events.iter().any(|e| e["Type"] == "volume" && e["Actor"]["ID"] == vol.as_str()), "{fam}: {j}");
        let out = dir.path().join(format!("{fam}-bundle.tar"));
        let j = run(&["bundle", "--out", out.to_str().unwrap()]).ok().clone();
        let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&out).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["info.json", "meta.json", "version.json"], "{fam}: {j}");
        let saved = dir.path().join(format!("{fam}-image.tar"));
        let j = run(&["save", &format!("image={}", test_image()), "--out", saved.to_str().unwrap()]).ok().clone();
        assert_eq!(j["data"][0]["size"].as_u64(), Some(std::fs::metadata(&saved).unwrap().len()), "{fam}: {j}");
        let j = run(&["load", "--in", saved.to_str().unwrap()]).ok().clone();
        assert!(j["data"].to_string().contains("Loaded image"), "{fam}: {j}");
        let r = run(&["count", "n=4", "--progress"]);
        assert_eq!(r.ok()["data"][0]["counted"], 4);
        assert!(r.stderr.contains(&format!("{fam}.count count: counting")), "{fam}: {r:#?}");
        // Errors: each kind with its exit code; the engine's 404 caught or passed on.
        assert_eq!(run(&["fail"]).ok()["data"][0]["missing"], true);
        for (how, code, kind) in
            [("bad_params", 2, "bad_params"), ("denied", 3, "denied"), ("engine", 1, "engine"), ("internal", 1, "internal"), ("uncaught", 1, "internal")]
        {
            let r = run(&["fail", &format!("how={how}")]);
            r.expect_code(code);
            assert_eq!(r.json()["error"]["kind"], kind, "{fam} {how}: {r:#?}");
        }
        remove(&id);
    }
}
