//! The `service` family: the 6 Service operations of the Engine API, plus `service.scale`,
//! `service.rollback` and `service.wait-converged`.

use std::time::Duration;

use berth_sdk::logs::{bounded, log_output, logs as read_logs, logs_shaped, mux_from_content_type, LogParams};
use berth_sdk::params;
use berth_sdk::params::{command_value, key_values, set_opt};
use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;
use berth_sdk::swarm::{merge, names_value, version_or, versioned, wait_for, TaskLogView, TaskPrefixes};
use berth_sdk::typed::{Filters, With};

params! {
    /// What shapes a service: shared by create and update.
    struct Shape {
        image: Option<String> => "Image reference",
        command: Option<Value> => "Command: a list, or one string split like a shell",
        args: Option<Value> => "Arguments to the command: a list, or one string split like a shell",
        env: Option<Value> => "Environment: {\"K\": \"V\"} or [\"K=V\"]",
        labels: Option<Map<String, Value>> => "Service labels",
        container_labels: Option<Map<String, Value>> => "Labels of the service's containers",
        replicas: Option<i64> => "Replicated services: how many tasks",
        secrets: Option<Value> => "Secrets to mount: names, or name:file (list or comma-separated)",
        configs: Option<Value> => "Configs to mount: names, or name:/path (list or comma-separated)",
        networks: Option<Value> => "Networks to attach (list or comma-separated)",
        mounts: Option<Vec<Value>> => "Mounts, as the engine's Mount objects",
        constraints: Option<Value> => "Placement constraints, e.g. node.role==worker",
        restart_condition: Option<String> => "none, on-failure or any",
        spec: Option<Map<String, Value>> => "A ServiceSpec (merge patch on update); structured params apply on top",
    }
}

params! {
    struct List {
        filters: Option<Filters> => "Filters: id, label, mode, name",
        status: bool = true => "Include running and desired task counts",
    }
}

params! {
    struct Create {
        name: String => "Service name",
        mode: String = "replicated" => "replicated or global",
    }
}

params! {
    struct Inspect {
        id: String => "Service ID or name",
        insert_defaults: bool = true => "Fill in the engine's default values, as docker service inspect does (false: the spec as given)",
    }
}

params! {
    struct Update {
        id: String => "Service ID or name",
        force: bool => "Restart the tasks even if nothing changed",
        version: Option<i64> => "The version read before (Version.Index); the current one when absent",
        env_remove: Option<Value> => "Environment variables to remove (names; list or comma-separated), as --env-rm",
        labels_remove: Option<Value> => "Service labels to remove (keys), as --label-rm",
        container_labels_remove: Option<Value> => "Container labels to remove (keys), as --container-label-rm",
    }
}

params! {
    struct Id {
        id: String => "Service ID or name",
    }
}

params! {
    struct Scale {
        id: String => "Service ID or name",
        replicas: i64 => "How many tasks",
        wait: bool => "Wait until the service has converged",
        timeout: i64 = 60 => "Seconds to wait when wait=true",
    }
}

