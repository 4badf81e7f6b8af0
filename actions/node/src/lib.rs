//! The `node` family: the 4 Node operations of the Engine API, plus `node.drain`.

use std::time::Duration;

use berth_sdk::prelude::*;
use berth_sdk::swarm::{names, timeout, version_param, versioned, wait_for};

fn id() -> Param {
    Param::string("id").required().describe("Node ID or hostname")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("node.list", "List swarm nodes")
            .read_only()
            .param(Param::any("filters").describe("Filters: id, label, membership, name, node.label, role"))
            .output(&["data.*.ID", "data.*.Description.Hostname", "data.*.Spec.Role", "data.*.Spec.Availability", "data.*.Status.State", "summary.total_objects"])
            .run(list),
        Action::new("node.inspect", "Inspect a swarm node")
            .read_only()
            .param(id())
            .output(&["data.*.ID", "data.*.Description.Hostname", "data.*.Spec.Availability", "data.*.Status.State", "data.*.ManagerStatus.Leader"])
            .run(inspect),
        Action::new("node.update", "Change a node's availability, role, name or labels")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("availability").describe("active, pause or drain"))
            .param(Param::string("role").describe("worker or manager"))
            .param(Param::string("name"))
            .param(Param::object("labels").describe("Labels to add or change"))
            .param(Param::any("remove_labels").describe("Label keys to remove: a list or comma-separated"))
            .param(Param::object("spec").describe("A full NodeSpec (replaces the current one; structured params apply on top)"))
            .param(Param::int("version").describe("The version read before (Version.Index); the current one when absent"))
            .output(&["data.*.ID", "data.*.Spec"])
            .run(update),
        Action::new("node.remove", "Remove a node from the swarm")
            .kind(Kind::Correct)
            .param(id())
            .param(Param::bool("force").default(false).describe("Remove even if the node is still up"))
            .output(&["data.*.id"])
            .run(remove),
        Action::new("node.drain", "Drain a node and wait until its tasks have moved or stopped")
            .kind(Kind::Contain)
            .param(id())
            .param(Param::int("timeout").default(60).describe("Seconds to wait for the node's tasks to stop"))
            .output(&["data.*.ID", "data.*.availability", "data.*.tasks_left", "summary.tasks_left"])
            .run(drain),
    ]
}

berth_sdk::family!(name: "node", actions: actions);

fn npath(id: &str) -> String {
    format!("/nodes/{}", berth_sdk::seg(id))
}

fn list(p: &Params) -> Result<Output> {
    let v = get("/nodes").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::listed_json("nodes", &v))
}

fn inspect(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(npath(id)).json_ok()?;
    Ok(Output::new(format!(
        "Node {} ({}): {}, {}",
        v["Description"]["Hostname"].as_str().unwrap_or("?"),
        v["ID"].as_str().unwrap_or(id),
        v["Status"]["State"].as_str().unwrap_or("?"),
        v["Spec"]["Availability"].as_str().unwrap_or("?")
    ))
    .summary("state", v["Status"]["State"].clone())
    .summary("availability", v["Spec"]["Availability"].clone())
    .item(v))
}

fn one_of(p: &Params, name: &str, allowed: &[&str]) -> Result<Option<String>> {
    match p.str(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(Error::bad_params(format!("parameter '{name}' must be one of {}, got '{v}'", allowed.join(", ")))),
    }
}

/// Sends the node's spec back with `change` applied; returns (node id, new spec).
fn update_spec(p: &Params, id: &str, change: impl FnOnce(&mut Value) -> Result<()>) -> Result<(String, Value)> {
    let (cur, read) = versioned(&npath(id))?;
    let nid = cur["ID"].as_str().unwrap_or(id).to_string();
    let mut spec = cur["Spec"].clone();
    change(&mut spec)?;
    post(format!("{}/update", npath(&nid))).query("version", version_param(p, read)).json(&spec).send_ok()?;
    Ok((nid, spec))
}

fn update(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let availability = one_of(p, "availability", &["active", "pause", "drain"])?;
    let role = one_of(p, "role", &["worker", "manager"])?;
    let remove = names(p, "remove_labels")?;
    let (nid, spec) = update_spec(p, id, |spec| {
        if let Some(full) = p.get("spec") {
            if !full.is_object() {
                return Err(Error::bad_params("parameter 'spec' must be an object"));
            }
            *spec = full.clone();
        }
        if let Some(a) = &availability {
            spec["Availability"] = json!(a);
        }
        if let Some(r) = &role {
            spec["Role"] = json!(r);
        }
        if let Some(n) = p.str("name") {
            spec["Name"] = json!(n);
        }
        if !spec["Labels"].is_object() {
            spec["Labels"] = json!({});
        }
        let labels = spec["Labels"].as_object_mut().expect("object");
        if let Some(add) = p.get("labels").and_then(Value::as_object) {
            for (k, v) in add {
                labels.insert(k.clone(), v.as_str().map(|s| json!(s)).unwrap_or_else(|| json!(v.to_string())));
            }
        }
        for k in &remove {
            labels.remove(k);
        }
        Ok(())
    })?;
    Ok(Output::one(format!("Updated node {nid}"), json!({"ID": nid, "Spec": spec})))
}

fn remove(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    delete(npath(id)).query("force", p.flag("force")).send_ok()?;
    Ok(Output::one(format!("Removed node {id}"), json!({"id": id})))
}

/// Tasks on `node` that still run (or are about to).
fn running_on(node: &str) -> Result<Vec<Value>> {
    let filters = json!({"node": [node], "desired-state": ["running"]});
    let tasks = get("/tasks").query("filters", filters.to_string()).json_ok()?;
    Ok(tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| matches!(t["Status"]["State"].as_str(), Some("new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" | "running")))
        .cloned()
        .collect())
}

fn drain(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let limit = timeout(p, 60)?;
    let (nid, _) = update_spec(p, id, |spec| {
        spec["Availability"] = json!("drain");
        Ok(())
    })?;
    // The orchestrator stops a drained node's tasks and starts replacements elsewhere;
    // global services simply stop there.
    let mut left = Vec::new();
    let done = wait_for(limit, Duration::from_millis(500), || {
        left = running_on(&nid)?;
        Ok(left.is_empty().then_some(()))
    })?;
    let ids: Vec<Value> = left.iter().map(|t| t["ID"].clone()).collect();
    let item = json!({"ID": nid, "availability": "drain", "tasks_left": ids.len(), "tasks": ids});
    match done {
        Some(()) => Ok(Output::one(format!("Drained node {nid}: no tasks run on it"), item).summary("tasks_left", 0)),
        None => Err(Error::Engine {
            status: 504,
            message: format!("node {nid} is set to drain, but {} tasks still ran on it after {}s (raise timeout, or check the tasks)", ids.len(), limit.as_secs()),
        }),
    }
}
