//! The `service` family: the 6 Service operations of the Engine API, plus `service.scale`,
//! `service.rollback` and `service.wait-converged`.

use std::time::Duration;

use berth_sdk::logs::{log_params, logs as read_logs, mux_from_content_type};
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;
use berth_sdk::swarm::{merge, names, timeout, version_param, versioned, wait_for};

fn id() -> Param {
    Param::string("id").required().describe("Service ID or name")
}

/// The params that shape a service, shared by create and update.
fn spec_params(a: Action) -> Action {
    a.param(Param::string("image").describe("Image reference"))
        .param(Param::any("command").describe("Command: a list, or one string split like a shell"))
        .param(Param::any("args").describe("Arguments to the command: a list, or one string split like a shell"))
        .param(Param::any("env").describe("Environment: {\"K\": \"V\"} or [\"K=V\"]"))
        .param(Param::object("labels").describe("Service labels"))
        .param(Param::object("container_labels").describe("Labels of the service's containers"))
        .param(Param::int("replicas").describe("Replicated services: how many tasks"))
        .param(Param::any("secrets").describe("Secrets to mount: names, or name:file (list or comma-separated)"))
        .param(Param::any("configs").describe("Configs to mount: names, or name:/path (list or comma-separated)"))
        .param(Param::any("networks").describe("Networks to attach (list or comma-separated)"))
        .param(Param::array("mounts").describe("Mounts, as the engine's Mount objects"))
        .param(Param::any("constraints").describe("Placement constraints, e.g. node.role==worker"))
        .param(Param::string("restart_condition").describe("none, on-failure or any"))
        .param(Param::object("spec").describe("A ServiceSpec (merge patch on update); structured params apply on top"))
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("service.list", "List swarm services")
            .read_only()
            .param(Param::any("filters").describe("Filters: id, label, mode, name"))
            .param(Param::bool("status").default(true).describe("Include running and desired task counts"))
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.TaskTemplate.ContainerSpec.Image", "data.*.ServiceStatus.RunningTasks", "summary.total_objects"])
            .run(list),
        spec_params(
            Action::new("service.create", "Create a swarm service")
                .kind(Kind::Generic)
                .param(Param::string("name").required())
                .param(Param::string("mode").default("replicated").describe("replicated or global")),
        )
        .output(&["data.*.ID", "data.*.Warnings", "summary.id"])
        .run(create),
        Action::new("service.inspect", "Inspect a swarm service")
            .read_only()
            .param(id())
            .param(Param::bool("insert_defaults").default(false).describe("Fill in the engine's default values"))
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Mode", "data.*.Version.Index", "data.*.UpdateStatus.State"])
            .run(inspect),
        spec_params(Action::new("service.update", "Update a swarm service").kind(Kind::Generic).param(id()))
            .param(Param::bool("force").default(false).describe("Restart the tasks even if nothing changed"))
            .param(Param::int("version").describe("The version read before (Version.Index); the current one when absent"))
            .output(&["data.*.ID", "data.*.Warnings"])
            .run(update),
        Action::new("service.remove", "Remove a swarm service")
            .kind(Kind::Correct)
            .param(id())
            .output(&["data.*.id"])
            .run(remove),
        log_params(Action::new("service.logs", "A service's logs (all its tasks), split into stdout and stderr").read_only().param(id())).run(logs),
        Action::new("service.scale", "Set the number of replicas of a replicated service")
            .kind(Kind::Contain)
            .param(id())
            .param(Param::int("replicas").required())
            .param(Param::bool("wait").default(false).describe("Wait until the service has converged"))
            .param(Param::int("timeout").default(60).describe("Seconds to wait when wait=true"))
            .output(&["data.*.ID", "data.*.replicas", "data.*.previous_replicas"])
            .run(scale),
        Action::new("service.rollback", "Roll a service back to its previous spec")
            .kind(Kind::Correct)
            .param(id())
            .output(&["data.*.ID", "data.*.Warnings"])
            .run(rollback),
        Action::new("service.wait-converged", "Wait until a service's running tasks match its desired state")
            .read_only()
            .param(id())
            .param(Param::int("timeout").default(60).describe("Seconds to wait"))
            .output(&["data.*.ID", "data.*.running", "data.*.desired", "data.*.converged"])
            .run(wait_converged),
    ]
}

berth_sdk::family!(name: "service", actions: actions);

fn spath(id: &str) -> String {
    format!("/services/{}", berth_sdk::seg(id))
}

