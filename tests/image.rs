//! The `image` family against the isolated real engine and real local registries.

use berth_test_support as common;

use std::time::Duration;

use common::*;
use http::Method;
use serde_json::{json, Value};

fn berth() -> Berth {
    Berth::with(&[("image.wasm", wasm("berth-action-image")), ("container.wasm", wasm("berth-action-container"))])
}

fn run_ok(b: &Berth, args: &[&str]) -> Value {
    b.run_within(Duration::from_secs(180), args).ok().clone()
}

fn image_id(name: &str) -> String {
    api_json(Method::GET, &format!("/images/{}/json", name.replace('/', "%2F")), "")["Id"].as_str().unwrap().to_string()
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn tag(image: &str, repo: &str, tag: &str) {
    let (s, body) = api(
        Method::POST,
        &format!("/images/{}/tag", image.replace('/', "%2F")),
        &format!("repo={}&tag={tag}", repo.replace('/', "%2F").replace(':', "%3A")),
        None,
    );
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&body));
}

/// Builds and prunes never overlap: a dangling-image or build-cache prune deletes the
/// intermediate images of a build running beside it ("failed to get digest …").
fn builds_and_prunes() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn build_from_a_tar_and_a_directory_then_inspect_and_history() {
    let _serial = builds_and_prunes();
    let base = test_image();
    let b = berth();
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {base} AS base\nARG GREETING=unset\nRUN echo $GREETING > /greeting\nFROM base AS extra\nRUN touch /extra\n");
    let ctx = write(dir.path(), "ctx.tar", &tar_of(&[("Dockerfile", dockerfile.as_bytes(), 0o644)]));
    let repo = format!("berth-test/{}", unique("built"));
    let j = run_ok(
        &b,
        &[
            "run",
            "image.build",
            "--in",
            &ctx,
            &format!("tags={repo}:1"),
            r#"buildargs={"GREETING":"hello"}"#,
            r#"labels={"team":"red"}"#,
            "target=base",
            "networkmode=none",
        ],
    );
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"), "{j}");
    assert_eq!(image_id(&format!("{repo}:1")), id);
    let i = run_ok(&b, &["run", "image.inspect", &format!("name={repo}:1")]);
    assert_eq!(i["data"][0]["Config"]["Labels"]["team"], "red");
    let h = run_ok(&b, &["run", "image.history", &format!("name={repo}:1")]);
    let steps: Vec<&str> = h["data"].as_array().unwrap().iter().filter_map(|l| l["CreatedBy"].as_str()).collect();
    assert!(steps.iter().any(|s| s.contains("echo $GREETING")), "{steps:?}");
    assert!(!steps.iter().any(|s| s.contains("touch /extra")), "target=base must stop early: {steps:?}");
    let out = run_ok(&b, &["run", "container.run", &format!("image={repo}:1"), "cmd=cat /greeting"]);
    assert_eq!(out["data"][0]["stdout"], "hello\n");

    // A directory context, packed into a tar by the CLI.
    let ctxdir = dir.path().join("ctxdir");
    std::fs::create_dir(&ctxdir).unwrap();
    std::fs::write(ctxdir.join("Dockerfile"), format!("FROM {base}\nCOPY note.txt /note.txt\n")).unwrap();
    std::fs::write(ctxdir.join("note.txt"), "from a directory\n").unwrap();
    run_ok(&b, &["run", "image.build", "--in", ctxdir.to_str().unwrap(), &format!("tags=[\"{repo}:dir\"]"), "networkmode=none"]);
    let out = run_ok(&b, &["run", "container.run", &format!("image={repo}:dir"), "cmd=cat /note.txt"]);
    assert_eq!(out["data"][0]["stdout"], "from a directory\n");

    // An error inside the 200 progress stream fails the action with the engine's words.
    let bad = write(dir.path(), "bad.tar", &tar_of(&[("Dockerfile", format!("FROM {base}\nRUN exit 3\n").as_bytes(), 0o644)]));
    let r = b.run(&["run", "image.build", "--in", &bad, "networkmode=none"]);
    r.expect_code(1);
    assert!(r.message().contains("returned a non-zero code: 3"), "{r:#?}");
    for t in ["1", "dir"] {
        api(Method::DELETE, &format!("/images/{}:{t}", repo.replace('/', "%2F")), "force=1", None);
    }
}

