//! Tenant isolation against the real engine: for each attack class, the attack is first shown
//! to work against the engine directly (so no test passes vacuously), then `berth serve`
//! refuses it with a reason naming the field. Legitimate use keeps working.

use berth_test_support as common;

use std::path::PathBuf;

use common::serve::*;
use common::*;
use http::Method;
use serde_json::{json, Value};

fn components() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("system.wasm", system_wasm()),
        ("container.wasm", wasm("berth-action-container")),
        ("image.wasm", wasm("berth-action-image")),
        ("network.wasm", wasm("berth-action-network")),
        ("volume.wasm", wasm("berth-action-volume")),
        ("test.wasm", hostile_wasm()),
    ]
}

/// Red is label-scoped with the default engine policy, the test image as its base image and
/// one host directory of its own.
fn red_tenant(extra_policy: &str) -> String {
    red_tenant_as("red", extra_policy)
}

/// Objects of another tenant ("blue"), made directly on the engine.
struct Blue {
    container: String,
    volume: String,
    network: String,
    image: String,
    cleanup: Vec<(Method, String)>,
}

impl Drop for Blue {
    fn drop(&mut self) {
        for (m, p) in self.cleanup.iter().rev() {
            api(m.clone(), p, "force=1", None);
        }
    }
}

fn blue() -> Blue {
    let img = test_image();
    let mut cleanup = Vec::new();
    let volume = unique("blue-vol");
    let (st, _) = post_json("/volumes/create", "", json!({"Name": volume, "Labels": {"team": "blue"}}));
    assert_eq!(st, 201);
    cleanup.push((Method::DELETE, format!("/volumes/{volume}")));
    let out = run_direct(
        json!({"Image": img, "Cmd": ["sh", "-c", "echo blue-secret > /data/secret && cat /data/secret"], "HostConfig": {"NetworkMode": "none", "Binds": [format!("{volume}:/data")]}}),
    );
    assert_eq!(out.trim(), "blue-secret");
    let network = unique("blue-net");
    let (st, v) = post_json("/networks/create", "", json!({"Name": network, "Internal": true, "Labels": {"team": "blue"}}));
    assert_eq!(st, 201, "{v}");
    cleanup.push((Method::DELETE, format!("/networks/{network}")));
    let container = create_direct(
        json!({"Image": img, "Cmd": ["sleep", "600"], "Env": ["BLUE_SECRET=s3cret"], "Labels": {"team": "blue"}, "HostConfig": {"NetworkMode": network, "Binds": [format!("{volume}:/data")]}}),
    );
    cleanup.push((Method::DELETE, format!("/containers/{container}")));
    api(Method::POST, &format!("/containers/{container}/start"), "", None);
    let image = format!("{}:1", unique("blue-app"));
    build_image(&image, "team=blue", &mut cleanup);
    Blue { container, volume, network, image, cleanup }
}

/// Builds `FROM` the test image with a label; the tag is removed at cleanup. Without the
/// build cache: tests running side by side build the same Dockerfile, and a cached build
/// would tag the image another test is deleting at its cleanup (the engine then fails with
/// "failed to get digest ... no such file or directory").
fn build_image(tag: &str, label: &str, cleanup: &mut Vec<(Method, String)>) {
    let dockerfile = format!("FROM {}\nLABEL {label}\n", test_image());
    let ctx = tar_of(&[("Dockerfile", dockerfile.as_bytes(), 0o644)]);
    let q = format!("t={}&networkmode=none&rm=1&nocache=1", urlenc(tag));
    let (st, body) = api(Method::POST, "/build", &q, Some(("application/x-tar", ctx)));
    assert!(st == 200 && !String::from_utf8_lossy(&body).contains("\"error\""), "build {tag}: {}", String::from_utf8_lossy(&body));
    cleanup.push((Method::DELETE, format!("/images/{}", tag.replace('/', "%2F"))));
}

fn image_id(name: &str) -> Option<String> {
    let (st, b) = api(Method::GET, &format!("/images/{}/json", name.replace('/', "%2F")), "", None);
    (st == 200).then(|| serde_json::from_slice::<Value>(&b).unwrap()["Id"].as_str().unwrap().to_string())
}

