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
            .output(&["data.*.ID", "data.*.ServiceID", "data.*.NodeID", "data.*.Status.State", "data.*.DesiredState", "summary.total_objects"])
            .ops(&["TaskList"])
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
    let v = get("/tasks").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json("tasks", &v))
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