#[test]
fn push_remove_and_pull_back_with_progress() {
    let registry = Registry::start(None);
    let b = berth();
    let reference = format!("{}/berth/busybox", registry.addr);
    run_ok(&b, &["run", "image.tag", &format!("name={}", test_image()), &format!("repo={reference}"), "tag=t1"]);
    let j = run_ok(&b, &["run", "image.push", &format!("name={reference}:t1")]);
    let digest = j["summary"]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{j}");

    let d = run_ok(&b, &["run", "image.distribution-inspect", &format!("name={reference}:t1")]);
    assert_eq!(d["summary"]["digest"], digest.as_str());

    let r = run_ok(&b, &["run", "image.remove", &format!("name={reference}:t1")]);
    // The tag and its repo digest are both untagged.
    assert!(r["summary"]["untagged"].as_u64().unwrap() >= 1, "{r}");
    let pulled = b
        .clone_with_env("BERTH_LOG", "berth::progress=info")
        .run_within(Duration::from_secs(120), &["run", "image.pull", &format!("image={reference}"), "tag=t1"]);
    let j = pulled.ok();
    assert!(j["summary"]["progress_messages"].as_u64().unwrap() > 0, "{j}");
    assert!(pulled.stderr.contains("berth::progress"), "progress events must be reported: {pulled:#?}");
    assert_eq!(image_id(&format!("{reference}:t1")), image_id(test_image()));
    api(Method::DELETE, &format!("/images/{}:t1", reference.replace('/', "%2F")), "", None);
}

#[test]
fn registry_credentials_work_wrong_ones_fail_and_never_leak() {
    let secret = "Pw-9c1e-never-show";
    let registry = Registry::start(Some(("alice", secret)));
    let reference = format!("{}/secure/busybox", registry.addr);
    tag(test_image(), &reference, "s1");
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", json!({"registries": {registry.addr.clone(): {"username": "alice", "password": secret}}}).to_string().as_bytes());
    let wrong = write(
        dir.path(),
        "wrong.json",
        json!({"registries": {registry.addr.clone(): {"username": "alice", "password": "Wrong-pw-4f2a"}}}).to_string().as_bytes(),
    );
    let b = berth();

    let mut all_output = String::new();
    let with = |creds: &str| b.clone_with_env("BERTH_CREDENTIALS", creds).clone_with_env("BERTH_LOG", "berth=trace");
    let r = with(&good).run_within(Duration::from_secs(120), &["run", "image.push", &format!("name={reference}:s1")]);
    all_output += &format!("{}{}", r.stdout, r.stderr);
    r.ok();

    let r = with(&wrong).run_within(Duration::from_secs(120), &["run", "image.push", &format!("name={reference}:s1")]);
    all_output += &format!("{}{}", r.stdout, r.stderr);
    r.expect_code(1);
    let m = r.message().to_lowercase();
    assert!(m.contains("unauthorized") || m.contains("authentication") || m.contains("denied"), "{r:#?}");

    api(Method::DELETE, &format!("/images/{}:s1", reference.replace('/', "%2F")), "", None);
    let r = with(&wrong).run_within(Duration::from_secs(120), &["run", "image.pull", &format!("image={reference}:s1")]);
    all_output += &format!("{}{}", r.stdout, r.stderr);
    r.expect_code(1);
    let r = with(&good).run_within(Duration::from_secs(120), &["run", "image.pull", &format!("image={reference}:s1")]);
    all_output += &format!("{}{}", r.stdout, r.stderr);
    r.ok();
    // Anonymous: refused too.
    api(Method::DELETE, &format!("/images/{}:s1", reference.replace('/', "%2F")), "", None);
    let r = b.run_within(Duration::from_secs(120), &["run", "image.pull", &format!("image={reference}:s1")]);
    r.expect_code(1);

    assert!(!all_output.contains(secret), "the password leaked");
    assert!(!all_output.contains("Wrong-pw-4f2a"), "the wrong password leaked");
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("alice:{secret}"));
    assert!(!all_output.contains(&encoded), "the encoded credentials leaked");
}

