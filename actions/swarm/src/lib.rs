//! The `swarm` family: the 7 Swarm operations of the Engine API, plus `swarm.join-tokens`.
//!
//! Join tokens and unlock keys are secrets: they are returned only by the actions that exist
//! to return them (never in a message, which the audit records), and taken only as `secret`
//! params.

use berth_sdk::prelude::*;
use berth_sdk::swarm::{merge, names, version_param, versioned};

fn actions() -> Vec<Action> {
    vec![
        Action::new("swarm.inspect", "Inspect the swarm (join tokens are left out: see swarm.join-tokens)")
            .read_only()
            .output(&["data.*.ID", "data.*.CreatedAt", "data.*.Spec.Name", "data.*.Version.Index", "summary.id"])
            .run(inspect),
        Action::new("swarm.init", "Make this engine the first manager of a new swarm")
            .kind(Kind::Generic)
            .param(Param::string("listen_addr").default("0.0.0.0:2377").describe("Address for manager traffic, host:port or interface:port"))
            .param(Param::string("advertise_addr").describe("Address advertised to other nodes"))
            .param(Param::string("data_path_addr").describe("Address for data-path (overlay) traffic"))
            .param(Param::int("data_path_port").describe("UDP port for data-path traffic (default 4789)"))
            .param(Param::array("default_addr_pool").describe("Subnets for global-scope networks, e.g. [\"10.10.0.0/16\"]"))
            .param(Param::int("subnet_size").describe("Prefix length of each network's subnet from the pool"))
            .param(Param::bool("force_new_cluster").default(false))
            .param(Param::bool("autolock").default(false).describe("Lock managers on restart; the unlock key is returned"))
            .param(Param::object("spec").describe("A SwarmSpec, merged under the structured params"))
            .output(&["data.*.node_id", "data.*.unlock_key", "summary.node_id"])
            .run(init),
        Action::new("swarm.join", "Join this engine to an existing swarm")
            .kind(Kind::Generic)
            .param(Param::any("remote_addrs").required().describe("Managers to reach: a list or comma-separated host:port"))
            .param(Param::string("join_token").required().secret().describe("The worker or manager join token"))
            .param(Param::string("listen_addr").default("0.0.0.0:2377"))
            .param(Param::string("advertise_addr"))
            .param(Param::string("data_path_addr"))
            .output(&["data.*.joined", "data.*.node_id"])
            .run(join),
        Action::new("swarm.leave", "Leave the swarm")
            .kind(Kind::Contain)
            .param(Param::bool("force").default(false).describe("Leave even as the last manager (the swarm is lost)"))
            .output(&["data.*.left"])
            .run(leave),
        Action::new("swarm.update", "Update the swarm's spec; rotate tokens or the unlock key")
            .kind(Kind::Generic)
            .param(Param::object("spec").describe("Fields of the SwarmSpec to change (merge patch; null removes)"))
            .param(Param::bool("autolock").describe("Lock managers on restart"))
            .param(Param::int("task_history_limit"))
            .param(Param::bool("rotate_worker_token").default(false))
            .param(Param::bool("rotate_manager_token").default(false))
            .param(Param::bool("rotate_unlock_key").default(false))
            .param(Param::int("version").describe("The version read before (Version.Index); the current one when absent"))
            .output(&["data.*.ID", "data.*.Spec", "data.*.rotated"])
            .run(update),
        Action::new("swarm.unlockkey", "The key that unlocks a locked manager (secret output)")
            .read_only()
            .output(&["data.*.unlock_key"])
            .run(unlockkey),
        Action::new("swarm.unlock", "Unlock a locked manager")
            .kind(Kind::Generic)
            .param(Param::string("unlock_key").required().secret())
            .output(&["data.*.unlocked"])
            .run(unlock),
        Action::new("swarm.join-tokens", "The worker and manager join tokens (secret output); optionally rotate them first")
            .kind(Kind::Generic)
            .param(Param::string("rotate").describe("Rotate first: worker, manager or both"))
            .output(&["data.*.worker", "data.*.manager", "data.*.manager_addrs"])
            .run(join_tokens),
    ]
}

berth_sdk::family!(name: "swarm", actions: actions);

fn inspect(_: &Params) -> Result<Output> {
    let mut v = get("/swarm").json_ok()?;
    if let Some(m) = v.as_object_mut() {
        m.remove("JoinTokens");
    }
    Ok(Output::new(format!("Swarm {} (created {})", v["ID"].as_str().unwrap_or("?"), v["CreatedAt"].as_str().unwrap_or("?")))
        .summary("id", v["ID"].clone())
        .item(v))
}

fn init(p: &Params) -> Result<Output> {
    let mut spec = p.get("spec").cloned().unwrap_or(json!({}));
    if p.flag("autolock") {
        merge(&mut spec, &json!({"EncryptionConfig": {"AutoLockManagers": true}}));
    }
    let mut body = json!({
        "ListenAddr": p.str("listen_addr").unwrap_or("0.0.0.0:2377"),
        "ForceNewCluster": p.flag("force_new_cluster"),
        "Spec": spec,
    });
    for (param, field) in [("advertise_addr", "AdvertiseAddr"), ("data_path_addr", "DataPathAddr")] {
        if let Some(v) = p.str(param) {
            body[field] = json!(v);
        }
    }
    if let Some(port) = p.i64("data_path_port") {
        body["DataPathPort"] = json!(port);
    }
    let pool = names(p, "default_addr_pool")?;
    if !pool.is_empty() {
        body["DefaultAddrPool"] = json!(pool);
    }
    if let Some(s) = p.i64("subnet_size") {
        body["SubnetSize"] = json!(s);
    }
    let node_id = post("/swarm/init").json(&body).json_ok()?;
    let mut item = json!({"node_id": node_id});
    if p.flag("autolock") {
        item["unlock_key"] = get("/swarm/unlockkey").json_ok()?["UnlockKey"].clone();
    }
    Ok(Output::one(format!("Initialised a swarm; this node is {}", node_id.as_str().unwrap_or("?")), item).summary("node_id", node_id))
}