/// Asserts berth refused with 403 and a message naming `field`.
fn refused(s: &Serve, action: &str, params: Value, field: &str) -> String {
    let (st, j) = s.run(RED, action, params.clone());
    let msg = j["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(st, 403, "{action} {params} should be refused: {j}");
    assert!(msg.contains(field), "{action}: the refusal should name '{field}': {msg}");
    msg
}

fn base(hc: Value) -> Value {
    json!({"Image": test_image(), "Cmd": ["sh", "-c", "true"], "HostConfig": hc})
}

#[test]
fn scoped_tenants_cannot_reach_the_host() {
    let s = Serve::start(&components(), &red_tenant(""));
    std::fs::create_dir_all(s.path().join("red-data")).unwrap();
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();

    // Binds of the host's root: directly, the container reads host files.
    let out = run_direct(base(json!({"NetworkMode": "none", "Binds": ["/:/host:ro"]})).tap_cmd("cat /host/etc/hostname"));
    assert_eq!(out.trim(), hostname.trim(), "the attack works against the engine directly");
    refused(&s, "container.create", json!({"body": base(json!({"NetworkMode": "none", "Binds": ["/:/host"]}))}), "HostConfig.Binds");
    refused(&s, "container.create", json!({"image": test_image(), "network_mode": "none", "binds": ["/etc:/x"]}), "HostConfig.Binds");

    // A bind Mount of /etc.
    let out = run_direct(
        base(json!({"NetworkMode": "none", "Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x", "ReadOnly": true}]})).tap_cmd("cat /x/hostname"),
    );
    assert_eq!(out.trim(), hostname.trim());
    refused(
        &s,
        "container.create",
        json!({"body": base(json!({"NetworkMode": "none", "Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}))}),
        "HostConfig.Mounts",
    );

    // The engine's own socket, even where host paths above it are allowed.
    let sock_dir = docker_host().trim_start_matches("unix://").rsplit_once('/').unwrap().0.to_string();
    let out = run_direct(base(json!({"NetworkMode": "none", "Binds": [format!("{sock_dir}:/e")]})).tap_cmd("test -S /e/docker.sock && echo socket"));
    assert_eq!(out.trim(), "socket", "directly, the engine's socket is reachable from inside");
    let wide = Serve::start(&components(), &red_tenant("").replace("host_paths = [\"{dir}/red-data\"]", "host_paths = [\"/\"]"));
    let msg =
        refused(&wide, "container.create", json!({"body": base(json!({"NetworkMode": "none", "Binds": [format!("{sock_dir}:/e")]}))}), "HostConfig.Binds");
    assert!(msg.contains("socket"), "{msg}");

    // A local volume that binds a host directory.
    let vol = unique("bindvol");
    let (st, _) = post_json("/volumes/create", "", json!({"Name": vol, "Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}));
    assert_eq!(st, 201);
    let out = run_direct(base(json!({"NetworkMode": "none", "Binds": [format!("{vol}:/v:ro")]})).tap_cmd("cat /v/hostname"));
    api(Method::DELETE, &format!("/volumes/{vol}"), "", None);
    assert_eq!(out.trim(), hostname.trim(), "directly, the volume exposes /etc");
    refused(
        &s,
        "volume.create",
        json!({"name": unique("bindvol"), "driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": "/etc"}}),
        "Options",
    );
    refused(
        &s,
        "container.create",
        json!({"body": base(json!({"NetworkMode": "none", "Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}))}),
        "DriverConfig",
    );

    // Host namespaces, privileges and devices: each accepted by the engine directly.
    for (hc, field, check) in [
        (json!({"PidMode": "host", "NetworkMode": "none"}), "HostConfig.PidMode", "PidMode"),
        (json!({"NetworkMode": "host"}), "HostConfig.NetworkMode", "NetworkMode"),
        (json!({"IpcMode": "host", "NetworkMode": "none"}), "HostConfig.IpcMode", "IpcMode"),
        (json!({"UTSMode": "host", "NetworkMode": "none"}), "HostConfig.UTSMode", "UTSMode"),
        (json!({"UsernsMode": "host", "NetworkMode": "none"}), "HostConfig.UsernsMode", "UsernsMode"),
        (json!({"CapAdd": ["SYS_ADMIN"], "NetworkMode": "none"}), "HostConfig.CapAdd", "CapAdd"),
        (json!({"SecurityOpt": ["seccomp=unconfined"], "NetworkMode": "none"}), "HostConfig.SecurityOpt", "SecurityOpt"),
        (json!({"Privileged": true, "NetworkMode": "none"}), "HostConfig.Privileged", "Privileged"),
        (
            json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/hostnull", "CgroupPermissions": "rwm"}], "NetworkMode": "none"}),
            "HostConfig.Devices",
            "Devices",
        ),
        (json!({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "none"}), "HostConfig.Sysctls", "Sysctls"),
        (json!({"CgroupParent": "/evil", "NetworkMode": "none"}), "HostConfig.CgroupParent", "CgroupParent"),
        (json!({"MaskedPaths": [], "NetworkMode": "none"}), "HostConfig.MaskedPaths", "MaskedPaths"),
    ] {
        let id = create_direct(base(hc.clone()));
        let got = api_json(Method::GET, &format!("/containers/{id}/json"), "")["HostConfig"][check].clone();
        api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
        assert!(!got.is_null() && got != json!(false) && got != json!(""), "the engine took {hc}: {got}");
        refused(&s, "container.create", json!({"body": base(hc)}), field);
    }
    // PidMode host, for real: the host's pid 1 is visible.
    let out = run_direct(base(json!({"PidMode": "host", "NetworkMode": "none"})).tap_cmd("cat /proc/1/comm"));
    assert_ne!(out.trim(), "sh", "directly, pid 1 is the host's init: {out}");

    // Exec with privileges.
    let (st, j) = s.run(RED, "container.create", json!({"image": test_image(), "cmd": ["sleep", "300"], "network_mode": "none"}));
    assert_eq!(st, 200, "{j}");
    let mine = j["summary"]["id"].as_str().unwrap().to_string();
    let (st, j) = s.run(RED, "container.start", json!({"id": mine}));
    assert_eq!(st, 200, "{j}");
    let (st, v) = post_json(&format!("/containers/{mine}/exec"), "", json!({"Cmd": ["true"], "Privileged": true}));
    let state = api_json(Method::GET, &format!("/containers/{mine}/json"), "")["State"].clone();
    assert_eq!(st, 201, "directly, a privileged exec is accepted: {v} (state {state})");
    refused(&s, "container.exec", json!({"id": mine, "cmd": ["id"], "privileged": true}), "Privileged");

    // Forced defaults: memory, pids, CPUs, no-new-privileges and log size.
    let hc = &api_json(Method::GET, &format!("/containers/{mine}/json"), "")["HostConfig"];
    assert_eq!(hc["Memory"], json!(512i64 << 20), "{hc}");
    assert_eq!(hc["PidsLimit"], json!(512));
    assert_eq!(hc["NanoCpus"], json!(1_000_000_000i64));
    assert!(hc["SecurityOpt"].to_string().contains("no-new-privileges"), "{hc}");
    assert_eq!(hc["LogConfig"]["Config"]["max-size"], "10m");
    // Updates are capped too.
    let (st, j) = s.run(RED, "container.update", json!({"id": mine, "memory": 4i64 << 30}));
    assert_eq!(st, 200, "{j}");
    assert_eq!(api_json(Method::GET, &format!("/containers/{mine}/json"), "")["HostConfig"]["Memory"], json!(512i64 << 20));

    // An allowed host path works.
    std::fs::write(s.path().join("red-data/hello"), "red data").unwrap();
    let (st, j) = s.run(RED, "container.run", json!({"image": test_image(), "cmd": ["cat", "/d/hello"], "body": {"HostConfig": {"NetworkMode": "none", "Binds": [format!("{}/red-data:/d:ro", s.path().display())]}}}));
    assert_eq!(st, 200, "{j}");
    assert!(j.to_string().contains("red data"), "{j}");
    api(Method::DELETE, &format!("/containers/{mine}"), "force=1", None);
}

trait TapCmd {
    fn tap_cmd(self, cmd: &str) -> Value;
}

impl TapCmd for Value {
    fn tap_cmd(mut self, cmd: &str) -> Value {
        self["Cmd"] = json!(["sh", "-c", cmd]);
        self
    }
}

#[test]
fn scoped_tenants_cannot_reach_each_other_by_reference() {
    let b = blue();
    let s = Serve::start(&components(), &red_tenant_as("red-ref", ""));

    // PidMode container:<theirs> reads their environment through /proc/1.
    let out = run_direct(
        base(json!({"NetworkMode": "none", "PidMode": format!("container:{}", b.container)})).tap_cmd("cat /proc/1/environ | tr '\\0' '\\n' | grep BLUE"),
    );
    assert_eq!(out.trim(), "BLUE_SECRET=s3cret", "directly, their env leaks");
    refused(
        &s,
        "container.create",
        json!({"body": base(json!({"NetworkMode": "none", "PidMode": format!("container:{}", b.container)}))}),
        "HostConfig.PidMode",
    );
    let id = create_direct(base(json!({"NetworkMode": format!("container:{}", b.container)})));
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
    refused(&s, "container.create", json!({"body": base(json!({"NetworkMode": format!("container:{}", b.container)}))}), "HostConfig.NetworkMode");

    // VolumesFrom their container, and Binds of their named volume.
    let out = run_direct(base(json!({"NetworkMode": "none", "VolumesFrom": [b.container.clone()]})).tap_cmd("cat /data/secret"));
    assert_eq!(out.trim(), "blue-secret");
    refused(&s, "container.create", json!({"body": base(json!({"NetworkMode": "none", "VolumesFrom": [b.container.clone()]}))}), "HostConfig.VolumesFrom");
    let out = run_direct(base(json!({"NetworkMode": "none", "Binds": [format!("{}:/d", b.volume)]})).tap_cmd("cat /d/secret"));
    assert_eq!(out.trim(), "blue-secret");
    let msg =
        refused(&s, "container.create", json!({"image": test_image(), "network_mode": "none", "binds": [format!("{}:/d", b.volume)]}), "HostConfig.Binds");
    assert!(msg.contains("outside this tenant's scope"), "{msg}");
    refused(
        &s,
        "container.create",
        json!({"body": base(json!({"NetworkMode": "none", "Mounts": [{"Type": "volume", "Source": b.volume, "Target": "/d"}]}))}),
        "HostConfig.Mounts",
    );

    // Running their image.
    let out = run_direct(json!({"Image": b.image, "Cmd": ["echo", "ran their image"], "HostConfig": {"NetworkMode": "none"}}));
    assert_eq!(out.trim(), "ran their image");
    let msg = refused(&s, "container.create", json!({"image": b.image, "network_mode": "none"}), "Image");
    assert!(msg.contains("another tenant"), "{msg}");
    // Joining their network at create time.
    refused(&s, "container.create", json!({"body": base(json!({"NetworkMode": b.network}))}), "HostConfig.NetworkMode");

    // Tagging its own image over their name: directly, their next run executes red's code.
    let mut cleanup = Vec::new();
    let red_img = format!("{}:1", unique("red-app"));
    build_image(&red_img, "team=red-ref", &mut cleanup);
    let victim = format!("{}:1", unique("blue-victim"));
    api(Method::POST, &format!("/images/{}/tag", b.image), &format!("repo={}&tag=1", victim.trim_end_matches(":1")), None);
    cleanup.push((Method::DELETE, format!("/images/{victim}")));
    let (st, _) = api(Method::POST, &format!("/images/{red_img}/tag"), &format!("repo={}&tag=1", victim.trim_end_matches(":1")), None);
    assert_eq!(st, 201);
    assert_eq!(image_id(&victim), image_id(&red_img), "directly, their name now runs red's image");
    let before = image_id(&b.image);
    let repo = b.image.trim_end_matches(":1").to_string();
    let msg = refused(&s, "image.tag", json!({"name": red_img, "repo": repo, "tag": "1"}), "repo");
    assert!(msg.contains("outside this tenant's scope"), "{msg}");
    refused(&s, "image.tag", json!({"name": red_img, "repo": b.image}), "repo");
    assert_eq!(image_id(&b.image), before, "their image is untouched");
    // Tagging its own image under a fresh name works.
    let fresh = unique("red-fresh");
    let (st, j) = s.run(RED, "image.tag", json!({"name": red_img, "repo": fresh, "tag": "2"}));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/images/{fresh}:2")));

    // Commit with a LABEL of their scope value.
    let (st, j) = s.run(RED, "container.create", json!({"image": test_image(), "cmd": ["sleep", "300"], "network_mode": "none"}));
    assert_eq!(st, 200, "{j}");
    let mine = j["summary"]["id"].as_str().unwrap().to_string();
    let stolen = unique("stolen");
    let (st, v) = api(Method::POST, "/commit", &format!("container={mine}&repo={stolen}&changes=LABEL%20team%3Dblue"), None);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    assert_eq!(api_json(Method::GET, &format!("/images/{stolen}/json"), "")["Config"]["Labels"]["team"], "blue", "directly, a commit can claim their label");
    api(Method::DELETE, &format!("/images/{stolen}"), "force=1", None);
    refused(&s, "image.commit", json!({"container": mine, "repo": unique("snap"), "changes": "LABEL team=blue"}), "changes");
    let snap = unique("snap");
    let (st, j) = s.run(RED, "image.commit", json!({"container": mine, "repo": snap, "changes": ["ENV A=1"]}));
    assert_eq!(st, 200, "{j}");
    assert_eq!(api_json(Method::GET, &format!("/images/{snap}/json"), "")["Config"]["Labels"]["team"], "red-ref", "commits get the tenant's label");
    cleanup.push((Method::DELETE, format!("/images/{snap}")));
    refused(&s, "image.commit", json!({"container": b.container, "repo": unique("snap")}), "container");

    // network.connect of their container to red's own network.
    let net = unique("red-net");
    let (st, j) = s.run(RED, "network.create", json!({"name": net, "internal": true}));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/networks/{net}")));
    let (st, _) = post_json(&format!("/networks/{net}/connect"), "", json!({"Container": b.container}));
    assert_eq!(st, 200, "directly, their container joins red's network");
    post_json(&format!("/networks/{net}/disconnect"), "", json!({"Container": b.container, "Force": true}));
    refused(&s, "network.connect", json!({"id": net, "container": b.container}), "Container");
    refused(&s, "network.connect", json!({"id": b.network, "container": mine}), "outside this tenant's scope");
    // Red's own objects connect fine.
    let net2 = unique("red-net2");
    let (st, j) = s.run(RED, "network.create", json!({"name": net2, "internal": true}));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/networks/{net2}")));
    let (st, j) = s.run(RED, "container.create", json!({"image": test_image(), "cmd": ["sleep", "300"], "network_mode": net}));
    assert_eq!(st, 200, "{j}");
    let on_net = j["summary"]["id"].as_str().unwrap().to_string();
    cleanup.push((Method::DELETE, format!("/containers/{on_net}")));
    let (st, j) = s.run(RED, "network.connect", json!({"id": net2, "container": on_net}));
    assert_eq!(st, 200, "{j}");

    // Legitimate use: a container on its own network with its own volume and a base image.
    let vol = unique("red-vol");
    let (st, j) = s.run(RED, "volume.create", json!({"name": vol}));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/volumes/{vol}")));
    assert_eq!(api_json(Method::GET, &format!("/volumes/{vol}"), "")["Labels"]["team"], "red-ref");
    let (st, j) = s.run(RED, "container.run", json!({"image": test_image(), "cmd": ["sh", "-c", "echo ok > /v/f && cat /v/f"], "body": {"HostConfig": {"NetworkMode": net, "Binds": [format!("{vol}:/v")]}}}));
    assert_eq!(st, 200, "{j}");
    assert!(j.to_string().contains("ok"), "{j}");
    let (st, j) = s.run(RED, "volume.create", json!({"name": unique("tmpfs"), "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}));
    assert_eq!(st, 200, "a tmpfs volume is allowed: {j}");
    api(Method::DELETE, &format!("/volumes/{}", j["summary"]["name"].as_str().or(j["data"][0]["Name"].as_str()).unwrap_or("")), "", None);

    // Lists and prunes see only red's objects; blue's stopped containers survive a prune.
    let stopped_blue = create_direct(json!({"Image": test_image(), "Cmd": ["true"], "Labels": {"team": "blue"}, "HostConfig": {"NetworkMode": "none"}}));
    let (st, j) = s.run(RED, "container.prune", json!({}));
    assert_eq!(st, 200, "{j}");
    assert_eq!(api(Method::GET, &format!("/containers/{stopped_blue}/json"), "", None).0, 200, "blue's container survived red's prune");
    api(Method::DELETE, &format!("/containers/{stopped_blue}"), "force=1", None);
    api(Method::DELETE, &format!("/containers/{mine}"), "force=1", None);
    for (m, p) in cleanup.iter().rev() {
        api(m.clone(), p, "force=1", None);
    }
}

#[test]
fn dropped_in_components_cannot_smuggle_requests() {
    let b = blue();
    let s = Serve::start(&components(), &red_tenant(""));
    let mut cleanup = Vec::new();

    // A second `filters` pair: the engine reads the first, so blue's objects show.
    let blue_filter = json!({"label": ["team=blue"]}).to_string();
    let (st, v) =
        api(Method::GET, "/containers/json", &format!("all=1&filters={}&filters={}", urlenc(&blue_filter), urlenc(r#"{"label":["team=red"]}"#)), None);
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&v).contains(&b.container), "directly, the first filters pair wins");
    let msg = refused(
        &s,
        "test.raw",
        json!({"path": "/containers/json", "query": [["filters", blue_filter], ["filters", r#"{"label":["team=red"]}"#], ["all", "1"]]}),
        "filters",
    );
    assert!(msg.contains("repeated"), "{msg}");
    let (st, j) = s.run(RED, "test.raw", json!({"path": "/containers/json", "query": [["all", "1"], ["filters", blue_filter]]}));
    // One pair is merged (AND) with the scope: red asking for blue's label sees nothing.
    assert_eq!(st, 200, "{j}");
    assert!(!j.to_string().contains(&b.container), "{j}");
    let msg = refused(&s, "test.raw", json!({"method": "POST", "path": "/containers/prune", "query": [["filters", "{}"], ["filters", "{}"]]}), "repeated");
    assert!(msg.contains("filters"), "{msg}");

    // An unencoded slash: red owns an image named "reg:5000"; blue owns "reg:5000/<x>/app".
    let red_reg = format!("{}:5000", unique("reg"));
    build_image(&red_reg, "team=red", &mut cleanup);
    let theirs = format!("{red_reg}/{}/app", unique("their"));
    api(Method::POST, &format!("/images/{}/tag", b.image), &format!("repo={}&tag=latest", urlenc(&theirs)), None);
    cleanup.push((Method::DELETE, format!("/images/{}", urlenc(&format!("{theirs}:latest")))));
    let stolen = unique("stolen-by-path");
    let (st, _) = api(Method::POST, &format!("/images/{theirs}/tag"), &format!("repo={stolen}"), None);
    assert_eq!(st, 201, "directly, the engine routes the whole path to blue's image");
    assert_eq!(image_id(&format!("{stolen}:latest")), image_id(&b.image));
    api(Method::DELETE, &format!("/images/{stolen}:latest"), "", None);
    let msg = refused(
        &s,
        "test.raw",
        json!({"method": "POST", "path": format!("/images/{theirs}/tag"), "query": [["repo", unique("stolen")]]}),
        "outside this tenant's scope",
    );
    assert!(msg.contains(&theirs), "the gate checked the object the engine acts on: {msg}");
    refused(&s, "test.raw", json!({"path": format!("/images/{theirs}/json")}), "belongs to another tenant");
    // Base images from the allowlist may be read; they carry no tenant's label.
    let (st, j) = s.run(RED, "image.inspect", json!({"name": test_image()}));
    assert_eq!(st, 200, "{j}");
    // A path that matches no Engine API route.
    refused(&s, "test.raw", json!({"path": "/containers/nothing/here/at/all/xyz"}), "not an Engine API route");
    // Endpoints a scoped tenant may not use at all.
    refused(&s, "test.raw", json!({"path": "/system/df"}), "not available to a label-scoped tenant");
    refused(&s, "test.raw", json!({"method": "POST", "path": "/images/load"}), "load");

    // The policy's own inspections count against the budget and show in the audit.
    let audit = s.audit();
    let rec = audit
        .iter()
        .find(|r| {
            r["action"] == "test.raw"
                && r["engine_calls"].as_array().is_some_and(|c| {
                    c.iter().any(|c| c["method"] == "GET" && c["status"] == 200 && c["path"].as_str().unwrap().contains(&urlenc(&theirs).replace("%3A", ":")))
                })
        })
        .unwrap_or_else(|| panic!("the inspection of {theirs} is not audited: {audit:?}"));
    assert!(rec["engine_calls"].as_array().unwrap().iter().any(|c| c["refused"].as_str().is_some_and(|r| r.contains("outside"))), "{rec}");
    for (m, p) in cleanup.iter().rev() {
        api(m.clone(), p, "force=1", None);
    }
}

#[test]
fn credentials_go_only_to_the_registry_the_request_goes_to() {
    test_image();
    // Registry B requires alice; the credentials file holds her password under registry A's name.
    let reg_b = Registry::start(Some(("alice", "s3cret")));
    let reg_a = "127.0.0.1:1";
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    std::fs::write(&creds, json!({"registries": {reg_a: {"username": "alice", "password": "s3cret"}}}).to_string()).unwrap();
    let auth = |user: &str, pass: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE.encode(json!({"username": user, "password": pass, "serveraddress": reg_b.addr}).to_string())
    };
    // Put an image in B directly.
    let name = format!("{}/creds-test", reg_b.addr);
    api(Method::POST, &format!("/images/{}/tag", TEST_IMAGE.replace('/', "%2F")), &format!("repo={}&tag=1", urlenc(&name)), None);
    let push = |header: &str| {
        let h = [("X-Registry-Auth".to_string(), header.to_string())];
        let (_, b) = api_with(&docker_host(), Method::POST, &format!("/images/{}/push", urlenc(&name)), "tag=1", &h, None);
        String::from_utf8_lossy(&b).into_owned()
    };
    let out = push(&auth("alice", "s3cret"));
    assert!(!out.contains("errorDetail"), "{out}");
    // Directly: the credentials an attacker names (A's) authenticate it to B.
    let (st, _) = api(Method::DELETE, &format!("/images/{}", urlenc(&format!("{name}:1"))), "", None);
    assert_eq!(st, 200);
    let h = [("X-Registry-Auth".to_string(), auth("alice", "s3cret"))];
    let (_, b) = api_with(&docker_host(), Method::POST, "/images/create", &format!("fromImage={}&tag=1", urlenc(&name)), &h, None);
    let pulled = String::from_utf8_lossy(&b).into_owned();
    assert!(!pulled.contains("errorDetail"), "directly, A's credentials open B: {pulled}");

    let tenants = format!(
        r#"
[[tenant]]
name = "red"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
[tenant.engine_policy]
registries = ["{reg_a}", "{}"]
images = ["*"]

[[tenant]]
name = "green"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
label_scope = "team=green"
"#,
        hash(RED),
        reg_b.addr,
        hash("green-token")
    );
    let s = Serve::start_with(&components(), &format!("credentials = \"{}\"", creds.display()), &tenants);
    // A component naming registry A on a pull from B is refused before anything is sent.
    let msg = refused(
        &s,
        "test.raw",
        json!({"method": "POST", "path": "/images/create", "query": [["fromImage", name], ["tag", "1"]], "registry": reg_a}),
        "registry",
    );
    assert!(msg.contains(&format!("goes to {}", reg_b.addr)), "{msg}");
    let a = s.audit();
    let last = a.iter().rev().find(|r| r["action"] == "test.raw").unwrap();
    assert_eq!(last["engine_calls"][0]["status"], 0, "nothing reached the engine: {last}");
    // The stock pull names B and gets B's credentials only: the host holds none for B.
    let (st, j) = s.run(RED, "image.pull", json!({"image": format!("{name}:1")}));
    assert_ne!(st, 200, "no credentials for B are held, so B refuses: {j}");
    assert!(!j.to_string().contains("s3cret"), "{j}");
    // A registry outside the tenant's list is refused, whatever credentials exist.
    let (st, j) = s.run("green-token", "image.pull", json!({"image": format!("{name}:1")}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("not in this tenant's registries"), "{j}");
    api(Method::DELETE, &format!("/images/{}", urlenc(&format!("{name}:1"))), "force=1", None);
}

#[test]
fn flooding_tenants_get_429_and_async_jobs_are_bounded() {
    let tenants = format!(
        r#"
[[tenant]]
name = "flood"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["test.*"]
artifacts_dir = "{{dir}}/flood"
[tenant.limits]
cpu_secs = 30
timeout_secs = 30
concurrency = 1
max_queued = 1
max_jobs = 2
max_job_results = 2
artifact_bytes = 1000
"#,
        hash("flood-token")
    );
    let s = Serve::start(&components(), &tenants);
    let spin = |_| http(&s.addr, "POST", "/v1/actions/test.spin?async=true", Some("flood-token"), Some("{}"));
    let (a, _) = spin(0);
    let (b, _) = spin(1);
    let (c, j) = spin(2);
    assert_eq!((a, b), (202, 202));
    assert_eq!(c, 429, "a third async job is refused: {j}");
    assert!(j["message"].as_str().unwrap_or_default().contains("max_jobs") || j["message"].as_str().unwrap_or_default().contains("queued"), "{j}");
    // A sync request while one runs and one waits: over concurrency + max_queued.
    let (st, j) = s.run("flood-token", "test.print", json!({}));
    assert_eq!(st, 429, "{j}");
    // Artifacts over the per-invocation cap are refused and leave nothing.
    test_image();
    let s2 = Serve::start(&components(), &tenants);
    let (st, j) = http(&s2.addr, "POST", "/v1/actions/test.save?out=img.tar", Some("flood-token"), Some(&json!({"name": TEST_IMAGE}).to_string()));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("artifact byte limit"), "{j}");
    assert!(!s2.path().join("flood/img.tar").exists());
    assert_eq!(std::fs::read_dir(s2.path().join("flood")).unwrap().count(), 0, "no partial file is left");

    // The per-tenant quota bounds artifacts the same way.
    let quota = tenants.replace("artifact_bytes = 1000", "artifact_quota_bytes = 1000");
    let s3 = Serve::start(&components(), &quota);
    std::fs::write(s3.path().join("flood/old.bin"), vec![0u8; 900]).unwrap();
    let (st, j) = http(&s3.addr, "POST", "/v1/actions/test.save?out=img.tar", Some("flood-token"), Some(&json!({"name": TEST_IMAGE}).to_string()));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("artifact byte limit of 100 "), "what is left of the quota: {j}");

    // Results nobody fetched are bounded: the oldest finished job goes first.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (st, j) = http(&s3.addr, "POST", "/v1/actions/test.print?async=true", Some("flood-token"), Some("{}"));
        assert_eq!(st, 202, "{j}");
        let id = j["job"].as_str().unwrap().to_string();
        let started = std::time::Instant::now();
        while http(&s3.addr, "GET", &format!("/v1/jobs/{id}"), Some("flood-token"), None).1["status"] != "done" {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        ids.push(id);
    }
    assert_eq!(http(&s3.addr, "GET", &format!("/v1/jobs/{}", ids[0]), Some("flood-token"), None).0, 404, "the oldest result was evicted");
    assert_eq!(http(&s3.addr, "GET", &format!("/v1/jobs/{}", ids[2]), Some("flood-token"), None).0, 200);
}

#[test]
fn the_cli_runs_the_same_gate_under_a_policy_file() {
    let b = Berth::with(&[("container.wasm", wasm("berth-action-container"))]);
    let body = base(json!({"NetworkMode": "none", "Binds": ["/:/host"]})).to_string();
    // Without a policy the CLI is the operator's own docker: the bind goes through.
    let r = b.run(&["run", "container.create", &format!("body={body}")]);
    let id = r.ok()["summary"]["id"].as_str().unwrap().to_string();
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
    // Under the policy of a scoped tenant it is refused, with the field named.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "allow = [\"container.*\", \"!container.remove\"]\nlabel_scope = \"team=cli\"\n[engine_policy]\nimages = [\"berth-test/busybox:*\"]\n",
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let r = b.run(&["--policy", p, "run", "container.create", &format!("body={body}")]);
    r.expect_code(3);
    assert!(r.message().contains("HostConfig.Binds"), "{r:#?}");
    let r = b.run(&["--policy", p, "run", "container.remove", "id=x"]);
    r.expect_code(3);
    assert!(r.message().contains("may not run container.remove"), "{r:#?}");
    // Legitimate use under the policy works and carries the label.
    let r = b.run(&["--policy", p, "run", "container.create", &format!("image={}", test_image()), "network_mode=none"]);
    let id = r.ok()["summary"]["id"].as_str().unwrap().to_string();
    assert_eq!(api_json(Method::GET, &format!("/containers/{id}/json"), "")["Config"]["Labels"]["team"], "cli");
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
    // A bad policy file names the key.
    std::fs::write(&policy, "[engine_policy]\nprivilegd = true\n").unwrap();
    let r = b.run(&["--policy", p, "run", "container.list"]);
    r.expect_code(2);
    assert!(r.stderr.contains("privilegd"), "{r:#?}");
}

#[test]
fn built_imported_and_committed_images_carry_the_tenant_label() {
    let b = blue();
    let s = Serve::start(&components(), &red_tenant("build = true"));
    let arts = s.path().join("red");
    let mut cleanup = Vec::new();

    // Directly, a Dockerfile LABEL claims another tenant's scope value.
    let claim = format!("FROM {}\nLABEL team=blue\n", test_image());
    let direct = format!("{}:1", unique("claim"));
    build_image(&direct, "team=blue", &mut cleanup);
    assert_eq!(api_json(Method::GET, &format!("/images/{direct}/json"), "")["Config"]["Labels"]["team"], "blue");
    // Through berth, the scope label is forced over the Dockerfile's.
    std::fs::write(arts.join("claim.tar"), tar_of(&[("Dockerfile", claim.as_bytes(), 0o644)])).unwrap();
    let built = format!("{}:1", unique("red-built"));
    let (st, j) = http(&s.addr, "POST", "/v1/actions/image.build?in=claim.tar", Some(RED), Some(&json!({"tags": [built], "networkmode": "none"}).to_string()));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/images/{built}")));
    assert_eq!(api_json(Method::GET, &format!("/images/{built}/json"), "")["Config"]["Labels"]["team"], "red");
    // A build may not tag over their image, nor start from it as a cache source.
    let (st, j) =
        http(&s.addr, "POST", "/v1/actions/image.build?in=claim.tar", Some(RED), Some(&json!({"tags": [b.image], "networkmode": "none"}).to_string()));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().starts_with("t:"), "{j}");
    let (st, j) = http(
        &s.addr,
        "POST",
        "/v1/actions/image.build?in=claim.tar",
        Some(RED),
        Some(&json!({"tags": [unique("x")], "cachefrom": [b.image], "networkmode": "none"}).to_string()),
    );
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().starts_with("cachefrom"), "{j}");
    // A build on the host's network namespace is refused.
    let (st, j) =
        http(&s.addr, "POST", "/v1/actions/image.build?in=claim.tar", Some(RED), Some(&json!({"tags": [unique("x")], "networkmode": "host"}).to_string()));
    assert_eq!(st, 403, "{j}");

    // Import: directly, `changes` can claim their label; through berth it is refused, and a
    // plain import gets red's label.
    let rootfs = tar_of(&[("hello.txt", b"hi", 0o644)]);
    let imp = unique("claim-import");
    let (st, _) = api(
        Method::POST,
        "/images/create",
        &format!("fromSrc=-&repo={imp}&tag=1&changes={}", urlenc("LABEL team=blue")),
        Some(("application/x-tar", rootfs.clone())),
    );
    assert_eq!(st, 200);
    cleanup.push((Method::DELETE, format!("/images/{imp}:1")));
    assert_eq!(api_json(Method::GET, &format!("/images/{imp}:1/json"), "")["Config"]["Labels"]["team"], "blue");
    std::fs::write(arts.join("rootfs.tar"), &rootfs).unwrap();
    let (st, j) = http(
        &s.addr,
        "POST",
        "/v1/actions/image.import?in=rootfs.tar",
        Some(RED),
        Some(&json!({"repo": unique("red-imp"), "tag": "1", "changes": ["LABEL team=blue"]}).to_string()),
    );
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().starts_with("changes"), "{j}");
    let red_imp = unique("red-imp");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/image.import?in=rootfs.tar", Some(RED), Some(&json!({"repo": red_imp, "tag": "1"}).to_string()));
    assert_eq!(st, 200, "{j}");
    cleanup.push((Method::DELETE, format!("/images/{red_imp}:1")));
    assert_eq!(api_json(Method::GET, &format!("/images/{red_imp}:1/json"), "")["Config"]["Labels"]["team"], "red");

    // The audit keeps each engine call's query, and no environment value.
    let (st, j) =
        s.run(RED, "container.create", json!({"image": test_image(), "network_mode": "none", "env": ["API_TOKEN=hunter2"], "name": unique("audited")}));
    assert_eq!(st, 200, "{j}");
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
    let audit = std::fs::read_to_string(s.path().join("audit.jsonl")).unwrap();
    assert!(!audit.contains("hunter2"), "an environment value reached the audit");
    assert!(audit.contains("API_TOKEN=<redacted>"), "{audit}");
    assert!(audit.contains("\"query\":\"name="), "calls are audited with their query");
    for (m, p) in cleanup.iter().rev() {
        api(m.clone(), p, "force=1", None);
    }
}