fn words(p: &Params, name: &str) -> Result<Option<Value>> {
    match p.get(name) {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::String(s)) => {
            let w = shell_words::split(s).map_err(|e| Error::bad_params(format!("parameter '{name}': {e}")))?;
            Ok(Some(json!(w)))
        }
        Some(_) => Err(Error::bad_params(format!("parameter '{name}' must be a list of strings or a string"))),
    }
}

fn env(p: &Params) -> Result<Option<Value>> {
    match p.get("env") {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::Object(m)) => Ok(Some(m.iter().map(|(k, v)| json!(format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))).collect())),
        Some(_) => Err(Error::bad_params("parameter 'env' must be {\"K\": \"V\"} or [\"K=V\"]")),
    }
}

/// `name` or `name:target` references to secrets or configs, resolved to the engine's IDs.
fn file_refs(p: &Params, param: &str, plural: &str, id_key: &str, name_key: &str) -> Result<Option<Value>> {
    let list = names(p, param)?;
    if p.get(param).is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for r in list {
        let (name, target) = r.split_once(':').map_or((r.as_str(), None), |(n, t)| (n, Some(t)));
        let obj = get(format!("/{plural}/{}", berth_sdk::seg(name)))
            .json_ok()
            .map_err(|e| Error::bad_params(format!("parameter '{param}': {name}: {e}")))?;
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

/// Applies the structured params to `spec` (a ServiceSpec).
fn apply(p: &Params, spec: &mut Value) -> Result<()> {
    if !spec.is_object() {
        return Err(Error::bad_params("parameter 'spec' must be an object"));
    }
    let obj = spec.as_object_mut().expect("object");
    set_opt(obj, "Labels", p.get("labels").cloned());
    let tt = obj.entry("TaskTemplate").or_insert_with(|| json!({}));
    let cs = tt.as_object_mut().ok_or_else(|| Error::bad_params("TaskTemplate must be an object"))?.entry("ContainerSpec").or_insert_with(|| json!({}));
    let cs = cs.as_object_mut().ok_or_else(|| Error::bad_params("TaskTemplate.ContainerSpec must be an object"))?;
    set_opt(cs, "Image", p.str("image").map(|s| json!(s)));
    set_opt(cs, "Command", words(p, "command")?);
    set_opt(cs, "Args", words(p, "args")?);
    set_opt(cs, "Env", env(p)?);
    set_opt(cs, "Labels", p.get("container_labels").cloned());
    set_opt(cs, "Secrets", file_refs(p, "secrets", "secrets", "SecretID", "SecretName")?);
    set_opt(cs, "Configs", file_refs(p, "configs", "configs", "ConfigID", "ConfigName")?);
    set_opt(cs, "Mounts", p.get("mounts").cloned());
    let tt = obj.get_mut("TaskTemplate").expect("set above");
    if p.get("networks").is_some() {
        tt["Networks"] = names(p, "networks")?.into_iter().map(|n| json!({"Target": n})).collect();
    }
    if p.get("constraints").is_some() {
        tt["Placement"]["Constraints"] = json!(names(p, "constraints")?);
    }
    if let Some(c) = p.str("restart_condition") {
        if !["none", "on-failure", "any"].contains(&c) {
            return Err(Error::bad_params(format!("parameter 'restart_condition' must be none, on-failure or any, got '{c}'")));
        }
        tt["RestartPolicy"]["Condition"] = json!(c);
    }
    if let Some(n) = p.i64("replicas") {
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

fn list(p: &Params) -> Result<Output> {
    let v = get("/services").query_json("filters", p.filters("filters")?.as_ref()).query("status", p.bool("status").unwrap_or(true)).json_ok()?;
    Ok(Output::listed_json("services", &v))
}

fn create(p: &Params) -> Result<Output> {
    let mut spec = p.get("spec").cloned().unwrap_or(json!({}));
    spec["Name"] = json!(p.req_str("name")?);
    match p.str("mode").unwrap_or("replicated") {
        "replicated" => {
            if spec.get("Mode").is_none() {
                spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
            }
        }
        "global" => spec["Mode"] = json!({"Global": {}}),
        other => return Err(Error::bad_params(format!("parameter 'mode' must be replicated or global, got '{other}'"))),
    }
    apply(p, &mut spec)?;
    let image = image_of(&spec).ok_or_else(|| Error::bad_params("parameter 'image' is required (or spec.TaskTemplate.ContainerSpec.Image)"))?.to_string();
    let v = post("/services/create").registry(registry_of(&image)).json(&spec).json_ok()?;
    let id = v["ID"].clone();
    Ok(Output::one(format!("Created service {} ({})", spec["Name"].as_str().unwrap_or("?"), id.as_str().unwrap_or("?")), v).summary("id", id))
}

fn inspect(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(spath(id)).query("insertDefaults", p.flag("insert_defaults")).json_ok()?;
    let mode = if v["Spec"]["Mode"].get("Global").is_some() { "global".to_string() } else { format!("{} replicas", v["Spec"]["Mode"]["Replicated"]["Replicas"]) };
    Ok(Output::new(format!("Service {} ({}): {mode}", v["Spec"]["Name"].as_str().unwrap_or(id), v["ID"].as_str().unwrap_or(id))).summary("id", v["ID"].clone()).item(v))
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

fn update(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let (cur, read) = versioned(&spath(id))?;
    let sid = cur["ID"].as_str().unwrap_or(id).to_string();
    let mut spec = cur["Spec"].clone();
    if let Some(patch) = p.get("spec") {
        merge(&mut spec, patch);
    }
    apply(p, &mut spec)?;
    if p.flag("force") {
        let n = spec["TaskTemplate"]["ForceUpdate"].as_u64().unwrap_or(0);
        spec["TaskTemplate"]["ForceUpdate"] = json!(n + 1);
    }
    let v = send_update(&sid, version_param(p, read), &spec, false)?;
    Ok(Output::one(format!("Updated service {}", spec["Name"].as_str().unwrap_or(id)), json!({"ID": sid, "Warnings": v["Warnings"]})))
}

fn remove(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    delete(spath(id)).send_ok()?;
    Ok(Output::one(format!("Removed service {id}"), json!({"id": id})))
}

fn logs(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    if p.get("until").is_some() {
        return Err(Error::bad_params("parameter 'until' is not supported by service logs"));
    }
    read_logs(p, id, &format!("{}/logs", spath(id)), |ct| {
        if let Some(mux) = mux_from_content_type(ct) {
            return Ok(mux);
        }
        let s = get(spath(id)).json_ok()?;
        Ok(s["Spec"]["TaskTemplate"]["ContainerSpec"]["TTY"].as_bool() != Some(true))
    })
}

fn scale(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let replicas = p.i64("replicas").ok_or_else(|| Error::bad_params("parameter 'replicas' (integer) is required"))?;
    if replicas < 0 {
        return Err(Error::bad_params("parameter 'replicas' must be 0 or more"));
    }
    let limit = timeout(p, 60)?;
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
    if p.flag("wait") {
        converge(&sid, limit)?;
    }
    Ok(Output::one(format!("Scaled service {id} from {previous} to {replicas} replicas"), item))
}

fn rollback(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
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

/// Counts (running, desired) for a service now.
fn status(sid: &str) -> Result<(u64, u64, Value)> {
    let s = get(spath(sid)).json_ok()?;
    let tasks = get("/tasks").query("filters", json!({"service": [sid], "desired-state": ["running"]}).to_string()).json_ok()?;
    let running = tasks.as_array().into_iter().flatten().filter(|t| t["Status"]["State"] == "running").count() as u64;
    let desired = match s["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64() {
        Some(n) => n,
        None => {
            // Global: one per eligible node, which is what the engine keeps as desired tasks.
            tasks.as_array().map(|a| a.len() as u64).unwrap_or(0)
        }
    };
    Ok((running, desired, s["UpdateStatus"]["State"].clone()))
}

fn converge(sid: &str, limit: Duration) -> Result<(u64, u64)> {
    let mut last = (0, 0, Value::Null);
    let done = wait_for(limit, Duration::from_millis(500), || {
        last = status(sid)?;
        let updating = matches!(last.2.as_str(), Some("updating" | "rollback_started"));
        Ok((last.0 == last.1 && !updating).then_some(()))
    })?;
    match done {
        Some(()) => Ok((last.0, last.1)),
        None => Err(Error::Engine {
            status: 504,
            message: format!("service {sid} did not converge within {}s: {} of {} tasks running{}", limit.as_secs(), last.0, last.1, last.2.as_str().map(|s| format!(", update {s}")).unwrap_or_default()),
        }),
    }
}

fn wait_converged(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let limit = timeout(p, 60)?;
    let sid = get(spath(id)).json_ok()?["ID"].as_str().unwrap_or(id).to_string();
    let (running, desired) = converge(&sid, limit)?;
    Ok(Output::one(format!("Service {id} converged: {running} of {desired} tasks running"), json!({"ID": sid, "running": running, "desired": desired, "converged": true})))
}
