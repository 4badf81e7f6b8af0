//! The gate decides on the request as the engine will read it. For each class, the attack is
//! first shown working against the engine directly, then its variants are sent through
//! `berth serve` as a label-scoped tenant, and the engine's stored state is inspected to
//! prove that none landed. Ordinary use keeps working, with safe defaults applied.

use berth_test_support as common;

use std::path::PathBuf;

use common::serve::*;
use common::*;
use http::Method;
use serde_json::{json, Value};

fn components() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("container.wasm", wasm("berth-action-container")),
        ("image.wasm", wasm("berth-action-image")),
        ("network.wasm", wasm("berth-action-network")),
        ("test.wasm", hostile_wasm()),
    ]
}

fn inspect(id: &str) -> Value {
    api_json(Method::GET, &format!("/containers/{id}/json"), "")
}

fn remove(id: &str) {
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
}

/// Creates a container through berth as red; returns its id.
fn created(s: &Serve, params: Value) -> String {
    let (st, j) = s.run(RED, "container.create", params);
    assert_eq!(st, 200, "{j}");
    j["summary"]["id"].as_str().unwrap().to_string()
}

/// Creates a container on the engine directly from raw body bytes; returns what it stored.
fn stored_directly(body: &str) -> Value {
    let (st, v) = post_raw("/containers/create", "", body);
    assert_eq!(st, 201, "the engine refused {body}: {v}");
    let id = v["Id"].as_str().unwrap().to_string();
    let stored = inspect(&id);
    remove(&id);
    stored
}

