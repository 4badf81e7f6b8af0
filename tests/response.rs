//! The `response` family on the real engine: hunt by indicators, quarantine the match (its
//! networks and state recorded on the engine), release it exactly, and the timeline that
//! shows what happened.

use berth_test_support as common;

use common::*;
use http::Method;
use serde_json::{json, Value};

fn berth() -> Berth {
    Berth::families(&["response"])
}

fn inspect(id: &str) -> Value {
    api_json(Method::GET, &format!("/containers/{id}/json"), "")
}

/// An internal network and a container on it with an alias and a fixed address.
fn victim(tag: &str, offset: u32) -> (String, String, String) {
    // A subnet of this run's own, so a run that failed before its cleanup does not collide.
    let octet = 100 + (std::process::id() * 2 + offset) % 150;
    let net = unique(&format!("irnet-{tag}"));
    let subnet = format!("172.29.{octet}.0/24");
    let body = json!({"Name": net, "Internal": true, "IPAM": {"Config": [{"Subnet": subnet}]}});
    let (st, v) = api(Method::POST, "/networks/create", "", Some(("application/json", body.to_string().into_bytes())));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    let name = unique(&format!("victim-{tag}"));
    let ip = format!("172.29.{octet}.9");
    let body = json!({
        "Image": test_image(), "Cmd": ["sh", "-c", "echo out-line; echo err-line >&2; echo evil > /tmp/miner; exec sleep 600"],
        "Env": ["AWS_SECRET_ACCESS_KEY=AKIA-very-secret"], "Labels": {"berth.test": name},
        "HostConfig": {"NetworkMode": net},
        "NetworkingConfig": {"EndpointsConfig": {net.clone(): {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": ip}}}},
    });
    let (st, v) = api(Method::POST, "/containers/create", &format!("name={name}"), Some(("application/json", body.to_string().into_bytes())));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    let id = serde_json::from_slice::<Value>(&v).unwrap()["Id"].as_str().unwrap().to_string();
    assert_eq!(api(Method::POST, &format!("/containers/{id}/start"), "", None).0, 204);
    (id, net, ip)
}

fn cleanup(id: &str, net: &str) {
    api(Method::DELETE, &format!("/containers/{id}"), "force=true", None);
    api(Method::DELETE, &format!("/volumes/berth-quarantine-{id}"), "", None);
    api(Method::DELETE, &format!("/networks/{net}"), "", None);
}

#[test]
fn incident_hunt_quarantine_release_and_timeline() {
    let b = berth();
    let (id, net, ip) = victim("a", 0);
    std::thread::sleep(std::time::Duration::from_millis(300));

    // Hunt: every indicator kind names its evidence; an env value is never shown.
    let j = b.run(&["run", "response.hunt", "env=AWS_*=AKIA*", "process=sleep", "path=/tmp/miner", "label=berth.test"]).ok().clone();
    let ours: Vec<&Value> = j["data"].as_array().unwrap().iter().filter(|r| r["Id"] == id.as_str()).collect();
    let kinds: Vec<&str> = ours.iter().map(|r| r["indicator"].as_str().unwrap()).collect();
    for k in ["env", "process", "path", "label"] {
        assert!(kinds.contains(&k), "{k}: {j:#}");
    }
    assert!(!j.to_string().contains("very-secret"), "the env value leaked: {j}");
    let path_hit = ours.iter().find(|r| r["indicator"] == "path").unwrap();
    assert_eq!(path_hit["evidence"]["stat"]["size"], 5);
    let none = b.run(&["run", "response.hunt", "process=xmrig-never-here"]).ok().clone();
    assert!(!none["data"].as_array().unwrap().iter().any(|r| r["Id"] == id.as_str()));
    b.run(&["run", "response.hunt"]).expect_code(2);

    // Quarantine: off every network, paused, recorded on the engine.
    let q = b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-4242"]).ok().clone();
    assert_eq!(q["summary"]["changed"], true);
    let c = inspect(&id);
    assert_eq!(c["State"]["Status"], "paused");
    assert!(c["NetworkSettings"]["Networks"].as_object().unwrap().is_empty(), "{}", c["NetworkSettings"]);
    let rec = api_json(Method::GET, &format!("/volumes/berth-quarantine-{id}"), "");
    assert_eq!(rec["Labels"]["berth.quarantine"], "INC-4242");
    assert_eq!(rec["Labels"]["berth.quarantine.state"], "running");
    // A quarantined (paused) container is still found by what it runs.
    let j = b.run(&["run", "response.hunt", "process=sleep"]).ok().clone();
    let hit = j["data"].as_array().unwrap().iter().find(|r| r["Id"] == id.as_str()).unwrap_or_else(|| panic!("the paused container: {j:#}"));
    assert_eq!((hit["State"].as_str(), hit["evidence"]["CMD"].as_str()), (Some("paused"), Some("sleep 600")), "{j:#}");
    assert!(!j["summary"]["unsearched"].as_array().unwrap().iter().any(|u| u["Id"] == id.as_str()), "dockerd lists a paused container's processes: {j:#}");
    // Idempotent; another ticket is refused while the first holds.
    let again = b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-4242"]).ok().clone();
    assert_eq!(again["summary"]["changed"], false);
    let other = b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-9"]);
    other.expect_code(2);
    assert!(other.message().contains("already quarantined under ticket 'INC-4242'"), "{other:#?}");

    // Release restores exactly what was recorded: the network, its alias and address, running.
    let r = b.run(&["run", "response.release", &format!("container={id}")]).ok().clone();
    assert_eq!(r["data"][0]["ticket"], "INC-4242");
    let c = inspect(&id);
    assert_eq!(c["State"]["Status"], "running");
    let ep = &c["NetworkSettings"]["Networks"][&net];
    assert_eq!(ep["IPAddress"], ip.as_str(), "{ep}");
    assert!(ep["Aliases"].as_array().unwrap().iter().any(|a| a == "web"), "{ep}");
    assert_eq!(api(Method::GET, &format!("/volumes/berth-quarantine-{id}"), "", None).0, 404, "the record is gone");
    let twice = b.run(&["run", "response.release", &format!("container={id}")]);
    twice.expect_code(2);
    assert!(twice.message().contains("is not quarantined"), "{twice:#?}");

    // The timeline tells it in order.
    let t = b.run(&["run", "response.timeline", &format!("container={id}")]).ok().clone();
    let actions: Vec<String> =
        t["data"].as_array().unwrap().iter().filter(|e| e["source"] == "event").map(|e| e["action"].as_str().unwrap().to_string()).collect();
    let pos = |a: &str| actions.iter().position(|x| x == a).unwrap_or_else(|| panic!("no {a} in {actions:?}"));
    assert!(pos("create") < pos("start") && pos("start") < pos("pause") && pos("pause") < pos("unpause"), "{actions:?}");
    assert!(pos("disconnect") < pos("unpause") && actions.iter().rposition(|x| x == "connect").unwrap() > pos("disconnect"), "{actions:?}");
    let times: Vec<i64> = t["data"].as_array().unwrap().iter().filter_map(|e| e["time_nano"].as_i64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "ordered: {times:?}");
    cleanup(&id, &net);
}

#[test]
fn quarantine_by_stopping_and_bad_input() {
    let b = berth();
    let (id, net, _) = victim("b", 1);
    let q = b.run(&["run", "response.quarantine", &format!("container={id}"), "ticket=INC-7", "mode=stop", "timeout=1"]).ok().clone();
    assert_eq!(q["data"][0]["mode"], "stop");
    assert_eq!(inspect(&id)["State"]["Running"], false);
    b.run(&["run", "response.release", &format!("container={id}")]).ok();
    let c = inspect(&id);
    assert_eq!(c["State"]["Status"], "running");
    assert!(c["NetworkSettings"]["Networks"].get(&net).is_some());
    for bad in [vec!["mode=freeze", "ticket=x"], vec!["ticket= "], vec!["ticket=x", "timeout=999"]] {
        let mut args = vec!["run", "response.quarantine"];
        let cont = format!("container={id}");
        args.push(&cont);
        args.extend(bad.iter());
        b.run(&args).expect_code(2);
    }
    // Nothing was half-done by the refused calls.
    assert_eq!(api(Method::GET, &format!("/volumes/berth-quarantine-{id}"), "", None).0, 404);
    assert_eq!(inspect(&id)["State"]["Status"], "running");
    let missing = b.run(&["run", "response.quarantine", "container=no-such-container-at-all", "ticket=x"]);
    missing.expect_code(1);
    assert_eq!(missing.json()["error"]["status"], 404);
    cleanup(&id, &net);
}

/// The forensic bundle: one tar, every member hashed in its manifest, the filesystem export
/// streamed into it, logs apart, the container given back running after a paused capture.
#[test]
fn forensic_bundle_members_match_their_manifest() {
    let b = berth();
    let (id, net, _) = victim("c", 2);
    // A 12 MiB file, so that the export is over one tar part (8 MiB) and is stored in parts.
    let body = json!({"Cmd": ["sh", "-c", "head -c 12582912 /dev/urandom > /tmp/ballast"]});
    let (st, v) = api(Method::POST, &format!("/containers/{id}/exec"), "", Some(("application/json", body.to_string().into_bytes())));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&v));
    let exec = serde_json::from_slice::<Value>(&v).unwrap()["Id"].as_str().unwrap().to_string();
    assert_eq!(api(Method::POST, &format!("/exec/{exec}/start"), "", Some(("application/json", br#"{"Detach":true}"#.to_vec()))).0, 200);
    for _ in 0..100 {
        let (_, v) = api(Method::GET, &format!("/exec/{exec}/json"), "", None);
        if serde_json::from_slice::<Value>(&v).unwrap()["Running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar");
    let r = b.run(&["run", "response.forensic-bundle", &format!("container={id}"), "pause=true", "--out", out.to_str().unwrap()]);
    let j = r.ok().clone();
    assert_eq!(inspect(&id)["State"]["Status"], "running", "unpaused after the capture");
    assert_eq!(j["data"][0]["paused_during_collection"], true);
    let bytes = std::fs::read(&out).unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(j["summary"]["sha256"], sha.as_str(), "the bundle's sha256 is the file's");
    let mut members = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(&bytes[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        members.insert(name, data);
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let listed = manifest["members"].as_array().unwrap();
    for want in [
        "container/inspect.json",
        "container/logs/stdout.log",
        "container/logs/stderr.log",
        "container/top.json",
        "container/changes.json",
        "container/stats.json",
        "container/filesystem.tar",
        "image/inspect.json",
        "image/history.json",
        "engine/info.json",
    ] {
        assert!(listed.iter().any(|m| m["name"] == want), "{want} not in the manifest: {manifest:#}");
    }
    // A member over one part (the export) is stored as NAME.0000, NAME.0001, …: joined in
    // order they are what the manifest hashed.
    let joined = |name: &str| -> Vec<u8> {
        if let Some(d) = members.get(name) {
            return d.clone();
        }
        let parts: Vec<&Vec<u8>> = (0..).map_while(|i| members.get(&format!("{name}.{i:04}"))).collect();
        assert!(parts.len() >= 2, "{name}: neither a member nor parts");
        parts.into_iter().flatten().copied().collect()
    };
    assert!(
        members.contains_key("container/filesystem.tar.0001") && !members.contains_key("container/filesystem.tar"),
        "the 12 MiB export is in parts: {:?}",
        members.keys()
    );
    for m in listed {
        let data = &joined(m["name"].as_str().unwrap());
        assert_eq!(m["size"].as_u64().unwrap(), data.len() as u64, "{m}");
        assert_eq!(m["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(data)), "{m}");
        assert!(m["collected_at"].as_str().unwrap().starts_with("20"), "{m}");
    }
    // Logs apart; the export holds the container's file; top saw its process.
    let (so, se) = (String::from_utf8_lossy(&members["container/logs/stdout.log"]), String::from_utf8_lossy(&members["container/logs/stderr.log"]));
    assert!(so.contains("out-line") && !so.contains("err-line"), "{so}");
    assert!(se.contains("err-line") && !se.contains("out-line"), "{se}");
    let export = joined("container/filesystem.tar");
    let names: Vec<String> = tar::Archive::new(&export[..]).entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n == "tmp/miner") && names.iter().any(|n| n == "tmp/ballast"), "{names:?}");
    assert!(String::from_utf8_lossy(&members["container/top.json"]).contains("sleep 600"));
    let ins: Value = serde_json::from_slice(&members["container/inspect.json"]).unwrap();
    assert_eq!(ins["Id"], id.as_str());
    // Without an `out` artifact: refused before anything is written.
    let r = b.run(&["run", "response.forensic-bundle", &format!("container={id}")]);
    assert_ne!(r.code, 0);
    assert!(r.message().contains("artifact 'out' was not provided"), "{r:#?}");
    cleanup(&id, &net);
}
