//! The `network` and `volume` families against the isolated real engine.

use berth_test_support as common;

use std::time::Duration;

use common::*;
use http::Method;
use serde_json::Value;

fn berth() -> Berth {
    Berth::with(&[
        ("network.wasm", wasm("berth-action-network")),
        ("volume.wasm", wasm("berth-action-volume")),
        ("container.wasm", wasm("berth-action-container")),
    ])
}

fn run_ok(b: &Berth, args: &[&str]) -> Value {
    b.run_within(Duration::from_secs(120), args).ok().clone()
}

fn sleeper(b: &Berth, extra: &[&str]) -> String {
    let image = format!("image={}", test_image());
    let mut args = vec!["run", "container.create", image.as_str(), r#"cmd=["sleep","300"]"#, "network_mode=none"];
    args.extend_from_slice(extra);
    let id = run_ok(b, &args)["summary"]["id"].as_str().unwrap().to_string();
    run_ok(b, &["run", "container.start", &format!("id={id}")]);
    id
}

#[test]
fn networks_create_inspect_connect_disconnect_remove_prune() {
    let b = berth();
    let name = unique("net");
    let label = unique("netlabel");
    let j = run_ok(
        &b,
        &[
            "run",
            "network.create",
            &format!("name={name}"),
            "subnet=172.30.0.0/24",
            "gateway=172.30.0.1",
            "internal=true",
            &format!("labels={{\"berth.test\":\"{label}\"}}"),
        ],
    );
    let net_id = j["summary"]["id"].as_str().unwrap().to_string();
    let i = run_ok(&b, &["run", "network.inspect", &format!("id={name}"), "verbose=false"]);
    assert_eq!(i["data"][0]["IPAM"]["Config"][0]["Subnet"], "172.30.0.0/24");
    assert_eq!(i["data"][0]["IPAM"]["Config"][0]["Gateway"], "172.30.0.1");
    assert_eq!(i["data"][0]["Internal"], true);
    assert_eq!(i["data"][0]["Labels"]["berth.test"], label.as_str());

    // Filters in list.
    let l = run_ok(&b, &["run", "network.list", &format!("filters={{\"label\":[\"berth.test={label}\"]}}")]);
    assert_eq!(l["summary"]["total_objects"], 1);
    assert_eq!(l["data"][0]["Id"], net_id.as_str());

    // Connect a running container with an alias and a static IP, seen through container inspect.
    let c = {
        let image = format!("image={}", test_image());
        let id = run_ok(&b, &["run", "container.create", image.as_str(), r#"cmd=["sleep","300"]"#])["summary"]["id"].as_str().unwrap().to_string();
        run_ok(&b, &["run", "container.start", &format!("id={id}")]);
        id
    };
    run_ok(&b, &["run", "network.connect", &format!("id={name}"), &format!("container={c}"), r#"aliases=["db","primary"]"#, "ipv4_address=172.30.0.50"]);
    let ci = api_json(Method::GET, &format!("/containers/{c}/json"), "");
    let ep = &ci["NetworkSettings"]["Networks"][&name];
    assert_eq!(ep["IPAddress"], "172.30.0.50", "{ep}");
    assert!(ep["Aliases"].as_array().unwrap().iter().any(|a| a == "db"), "{ep}");
    assert_eq!(run_ok(&b, &["run", "network.inspect", &format!("id={name}")])["summary"]["containers"], 1);

    // Removing it while in use fails with the engine's words.
    let r = b.run(&["run", "network.remove", &format!("id={name}")]);
    r.expect_code(1);
    assert!(r.message().contains("active endpoints"), "{r:#?}");
    let status = r.json()["error"]["status"].as_u64().unwrap();
    assert!(status == 409 || status == 403, "{r:#?}");

    // An overlapping subnet is refused, one clear line.
    let r = b.run(&["run", "network.create", &format!("name={}", unique("overlap")), "subnet=172.30.0.128/25"]);
    r.expect_code(1);
    assert!(r.message().to_lowercase().contains("overlap"), "{r:#?}");
    let status = r.json()["error"]["status"].as_u64().unwrap();
    assert!(status == 400 || status == 403, "{r:#?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");

    run_ok(&b, &["run", "network.disconnect", &format!("id={name}"), &format!("container={c}"), "force=false"]);
    let ci = api_json(Method::GET, &format!("/containers/{c}/json"), "");
    assert!(ci["NetworkSettings"]["Networks"].get(&name).is_none(), "still connected: {ci}");

    // Prune removes unused networks and leaves used ones alone.
    let used = unique("used");
    run_ok(&b, &["run", "network.create", &format!("name={used}"), &format!("labels={{\"berth.test\":\"{label}\"}}")]);
    run_ok(&b, &["run", "network.connect", &format!("id={used}"), &format!("container={c}")]);
    let p = run_ok(&b, &["run", "network.prune", &format!("filters={{\"label\":[\"berth.test={label}\"]}}")]);
    let deleted: Vec<&str> = p["data"][0]["NetworksDeleted"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(deleted, vec![name.as_str()], "{p}");
    assert_eq!(api(Method::GET, &format!("/networks/{used}"), "", None).0, 200);
    assert_eq!(api(Method::GET, &format!("/networks/{name}"), "", None).0, 404);

    let r = b.run(&["run", "network.inspect", "id=no-such-network-berth"]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 404);
    b.run(&["run", "network.create", "name=x", "gateway=10.0.0.1"]).expect_code(2);

    run_ok(&b, &["run", "network.disconnect", &format!("id={used}"), &format!("container={c}"), "force=true"]);
    run_ok(&b, &["run", "network.remove", &format!("id={used}")]);
    api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
}

#[test]
fn volumes_create_mount_persist_remove_prune() {
    let b = berth();
    let name = unique("vol");
    let label = unique("vollabel");
    let j = run_ok(&b, &["run", "volume.create", &format!("name={name}"), &format!("labels={{\"berth.test\":\"{label}\"}}")]);
    assert_eq!(j["summary"]["name"], name.as_str());
    let i = run_ok(&b, &["run", "volume.inspect", &format!("name={name}")]);
    assert_eq!(i["data"][0]["Labels"]["berth.test"], label.as_str());
    assert_eq!(i["data"][0]["Driver"], "local");

    // Data written by one container persists into the next.
    let image = format!("image={}", test_image());
    let binds = format!("binds=[\"{name}:/data\"]");
    let w = run_ok(&b, &["run", "container.run", &image, &binds, r#"cmd=["sh","-c","echo persisted > /data/file"]"#, "network_mode=none"]);
    assert_eq!(w["summary"]["exit_code"], 0);
    let r = run_ok(&b, &["run", "container.run", &image, &binds, "cmd=cat /data/file", "network_mode=none"]);
    assert_eq!(r["data"][0]["stdout"], "persisted\n");

    // Filters in list.
    let l = run_ok(&b, &["run", "volume.list", &format!("filters={{\"label\":[\"berth.test={label}\"]}}")]);
    assert_eq!(l["summary"]["total_objects"], 1);
    assert_eq!(l["data"][0]["Name"], name.as_str());

    // In use: 409 with the engine's words.
    let c = sleeper(&b, &[&binds]);
    let rm = b.run(&["run", "volume.remove", &format!("name={name}")]);
    rm.expect_code(1);
    assert_eq!(rm.json()["error"]["status"], 409, "{rm:#?}");
    assert!(rm.message().contains("volume is in use"), "{rm:#?}");

    // Prune removes the unused one and keeps the used one.
    let unused = unique("unused");
    run_ok(&b, &["run", "volume.create", &format!("name={unused}"), &format!("labels={{\"berth.test\":\"{label}\"}}")]);
    let p = run_ok(&b, &["run", "volume.prune", &format!("filters={{\"label\":[\"berth.test={label}\"]}}"), "all=true"]);
    let deleted: Vec<&str> = p["data"][0]["VolumesDeleted"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(deleted, vec![unused.as_str()], "{p}");
    assert_eq!(api(Method::GET, &format!("/volumes/{name}"), "", None).0, 200);

    // update needs a cluster volume: a clear error on this engine.
    let u = b.run(&["run", "volume.update", &format!("name={name}"), "version=1", "spec={}"]);
    assert_ne!(u.code, 0);
    assert!(
        u.message().contains("needs API >= 1.42") || u.message().to_lowercase().contains("cluster") || u.message().to_lowercase().contains("swarm"),
        "{u:#?}"
    );

    api(Method::DELETE, &format!("/containers/{c}"), "force=1", None);
    run_ok(&b, &["run", "volume.remove", &format!("name={name}"), "force=false"]);
    let r = b.run(&["run", "volume.inspect", &format!("name={name}")]);
    r.expect_code(1);
    assert_eq!(r.json()["error"]["status"], 404);
}

#[test]
fn every_network_and_volume_operation_has_an_action() {
    let names: Vec<String> =
        berth().run(&["actions", "--json"]).json()["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    for op in [
        "network.list",
        "network.inspect",
        "network.create",
        "network.remove",
        "network.connect",
        "network.disconnect",
        "network.prune",
        "volume.list",
        "volume.create",
        "volume.inspect",
        "volume.update",
        "volume.remove",
        "volume.prune",
    ] {
        assert!(names.iter().any(|n| n == op), "{op} missing");
    }
}