/// Asserts a 403 naming `field`, and that no container named `name` landed on the engine.
fn refused_and_absent(s: &Serve, action: &str, params: Value, field: &str, name: &str) -> String {
    let (st, j) = s.run(RED, action, params.clone());
    let msg = j["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(st, 403, "{action} {params} should be refused: {j}");
    assert!(msg.contains(field), "{action}: the refusal should name '{field}': {msg}");
    let (st, _) = api(Method::GET, &format!("/containers/{name}/json"), "", None);
    assert_eq!(st, 404, "{params}: a container landed on the engine");
    msg
}

#[test]
fn generated_spellings() {
    assert_eq!(variants::folds("Binds"), ["BINDS", "Bind\u{17F}", "binds"]);
    assert!(variants::folds("Links").contains(&"Lin\u{212A}s".to_string()));
    let base = json!({"Image": "x", "HostConfig": {"NetworkMode": "none"}});
    let all = variants::spellings(&base, &["HostConfig", "Privileged"], &json!(true));
    for want in [
        r#"{"HostConfig":{"NetworkMode":"none","privileged":true},"Image":"x"}"#,
        r#"{"HostConfig":{"NetworkMode":"none"},"Image":"x","HostConfig":{"Privileged":true}}"#,
        r#"{"HostConfig":{"NetworkMode":"none","Privileged":null,"Privileged":true},"Image":"x"}"#,
        r#"{"HostConfig":{"NetworkMode":"none"},"Image":"x","hostconfig":{"Privileged":true}}"#,
    ] {
        assert!(all.contains(&want.to_string()), "{want} in {all:#?}");
    }
}

#[test]
fn json_keys_are_read_as_the_engine_reads_them() {
    let s = Serve::start(&components(), &red_tenant_as("red-case", ""));
    let img = test_image();
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();

    // Directly, a lower-case `binds` is the engine's `Binds`: the host's root is mounted.
    let (st, v) = post_raw(
        "/containers/create",
        "",
        &json!({"Image": img, "Cmd": ["cat", "/host/etc/hostname"], "HostConfig": {"NetworkMode": "none", "binds": ["/:/host:ro"]}}).to_string(),
    );
    assert_eq!(st, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    assert_eq!(inspect(&id)["HostConfig"]["Binds"], json!(["/:/host:ro"]), "the engine folded binds into Binds");
    api(Method::POST, &format!("/containers/{id}/start"), "", None);
    api(Method::POST, &format!("/containers/{id}/wait"), "", None);
    let (_, logs) = api(Method::GET, &format!("/containers/{id}/logs"), "stdout=1", None);
    remove(&id);
    assert!(String::from_utf8_lossy(&logs).contains(hostname.trim()), "directly, the container read the host's files");
    // And a long s (or a Kelvin sign) folds too, as Go folds.
    let stored = stored_directly(&json!({"Image": img, "HostConfig": {"NetworkMode": "none", "\u{17F}ecurityOpt": ["seccomp=unconfined"]}}).to_string());
    assert_eq!(stored["HostConfig"]["SecurityOpt"], json!(["seccomp=unconfined"]), "the engine read \u{17F}ecurityOpt as SecurityOpt");

    // Generated spellings of each dangerous field (its folds at every level of its path, its
    // objects and key repeated): directly, the engine stores the dangerous value under each;
    // through berth, each is refused naming the body and no container lands.
    let base = json!({"Image": img, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none", "CgroupnsMode": "private"}});
    let dangerous: [(&[&str], Value, &[&str]); 8] = [
        (&["HostConfig", "Binds"], json!(["/:/host"]), &["HostConfig", "Binds"]),
        (&["HostConfig", "Privileged"], json!(true), &["HostConfig", "Privileged"]),
        (&["HostConfig", "PidMode"], json!("host"), &["HostConfig", "PidMode"]),
        (&["HostConfig", "CapAdd"], json!(["SYS_ADMIN"]), &["HostConfig", "CapAdd"]),
        (&["HostConfig", "SecurityOpt"], json!(["seccomp=unconfined"]), &["HostConfig", "SecurityOpt"]),
        (&["HostConfig", "PidsLimit"], json!(-1), &["HostConfig", "PidsLimit"]),
        (&["HostConfig", "CpuQuota"], json!(-1), &["HostConfig", "CpuQuota"]),
        (&["Labels"], json!({"team": "blue"}), &["Config", "Labels"]),
    ];
    let mut sent = 0;
    for (path, value, stored_at) in &dangerous {
        for raw in variants::spellings(&base, path, value) {
            let (st, v) = post_raw("/containers/create", "", &raw);
            assert_eq!(st, 201, "directly: {raw}: {v}");
            let id = v["Id"].as_str().unwrap().to_string();
            let stored = stored_at.iter().fold(&inspect(&id), |v, k| &v[*k]).clone();
            remove(&id);
            // A negative limit is stored as no limit at all.
            let unlimited = value.as_i64().is_some_and(|v| v < 0) && stored.as_i64().unwrap_or(0) <= 0;
            assert!(&stored == value || unlimited, "directly, the engine stored {raw} as {stored}");
            let name = unique("case");
            let msg = refused_and_absent(
                &s,
                "test.raw",
                json!({"method": "POST", "path": "/containers/create", "query": [["name", name]], "raw_body": raw}),
                "ContainerCreate body:",
                &name,
            );
            assert!(msg.contains("not a field") || msg.contains("repeated"), "{raw}: {msg}");
            sent += 1;
        }
    }
    assert!(sent >= 50, "{sent} variants");
    // Wrong types and keys the schema does not know are refused too.
    let variants = [
        json!({"HostConfig": {"NetworkMode": "none", "Unknown": 1}}),
        json!({"HostConfig": {"NetworkMode": "none", "Memory": "0"}}),
        json!({"HostConfig": {"NetworkMode": "none", "Binds": "/:/host"}}),
        json!({"HostConfig": {"NetworkMode": "none", "Privileged": "true"}}),
        json!({"HostConfig": {"NetworkMode": "none", "PidsLimit": -1.5}}),
        json!({"HostConfig": {"NetworkMode": "none"}, "image": "blue-app:1"}),
    ];
    for body in variants {
        let name = unique("case");
        let msg = refused_and_absent(&s, "container.create", json!({"image": img, "name": name, "body": body}), "ContainerCreate body:", &name);
        assert!(msg.contains("not a field") || msg.contains("must be"), "{body}: {msg}");
    }

    // Repeated objects merge in the engine: directly, the second HostConfig's Privileged wins.
    let repeated = format!(r#"{{"Image":"{img}","HostConfig":{{"NetworkMode":"none"}},"HostConfig":{{"Privileged":true}}}}"#);
    assert_eq!(stored_directly(&repeated)["HostConfig"]["Privileged"], true, "the engine merged the repeated object");
    let name = unique("rep");
    let msg = refused_and_absent(
        &s,
        "test.raw",
        json!({"method": "POST", "path": "/containers/create", "query": [["name", name]], "raw_body": repeated}),
        "HostConfig: the key is repeated",
        &name,
    );
    assert!(msg.starts_with("ContainerCreate body:"), "{msg}");
    for raw in [
        format!(r#"{{"Image":"{img}","Labels":{{"team":"red-case","team":"blue"}}}}"#),
        format!(r#"{{"Image":"{img}","Image":"blue-app:1"}}"#),
        format!(r#"{{"Image":"{img}","HostConfig":{{"NetworkMode":"none","Binds":[],"Binds":["/:/host"]}}}}"#),
    ] {
        let name = unique("rep");
        refused_and_absent(
            &s,
            "test.raw",
            json!({"method": "POST", "path": "/containers/create", "query": [["name", name]], "raw_body": raw}),
            "the key is repeated",
            &name,
        );
    }

    // A volume's driver options bind a host path: generated spellings of DriverOpts land
    // directly, and none through berth.
    let opts = json!({"type": "none", "o": "bind", "device": "/etc"});
    for (i, raw) in variants::spellings(&json!({"Name": "VOL"}), &["DriverOpts"], &opts).into_iter().enumerate() {
        let name = unique(&format!("vol{i}"));
        let raw = raw.replace("VOL", &name);
        let (st, v) = post_raw("/volumes/create", "", &raw);
        assert_eq!(st, 201, "directly: {raw}: {v}");
        let stored = api_json(Method::GET, &format!("/volumes/{name}"), "");
        api(Method::DELETE, &format!("/volumes/{name}"), "", None);
        assert_eq!(stored["Options"], opts, "directly, {raw} is a bind of /etc");
        let (st, j) = s.run(RED, "test.raw", json!({"method": "POST", "path": "/volumes/create", "raw_body": raw}));
        assert_eq!(st, 403, "{raw}: {j}");
        assert!(j["message"].as_str().unwrap().starts_with("VolumeCreate body:"), "{j}");
        assert_eq!(api(Method::GET, &format!("/volumes/{name}"), "", None).0, 404, "{raw} landed");
    }

    // Exec, network connect and volume bodies go through the same reading.
    let mine = created(&s, json!({"image": img, "cmd": ["sleep", "60"]}));
    let (st, j) =
        s.run(RED, "test.raw", json!({"method": "POST", "path": format!("/containers/{mine}/exec"), "raw_body": r#"{"Cmd":["id"],"privileged":true}"#}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("privileged: not a field; the engine would read it as Privileged"), "{j}");
    let (st, j) = s.run(
        RED,
        "test.raw",
        json!({"method": "POST", "path": "/networks/none/connect", "raw_body": format!(r#"{{"Container":"{mine}","container":"other"}}"#)}),
    );
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("the engine would read it as Container"), "{j}");
    remove(&mine);
}

#[test]
fn resource_caps_hold_as_the_engine_applies_them() {
    let s = Serve::start(&components(), &red_tenant_as("red-caps", ""));
    let img = test_image();
    // Directly, CpuQuota -1 beside NanoCpus leaves no CPU cap: the engine keeps both.
    let stored = stored_directly(&json!({"Image": img, "HostConfig": {"NetworkMode": "none", "NanoCpus": 1_000_000_000i64, "CpuQuota": -1}}).to_string());
    assert_eq!(stored["HostConfig"]["CpuQuota"], -1, "{}", stored["HostConfig"]);
    let stored = stored_directly(
        &json!({"Image": img, "HostConfig": {"NetworkMode": "none", "OomScoreAdj": -1000, "CpuShares": 262144, "BlkioWeight": 1000}}).to_string(),
    );
    assert_eq!((stored["HostConfig"]["OomScoreAdj"].clone(), stored["HostConfig"]["CpuShares"].clone()), (json!(-1000), json!(262144)));

    for (hc, field) in [
        (json!({"CpuQuota": -1}), "CpuQuota"),
        (json!({"NanoCpus": 500_000_000, "CpuQuota": -1}), "CpuQuota"),
        (json!({"CpuPeriod": -1}), "CpuPeriod"),
        (json!({"CpuPeriod": 1_000_000}), "CpuPeriod"),
        (json!({"CpuQuota": 400_000, "CpuPeriod": 100_000}), "CpuQuota"),
        (json!({"CpuShares": 262144}), "CpuShares"),
        (json!({"CpuRealtimeRuntime": 950000}), "CpuRealtimeRuntime"),
        (json!({"OomScoreAdj": -1000}), "OomScoreAdj"),
        (json!({"OomScoreAdj": -1}), "OomScoreAdj"),
        (json!({"BlkioWeight": 1000}), "BlkioWeight"),
        (json!({"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}]}), "BlkioDeviceReadBps"),
        (json!({"MemoryReservation": 8i64 << 30}), "MemoryReservation"),
        (json!({"MemoryReservation": -1}), "MemoryReservation"),
        (json!({"ShmSize": 8i64 << 30}), "ShmSize"),
        (json!({"KernelMemory": 8i64 << 30}), "KernelMemory"),
        (json!({"Ulimits": [{"Name": "rtprio", "Soft": 99, "Hard": 99}]}), "Ulimits"),
        (json!({"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": -1}]}), "Ulimits"),
        (json!({"StorageOpt": {"size": "100G"}}), "StorageOpt"),
        (json!({"OomKillDisable": true}), "OomKillDisable"),
    ] {
        let mut hc = hc;
        hc["NetworkMode"] = json!("none");
        let name = unique("cap");
        refused_and_absent(&s, "container.create", json!({"image": img, "name": name, "body": {"HostConfig": hc}}), &format!("HostConfig.{field}"), &name);
    }
    // Values meaning "unlimited" are replaced by the caps, as the engine then stores them.
    for hc in [json!({"Memory": -1, "MemorySwap": -1, "PidsLimit": -1, "NanoCpus": -5}), json!({"Memory": 0, "PidsLimit": 0, "NanoCpus": 0}), json!({})] {
        let id = created(&s, json!({"image": img, "body": {"HostConfig": hc}}));
        let got = inspect(&id)["HostConfig"].clone();
        remove(&id);
        assert_eq!((got["Memory"].clone(), got["MemorySwap"].clone()), (json!(512i64 << 20), json!(1024i64 << 20)), "{hc}");
        assert_eq!((got["PidsLimit"].clone(), got["NanoCpus"].clone(), got["CpuQuota"].clone()), (json!(512), json!(1_000_000_000i64), json!(0)), "{hc}");
    }
    // Within the caps, CPU by quota works.
    let (st, j) = s.run(
        RED,
        "container.create",
        json!({"image": img, "body": {"HostConfig": {"CpuQuota": 50_000, "CpuPeriod": 100_000, "CpuShares": 512, "OomScoreAdj": 500}}}),
    );
    assert_eq!(st, 200, "{j}");
    remove(j["summary"]["id"].as_str().unwrap());
}

#[test]
fn plain_creates_get_the_safe_defaults_applied() {
    let s = Serve::start(&components(), &red_tenant_as("red-plain", ""));
    let img = test_image();
    // No network named: `none` is applied, and the result says so.
    let (st, j) = s.run(RED, "container.create", json!({"image": img, "cmd": ["true"]}));
    assert_eq!(st, 200, "{j}");
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    assert!(j["summary"]["policy_applied"].to_string().contains("HostConfig.NetworkMode: none"), "{j}");
    let stored = inspect(&id);
    remove(&id);
    assert_eq!(stored["HostConfig"]["NetworkMode"], "none");
    assert_eq!(stored["Config"]["Labels"]["team"], "red-plain");
    // container.run, and the SOAR alias, in the same plain form.
    let (st, j) = s.run(RED, "container.run", json!({"image": img, "cmd": ["echo", "hello"]}));
    assert_eq!(st, 200, "{j}");
    assert!(j.to_string().contains("hello"), "{j}");
    // Asking for the shared bridge is still refused.
    let name = unique("bridge");
    refused_and_absent(&s, "container.create", json!({"image": img, "name": name, "network_mode": "bridge"}), "default bridge", &name);
}

#[test]
fn changes_are_read_as_one_dockerfile() {
    let s = Serve::start(&components(), &red_tenant_as("red-changes", ""));
    let img = test_image();
    let mine = created(&s, json!({"image": img, "cmd": ["true"]}));
    // Directly, a trailing backslash joins the next change to it: the LABEL after it is lost
    // (read as part of the ENV).
    let direct = unique("swallowed");
    let q = format!("container={mine}&repo={direct}&tag=1&changes={}&changes={}", urlenc("ENV y=\\"), urlenc("LABEL marker=1"));
    let (st, b) = api(Method::POST, "/commit", &q, None);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
    let cfg = api_json(Method::GET, &format!("/images/{direct}:1/json"), "")["Config"].clone();
    api(Method::DELETE, &format!("/images/{direct}:1"), "force=1", None);
    assert!(cfg["Labels"]["marker"].is_null(), "directly, the label was swallowed: {cfg}");
    assert!(cfg["Env"].to_string().contains("y=LABEL"), "{cfg}");

    for changes in [
        json!(["ENV x=1 \\"]),
        json!(["ENV x=1 \\  "]),
        json!(["# escape=`", "ENV x=1 `"]),
        json!(["LABEL \\", "team=blue"]),
        json!(["ONBUILD LABEL team=blue"]),
        json!(["CMD [\"sh\"]", "ENV a=1 \\"]),
    ] {
        let repo = unique("red-commit");
        let (st, j) = s.run(RED, "image.commit", json!({"container": mine, "repo": repo, "tag": "1", "changes": changes}));
        assert_eq!(st, 403, "{changes}: {j}");
        assert!(j["message"].as_str().unwrap().starts_with("changes:"), "{j}");
        let (st, _) = api(Method::GET, &format!("/images/{repo}:1/json"), "", None);
        assert_eq!(st, 404, "{changes}: an image landed");
    }
    // Ordinary changes work, and the image carries the tenant's label.
    let repo = unique("red-commit");
    let (st, j) = s.run(RED, "image.commit", json!({"container": mine, "repo": repo, "tag": "1", "changes": ["ENV a=1", "CMD [\"sh\"]"]}));
    assert_eq!(st, 200, "{j}");
    let cfg = api_json(Method::GET, &format!("/images/{repo}:1/json"), "")["Config"].clone();
    api(Method::DELETE, &format!("/images/{repo}:1"), "force=1", None);
    assert_eq!(cfg["Labels"]["team"], "red-changes");
    assert!(cfg["Env"].to_string().contains("a=1"), "{cfg}");
    remove(&mine);
}

#[test]
fn image_references_are_normalised_as_the_engine_does() {
    let s = Serve::start(&components(), &red_tenant_as("red-refs", ""));
    let img = test_image();
    // Directly, a full spelling names the same image as the base image's short one.
    let full = format!("docker.io/{img}");
    let (st, _) = api(Method::GET, &format!("/images/{}/json", full.replace('/', "%2F")), "", None);
    assert_eq!(st, 200, "the engine normalises {full} to {img}");
    // A tenant may not tag over the base image under any spelling.
    let mine = created(&s, json!({"image": img, "cmd": ["true"]}));
    let (name, tag) = img.rsplit_once(':').unwrap();
    for repo in [format!("docker.io/{name}"), format!("index.docker.io/{name}"), name.to_string()] {
        let (st, j) = s.run(RED, "image.commit", json!({"container": mine, "repo": repo, "tag": "evil"}));
        assert_eq!(st, 403, "{repo}: {j}");
        assert!(j["message"].as_str().unwrap().contains("base image name"), "{repo}: {j}");
    }
    let _ = tag;
    assert_eq!(api(Method::GET, &format!("/images/{name}:evil/json"), "", None).0, 404);
    // A reference the engine would read otherwise is refused (tagging the tenant's own image).
    let own = unique("red-own");
    let (st, j) = s.run(RED, "image.commit", json!({"container": mine, "repo": own, "tag": "1"}));
    assert_eq!(st, 200, "{j}");
    for (repo, tag) in [("x:v9:v8", ""), ("UPPER", "1"), ("a//b", "")] {
        let (st, j) = s.run(RED, "test.raw", json!({"method": "POST", "path": format!("/images/{own}:1/tag"), "query": [["repo", repo], ["tag", tag]]}));
        assert!(st == 403 || st == 400 || st == 422, "{repo}: {j}");
        assert!(j["message"].as_str().unwrap_or("").contains("not a valid image reference"), "{repo}: {j}");
    }
    api(Method::DELETE, &format!("/images/{own}:1"), "force=1", None);
    // Digests are checked as the digest, and the base image by digest is usable.
    let digest_ref = api_json(Method::GET, &format!("/images/{img}/json"), "")["Id"].as_str().unwrap().to_string();
    let (st, j) = s.run(RED, "container.create", json!({"image": digest_ref, "cmd": ["true"]}));
    assert_eq!(st, 403, "an image id is not an allowlisted name: {j}");
    remove(&mine);
}

#[test]
fn host_paths_are_exact_and_checked_again_at_start() {
    let s = Serve::start(&components(), &red_tenant_as("red-paths", ""));
    let img = test_image();
    let data = s.path().join("red-data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("hello"), "red data").unwrap();
    // Only the listed path itself may be bound, not a path below it.
    let name = unique("below");
    refused_and_absent(
        &s,
        "container.create",
        json!({"image": img, "name": name, "binds": [format!("{}/sub:/d", data.display())]}),
        "only a listed path itself",
        &name,
    );
    // The listed path, bound and started.
    let bind = format!("{}:/d:ro", data.display());
    let id = created(&s, json!({"image": img, "cmd": ["cat", "/d/hostname"], "binds": [bind]}));
    // Between create and start, the directory becomes a symlink to /etc: directly, the
    // engine follows it at start.
    let moved = s.path().join("red-data.real");
    std::fs::rename(&data, &moved).unwrap();
    std::os::unix::fs::symlink("/etc", &data).unwrap();
    let direct =
        run_direct(json!({"Image": img, "Cmd": ["cat", "/d/hostname"], "HostConfig": {"NetworkMode": "none", "Binds": [format!("{}:/d:ro", data.display())]}}));
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert_eq!(direct.trim(), hostname.trim(), "directly, the swapped path mounts the host's /etc");
    let (st, j) = s.run(RED, "container.start", json!({"id": id}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("through a symlink"), "{j}");
    assert_eq!(inspect(&id)["State"]["Running"], false);
    assert!(inspect(&id)["State"]["StartedAt"].as_str().unwrap_or("").starts_with("0001"), "it never started");
    std::fs::remove_file(&data).unwrap();
    std::fs::rename(&moved, &data).unwrap();
    remove(&id);
}

#[test]
fn network_names_cannot_be_taken_twice() {
    let s = Serve::start(&components(), &red_tenant_as("red-nets", ""));
    let name = unique("shared-name");
    // Directly, the engine lets a second network take the name.
    let (st, a) = post_raw("/networks/create", "", &json!({"Name": name, "Internal": true, "Labels": {"team": "blue"}}).to_string());
    assert_eq!(st, 201, "{a}");
    let (st, b) = post_raw("/networks/create", "", &json!({"Name": name, "Internal": true, "CheckDuplicate": false}).to_string());
    let second = (st == 201).then(|| b["Id"].as_str().unwrap().to_string());
    if let Some(id) = &second {
        api(Method::DELETE, &format!("/networks/{id}"), "", None);
    }
    let (st, j) = s.run(RED, "network.create", json!({"name": name, "internal": true}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("already exists"), "{j}");
    api(Method::DELETE, &format!("/networks/{}", a["Id"].as_str().unwrap()), "", None);
    assert!(second.is_some(), "directly, the engine took the name twice: {b}");
}

#[test]
fn one_tenant_cannot_hold_every_engine_connection() {
    const BLUE: &str = "blue-token";
    let blue = format!(
        "\n[[tenant]]\nname = \"blue\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"*\"]\nlabel_scope = \"team=blue-share\"\nartifacts_dir = \"{{dir}}/blue\"\n",
        hash(BLUE)
    );
    let mut comps = components();
    comps.push(("system.wasm", system_wasm()));
    // Four connections to the engine in all: two for each of the two tenants.
    let s = Serve::start_with(&comps, "engine_max_connections = 4\nengine_max_wait_secs = 1", &format!("{}{blue}", red_tenant_as("red-share", "")));
    // Red opens as many long streams as the engine's whole cap: without shares, they would
    // hold every connection and blue's calls would fail after the wait.
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let (st, j) = http(&s.addr, "POST", "/v1/actions/system.events?async=true", Some(RED), Some(r#"{"max_duration": 20}"#));
        assert!(st == 202 || st == 200, "{j}");
        jobs.push(j["id"].as_str().unwrap_or_default().to_string());
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Red's third and fourth streams wait for its own share and fail; blue's calls go through.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..3 {
        let (st, j) = s.run(BLUE, "system.ping", json!({}));
        assert_eq!(st, 200, "blue is not starved by red's streams: {j}");
    }
    let (st, j) = s.run(RED, "system.ping", json!({}));
    assert!(st == 403 || st == 429, "red's own share is held by its streams: {j}");
    assert_eq!(j["error"]["kind"], "limit", "{j}");
    assert!(j["message"].as_str().unwrap_or("").contains("share of the engine's connections"), "{j}");
    for id in jobs.iter().filter(|i| !i.is_empty()) {
        http(&s.addr, "DELETE", &format!("/v1/jobs/{id}"), Some(RED), None);
    }
}

#[test]
fn per_tenant_quotas_hold() {
    let s = Serve::start(&components(), &red_tenant_as("red-quota", "max_containers = 2\nmax_networks = 1"));
    let img = test_image();
    let mut made = Vec::new();
    for _ in 0..2 {
        let (st, j) = s.run(RED, "container.create", json!({"image": img, "cmd": ["true"]}));
        assert_eq!(st, 200, "{j}");
        made.push(j["summary"]["id"].as_str().unwrap().to_string());
    }
    let name = unique("over");
    let (st, j) = s.run(RED, "container.create", json!({"image": img, "name": name, "cmd": ["true"]}));
    assert_eq!((st, j["error"]["kind"].as_str()), (403, Some("limit")), "{j}");
    assert!(j["message"].as_str().unwrap().contains("engine_policy.max_containers"), "{j}");
    assert_eq!(api(Method::GET, &format!("/containers/{name}/json"), "", None).0, 404);
    // Removing one makes room again.
    remove(&made.pop().unwrap());
    let (st, j) = s.run(RED, "container.create", json!({"image": img, "cmd": ["true"]}));
    assert_eq!(st, 200, "{j}");
    made.push(j["summary"]["id"].as_str().unwrap().to_string());
    let (st, j) = s.run(RED, "network.create", json!({"name": unique("q1"), "internal": true}));
    assert_eq!(st, 200, "{j}");
    let net = j["summary"]["id"].as_str().unwrap().to_string();
    let (st, j) = s.run(RED, "network.create", json!({"name": unique("q2"), "internal": true}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("max_networks"), "{j}");
    api(Method::DELETE, &format!("/networks/{net}"), "", None);
    for id in made {
        remove(&id);
    }
}

/// A container in the tenant's scope that breaks its policy (made on the engine directly,
/// as an administrator or an older policy might have): an update through berth passes the
/// gate, and the check of what the engine then holds removes it and refuses.
#[test]
fn updates_are_verified_on_what_the_engine_stored() {
    let s = Serve::start(&components(), &red_tenant_as("red-after", ""));
    let img = test_image();
    // Control: a container made through berth updates fine.
    let id = created(&s, json!({"image": img, "cmd": ["true"]}));
    let (st, j) = s.run(RED, "container.update", json!({"id": id, "memory": 64 << 20}));
    assert_eq!(st, 200, "{j}");
    remove(&id);
    for (host_config, field) in [
        (json!({"Privileged": true}), "Privileged"),
        (json!({"CapAdd": ["SYS_ADMIN"]}), "CapAdd"),
        (json!({"PidMode": "host"}), "PidMode"),
        (json!({"Binds": ["/etc:/h:ro"]}), "Binds"),
    ] {
        let mut hc = host_config.clone();
        hc["NetworkMode"] = json!("none");
        hc["CgroupnsMode"] = json!("private");
        let id = create_direct(json!({"Image": img, "Cmd": ["true"], "Labels": {"team": "red-after"}, "HostConfig": hc}));
        // Directly, the engine holds and updates it as it is.
        let (st, v) = post_json(&format!("/containers/{id}/update"), "", json!({"CpuShares": 512}));
        assert_eq!(st, 200, "{v}");
        let stored = inspect(&id);
        assert!(field == "Binds" || stored["HostConfig"][field] != json!(null), "{stored}");
        let (st, j) = s.run(RED, "container.update", json!({"id": id, "cpu_shares": 512}));
        let msg = j["message"].as_str().unwrap_or_default();
        assert_eq!(st, 403, "{host_config}: {j}");
        assert!(msg.contains(&format!("HostConfig.{field} as stored by the engine")) && msg.contains("removed: container"), "{host_config}: {msg}");
        assert_eq!(api(Method::GET, &format!("/containers/{id}/json"), "", None).0, 404, "{host_config}: the container was removed");
    }
}

/// Two tenants race to create one network name: whatever the interleaving, the engine
/// ends up with at most one network of that name, and it is the one a call reported made.
#[test]
fn racing_network_creates_leave_one_network() {
    const BLUE: &str = "blue-token";
    let blue = format!(
        "\n[[tenant]]\nname = \"blue\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"*\"]\nlabel_scope = \"team=blue-race\"\nartifacts_dir = \"{{dir}}/blue\"\n",
        hash(BLUE)
    );
    let s = std::sync::Arc::new(Serve::start(&components(), &format!("{}{blue}", red_tenant_as("red-race", ""))));
    for round in 0..3 {
        let name = unique(&format!("race{round}"));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (s, name) = (s.clone(), name.clone());
                std::thread::spawn(move || {
                    let token = if i % 2 == 0 { RED } else { BLUE };
                    s.run(token, "network.create", json!({"name": name, "internal": true}))
                })
            })
            .collect();
        let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let made: Vec<String> = results.iter().filter(|(st, _)| *st == 200).map(|(_, j)| j["summary"]["id"].as_str().unwrap().to_string()).collect();
        for (st, j) in &results {
            // Refused by the gate (403) or by the engine's own check of the name (409).
            assert!(*st == 200 || j["status"] == "failed", "{j}");
        }
        let filters = urlenc(&json!({"name": [name]}).to_string());
        let on_engine: Vec<String> = api_json(Method::GET, "/networks", &format!("filters={filters}"))
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["Name"] == json!(name))
            .map(|n| n["Id"].as_str().unwrap().to_string())
            .collect();
        for id in &on_engine {
            api(Method::DELETE, &format!("/networks/{id}"), "", None);
        }
        assert!(on_engine.len() <= 1, "round {round}: {} networks named {name}", on_engine.len());
        assert_eq!(made, on_engine, "round {round}: the network on the engine is the one reported made");
    }
}

/// Services on a swarm: a scoped tenant's tasks are counted over all its services (a global
/// service counts one per node); a rollback restores the spec the engine holds as previous,
/// so that spec is checked; what the engine stores after each create is verified.
#[test]
fn services_are_checked_before_and_after_the_engine() {
    let dir = PathBuf::from(format!("/tmp/berth-gate-swarm-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let host = engines.start(dir, &[]);
    build_test_image(&host);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (st, b) =
        api_at(&host, Method::POST, "/swarm/init", "", Some(("application/json", json!({"ListenAddr": addr, "AdvertiseAddr": addr}).to_string().into_bytes())));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let direct = |method: Method, path: &str, query: &str, body: Option<Value>| -> (u16, Value) {
        let (st, b) = api_at(&host, method, path, query, body.map(|v| ("application/json", v.to_string().into_bytes())));
        (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
    };
    let comps = vec![("service.wasm", wasm("berth-action-service")), ("secret.wasm", wasm("berth-action-secret")), ("test.wasm", hostile_wasm())];
    let tenant = red_tenant_as("red-svc", "max_replicas = 4\nregistries = [\"docker.io\"]").replace("{engine}", &host);
    let s = Serve::start(&comps, &tenant);
    let img = test_image();
    let create = |name: &str, extra: Value| {
        let mut p = json!({"name": name, "image": img, "command": ["sleep", "300"]});
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s.run(RED, "service.create", p)
    };
    let (st, j) = create("a", json!({"replicas": 2}));
    assert_eq!(st, 200, "{j}");
    let (_, a) = direct(Method::GET, "/services/a", "", None);
    assert_eq!(a["Spec"]["Labels"]["team"], "red-svc", "{a}");
    assert!(a["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"].as_i64().unwrap_or(0) > 0, "{a}");
    // Directly, the engine takes any number of tasks.
    let spec = |name: &str, mode: Value| json!({"Name": name, "Mode": mode, "Labels": {"team": "red-svc"}, "TaskTemplate": {"ContainerSpec": {"Image": img, "Command": ["sleep", "300"], "Labels": {"team": "red-svc"}}}});
    let (st, v) = direct(Method::POST, "/services/create", "", Some(spec("direct", json!({"Replicated": {"Replicas": 3}}))));
    assert_eq!(st, 201, "{v}");
    direct(Method::DELETE, "/services/direct", "", None);
    let (st, j) = create("b", json!({"replicas": 3}));
    assert_eq!((st, j["error"]["kind"].as_str()), (403, Some("limit")), "{j}");
    assert!(j["message"].as_str().unwrap().contains("5 tasks"), "{j}");
    assert_eq!(direct(Method::GET, "/services/b", "", None).0, 404);
    let (st, j) = create("g", json!({"mode": "global"}));
    assert_eq!(st, 200, "one node: a global service is one task: {j}");
    let (st, j) = s.run(RED, "service.scale", json!({"id": "a", "replicas": 3}));
    assert_eq!(st, 200, "{j}");
    let (st, j) = s.run(RED, "service.scale", json!({"id": "a", "replicas": 4}));
    assert_eq!(st, 403, "{j}");
    // A rollback: the engine restores its PreviousSpec, not the body sent.
    let mut unsafe_spec = spec("legacy", json!({"Replicated": {"Replicas": 0}}));
    unsafe_spec["TaskTemplate"]["ContainerSpec"]["Mounts"] = json!([{"Type": "bind", "Source": "/etc", "Target": "/h"}]);
    let (st, v) = direct(Method::POST, "/services/create", "", Some(unsafe_spec));
    assert_eq!(st, 201, "{v}");
    let (_, cur) = direct(Method::GET, "/services/legacy", "", None);
    let mut safe = cur["Spec"].clone();
    safe["TaskTemplate"]["ContainerSpec"]["Mounts"] = json!([]);
    let version = cur["Version"]["Index"].as_u64().unwrap().to_string();
    let (st, v) = direct(Method::POST, "/services/legacy/update", &format!("version={version}"), Some(safe));
    assert_eq!(st, 200, "{v}");
    let (st, j) = s.run(RED, "service.rollback", json!({"id": "legacy"}));
    let msg = j["message"].as_str().unwrap_or_default();
    assert_eq!(st, 403, "{j}");
    assert!(msg.contains("rollback: the previous spec") && msg.contains("Mounts"), "{msg}");
    let (_, held) = direct(Method::GET, "/services/legacy", "", None);
    assert!(held["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"].is_null(), "{held}");
    // Directly, the same rollback brings the bind mount of /etc back.
    let version = held["Version"]["Index"].as_u64().unwrap().to_string();
    let (st, v) = direct(Method::POST, "/services/legacy/update", &format!("version={version}&rollback=previous"), Some(held["Spec"].clone()));
    assert_eq!(st, 200, "{v}");
    let (_, after) = direct(Method::GET, "/services/legacy", "", None);
    assert_eq!(after["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"], "/etc", "{after}");
    // Generated spellings of a bind mount in a service spec: directly each lands; through
    // berth none does.
    let base = spec("spelled", json!({"Replicated": {"Replicas": 0}}));
    let mount = json!([{"Type": "bind", "Source": "/etc", "Target": "/h"}]);
    for raw in variants::spellings(&base, &["TaskTemplate", "ContainerSpec", "Mounts"], &mount) {
        let (st, v) = api_at(&host, Method::POST, "/services/create", "", Some(("application/json", raw.clone().into_bytes())));
        assert_eq!(st, 201, "directly: {raw}: {}", String::from_utf8_lossy(&v));
        let (_, stored) = direct(Method::GET, "/services/spelled", "", None);
        direct(Method::DELETE, "/services/spelled", "", None);
        assert_eq!(stored["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"], "/etc", "directly: {raw}: {stored}");
        let (st, j) = s.run(RED, "test.raw", json!({"method": "POST", "path": "/services/create", "raw_body": raw}));
        assert_eq!(st, 403, "{raw}: {j}");
        assert!(j["message"].as_str().unwrap().starts_with("ServiceCreate body:"), "{j}");
        assert_eq!(direct(Method::GET, "/services/spelled", "", None).0, 404, "{raw} landed");
    }
    // Secrets: made with the label, verified as stored.
    let (st, j) = s.run(RED, "secret.create", json!({"name": "pw", "data": "hunter2"}));
    assert_eq!(st, 200, "{j}");
    let (_, sec) = direct(Method::GET, "/secrets/pw", "", None);
    assert_eq!(sec["Spec"]["Labels"]["team"], "red-svc", "{sec}");
    drop(s);
    direct(Method::POST, "/swarm/leave", "force=1", None);
}

/// Images an import or a build made for a scoped tenant are inspected once the engine has
/// them: each name the request pointed and each id its answer named carries the label.
#[test]
fn imported_and_built_images_are_verified_as_stored() {
    let s = Serve::start(&components(), &red_tenant_as("red-img", "build = true"));
    let inputs = s.path().join("red");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    busybox_rootfs(&mut tar, "");
    std::fs::write(inputs.join("rootfs.tar"), tar.into_inner().unwrap()).unwrap();
    let repo = unique("red-imported");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/image.import?in=rootfs.tar", Some(RED), Some(&json!({"repo": repo, "tag": "1"}).to_string()));
    assert_eq!(st, 200, "{j}");
    let img = api_json(Method::GET, &format!("/images/{repo}:1/json"), "");
    assert_eq!(img["Config"]["Labels"]["team"], "red-img", "{img}");
    let ctx = tar_of(&[("Dockerfile", format!("FROM {}\nLABEL team=blue\n", test_image()).as_bytes(), 0o644)]);
    std::fs::write(inputs.join("ctx.tar"), ctx).unwrap();
    let built = unique("red-built");
    let (st, j) =
        http(&s.addr, "POST", "/v1/actions/image.build?in=ctx.tar", Some(RED), Some(&json!({"tags": format!("{built}:1"), "networkmode": "none"}).to_string()));
    assert_eq!(st, 200, "{j}");
    let img = api_json(Method::GET, &format!("/images/{built}:1/json"), "");
    assert_eq!(img["Config"]["Labels"]["team"], "red-img", "the build's labels override the Dockerfile's: {img}");
    let calls = s
        .audit()
        .into_iter()
        .filter(|r| r["action"] == "image.build")
        .flat_map(|r| r["engine_calls"].as_array().cloned().unwrap_or_default())
        .collect::<Vec<_>>();
    assert!(
        calls.iter().any(|c| c["path"].as_str().is_some_and(|p| p.starts_with("/images/sha256:"))),
        "the built image's id was inspected after the build: {calls:?}"
    );
    for r in [format!("{repo}:1"), format!("{built}:1")] {
        api(Method::DELETE, &format!("/images/{r}"), "force=1", None);
    }
}