fn join(p: &Params) -> Result<Output> {
    let remotes = names(p, "remote_addrs")?;
    if remotes.is_empty() {
        return Err(Error::bad_params("parameter 'remote_addrs' must name at least one manager"));
    }
    let mut body = json!({
        "RemoteAddrs": remotes,
        "JoinToken": p.req_str("join_token")?,
        "ListenAddr": p.str("listen_addr").unwrap_or("0.0.0.0:2377"),
    });
    for (param, field) in [("advertise_addr", "AdvertiseAddr"), ("data_path_addr", "DataPathAddr")] {
        if let Some(v) = p.str(param) {
            body[field] = json!(v);
        }
    }
    post("/swarm/join").json(&body).send_ok()?;
    let node_id = get("/info").json_ok()?["Swarm"]["NodeID"].clone();
    Ok(Output::one(format!("Joined the swarm as node {}", node_id.as_str().unwrap_or("?")), json!({"joined": true, "node_id": node_id})))
}

fn leave(p: &Params) -> Result<Output> {
    post("/swarm/leave").query("force", p.flag("force")).send_ok()?;
    Ok(Output::one("Left the swarm", json!({"left": true})))
}

fn update(p: &Params) -> Result<Output> {
    let (cur, read) = versioned("/swarm")?;
    let mut spec = cur["Spec"].clone();
    if let Some(patch) = p.get("spec") {
        if !patch.is_object() {
            return Err(Error::bad_params("parameter 'spec' must be an object"));
        }
        merge(&mut spec, patch);
    }
    if let Some(a) = p.bool("autolock") {
        spec["EncryptionConfig"]["AutoLockManagers"] = json!(a);
    }
    if let Some(n) = p.i64("task_history_limit") {
        spec["Orchestration"]["TaskHistoryRetentionLimit"] = json!(n);
    }
    let rotated: Vec<&str> = [("rotate_worker_token", "worker token"), ("rotate_manager_token", "manager token"), ("rotate_unlock_key", "unlock key")]
        .into_iter()
        .filter(|(k, _)| p.flag(k))
        .map(|(_, what)| what)
        .collect();
    post("/swarm/update")
        .query("version", version_param(p, read))
        .query("rotateWorkerToken", p.flag("rotate_worker_token"))
        .query("rotateManagerToken", p.flag("rotate_manager_token"))
        .query("rotateManagerUnlockKey", p.flag("rotate_unlock_key"))
        .json(&spec)
        .send_ok()?;
    let mut msg = "Updated the swarm".to_string();
    if !rotated.is_empty() {
        msg.push_str(&format!("; rotated the {}", rotated.join(", ")));
    }
    Ok(Output::one(msg, json!({"ID": cur["ID"], "Spec": spec, "rotated": rotated})))
}

fn unlockkey(_: &Params) -> Result<Output> {
    let v = get("/swarm/unlockkey").json_ok()?;
    let key = v["UnlockKey"].clone();
    let msg = if key.as_str().is_some_and(|k| !k.is_empty()) { "The swarm's unlock key (keep it secret)" } else { "The swarm is not autolocked: there is no unlock key" };
    Ok(Output::one(msg, json!({"unlock_key": key})))
}

fn unlock(p: &Params) -> Result<Output> {
    post("/swarm/unlock").json(&json!({"UnlockKey": p.req_str("unlock_key")?})).send_ok()?;
    Ok(Output::one("Unlocked the manager", json!({"unlocked": true})))
}

fn join_tokens(p: &Params) -> Result<Output> {
    if let Some(which) = p.str("rotate") {
        let (worker, manager) = match which {
            "worker" => (true, false),
            "manager" => (false, true),
            "both" => (true, true),
            other => return Err(Error::bad_params(format!("parameter 'rotate' must be worker, manager or both, got '{other}'"))),
        };
        let (cur, version) = versioned("/swarm")?;
        post("/swarm/update")
            .query("version", version)
            .query("rotateWorkerToken", worker)
            .query("rotateManagerToken", manager)
            .json(&cur["Spec"])
            .send_ok()?;
    }
    let v = get("/swarm").json_ok()?;
    let info = get("/info").json_ok()?;
    let addrs: Vec<Value> = info["Swarm"]["RemoteManagers"].as_array().into_iter().flatten().map(|m| m["Addr"].clone()).collect();
    let rotated = p.str("rotate").map(|w| format!(" ({w} rotated)")).unwrap_or_default();
    Ok(Output::one(
        format!("The swarm's join tokens{rotated} (keep them secret)"),
        json!({"worker": v["JoinTokens"]["Worker"], "manager": v["JoinTokens"]["Manager"], "manager_addrs": addrs}),
    ))
}
