//! Podman's Docker-compatible API as a second real engine: the read-only actions and the
//! container lifecycle run unchanged; where Podman lacks an endpoint, berth says so and names
//! the engine. (host/README.md's engine table records what each engine supports.)

use berth_test_support as common;

use common::*;

const IMAGE: &str = "berth-test/busybox:latest";

fn berth() -> Berth {
    let mut b = Berth::with(&[
        ("system.wasm", system_wasm()),
        ("container.wasm", wasm("berth-action-container")),
        ("image.wasm", wasm("berth-action-image")),
        ("network.wasm", wasm("berth-action-network")),
        ("volume.wasm", wasm("berth-action-volume")),
        ("response.wasm", wasm("berth-action-response")),
    ]);
    b.host = podman_host();
    b
}

/// The busybox image, imported into Podman through berth's own `image.import` (with `tag`,
/// which Podman ignores unless it is folded into `repo`).
fn image(b: &Berth) -> &'static str {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let mut tar = tar::Builder::new(Vec::new());
        busybox_rootfs(&mut tar, "");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rootfs.tar");
        std::fs::write(&path, tar.into_inner().unwrap()).unwrap();
        let r = b.run(&["run", "image.import", "--in", path.to_str().unwrap(), "repo=berth-test/busybox", "tag=latest"]);
        r.ok();
        let j = b.run(&["run", "image.inspect", &format!("name={IMAGE}")]);
        assert!(j.ok()["data"][0]["RepoTags"].to_string().contains("berth-test/busybox:latest"), "the tag went into repo: {j:#?}");
    });
    IMAGE
}

#[test]
fn read_only_actions_run_on_podman() {
    let b = berth();
    b.run(&["run", "system.ping"]).ok();
    let v = b.run(&["run", "system.version"]);
    assert!(v.ok()["data"].to_string().contains("Podman Engine"), "{v:#?}");
    for args in [
        &["run", "system.info"][..],
        &["run", "system.df"],
        &["run", "system.events", "since=1m", "until=0s", "max_events=5"],
        &["run", "container.list", "all=true"],
        &["run", "image.list"],
        &["run", "network.list"],
        &["run", "volume.list"],
    ] {
        b.run(args).ok();
    }
}

#[test]
fn the_container_lifecycle_runs_on_podman() {
    let b = berth();
    let img = image(&b);
    let name = unique("pm");
    let j = b
        .run(&["run", "container.create", &format!("image={img}"), &format!("name={name}"), "network_mode=none", "cmd=sh -c 'echo up; sleep 300'"])
        .ok()
        .clone();
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    b.run(&["run", "container.start", &format!("id={id}")]).ok();
    let j = b.run(&["run", "container.inspect", &format!("id={name}")]).ok().clone();
    assert_eq!(j["data"][0]["State"]["Running"], true, "{j}");
    let j = b.run(&["run", "container.exec", &format!("id={id}"), "cmd=sh -c 'echo \"from exec\"; exit 3'"]).ok().clone();
    assert_eq!((j["data"][0]["stdout"].as_str(), j["summary"]["exit_code"].as_i64()), (Some("from exec\n"), Some(3)), "{j}");
    let j = b.run(&["run", "container.logs", &format!("id={id}")]).ok().clone();
    assert_eq!(j["data"][0]["stdout"], "up\n", "{j}");
    b.run(&["run", "container.top", &format!("id={id}")]).ok();
    b.run(&["run", "container.pause", &format!("id={id}")]).ok();
    b.run(&["run", "container.unpause", &format!("id={id}")]).ok();
    b.run(&["run", "container.stop", &format!("id={id}"), "t=1"]).ok();
    let j = b.run(&["run", "container.wait", &format!("id={id}"), "timeout=30"]).ok().clone();
    assert!(j["summary"]["exit_code"].is_number(), "{j}");
    b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
    // The composite: create, start, wait, logs, remove.
    let j = b.run(&["run", "container.run", &format!("image={img}"), "network_mode=none", "cmd=echo composite"]).ok().clone();
    assert_eq!(j["data"][0]["stdout"], "composite\n", "{j}");
}

#[test]
fn endpoints_podman_lacks_are_named_with_the_engine() {
    let b = berth();
    let img = image(&b);
    let j = b.run(&["run", "container.create", &format!("image={img}"), "network_mode=none", "cmd=sleep 300"]).ok().clone();
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    let r = b.run(&["run", "container.update", &format!("id={id}"), "memory=67108864"]);
    r.expect_code(1);
    let m = r.message();
    assert!(m.contains("Podman Engine 4") && m.contains("does not implement POST /containers/"), "{r:#?}");
    let r = b.run(&["run", "image.build-prune"]);
    r.expect_code(1);
    assert!(r.message().contains("Podman Engine") && r.message().contains("does not implement POST /build/prune"), "{r:#?}");
    b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
}