#[test]
fn save_then_load_round_trip_under_a_fresh_name() {
    let b = berth();
    let fresh = format!("berth-test/{}", unique("saved"));
    tag(test_image(), &fresh, "v1");
    let original = image_id(&format!("{fresh}:v1"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("saved.tar");
    let j = run_ok(&b, &["run", "image.get", &format!("name={fresh}:v1"), "--out", out.to_str().unwrap()]);
    assert_eq!(j["summary"]["size"].as_u64().unwrap(), std::fs::metadata(&out).unwrap().len());
    run_ok(&b, &["run", "image.remove", &format!("name={fresh}:v1")]);
    assert_eq!(api(Method::GET, &format!("/images/{}:v1/json", fresh.replace('/', "%2F")), "", None).0, 404);
    let j = run_ok(&b, &["run", "image.load", "--in", out.to_str().unwrap()]);
    assert_eq!(j["summary"]["loaded"], 1, "{j}");
    assert!(j["data"][0]["loaded"][0].as_str().unwrap().contains(&fresh), "{j}");
    assert_eq!(image_id(&format!("{fresh}:v1")), original);

    // get-all: several names into one tar.
    let other = format!("berth-test/{}", unique("saved2"));
    tag(test_image(), &other, "v2");
    let all = dir.path().join("all.tar");
    run_ok(&b, &["run", "image.get-all", &format!("names=[\"{fresh}:v1\",\"{other}:v2\"]"), "--out", all.to_str().unwrap()]);
    let mut ar = tar::Archive::new(std::fs::File::open(&all).unwrap());
    let mut manifest = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            std::io::Read::read_to_string(&mut e, &mut manifest).unwrap();
        }
    }
    assert!(manifest.contains(&format!("{fresh}:v1")) && manifest.contains(&format!("{other}:v2")), "{manifest}");
    // A corrupt tarball fails clearly.
    let junk = write(dir.path(), "junk.tar", b"not a tarball at all");
    b.run(&["run", "image.load", "--in", &junk]).expect_code(1);
    for n in [format!("{fresh}:v1"), format!("{other}:v2")] {
        api(Method::DELETE, &format!("/images/{}", n.replace('/', "%2F")), "", None);
    }
}

