//! The `swarm` family: the 7 Swarm operations of the Engine API, plus `swarm.join-tokens`.
//!
//! Join tokens and unlock keys are secrets: they are returned only by the actions that exist
//! to return them (never in a message, which the audit records), and taken only as `secret`
//! params.

use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::swarm::{merge, names_value, version_or, versioned};
use berth_sdk::typed::NoParams;

params! {
    struct Init {
        listen_addr: String = "0.0.0.0:2377" => "Address for manager traffic, host:port or interface:port",
        advertise_addr: Option<String> => "Address advertised to other nodes",
        data_path_addr: Option<String> => "Address for data-path (overlay) traffic",
        data_path_port: Option<i64> => "UDP port for data-path traffic (default 4789)",
        default_addr_pool: Option<Vec<Value>> => "Subnets for global-scope networks, e.g. [\"10.10.0.0/16\"]",
        subnet_size: Option<i64> => "Prefix length of each network's subnet from the pool",
        force_new_cluster: bool => "Recover a swarm from this manager's state alone",
        autolock: bool => "Lock managers on restart; the unlock key is returned",
        spec: Option<Map<String, Value>> => "A SwarmSpec, merged under the structured params",
    }
}

params! {
    struct Join {
        remote_addrs: Value => "Managers to reach: a list or comma-separated host:port",
        #[secret] join_token: String => "The worker or manager join token",
        listen_addr: String = "0.0.0.0:2377" => "Address for swarm traffic",
        advertise_addr: Option<String> => "Address advertised to other nodes",
        data_path_addr: Option<String> => "Address for data-path traffic",
    }
}

params! {
    struct Leave {
        force: bool => "Leave even as the last manager (the swarm is lost)",
    }
}

params! {
    struct Update {
        spec: Option<Map<String, Value>> => "Fields of the SwarmSpec to change (merge patch; null removes)",
        autolock: Option<bool> => "Lock managers on restart",
        task_history_limit: Option<i64> => "Tasks kept per slot",
        rotate_worker_token: bool => "Rotate the worker join token",
        rotate_manager_token: bool => "Rotate the manager join token",
        rotate_unlock_key: bool => "Rotate the unlock key",
        version: Option<i64> => "The version read before (Version.Index); the current one when absent",
    }
}

params! {
    struct Unlock {
        #[secret] unlock_key: String => "The key swarm.unlockkey returned",
    }
}

params! {
    struct JoinTokens {
        rotate: Option<String> => "Rotate first: worker, manager or both",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("swarm.inspect", "Inspect the swarm (join tokens are left out: see swarm.join-tokens)")
            .read_only()
            .output(&["data.*.ID", "data.*.CreatedAt", "data.*.Spec.Name", "data.*.Version.Index", "summary.id"])
            .ops(&["SwarmInspect"])
            .typed(inspect),
        Action::new("swarm.init", "Make this engine the first manager of a new swarm")
            .kind(Kind::Generic)
            .output(&["data.*.node_id", "data.*.unlock_key", "summary.node_id"])
            .ops(&["SwarmInit", "SwarmUnlockkey"])
            .typed(init),
        Action::new("swarm.join", "Join this engine to an existing swarm")
            .kind(Kind::Generic)
            .output(&["data.*.joined", "data.*.node_id"])
            .ops(&["SwarmJoin", "SystemInfo"])
            .typed(join),
        Action::new("swarm.leave", "Leave the swarm").kind(Kind::Contain).output(&["data.*.left"]).ops(&["SwarmLeave"]).typed(leave),
        Action::new("swarm.update", "Update the swarm's spec; rotate tokens or the unlock key")
            .kind(Kind::Generic)
            .output(&["data.*.ID", "data.*.Spec", "data.*.rotated"])
            .ops(&["SwarmInspect", "SwarmUpdate"])
            .typed(update),
        Action::new("swarm.unlockkey", "The key that unlocks a locked manager (secret output)")
            .read_only()
            .output(&["data.*.unlock_key"])
            .ops(&["SwarmUnlockkey"])
            .typed(unlockkey),
        Action::new("swarm.unlock", "Unlock a locked manager").kind(Kind::Generic).output(&["data.*.unlocked"]).ops(&["SwarmUnlock"]).typed(unlock),
        Action::new("swarm.join-tokens", "The worker and manager join tokens (secret output); optionally rotate them first")
            .kind(Kind::Generic)
            .output(&["data.*.worker", "data.*.manager", "data.*.manager_addrs"])
            .ops(&["SwarmInspect", "SwarmUpdate", "SystemInfo"])
            .typed(join_tokens),
    ]
}

berth_sdk::family!(name: "swarm", actions: actions);

fn inspect(_: NoParams) -> Result<Output> {
    let mut v = get("/swarm").json_ok()?;
    if let Some(m) = v.as_object_mut() {
        m.remove("JoinTokens");
    }
    Ok(Output::new(format!("Swarm {} (created {})", v["ID"].as_str().unwrap_or("?"), v["CreatedAt"].as_str().unwrap_or("?")))
        .summary("id", v["ID"].clone())
        .item(v))
}

