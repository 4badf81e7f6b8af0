//! The `plugin` family against the real engine: a volume plugin built by the tests
//! (`tests/guests/volume-plugin`, a native binary serving the plugin socket) is created from
//! an input artifact, configured, enabled and used as a volume driver, pushed to a local
//! registry, removed, and pulled back and upgraded through berth.

use berth_test_support as common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use http::Method;
use serde_json::{json, Value};

fn plugin_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let p = target.join("release/berth-test-volume-plugin");
    assert!(p.exists(), "{} is missing: `cargo build --release -p berth-test-volume-plugin` (make test does)", p.display());
    p
}

/// The plugin's tar: `config.json` and `rootfs/` with the binary and the libraries it links.
fn plugin_tar() -> Vec<u8> {
    let bin = plugin_binary();
    let mut t = tar::Builder::new(Vec::new());
    let config = json!({
        "description": "berth test volume plugin",
        "documentation": "https://github.com/berth",
        "entrypoint": ["/berth-volume-plugin"],
        "interface": {"socket": "berth.sock", "types": ["docker.volumedriver/1.0"]},
        "network": {"type": "host"},
        "env": [{"name": "GREETING", "description": "said by every volume", "settable": ["value"], "value": "hello"}],
        "linux": {"capabilities": []},
    });
    let data = config.to_string().into_bytes();
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "config.json", &data[..]).unwrap();
    t.append_path_with_name(&bin, "rootfs/berth-volume-plugin").unwrap();
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line.split("=>").last().unwrap().split_whitespace().next().unwrap_or("");
        if lib.starts_with('/') && Path::new(lib).exists() {
            t.append_path_with_name(lib, format!("rootfs{lib}")).unwrap();
        }
    }
    for d in ["tmp", "run/docker/plugins"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        t.append_data(&mut h, format!("rootfs/{d}/"), &[][..]).unwrap();
    }
    t.into_inner().unwrap()
}

fn ok(b: &Berth, args: &[&str]) -> Value {
    b.run_within(std::time::Duration::from_secs(180), args).ok().clone()
}

#[test]
fn a_volume_plugin_created_enabled_pushed_and_pulled_back() {
    let registry = Registry::start(None);
    let b = Berth::families(&["plugin", "volume"]);
    let name = format!("{}/berth/{}:1", registry.addr, unique("volplug"));
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("plugin.tar");
    std::fs::write(&tar, plugin_tar()).unwrap();

    let created = ok(&b, &["run", "plugin.create", &format!("name={name}"), "--in", tar.to_str().unwrap()]);
    assert_eq!(created["summary"]["name"], name.as_str());
    let listed = ok(&b, &["run", "plugin.list", r#"filters={"capability":["volumedriver"]}"#]);
    let mine = listed["data"].as_array().unwrap().iter().find(|p| p["Name"] == name.as_str()).expect("listed").clone();
    assert_eq!(mine["Enabled"], false);
    ok(&b, &["run", "plugin.set", &format!("name={name}"), r#"settings={"GREETING":"bonjour"}"#]);
    let inspected = ok(&b, &["run", "plugin.inspect", &format!("name={name}")]);
    assert!(inspected["data"][0]["Settings"]["Env"].as_array().unwrap().contains(&json!("GREETING=bonjour")), "{inspected}");
    // The docker CLI's KEY=value form.
    ok(&b, &["run", "plugin.set", &format!("name={name}"), "settings=GREETING=hola"]);
    let inspected = ok(&b, &["run", "plugin.inspect", &format!("name={name}")]);
    assert!(inspected["data"][0]["Settings"]["Env"].as_array().unwrap().contains(&json!("GREETING=hola")), "{inspected}");
    ok(&b, &["run", "plugin.set", &format!("name={name}"), r#"settings={"GREETING":"bonjour"}"#]);
    for bad in [r#"settings=["GREETING"]"#, "settings=GREETING", "settings==x"] {
        b.run(&["run", "plugin.set", &format!("name={name}"), bad]).expect_code(2);
    }

    // Enabled, it really serves: a volume on its driver carries the greeting that was set.
    ok(&b, &["run", "plugin.enable", &format!("name={name}"), "timeout=30"]);
    assert_eq!(ok(&b, &["run", "plugin.inspect", &format!("name={name}")])["summary"]["enabled"], true);
    let vol = unique("pvol");
    ok(&b, &["run", "volume.create", &format!("name={vol}"), &format!("driver={name}")]);
    let v = ok(&b, &["run", "volume.inspect", &format!("name={vol}")]);
    assert_eq!(v["data"][0]["Driver"], name.as_str());
    assert_eq!(v["data"][0]["Status"]["greeting"], "bonjour", "{v}");
    // In use, it cannot be disabled without force.
    let busy = b.run(&["run", "plugin.disable", &format!("name={name}")]);
    busy.expect_code(1);
    ok(&b, &["run", "volume.remove", &format!("name={vol}")]);
    ok(&b, &["run", "plugin.disable", &format!("name={name}")]);

    // Push, remove, then pull back: the plugin asks for the host network, so the pull needs
    // the grant.
    ok(&b, &["run", "plugin.push", &format!("name={name}")]);
    let privs = ok(&b, &["run", "plugin.privileges", &format!("remote={name}")]);
    assert!(privs["data"].as_array().unwrap().iter().any(|p| p["Name"] == "network" && p["Value"] == json!(["host"])), "{privs}");
    let removed = ok(&b, &["run", "plugin.remove", &format!("name={name}")]);
    assert_eq!(removed["data"][0]["name"], name.as_str());
    assert_eq!(api(Method::GET, &format!("/plugins/{name}/json"), "", None).0, 404);
    let refused = b.run(&["run", "plugin.pull", &format!("remote={name}")]);
    refused.expect_code(3);
    assert!(refused.message().contains("network") && refused.message().contains("grant_all"), "{}", refused.message());
    assert_eq!(api(Method::GET, &format!("/plugins/{name}/json"), "", None).0, 404, "nothing installed without the grant");
    let pulled = ok(&b, &["run", "plugin.pull", &format!("remote={name}"), "grant_all=true", "enable=true"]);
    assert_eq!(pulled["data"][0]["enabled"], true);
    assert_eq!(ok(&b, &["run", "plugin.inspect", &format!("name={name}")])["summary"]["enabled"], true);
    // Upgrade needs the plugin disabled; then it takes the (same) remote again.
    let busy = b.run(&["run", "plugin.upgrade", &format!("name={name}"), &format!("remote={name}"), "grant_all=true"]);
    busy.expect_code(1);
    ok(&b, &["run", "plugin.disable", &format!("name={name}")]);
    ok(&b, &["run", "plugin.upgrade", &format!("name={name}"), &format!("remote={name}"), "grant_all=true"]);
    // A label-scoped tenant may not touch plugins at all: they run as root on the host.
    let policy = dir.path().join("red.toml");
    std::fs::write(&policy, "label_scope = \"team=red\"\n").unwrap();
    let by_name = format!("name={name}");
    for args in [vec!["plugin.list"], vec!["plugin.disable", by_name.as_str()]] {
        let mut all = vec!["--policy", policy.to_str().unwrap(), "run"];
        all.extend(args);
        let r = b.run(&all);
        r.expect_code(3);
        assert!(r.message().contains("not available to a label-scoped tenant"), "{}", r.message());
    }
    ok(&b, &["run", "plugin.remove", &format!("name={name}"), "force=true"]);
    assert_eq!(api(Method::GET, &format!("/plugins/{name}/json"), "", None).0, 404);
}