params! {
    struct Wait {
        id: String => "Service ID or name",
        timeout: i64 = 60 => "Seconds to wait",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("service.list", "List swarm services")
            .read_only()
            .output(&[
                "data.*.ID",
                "data.*.Spec.Name",
                "data.*.Spec.TaskTemplate.ContainerSpec.Image",
                "data.*.ServiceStatus.RunningTasks",
                "summary.total_objects",
            ])
            .ops(&["ServiceList"])
            .typed(list),
        Action::new("service.create", "Create a swarm service")
            .kind(Kind::Generic)
            .output(&["data.*.ID", "data.*.Warnings", "summary.id"])
            .ops(&["ServiceCreate", "SecretInspect", "ConfigInspect"])
            .typed(create),
        Action::new("service.inspect", "Inspect a swarm service")
            .read_only()
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Mode", "data.*.Version.Index", "data.*.UpdateStatus.State"])
            .ops(&["ServiceInspect"])
            .typed(inspect),
        Action::new("service.update", "Update a swarm service")
            .kind(Kind::Generic)
            .output(&["data.*.ID", "data.*.Warnings"])
            .ops(&["ServiceInspect", "ServiceUpdate", "SecretInspect", "ConfigInspect"])
            .typed(update),
        Action::new("service.remove", "Remove a swarm service").kind(Kind::Correct).output(&["data.*.id"]).ops(&["ServiceDelete"]).typed(remove),
        log_output(
            Action::new(
                "service.logs",
                "A service's logs (all its tasks), split into stdout and stderr, each line named service.slot.task@node as docker service logs names it",
            )
            .read_only(),
        )
        .ops(&["ServiceLogs", "ServiceInspect", "TaskList", "ServiceList", "NodeList"])
        .typed(logs),
        Action::new("service.scale", "Set the number of replicas of a replicated service")
            .kind(Kind::Contain)
            .output(&["data.*.ID", "data.*.replicas", "data.*.previous_replicas"])
            .ops(&["ServiceInspect", "ServiceUpdate", "TaskList", "SystemEvents"])
            .typed(scale),
        Action::new("service.rollback", "Roll a service back to its previous spec")
            .kind(Kind::Correct)
            .output(&["data.*.ID", "data.*.Warnings"])
            .ops(&["ServiceInspect", "ServiceUpdate"])
            .typed(rollback),
        Action::new("service.wait-converged", "Wait until a service's running tasks match its desired state")
            .read_only()
            .output(&["data.*.ID", "data.*.running", "data.*.desired", "data.*.converged"])
            .ops(&["ServiceInspect", "TaskList", "SystemEvents"])
            .typed(wait_converged),
    ]
}

berth_sdk::family!(name: "service", actions: actions);

fn spath(id: &str) -> String {
    format!("/services/{}", berth_sdk::seg(id))
}

fn env(v: &Option<Value>) -> Result<Option<Value>> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::Object(m)) => Ok(Some(json!(key_values(m)))),
        Some(_) => Err(Error::bad_params("parameter 'env' must be {\"K\": \"V\"} or [\"K=V\"]")),
    }
}

/// `name` or `name:target` references to secrets or configs, resolved to the engine's IDs.
fn file_refs(v: &Option<Value>, param: &str, plural: &str, id_key: &str, name_key: &str) -> Result<Option<Value>> {
    if v.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for r in names_value(v.as_ref(), param)? {
        let (name, target) = r.split_once(':').map_or((r.as_str(), None), |(n, t)| (n, Some(t)));
        let obj = get(format!("/{plural}/{}", berth_sdk::seg(name))).json_ok().map_err(|e| Error::bad_params(format!("parameter '{param}': {name}: {e}")))?;
        // Secrets go under /run/secrets/ by file name; configs at an absolute path, by
        // default /<name>, as the docker CLI places them.
        let file = match (target, plural) {
            (Some(t), "configs") if !t.starts_with('/') => format!("/{t}"),
            (Some(t), _) => t.to_string(),
            (None, "configs") => format!("/{name}"),
            (None, _) => name.to_string(),
        };
        out.push(json!({
            id_key: obj["ID"],
            name_key: obj["Spec"]["Name"],
            "File": {"Name": file, "UID": "0", "GID": "0", "Mode": 0o444},
        }));
    }
    Ok(Some(Value::Array(out)))
}

/// Applies the shape params to `spec` (a ServiceSpec).
fn apply(p: &Shape, spec: &mut Value) -> Result<()> {
    if !spec.is_object() {
        return Err(Error::bad_params("parameter 'spec' must be an object"));
    }
    let obj = spec.as_object_mut().expect("object");
    set_opt(obj, "Labels", p.labels.clone().map(Value::Object));
    let tt = obj.entry("TaskTemplate").or_insert_with(|| json!({}));
    let cs = tt.as_object_mut().ok_or_else(|| Error::bad_params("TaskTemplate must be an object"))?.entry("ContainerSpec").or_insert_with(|| json!({}));
    let cs = cs.as_object_mut().ok_or_else(|| Error::bad_params("TaskTemplate.ContainerSpec must be an object"))?;
    set_opt(cs, "Image", p.image.clone().map(Value::String));
    set_opt(cs, "Command", command_value(p.command.as_ref(), "command")?);
    set_opt(cs, "Args", command_value(p.args.as_ref(), "args")?);
    set_opt(cs, "Env", env(&p.env)?);
    set_opt(cs, "Labels", p.container_labels.clone().map(Value::Object));
    set_opt(cs, "Secrets", file_refs(&p.secrets, "secrets", "secrets", "SecretID", "SecretName")?);
    set_opt(cs, "Configs", file_refs(&p.configs, "configs", "configs", "ConfigID", "ConfigName")?);
    set_opt(cs, "Mounts", p.mounts.clone().map(Value::Array));
    let tt = obj.get_mut("TaskTemplate").expect("set above");
    if p.networks.is_some() {
        tt["Networks"] = names_value(p.networks.as_ref(), "networks")?.into_iter().map(|n| json!({"Target": n})).collect();
    }
    if p.constraints.is_some() {
        tt["Placement"]["Constraints"] = json!(names_value(p.constraints.as_ref(), "constraints")?);
    }
    if let Some(c) = &p.restart_condition {
        if !["none", "on-failure", "any"].contains(&c.as_str()) {
            return Err(Error::bad_params(format!("parameter 'restart_condition' must be none, on-failure or any, got '{c}'")));
        }
        tt["RestartPolicy"]["Condition"] = json!(c);
    }
    if let Some(n) = p.replicas {
        if n < 0 {
            return Err(Error::bad_params("parameter 'replicas' must be 0 or more"));
        }
        if spec["Mode"].get("Global").is_some() {
            return Err(Error::bad_params("parameter 'replicas' applies to replicated services; this one is global"));
        }
        spec["Mode"] = json!({"Replicated": {"Replicas": n}});
    }
    Ok(())
}