fn init(p: Init) -> Result<Output> {
    let mut spec = Value::Object(p.spec.unwrap_or_default());
    if p.autolock {
        merge(&mut spec, &json!({"EncryptionConfig": {"AutoLockManagers": true}}));
    }
    let mut body = json!({"ListenAddr": p.listen_addr, "ForceNewCluster": p.force_new_cluster, "Spec": spec});
    for (field, v) in [("AdvertiseAddr", &p.advertise_addr), ("DataPathAddr", &p.data_path_addr)] {
        if let Some(v) = v {
            body[field] = json!(v);
        }
    }
    if let Some(port) = p.data_path_port {
        body["DataPathPort"] = json!(port);
    }
    if let Some(pool) = &p.default_addr_pool {
        body["DefaultAddrPool"] = json!(pool);
    }
    if let Some(s) = p.subnet_size {
        body["SubnetSize"] = json!(s);
    }
    let node_id = post("/swarm/init").json(&body).json_ok()?;
    let mut item = json!({"node_id": node_id});
    if p.autolock {
        item["unlock_key"] = get("/swarm/unlockkey").json_ok()?["UnlockKey"].clone();
    }
    Ok(Output::one(format!("Initialised a swarm; this node is {}", node_id.as_str().unwrap_or("?")), item).summary("node_id", node_id))
}

fn join(p: Join) -> Result<Output> {
    let remotes = names_value(Some(&p.remote_addrs), "remote_addrs")?;
    if remotes.is_empty() {
        return Err(Error::bad_params("parameter 'remote_addrs' must name at least one manager"));
    }
    let mut body = json!({"RemoteAddrs": remotes, "JoinToken": p.join_token, "ListenAddr": p.listen_addr});
    for (field, v) in [("AdvertiseAddr", &p.advertise_addr), ("DataPathAddr", &p.data_path_addr)] {
        if let Some(v) = v {
            body[field] = json!(v);
        }
    }
    post("/swarm/join").json(&body).send_ok()?;
    let node_id = get("/info").json_ok()?["Swarm"]["NodeID"].clone();
    Ok(Output::one(format!("Joined the swarm as node {}", node_id.as_str().unwrap_or("?")), json!({"joined": true, "node_id": node_id})))
}

fn leave(p: Leave) -> Result<Output> {
    post("/swarm/leave").query("force", p.force).send_ok()?;
    Ok(Output::one("Left the swarm", json!({"left": true})))
}

fn update(p: Update) -> Result<Output> {
    let (cur, read) = versioned("/swarm")?;
    let mut spec = cur["Spec"].clone();
    if let Some(patch) = &p.spec {
        merge(&mut spec, &Value::Object(patch.clone()));
    }
    if let Some(a) = p.autolock {
        spec["EncryptionConfig"]["AutoLockManagers"] = json!(a);
    }
    if let Some(n) = p.task_history_limit {
        spec["Orchestration"]["TaskHistoryRetentionLimit"] = json!(n);
    }
    let rotated: Vec<&str> = [(p.rotate_worker_token, "worker token"), (p.rotate_manager_token, "manager token"), (p.rotate_unlock_key, "unlock key")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, what)| what)
        .collect();
    let version = version_or(p.version, read);
    post("/swarm/update")
        .query("version", version)
        .query("rotateWorkerToken", p.rotate_worker_token)
        .query("rotateManagerToken", p.rotate_manager_token)
        .query("rotateManagerUnlockKey", p.rotate_unlock_key)
        .json(&spec)
        .send_ok()?;
    let mut msg = "Updated the swarm".to_string();
    if !rotated.is_empty() {
        msg.push_str(&format!("; rotated the {}", rotated.join(", ")));
    }
    Ok(Output::one(msg, json!({"ID": cur["ID"], "Spec": spec, "rotated": rotated})))
}

fn unlockkey(_: NoParams) -> Result<Output> {
    let v = get("/swarm/unlockkey").json_ok()?;
    let key = v["UnlockKey"].clone();
    let msg = if key.as_str().is_some_and(|k| !k.is_empty()) {
        "The swarm's unlock key (keep it secret)"
    } else {
        "The swarm is not autolocked: there is no unlock key"
    };
    Ok(Output::one(msg, json!({"unlock_key": key})))
}

fn unlock(p: Unlock) -> Result<Output> {
    post("/swarm/unlock").json(&json!({"UnlockKey": p.unlock_key})).send_ok()?;
    Ok(Output::one("Unlocked the manager", json!({"unlocked": true})))
}

fn join_tokens(p: JoinTokens) -> Result<Output> {
    if let Some(which) = &p.rotate {
        let (worker, manager) = match which.as_str() {
            "worker" => (true, false),
            "manager" => (false, true),
            "both" => (true, true),
            other => return Err(Error::bad_params(format!("parameter 'rotate' must be worker, manager or both, got '{other}'"))),
        };
        let (cur, version) = versioned("/swarm")?;
        post("/swarm/update").query("version", version).query("rotateWorkerToken", worker).query("rotateManagerToken", manager).json(&cur["Spec"]).send_ok()?;
    }
    let v = get("/swarm").json_ok()?;
    let info = get("/info").json_ok()?;
    let addrs: Vec<Value> = info["Swarm"]["RemoteManagers"].as_array().into_iter().flatten().map(|m| m["Addr"].clone()).collect();
    let rotated = p.rotate.map(|w| format!(" ({w} rotated)")).unwrap_or_default();
    Ok(Output::one(
        format!("The swarm's join tokens{rotated} (keep them secret)"),
        json!({"worker": v["JoinTokens"]["Worker"], "manager": v["JoinTokens"]["Manager"], "manager_addrs": addrs}),
    ))
}
