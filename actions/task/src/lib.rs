//! The `task` family: the 3 Task operations of the Engine API.

use berth_sdk::logs::{log_output, logs as read_logs, logs_shaped, LogParams};
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::swarm::{name_tasks, TaskLogView, TaskPrefixes};
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
        log_output(Action::new("task.logs", "A task's logs, split into stdout and stderr").read_only())
            .ops(&["TaskLogs", "TaskInspect", "ServiceList", "NodeList"])
            .typed(logs),
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

fn logs(With(Inspect { id }, With(p, view)): With<Inspect, With<LogParams, TaskLogView>>) -> Result<Output> {
    let id = id.as_str();
    let path = format!("/tasks/{}", berth_sdk::seg(id));
    let t = get(&path).json_ok()?;
    let tty = t["Spec"]["ContainerSpec"]["TTY"].as_bool() == Some(true);
    let mux = |ct: Option<&str>| Ok(berth_sdk::logs::mux_from_content_type(ct).unwrap_or(!tty));
    if view.raw || tty {
        return read_logs(&p, id, &format!("{path}/logs"), mux);
    }
    let slot = t["Slot"].as_u64().unwrap_or(0);
    let prefixes = TaskPrefixes::new(view, p.timestamps, vec![t], slot);
    logs_shaped(&p, id, &format!("{path}/logs"), mux, Some(&|b: &[u8]| prefixes.shape(b)))
}