fn image_of(spec: &Value) -> Option<&str> {
    spec["TaskTemplate"]["ContainerSpec"]["Image"].as_str()
}

fn list(p: List) -> Result<Output> {
    let v = get("/services").query_json("filters", Filters::as_query(&p.filters)).query("status", p.status).json_ok()?;
    Ok(Output::listed_json("services", &v))
}

fn create(With(p, shape): With<Create, Shape>) -> Result<Output> {
    let mut spec = Value::Object(shape.spec.clone().unwrap_or_default());
    spec["Name"] = json!(p.name);
    match p.mode.as_str() {
        "replicated" => {
            if spec.get("Mode").is_none() {
                spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
            }
        }
        "global" => spec["Mode"] = json!({"Global": {}}),
        other => return Err(Error::bad_params(format!("parameter 'mode' must be replicated or global, got '{other}'"))),
    }
    apply(&shape, &mut spec)?;
    let image = image_of(&spec).ok_or_else(|| Error::bad_params("parameter 'image' is required (or spec.TaskTemplate.ContainerSpec.Image)"))?.to_string();
    let v = post("/services/create").registry(registry_of(&image)).json(&spec).json_ok()?;
    let id = v["ID"].clone();
    Ok(Output::one(format!("Created service {} ({})", spec["Name"].as_str().unwrap_or("?"), id.as_str().unwrap_or("?")), v).summary("id", id))
}

fn inspect(p: Inspect) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(spath(id)).query("insertDefaults", p.insert_defaults).json_ok()?;
    let mode =
        if v["Spec"]["Mode"].get("Global").is_some() { "global".to_string() } else { format!("{} replicas", v["Spec"]["Mode"]["Replicated"]["Replicas"]) };
    Ok(Output::new(format!("Service {} ({}): {mode}", v["Spec"]["Name"].as_str().unwrap_or(id), v["ID"].as_str().unwrap_or(id)))
        .summary("id", v["ID"].clone())
        .item(v))
}

/// Sends `spec` as the new spec of `sid`, read at `version`.
fn send_update(sid: &str, version: u64, spec: &Value, rollback: bool) -> Result<Value> {
    let mut req = post(format!("{}/update", spath(sid))).query("version", version);
    if rollback {
        req = req.query("rollback", "previous");
    }
    if let Some(image) = image_of(spec) {
        req = req.registry(registry_of(image));
    }
    req.json(spec).json_ok()
}

