//! The `task` family: the 3 Task operations of the Engine API.

use berth_sdk::logs::{log_output, logs as read_logs, LogParams};
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::typed::Filters;
use berth_sdk::typed::With;

params! {
    struct List {
        filters: Option<Filters> => "Filters: desired-state, id, label, name, node, service",
    }
}

params! {
    struct Inspect {
        id: String => "Task ID",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("task.list", "List swarm tasks")
            .read_only()
            .output(&[
                "data.*.ID",
                "data.*.Name",
                "data.*.ServiceName",
                "data.*.NodeHostname",
                "data.*.ServiceID",
                "data.*.NodeID",
                "data.*.Status.State",
                "data.*.DesiredState",
                "summary.total_objects",
            ])
            .ops(&["TaskList", "ServiceList", "NodeList"])
            .typed(list),
        Action::new("task.inspect", "Inspect a swarm task")
            .read_only()
            .output(&["data.*.ID", "data.*.ServiceID", "data.*.NodeID", "data.*.Status.State", "data.*.Status.ContainerStatus.ContainerID"])
            .ops(&["TaskInspect"])
            .typed(inspect),
        log_output(Action::new("task.logs", "A task's logs, split into stdout and stderr").read_only()).ops(&["TaskLogs", "TaskInspect"]).typed(logs),
    ]
}

berth_sdk::family!(name: "task", actions: actions);

fn list(p: List) -> Result<Output> {
    let mut v = get("/tasks").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    if let Some(tasks) = v.as_array_mut() {
        name_tasks(tasks);
    }
    Ok(Output::listed_json("tasks", &v))
}

/// Names each task as `docker service ps` does: `Name` is `service.slot` (`service.node-id` for
/// a global service), with `ServiceName` and `NodeHostname` beside the IDs. One list call each
/// for the services and the nodes named; a name the engine does not give (a node list this
/// caller may not read) is left out.
fn name_tasks(tasks: &mut [Value]) {
    let ids = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = tasks.iter().filter_map(|t| t[key].as_str().map(str::to_string)).filter(|s| !s.is_empty()).collect();
        v.sort();
        v.dedup();
        v
    };
    let names = |path: &str, ids: Vec<String>, name: fn(&Value) -> Option<&str>| -> std::collections::HashMap<String, String> {
        if ids.is_empty() {
            return Default::default();
        }
        let listed = get(path).query_json("filters", Some(&json!({"id": ids}))).json_ok().unwrap_or(Value::Null);
        listed.as_array().into_iter().flatten().filter_map(|o| Some((o["ID"].as_str()?.to_string(), name(o)?.to_string()))).collect()
    };
    let services = names("/services", ids("ServiceID"), |s| s["Spec"]["Name"].as_str());
    let nodes = names("/nodes", ids("NodeID"), |n| n["Description"]["Hostname"].as_str());
    for t in tasks.iter_mut() {
        let service = t["ServiceID"].as_str().and_then(|id| services.get(id)).cloned();
        let node = t["NodeID"].as_str().and_then(|id| nodes.get(id)).cloned();
        if let Some(svc) = &service {
            let suffix = match t["Slot"].as_u64() {
                Some(slot) if slot > 0 => slot.to_string(),
                _ => t["NodeID"].as_str().unwrap_or("").to_string(),
            };
            t["Name"] = json!(format!("{svc}.{suffix}"));
            t["ServiceName"] = json!(svc);
        }
        if let Some(host) = node {
            t["NodeHostname"] = json!(host);
        }
    }
}

fn inspect(p: Inspect) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(format!("/tasks/{}", berth_sdk::seg(id))).json_ok()?;
    Ok(Output::new(format!(
        "Task {} of service {}: {} (desired {})",
        v["ID"].as_str().unwrap_or(id),
        v["ServiceID"].as_str().unwrap_or("?"),
        v["Status"]["State"].as_str().unwrap_or("?"),
        v["DesiredState"].as_str().unwrap_or("?")
    ))
    .summary("state", v["Status"]["State"].clone())
    .item(v))
}

fn logs(With(Inspect { id }, p): With<Inspect, LogParams>) -> Result<Output> {
    let id = id.as_str();
    let path = format!("/tasks/{}", berth_sdk::seg(id));
    read_logs(&p, id, &format!("{path}/logs"), |ct| {
        if let Some(mux) = berth_sdk::logs::mux_from_content_type(ct) {
            return Ok(mux);
        }
        let t = get(&path).json_ok()?;
        Ok(t["Spec"]["ContainerSpec"]["TTY"].as_bool() != Some(true))
    })
}