/// Podman's `top` is the container's own `ps` in one column, and its default container list
/// leaves paused containers out: a process hunt still finds the running container, lists the
/// paused one, and names it as not searched instead of reporting a silent miss.
#[test]
fn a_process_hunt_on_podman_reads_its_top_and_names_what_it_could_not_search() {
    let b = berth();
    let img = image(&b);
    let name = unique("hunted");
    let j = b.run(&["run", "container.create", &format!("image={img}"), &format!("name={name}"), "network_mode=none", "cmd=sleep 301"]).ok().clone();
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    b.run(&["run", "container.start", &format!("id={id}")]).ok();
    let hunt = || b.run(&["run", "response.hunt", "process=sleep"]).ok().clone();
    let j = hunt();
    let hit = j["data"].as_array().unwrap().iter().find(|r| r["Id"] == id.as_str()).unwrap_or_else(|| panic!("{j:#}"));
    assert_eq!(hit["evidence"]["CMD"], "sleep 301", "{j:#}");
    assert_eq!(hit["evidence"]["PID"], "1", "{j:#}");

    b.run(&["run", "container.pause", &format!("id={id}")]).ok();
    let j = hunt();
    let skipped = j["summary"]["unsearched"].as_array().unwrap();
    assert!(skipped.iter().any(|u| u["Id"] == id.as_str() && u["State"] == "paused"), "{j:#}");
    assert!(j["message"].as_str().unwrap().contains(&name), "{j:#}");
    b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
}

/// Events between two whole seconds, as `docker events --since S --until U` gets them from
/// Podman (which misreads `S.000000000` and stops reading its log at `U` in real time): the
/// events it holds arrive, and one after `U` is left out.
#[test]
fn events_between_two_seconds_arrive_from_podman() {
    let b = berth();
    let img = image(&b);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since = now() - 1;
    let create = |name: String| {
        b.run(&["run", "container.create", &format!("image={img}"), &format!("name={name}"), "network_mode=none", "cmd=true"]).ok()["summary"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let inside = create(unique("evp"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = now();
    let after = create(unique("evp-late"));
    let j = b.run(&["run", "system.events", &format!("since={since}"), &format!("until={until}"), "max_duration=20"]).ok().clone();
    let created = |id: &str| j["data"].as_array().unwrap().iter().any(|e| e["Actor"]["ID"] == id && e["Action"] == "create");
    assert!(created(&inside), "{j:#}");
    assert!(!created(&after), "{j:#}");
    assert_eq!(j["summary"]["ended_by"], "until", "{j:#}");
    for id in [inside, after] {
        b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
    }
}

/// Quarantine and release on Podman: Podman accepts a network connect on a paused container
/// and then loses it, so the release unpauses first; the container comes back running on its
/// network.
#[test]
fn quarantine_and_release_on_podman_restore_the_network() {
    let b = berth();
    let img = image(&b);
    let net = unique("qnet");
    b.run(&["run", "network.create", &format!("name={net}")]).ok();
    let j = b.run(&["run", "container.create", &format!("image={img}"), &format!("network_mode={net}"), "cmd=sleep 302"]).ok().clone();
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    b.run(&["run", "container.start", &format!("id={id}")]).ok();
    let networks = |b: &Berth| -> Vec<String> {
        let j = b.run(&["run", "container.inspect", &format!("id={id}")]).ok().clone();
        j["data"][0]["NetworkSettings"]["Networks"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    assert_eq!(networks(&b), std::slice::from_ref(&net));
    let q = b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-P1"]).ok().clone();
    assert_eq!(q["summary"]["changed"], true, "{q:#}");
    let state = b.run(&["run", "container.inspect", &format!("id={id}")]).ok()["data"][0]["State"]["Status"].clone();
    assert_eq!(state, "paused");
    assert!(networks(&b).is_empty(), "off every network while quarantined");
    b.run(&["run", "response.release", &format!("container={id}")]).ok();
    let j = b.run(&["run", "container.inspect", &format!("id={id}")]).ok().clone();
    assert_eq!(j["data"][0]["State"]["Status"], "running", "{j:#}");
    assert_eq!(networks(&b), std::slice::from_ref(&net), "the network is back, and stays: {j:#}");
    b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
    b.run(&["run", "network.remove", &format!("id={net}")]).ok();
}