#[test]
fn import_commit_and_prune_dangling() {
    let _serial = builds_and_prunes();
    let b = berth();
    let dir = tempfile::tempdir().unwrap();
    let busybox = std::fs::read(["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap()).unwrap();
    let rootfs = write(dir.path(), "rootfs.tar", &tar_of(&[("bin/busybox", &busybox, 0o755)]));
    let repo = format!("berth-test/{}", unique("imported"));
    let j = run_ok(
        &b,
        &[
            "run",
            "image.import",
            "--in",
            &rootfs,
            &format!("repo={repo}"),
            "tag=1",
            "message=imported by berth",
            r#"changes=["CMD [\"/bin/busybox\",\"echo\",\"imported\"]"]"#,
        ],
    );
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    assert_eq!(image_id(&format!("{repo}:1")), id);
    let out = run_ok(&b, &["run", "container.run", &format!("image={repo}:1")]);
    assert_eq!(out["data"][0]["stdout"], "imported\n");

    // Commit a container.
    let c = run_ok(&b, &["run", "container.create", &format!("image={}", test_image()), r#"cmd=["sh","-c","echo committed > /c"]"#]);
    let cid = c["summary"]["id"].as_str().unwrap().to_string();
    run_ok(&b, &["run", "container.start", &format!("id={cid}")]);
    run_ok(&b, &["run", "container.wait", &format!("id={cid}")]);
    let committed = format!("berth-test/{}", unique("committed"));
    let j = run_ok(&b, &["run", "image.commit", &format!("container={cid}"), &format!("repo={committed}"), "tag=c1", "comment=by berth", "author=tests"]);
    let img = api_json(Method::GET, &format!("/images/{}/json", j["summary"]["image_id"].as_str().unwrap()), "");
    assert_eq!(img["Comment"], "by berth");
    assert_eq!(img["Author"], "tests");
    api(Method::DELETE, &format!("/containers/{cid}"), "force=1", None);

    // A dangling image (no repo, no tag) goes with prune; tagged ones stay.
    let j = run_ok(&b, &["run", "image.import", "--in", &rootfs, "message=dangling"]);
    let dangling = j["summary"]["id"].as_str().unwrap().to_string();
    let p = run_ok(&b, &["run", "image.prune", r#"filters={"dangling":["true"]}"#]);
    let deleted: Vec<String> =
        p["data"][0]["ImagesDeleted"].as_array().into_iter().flatten().filter_map(|d| d["Deleted"].as_str().map(str::to_string)).collect();
    assert!(deleted.contains(&dangling), "{p}");
    assert_eq!(api(Method::GET, &format!("/images/{dangling}/json"), "", None).0, 404);
    assert_eq!(api(Method::GET, &format!("/images/{}:1/json", repo.replace('/', "%2F")), "", None).0, 200);
    for n in [format!("{repo}:1"), format!("{committed}:c1")] {
        api(Method::DELETE, &format!("/images/{}", n.replace('/', "%2F")), "force=1", None);
    }
}

#[test]
fn remove_conflicts_in_use_and_several_tags() {
    let b = berth();
    // An image with its own ID, used by a container.
    let dir = tempfile::tempdir().unwrap();
    let busybox = std::fs::read(["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap()).unwrap();
    let rootfs = write(dir.path(), "rootfs.tar", &tar_of(&[("bin/busybox", &busybox, 0o755)]));
    let repo = format!("berth-test/{}", unique("inuse"));
    let id = run_ok(&b, &["run", "image.import", "--in", &rootfs, &format!("repo={repo}"), "tag=a"])["summary"]["id"].as_str().unwrap().to_string();
    let c = run_ok(&b, &["run", "container.create", &format!("image={repo}:a"), r#"cmd=["/bin/busybox","true"]"#]);
    let cid = c["summary"]["id"].as_str().unwrap().to_string();
    let r = b.run(&["run", "image.remove", &format!("name={id}")]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 409, "{r:#?}");
    assert!(r.message().contains("being used"), "{r:#?}");
    api(Method::DELETE, &format!("/containers/{cid}"), "force=1", None);

    // A reference the docker CLI refuses is refused, where the engine itself would tag `x:v8`.
    let bad = format!("{}-x:v9:v8", unique("bad"));
    let r = b.run(&["run", "image.tag", &format!("name={repo}:a"), &format!("repo={bad}")]);
    r.expect_code(2);
    assert!(r.message().contains("not a valid image reference"), "{r:#?}");
    let docker = ["/usr/bin/docker", "/usr/local/bin/docker"].into_iter().find(|p| std::path::Path::new(p).exists()).expect("the docker CLI (docker.io)");
    let out = std::process::Command::new(docker).args(["-H", &docker_host(), "tag", &format!("{repo}:a"), &bad]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("invalid reference format"), "{out:?}");
    let (name, tag) = bad.rsplit_once(':').unwrap();
    let direct_name = format!("{}:{tag}", name.split(':').next().unwrap());
    assert_eq!(api(Method::GET, &format!("/images/{direct_name}/json"), "", None).0, 404, "nothing was tagged");
    // Several tags: removing by ID needs force.
    run_ok(&b, &["run", "image.tag", &format!("name={repo}:a"), &format!("repo={repo}"), "tag=b"]);
    let r = b.run(&["run", "image.remove", &format!("name={id}")]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 409, "{r:#?}");
    assert!(r.message().contains("multiple repositories") || r.message().contains("must be forced"), "{r:#?}");
    let j = run_ok(&b, &["run", "image.remove", &format!("name={id}"), "force=true"]);
    assert!(j["summary"]["deleted"].as_u64().unwrap() >= 1);
    let r = b.run(&["run", "image.inspect", "name=berth-test/no-such-image:x"]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 404);
}

#[test]
fn an_unreachable_registry_fails_clearly_without_hanging() {
    let b = berth();
    for args in [
        vec!["run", "image.pull", "image=127.0.0.1:1/nothing/here:1"],
        vec!["run", "image.search", "term=127.0.0.1:1/nothing"],
        vec!["run", "image.distribution-inspect", "name=127.0.0.1:1/nothing/here:1"],
    ] {
        let r = b.run_within(Duration::from_secs(60), &args);
        r.expect_code(1);
        assert!(r.message().contains("127.0.0.1:1"), "{args:?}: {r:#?}");
    }
    tag(test_image(), "127.0.0.1:1/nothing/here", "1");
    let r = b.run_within(Duration::from_secs(60), &["run", "image.push", "name=127.0.0.1:1/nothing/here:1"]);
    r.expect_code(1);
    assert!(r.message().contains("127.0.0.1:1"), "{r:#?}");
    api(Method::DELETE, "/images/127.0.0.1%3A1%2Fnothing%2Fhere:1", "", None);
}

#[test]
fn saving_a_large_image_keeps_memory_flat() {
    let b = berth();
    let c = run_ok(&b, &["run", "container.create", &format!("image={}", test_image()), r#"cmd=["dd","if=/dev/zero","of=/big","bs=1048576","count=200"]"#]);
    let cid = c["summary"]["id"].as_str().unwrap().to_string();
    run_ok(&b, &["run", "container.start", &format!("id={cid}")]);
    run_ok(&b, &["run", "container.wait", &format!("id={cid}")]);
    let repo = format!("berth-test/{}", unique("large"));
    run_ok(&b, &["run", "image.commit", &format!("container={cid}"), &format!("repo={repo}"), "tag=big"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("large.tar");
    let own = b.measured(&dir.path().join("cache"), &["run", "image.inspect", &format!("name={repo}:big")]);
    let (r, peak) = own.run_peak_rss(&["run", "image.get", &format!("name={repo}:big"), "--out", out.to_str().unwrap()]);
    r.ok();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size > 200 << 20, "{size}");
    assert_memory_flat(&r, peak, size);
    api(Method::DELETE, &format!("/containers/{cid}"), "force=1", None);
    api(Method::DELETE, &format!("/images/{}:big", repo.replace('/', "%2F")), "force=1", None);
}

#[test]
fn list_search_attestations_build_prune_and_soar_aliases() {
    let _serial = builds_and_prunes();
    let b = berth();
    let j = run_ok(&b, &["run", "image.list", r#"filters={"reference":["berth-test/busybox"]}"#, "digests=true"]);
    assert_eq!(j["summary"]["total_objects"], 1);
    assert!(j["data"][0]["RepoTags"].as_array().unwrap().iter().any(|t| t == test_image()));

    let engine_api = api_json(Method::GET, "/version", "")["ApiVersion"].as_str().unwrap().to_string();
    let r = b.run(&["run", "image.attestations", &format!("name={}", test_image())]);
    if engine_api.as_str() < "1.56" {
        r.expect_code(2);
        assert!(r.message().contains("needs API >= 1.56"), "{r:#?}");
    }
    run_ok(&b, &["run", "image.build-prune", "all=true"]);

    // The Splunk SOAR image actions.
    let j = run_ok(&b, &["run", "list images", "all=false", "digests=false", r#"filters={"reference":["berth-test/busybox"]}"#]);
    let img = &j["data"][0]["images"][0];
    for k in ["Id", "RepoTags", "Created", "Size"] {
        assert!(img.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(j["summary"]["total_objects"], 1);
    let j = run_ok(&b, &["run", "get image history", &format!("name={}", test_image())]);
    let h = &j["data"][0]["history"][0];
    for k in ["Id", "Tags", "CreatedBy", "Created", "Size", "Comment"] {
        assert!(h.get(k).is_some(), "{k} missing: {j}");
    }
    let gone = format!("berth-test/{}", unique("soarrm"));
    tag(test_image(), &gone, "x");
    let j = run_ok(&b, &["run", "remove image", &format!("name={gone}:x"), "force=false", "noprune=true"]);
    assert_eq!(j["summary"]["total_objects"], 1);
    run_ok(&b, &["run", "delete unused images", r#"filters={"dangling":["true"]}"#]);
    run_ok(&b, &["run", "delete builder cache", "keep_storage=0", "all=true"]);
    let names: Vec<String> =
        b.run(&["actions", "--json"]).json()["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    for op in [
        "image.list",
        "image.inspect",
        "image.history",
        "image.tag",
        "image.remove",
        "image.prune",
        "image.search",
        "image.pull",
        "image.import",
        "image.push",
        "image.build",
        "image.commit",
        "image.get",
        "image.get-all",
        "image.load",
        "image.build-prune",
        "image.distribution-inspect",
        "image.attestations",
        "list images",
        "remove image",
        "delete unused images",
        "get image history",
        "delete builder cache",
    ] {
        assert!(names.iter().any(|n| n == op), "{op} missing");
    }
}
