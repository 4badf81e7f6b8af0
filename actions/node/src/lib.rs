//! The `node` family: the 4 Node operations of the Engine API, plus `node.drain`.

use std::time::Duration;

use berth_sdk::logs::bounded;
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::swarm::{names_value, version_or, versioned, wait_for};
use berth_sdk::typed::Filters;

params! {
    struct List {
        filters: Option<Filters> => "Filters: id, label, membership, name, node.label, role",
    }
}

params! {
    struct Id {
        id: String => "Node ID or hostname",
    }
}

params! {
    struct Update {
        id: String => "Node ID or hostname",
        availability: Option<String> => "active, pause or drain",
        role: Option<String> => "worker or manager",
        name: Option<String> => "The node's name",
        labels: Option<Map<String, Value>> => "Labels to add or change",
        labels_remove: Option<Value> => "Label keys to remove (list or comma-separated), as --label-rm",
        remove_labels: Option<Value> => "The same as labels_remove",
        spec: Option<Map<String, Value>> => "A full NodeSpec (replaces the current one; structured params apply on top)",
        version: Option<i64> => "The version read before (Version.Index); the current one when absent",
    }
}

params! {
    struct Remove {
        id: String => "Node ID or hostname",
        force: bool => "Remove even if the node is still up",
    }
}

params! {
    struct Drain {
        id: String => "Node ID or hostname",
        timeout: i64 = 60 => "Seconds to wait for the node's tasks to stop",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("node.list", "List swarm nodes")
            .read_only()
            .output(&[
                "data.*.ID",
                "data.*.Description.Hostname",
                "data.*.Spec.Role",
                "data.*.Spec.Availability",
                "data.*.Status.State",
                "summary.total_objects",
            ])
            .ops(&["NodeList"])
            .typed(list),
        Action::new("node.inspect", "Inspect a swarm node")
            .read_only()
            .output(&["data.*.ID", "data.*.Description.Hostname", "data.*.Spec.Availability", "data.*.Status.State", "data.*.ManagerStatus.Leader"])
            .ops(&["NodeInspect", "SystemInfo"])
            .typed(inspect),
        Action::new("node.update", "Change a node's availability, role, name or labels")
            .kind(Kind::Generic)
            .output(&["data.*.ID", "data.*.Spec"])
            .ops(&["NodeInspect", "NodeUpdate", "SystemInfo"])
            .typed(update),
        Action::new("node.remove", "Remove a node from the swarm").kind(Kind::Correct).output(&["data.*.id"]).ops(&["NodeDelete", "SystemInfo"]).typed(remove),
        Action::new("node.drain", "Drain a node and wait until its tasks have moved or stopped")
            .kind(Kind::Contain)
            .output(&["data.*.ID", "data.*.availability", "data.*.tasks_left", "summary.tasks_left"])
            .ops(&["NodeInspect", "NodeUpdate", "TaskList", "SystemEvents", "SystemInfo"])
            .typed(drain),
    ]
}

berth_sdk::family!(name: "node", actions: actions);

/// The node's path; `self` is the node of the engine asked, as the docker CLI reads it.
fn npath(id: &str) -> Result<String> {
    if id == "self" {
        let info = get("/info").json_ok()?;
        let me = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
        if me.is_empty() {
            return Err(Error::bad_params("node 'self': this engine is not a swarm node".to_string()));
        }
        return Ok(format!("/nodes/{}", berth_sdk::seg(me)));
    }
    Ok(format!("/nodes/{}", berth_sdk::seg(id)))
}

fn list(p: List) -> Result<Output> {
    let v = get("/nodes").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json("nodes", &v))
}

fn inspect(p: Id) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(npath(id)?).json_ok()?;
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

fn one_of(v: &Option<String>, name: &str, allowed: &[&str]) -> Result<()> {
    match v.as_deref() {
        Some(v) if !allowed.contains(&v) => Err(Error::bad_params(format!("parameter '{name}' must be one of {}, got '{v}'", allowed.join(", ")))),
        _ => Ok(()),
    }
}

/// Sends the node's spec back with `change` applied, at `version` or the one just read;
/// returns (node id, new spec).
fn update_spec(id: &str, version: Option<i64>, change: impl FnOnce(&mut Value) -> Result<()>) -> Result<(String, Value)> {
    let (cur, read) = versioned(&npath(id)?)?;
    let nid = cur["ID"].as_str().unwrap_or(id).to_string();
    let mut spec = cur["Spec"].clone();
    change(&mut spec)?;
    let version = version_or(version, read);
    post(format!("{}/update", npath(&nid)?)).query("version", version).json(&spec).send_ok()?;
    Ok((nid, spec))
}

fn update(p: Update) -> Result<Output> {
    one_of(&p.availability, "availability", &["active", "pause", "drain"])?;
    one_of(&p.role, "role", &["worker", "manager"])?;
    let mut remove = names_value(p.labels_remove.as_ref(), "labels_remove")?;
    remove.extend(names_value(p.remove_labels.as_ref(), "remove_labels")?);
    let (nid, spec) = update_spec(&p.id, p.version, |spec| {
        if let Some(full) = &p.spec {
            *spec = Value::Object(full.clone());
        }
        for (field, v) in [("Availability", &p.availability), ("Role", &p.role), ("Name", &p.name)] {
            if let Some(v) = v {
                spec[field] = json!(v);
            }
        }
        if !spec["Labels"].is_object() {
            spec["Labels"] = json!({});
        }
        let labels = spec["Labels"].as_object_mut().expect("object");
        for (k, v) in p.labels.iter().flatten() {
            labels.insert(k.clone(), v.as_str().map(|s| json!(s)).unwrap_or_else(|| json!(v.to_string())));
        }
        for k in &remove {
            labels.remove(k);
        }
        Ok(())
    })?;
    Ok(Output::one(format!("Updated node {nid}"), json!({"ID": nid, "Spec": spec})))
}

fn remove(p: Remove) -> Result<Output> {
    delete(npath(&p.id)?).query("force", p.force).send_ok()?;
    Ok(Output::one(format!("Removed node {}", p.id), json!({"id": p.id})))
}

/// Tasks on `node` that still run (or are about to), whatever they were told: a task told to
/// shut down runs until its container has stopped.
fn running_on(node: &str) -> Result<Vec<Value>> {
    let filters = json!({"node": [node]});
    let tasks = get("/tasks").query("filters", filters.to_string()).json_ok()?;
    Ok(tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| matches!(t["Status"]["State"].as_str(), Some("new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" | "running")))
        .cloned()
        .collect())
}

fn drain(p: Drain) -> Result<Output> {
    let limit = bounded(p.timeout, "timeout")?;
    let (nid, _) = update_spec(&p.id, None, |spec| {
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
            message: format!(
                "node {nid} is set to drain, but {} tasks still ran on it after {}s (raise timeout, or check the tasks)",
                ids.len(),
                limit.as_secs()
            ),
        }),
    }
}