fn update(With(p, shape): With<Update, Shape>) -> Result<Output> {
    let id = p.id.as_str();
    let (cur, read) = versioned(&spath(id))?;
    let sid = cur["ID"].as_str().unwrap_or(id).to_string();
    let mut spec = cur["Spec"].clone();
    if let Some(patch) = &shape.spec {
        merge(&mut spec, &Value::Object(patch.clone()));
    }
    // Env and labels are added to what the service has, as the docker CLI's --env-add and
    // --label-add do; removing takes the *_remove params.
    let held = spec.clone();
    apply(&shape, &mut spec)?;
    let cs = |v: &Value| v["TaskTemplate"]["ContainerSpec"].clone();
    spec["TaskTemplate"]["ContainerSpec"]["Env"] =
        merged_env(&cs(&held)["Env"], &cs(&spec)["Env"], shape.env.is_some(), &names_value(p.env_remove.as_ref(), "env_remove")?);
    spec["Labels"] = merged_labels(&held["Labels"], &spec["Labels"], shape.labels.is_some(), &names_value(p.labels_remove.as_ref(), "labels_remove")?);
    spec["TaskTemplate"]["ContainerSpec"]["Labels"] = merged_labels(
        &cs(&held)["Labels"],
        &cs(&spec)["Labels"],
        shape.container_labels.is_some(),
        &names_value(p.container_labels_remove.as_ref(), "container_labels_remove")?,
    );
    for k in ["Env", "Labels"] {
        if spec["TaskTemplate"]["ContainerSpec"][k].is_null() {
            spec["TaskTemplate"]["ContainerSpec"].as_object_mut().map(|o| o.remove(k));
        }
    }
    if spec["Labels"].is_null() {
        spec.as_object_mut().map(|o| o.remove("Labels"));
    }
    if p.force {
        let n = spec["TaskTemplate"]["ForceUpdate"].as_u64().unwrap_or(0);
        spec["TaskTemplate"]["ForceUpdate"] = json!(n + 1);
    }
    let version = version_or(p.version, read);
    let v = send_update(&sid, version, &spec, false)?;
    Ok(Output::one(format!("Updated service {}", spec["Name"].as_str().unwrap_or(id)), json!({"ID": sid, "Warnings": v["Warnings"]})))
}

/// `K=V` entries: those `held`, less the names `remove`d and those `given` anew, then the
/// given ones (when `add`), in order.
fn merged_env(held: &Value, given: &Value, add: bool, remove: &[String]) -> Value {
    let name = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let given: Vec<String> = if add { given.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect() } else { Vec::new() };
    let mut out: Vec<String> = held
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|e| !remove.contains(&name(e)) && !given.iter().any(|g| name(g) == name(e)))
        .map(str::to_string)
        .collect();
    out.extend(given);
    if out.is_empty() {
        Value::Null
    } else {
        json!(out)
    }
}

/// Labels `held`, less the keys `remove`d, with those `given` (when `add`) set.
fn merged_labels(held: &Value, given: &Value, add: bool, remove: &[String]) -> Value {
    let mut out = held.as_object().cloned().unwrap_or_default();
    out.retain(|k, _| !remove.contains(k));
    if add {
        for (k, v) in given.as_object().into_iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

fn remove(p: Id) -> Result<Output> {
    delete(spath(&p.id)).send_ok()?;
    Ok(Output::one(format!("Removed service {}", p.id), json!({"id": p.id})))
}

fn logs(With(Id { id }, With(p, view)): With<Id, With<LogParams, TaskLogView>>) -> Result<Output> {
    let id = id.as_str();
    if p.until.is_some() {
        return Err(Error::bad_params("parameter 'until' is not supported by service logs"));
    }
    let s = get(spath(id)).json_ok()?;
    // Raw: the lines as the engine sends them. A TTY's output is one raw stream, without the
    // details that name each line's task.
    let tty = s["Spec"]["TaskTemplate"]["ContainerSpec"]["TTY"].as_bool() == Some(true);
    let mux = |ct: Option<&str>| Ok(mux_from_content_type(ct).unwrap_or(!tty));
    if view.raw || tty {
        return read_logs(&p, id, &format!("{}/logs", spath(id)), mux);
    }
    let sid = s["ID"].as_str().unwrap_or(id);
    let tasks = get("/tasks").query_json("filters", Some(&json!({"service": [sid]}))).json_ok()?;
    let replicas = s["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64().unwrap_or(1);
    let prefixes = TaskPrefixes::new(view, p.timestamps, tasks.as_array().cloned().unwrap_or_default(), replicas);
    logs_shaped(&p, id, &format!("{}/logs", spath(id)), mux, Some(&|b: &[u8]| prefixes.shape(b)))
}

fn scale(p: Scale) -> Result<Output> {
    let (id, replicas) = (p.id.as_str(), p.replicas);
    if replicas < 0 {
        return Err(Error::bad_params("parameter 'replicas' must be 0 or more"));
    }
    let limit = bounded(p.timeout, "timeout")?;
    let (cur, version) = versioned(&spath(id))?;
    let sid = cur["ID"].as_str().unwrap_or(id).to_string();
    let mut spec = cur["Spec"].clone();
    let previous = spec["Mode"]["Replicated"]["Replicas"].clone();
    if previous.is_null() {
        return Err(Error::bad_params(format!("service {id} is global: only replicated services scale")));
    }
    spec["Mode"]["Replicated"]["Replicas"] = json!(replicas);
    send_update(&sid, version, &spec, false)?;
    let item = json!({"ID": sid, "replicas": replicas, "previous_replicas": previous});
    if p.wait {
        converge(&sid, limit)?;
    }
    Ok(Output::one(format!("Scaled service {id} from {previous} to {replicas} replicas"), item))
}

fn rollback(p: Id) -> Result<Output> {
    let id = p.id.as_str();
    let (cur, version) = versioned(&spath(id))?;
    if cur["PreviousSpec"].is_null() {
        return Err(Error::Engine { status: 409, message: format!("service {id} has no previous spec to roll back to") });
    }
    let sid = cur["ID"].as_str().unwrap_or(id).to_string();
    // The engine takes the spec to send from PreviousSpec itself with rollback=previous; the
    // body must still be a valid spec.
    let v = send_update(&sid, version, &cur["Spec"], true)?;
    Ok(Output::one(format!("Rolling service {id} back to its previous spec"), json!({"ID": sid, "Warnings": v["Warnings"]})))
}

/// A service's tasks now, as the engine observes them.
struct Status {
    /// Tasks meant to run that run.
    running: u64,
    /// Tasks the spec asks for.
    desired: u64,
    /// Tasks told to stop that still run (a scale-down or an update not finished).
    stopping: u64,
    /// `UpdateStatus.State`.
    update: Value,
}

fn status(sid: &str) -> Result<Status> {
    let s = get(spath(sid)).json_ok()?;
    let tasks = get("/tasks").query("filters", json!({"service": [sid]}).to_string()).json_ok()?;
    let tasks = tasks.as_array().map(Vec::as_slice).unwrap_or_default();
    let meant = |t: &&Value| t["DesiredState"] == "running";
    let runs = |t: &&Value| matches!(t["Status"]["State"].as_str(), Some("running" | "starting"));
    let running = tasks.iter().filter(|t| meant(t) && t["Status"]["State"] == "running").count() as u64;
    let stopping = tasks.iter().filter(|t| !meant(t) && runs(t)).count() as u64;
    // Global: one per eligible node, which is what the engine keeps as desired tasks.
    let desired = s["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64().unwrap_or_else(|| tasks.iter().filter(meant).count() as u64);
    Ok(Status { running, desired, stopping, update: s["UpdateStatus"]["State"].clone() })
}

/// Waits until the tasks the spec asks for run, none told to stop still runs, and no update
/// is in flight; or fails at `limit` naming what is left.
fn converge(sid: &str, limit: Duration) -> Result<(u64, u64)> {
    let mut last = Status { running: 0, desired: 0, stopping: 0, update: Value::Null };
    let done = wait_for(limit, Duration::from_millis(500), || {
        last = status(sid)?;
        let updating = matches!(last.update.as_str(), Some("updating" | "rollback_started"));
        Ok((last.running == last.desired && last.stopping == 0 && !updating).then_some(()))
    })?;
    match done {
        Some(()) => Ok((last.running, last.desired)),
        None => Err(Error::Engine {
            status: 504,
            message: format!(
                "service {sid} did not converge within {}s: {} of {} tasks running, {} told to stop still running{}",
                limit.as_secs(),
                last.running,
                last.desired,
                last.stopping,
                last.update.as_str().map(|s| format!(", update {s}")).unwrap_or_default()
            ),
        }),
    }
}

fn wait_converged(p: Wait) -> Result<Output> {
    let id = p.id.as_str();
    let limit = bounded(p.timeout, "timeout")?;
    let sid = get(spath(id)).json_ok()?["ID"].as_str().unwrap_or(id).to_string();
    let (running, desired) = converge(&sid, limit)?;
    Ok(Output::one(
        format!("Service {id} converged: {running} of {desired} tasks running"),
        json!({"ID": sid, "running": running, "desired": desired, "converged": true}),
    ))
}
