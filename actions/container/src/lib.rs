//! The `container` family: every Container and Exec operation of the Engine API, the
//! composites (exec with exit code, run-to-completion, snapshot) and the Splunk SOAR aliases.

mod exec;
mod io;
mod soar;

use berth_sdk::engine::need_api;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;

fn id() -> Param {
    Param::string("id").required().describe("Container ID or name")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("container.list", "List containers")
            .read_only()
            .param(Param::bool("all").default(false).describe("Include stopped containers"))
            .param(Param::int("limit").describe("Return this many most recently created containers"))
            .param(Param::bool("size").default(false).describe("Include sizes (slower)"))
            .param(Param::any("filters").describe("Filters, e.g. {\"status\": [\"exited\"], \"label\": [\"k=v\"]}"))
            .output(&["data.*.Id", "data.*.Names", "data.*.Image", "data.*.State", "data.*.Status", "summary.total_objects"])
            .run(list),
        Action::new("container.inspect", "Low-level information on a container")
            .read_only()
            .param(id())
            .param(Param::bool("size").default(false).describe("Include SizeRw and SizeRootFs"))
            .output(&["data.*.Id", "data.*.Name", "data.*.State.Status", "data.*.Config.Image", "summary.status"])
            .run(inspect),
        create_params(Action::new("container.create", "Create a container from structured params or a full JSON body").kind(Kind::Generic))
            .output(&["data.*.Id", "data.*.Warnings", "summary.id"])
            .run(create),
        simple("start", "Start a container", Kind::Correct, &[Param::string("detach_keys").describe("Override the detach key sequence")]),
        simple("stop", "Stop a container", Kind::Contain, &[
            Param::int("t").describe("Seconds to wait before killing"),
            Param::string("signal").describe("Signal to send (API >= 1.42)"),
        ]),
        simple("restart", "Restart a container", Kind::Correct, &[
            Param::int("t").describe("Seconds to wait before killing"),
            Param::string("signal").describe("Signal to send (API >= 1.42)"),
        ]),
        simple("kill", "Send a signal to a container (default SIGKILL)", Kind::Contain, &[Param::string("signal").describe("Signal, e.g. SIGTERM or 15")]),
        simple("pause", "Pause every process in a container", Kind::Contain, &[]),
        simple("unpause", "Resume a paused container", Kind::Correct, &[]),
        Action::new("container.remove", "Remove a container")
            .kind(Kind::Correct)
            .param(id())
            .param(Param::bool("v").default(false).describe("Remove anonymous volumes too"))
            .param(Param::bool("force").default(false).describe("Kill it first if running"))
            .param(Param::bool("link").default(false).describe("Remove the link instead of the container"))
            .output(&["data.*.id", "summary.removed"])
            .run(remove),
        Action::new("container.rename", "Rename a container")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("name").required().describe("New name"))
            .output(&["data.*.id", "data.*.name"])
            .run(rename),
        Action::new("container.top", "Processes running in a container")
            .read_only()
            .param(id())
            .param(Param::string("ps_args").describe("Arguments to ps, e.g. aux"))
            .output(&["data.*.PID", "data.*.CMD", "summary.total_processes"])
            .run(top),
        Action::new("container.changes", "Filesystem changes since the container was created")
            .read_only()
            .param(id())
            .output(&["data.*.Path", "data.*.Kind", "summary.total_objects"])
            .run(changes),
        Action::new("container.wait", "Wait for a container to stop; returns its exit code")
            .param(id())
            .param(Param::string("condition").describe("not-running (default), next-exit or removed"))
            .param(Param::int("timeout").default(60).describe("Seconds to wait before giving up (the container keeps running)"))
            .output(&["data.*.StatusCode", "summary.exit_code"])
            .run(wait),
        berth_sdk::logs::log_params(Action::new("container.logs", "Container logs, split into stdout and stderr").read_only().param(id()))
            .run(io::logs),
        Action::new("container.export", "Export a container's filesystem as a tar into the `out` artifact")
            .read_only()
            .param(id())
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .run(export),
        Action::new("container.prune", "Delete stopped containers")
            .kind(Kind::Correct)
            .param(Param::any("filters").describe("Filters: until, label"))
            .output(&["data.*.ContainersDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .run(prune),
        Action::new("container.update", "Change a container's resources or restart policy")
            .kind(Kind::Correct)
            .param(id())
            .param(Param::int("memory").describe("Memory limit, bytes"))
            .param(Param::int("memory_swap").describe("Memory + swap limit, bytes; -1 for unlimited"))
            .param(Param::int("cpu_shares").describe("CPU shares"))
            .param(Param::string("restart_policy").describe("no, always, unless-stopped, on-failure[:N]"))
            .param(Param::object("body").describe("Full ContainerUpdate body; structured params override it"))
            .output(&["data.*.Warnings", "summary.id"])
            .run(update),
        Action::new("container.stats", "Resource usage: CPU %, memory, network, block I/O, pids")
            .read_only()
            .param(id())
            .param(Param::int("samples").default(1).describe("1: one sample with a CPU baseline; N: stream N samples"))
            .output(&["data.*.figures.cpu_percent", "data.*.figures.memory_usage", "data.*.figures.memory_limit", "summary.cpu_percent", "summary.memory_percent"])
            .run(io::stats),
        Action::new("container.resize", "Resize a container's TTY")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::int("h").required().describe("Height, rows"))
            .param(Param::int("w").required().describe("Width, columns"))
            .run(io::resize),
        Action::new("container.attach", "Attach to a container and collect its output until it exits or a timeout")
            .kind(Kind::Investigate)
            .param(id())
            .param(Param::bool("stdout").default(true))
            .param(Param::bool("stderr").default(true))
            .param(Param::bool("logs").default(false).describe("Replay earlier output first"))
            .param(Param::string("stdin").describe("Text written to the container's stdin, then closed"))
            .param(Param::bool("stdin_artifact").default(false).describe("Write the `in` artifact to stdin instead"))
            .param(Param::string("detach_keys"))
            .param(Param::int("timeout").default(10).describe("Seconds to collect output"))
            .output(&["data.*.stdout", "data.*.stderr", "summary.ended_by"])
            .run(io::attach),
        Action::new("container.attach-ws", "WebSocket attach: not supported; use container.attach")
            .read_only()
            .param(id())
            .run(io::attach_ws),
        Action::new("container.archive-info", "Stat a path inside a container (HEAD archive)")
            .read_only()
            .param(id())
            .param(Param::string("path").required().describe("Absolute path inside the container"))
            .output(&["data.*.name", "data.*.size", "data.*.mode", "data.*.mtime"])
            .run(io::archive_info),
        Action::new("container.archive-get", "Copy a path out of a container as a tar into the `out` artifact")
            .read_only()
            .param(id())
            .param(Param::string("path").required().describe("Absolute path inside the container"))
            .output(&["data.*.stat", "data.*.size", "data.*.sha256"])
            .run(io::archive_get),
        Action::new("container.archive-put", "Extract the `in` tar artifact into a directory of a container")
            .kind(Kind::Correct)
            .param(id())
            .param(Param::string("path").required().describe("Absolute directory inside the container"))
            .param(Param::bool("no_overwrite_dir_non_dir").describe("Refuse to replace a directory with a file or the reverse"))
            .param(Param::bool("copy_uid_gid").describe("Keep the tar's UID/GID"))
            .run(io::archive_put),
        exec_params(Action::new("exec.create", "Create an exec instance in a running container").kind(Kind::Generic))
            .param(Param::bool("attach_stdin").default(false))
            .output(&["data.*.Id", "summary.exec_id"])
            .run(exec::exec_create),
        Action::new("exec.start", "Start an exec instance and collect its output")
            .kind(Kind::Generic)
            .param(Param::string("id").required().describe("Exec ID"))
            .param(Param::bool("detach").default(false))
            .param(Param::bool("tty").default(false))
            .param(Param::string("stdin").describe("Text written to stdin, then closed"))
            .param(Param::bool("stdin_artifact").default(false).describe("Write the `in` artifact to stdin instead"))
            .param(Param::int("timeout").default(30))
            .output(&["data.*.stdout", "data.*.stderr"])
            .run(exec::exec_start),
        Action::new("exec.inspect", "Inspect an exec instance")
            .read_only()
            .param(Param::string("id").required().describe("Exec ID"))
            .output(&["data.*.ExitCode", "data.*.Running", "summary.exit_code"])
            .run(exec::exec_inspect),
        Action::new("exec.resize", "Resize an exec instance's TTY")
            .kind(Kind::Generic)
            .param(Param::string("id").required().describe("Exec ID"))
            .param(Param::int("h").required())
            .param(Param::int("w").required())
            .run(exec::exec_resize),
        exec_params(Action::new("container.exec", "Run a command in a running container; return stdout, stderr and exit code").kind(Kind::Generic))
            .param(Param::bool("fail_on_exit_code").default(false).describe("A non-zero exit code fails the action (default: success, with exit_code)"))
            .param(Param::string("stdin").describe("Text written to stdin, then closed"))
            .param(Param::bool("stdin_artifact").default(false).describe("Write the `in` artifact to stdin instead"))
            .param(Param::int("timeout").default(30).describe("Seconds the command may run"))
            .output(&["data.*.stdout", "data.*.stderr", "data.*.exit_code", "summary.exit_code"])
            .run(exec::exec),
        create_params(Action::new("container.run", "Create, start, wait for and collect the logs of a container (docker run --rm)").kind(Kind::Generic))
            .param(Param::int("timeout").default(60).describe("Seconds the container may run before it is killed"))
            .param(Param::bool("remove").default(true).describe("Remove the container afterwards"))
            .param(Param::bool("fail_on_exit_code").default(false).describe("A non-zero exit code fails the action (default: success, with exit_code)"))
            .output(&["data.*.stdout", "data.*.stderr", "data.*.exit_code", "summary.exit_code", "summary.id"])
            .run(exec::run),
        Action::new("container.snapshot", "Commit a container to an image (forensic snapshot)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("repo"))
            .param(Param::string("tag"))
            .param(Param::string("comment"))
            .param(Param::string("author"))
            .param(Param::bool("pause").default(true).describe("Pause the container while committing"))
            .param(Param::any("changes").describe("Dockerfile instructions: a list, or one per line"))
            .param(Param::object("body").describe("Container config for the image"))
            .output(&["data.*.Id", "summary.image_id"])
            .run(exec::snapshot),
    ]
    .into_iter()
    .chain(soar::actions())
    .collect()
}

fn create_params(a: Action) -> Action {
    a.param(Param::string("image").describe("Image to run (required unless the body has Image)"))
        .param(Param::string("name").describe("Container name"))
        .param(Param::string("platform").describe("Platform, e.g. linux/amd64"))
        .param(Param::any("cmd").describe("Command: a JSON array, or a string split as a shell would (quotes kept together)"))
        .param(Param::any("entrypoint").describe("Entrypoint: a JSON array, or a string split as a shell would"))
        .param(Param::any("env").describe("Environment: [\"K=V\"] or {\"K\": \"V\"}"))
        .param(Param::object("labels").describe("Labels {\"k\": \"v\"}"))
        .param(Param::int("memory").describe("Memory limit, bytes"))
        .param(Param::int("cpu_shares").describe("CPU shares (relative weight)"))
        .param(Param::string("restart_policy").describe("no, always, unless-stopped, on-failure[:N]"))
        .param(Param::array("binds").describe("Bind mounts, [\"/host:/ctr:ro\", \"volume:/data\"]"))
        .param(Param::string("network_mode").describe("bridge, host, none, container:<id> or a network name"))
        .param(Param::bool("tty").describe("Allocate a TTY"))
        .param(Param::string("user").describe("User inside the container"))
        .param(Param::string("working_dir").describe("Working directory"))
        .param(Param::object("body").describe("Full ContainerCreate body; structured params override its fields"))
}

fn exec_params(a: Action) -> Action {
    a.param(id())
        .param(Param::any("cmd").required().describe("Command: a JSON array, or a string split as a shell would (quotes kept together)"))
        .param(Param::any("env").describe("Environment: [\"K=V\"] or {\"K\": \"V\"}"))
        .param(Param::string("user"))
        .param(Param::string("working_dir"))
        .param(Param::bool("tty").default(false))
        .param(Param::bool("privileged").default(false))
        .param(Param::string("detach_keys"))
        .param(Param::object("body").describe("Full ExecConfig body; structured params override it"))
}

berth_sdk::family!(name: "container", actions: actions);

/// `POST /containers/{id}/<verb>` actions that take an id and a few query params.
fn simple(verb: &'static str, summary: &str, kind: Kind, params: &[Param]) -> Action {
    let mut a = Action::new(&format!("container.{verb}"), summary).kind(kind).param(id());
    for p in params {
        a = a.param(Param(p.0.clone()));
    }
    a.output(&["data.*.id", "data.*.changed", "summary.changed"]).run(match verb {
        "start" => |p| lifecycle(p, "start"),
        "stop" => |p| lifecycle(p, "stop"),
        "restart" => |p| lifecycle(p, "restart"),
        "kill" => |p| lifecycle(p, "kill"),
        "pause" => |p| lifecycle(p, "pause"),
        _ => |p| lifecycle(p, "unpause"),
    })
}

pub(crate) fn cpath(id: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", berth_sdk::seg(id))
}

pub(crate) fn lifecycle(p: &Params, verb: &str) -> Result<Output> {
    let id = p.req_str("id")?;
    if p.str("signal").is_some() && matches!(verb, "stop" | "restart") {
        need_api(1, 42, &format!("parameter 'signal' of container.{verb}"))?;
    }
    let r = post(cpath(id, &format!("/{verb}")))
        .query_opt("detachKeys", p.str("detach_keys"))
        .query_opt("t", p.i64("t"))
        .query_opt("signal", p.str("signal"))
        .send()?;
    // 304: already in the requested state.
    let changed = r.status != 304;
    if changed {
        r.ok()?;
    }
    let past = match verb {
        "stop" => "stopped",
        "kill" => "killed",
        "pause" => "paused",
        "unpause" => "unpaused",
        "start" => "started",
        _ => "restarted",
    };
    let msg = if changed { format!("Container {id} {past}") } else { format!("Container {id} was already {past}") };
    Ok(Output::one(msg, json!({"id": id, "changed": changed})).summary("changed", changed))
}

pub(crate) fn list(p: &Params) -> Result<Output> {
    let v = get("/containers/json")
        .query_opt("all", p.bool("all"))
        .query_opt("limit", p.i64("limit"))
        .query_opt("size", p.bool("size"))
        .query_json("filters", p.filters("filters")?.as_ref())
        .json_ok()?;
    Ok(Output::listed_json("containers", &v))
}

pub(crate) fn inspect(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(cpath(id, "/json")).query_opt("size", p.bool("size")).json_ok()?;
    let status = v["State"]["Status"].clone();
    Ok(Output::new(format!("Container {} is {}", v["Name"].as_str().unwrap_or(id).trim_start_matches('/'), status.as_str().unwrap_or("?")))
        .summary("id", v["Id"].clone())
        .summary("status", status)
        .summary("running", v["State"]["Running"].clone())
        .item(v))
}

/// A command given as a JSON array, or as a string split as a shell would.
pub(crate) fn command(p: &Params, name: &str) -> Result<Option<Value>> {
    berth_sdk::params::command_value(p.get(name), name)
}

pub(crate) fn env_list(p: &Params) -> Result<Option<Value>> {
    match p.get("env") {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(|e| e.as_str().is_some_and(|s| s.contains('='))) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::Object(m)) => Ok(Some(json!(berth_sdk::params::key_values(m)))),
        Some(_) => Err(Error::bad_params("parameter 'env' must be [\"K=V\", ...] or {\"K\": \"V\"}")),
    }
}

fn restart_policy(p: &Params) -> Result<Option<Value>> {
    let Some(s) = p.str("restart_policy") else { return Ok(None) };
    let (name, retries) = s.split_once(':').unwrap_or((s, ""));
    if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(Error::bad_params(format!(
            "parameter 'restart_policy' must be no, always, unless-stopped or on-failure[:N], got \"{s}\""
        )));
    }
    let mut v = json!({"Name": name});
    if !retries.is_empty() {
        let n: i64 = retries.parse().map_err(|_| Error::bad_params(format!("parameter 'restart_policy': bad retry count \"{retries}\"")))?;
        v["MaximumRetryCount"] = json!(n);
    }
    Ok(Some(v))
}

pub(crate) fn create(p: &Params) -> Result<Output> {
    let mut body = p.object_or_empty("body");
    set_opt(&mut body, "Image", p.str("image").map(|s| json!(s)));
    set_opt(&mut body, "Cmd", command(p, "cmd")?);
    set_opt(&mut body, "Entrypoint", command(p, "entrypoint")?);
    set_opt(&mut body, "Env", env_list(p)?);
    set_opt(&mut body, "Labels", p.get("labels").cloned());
    set_opt(&mut body, "Tty", p.bool("tty").map(Value::Bool));
    set_opt(&mut body, "User", p.str("user").map(|s| json!(s)));
    set_opt(&mut body, "WorkingDir", p.str("working_dir").map(|s| json!(s)));
    if !body.get("Image").is_some_and(Value::is_string) {
        return Err(Error::bad_params("parameter 'image' is required (or an Image in 'body')"));
    }
    let mut host = match body.remove("HostConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    set_opt(&mut host, "Memory", p.i64("memory").map(Value::from));
    set_opt(&mut host, "CpuShares", p.i64("cpu_shares").map(Value::from));
    set_opt(&mut host, "RestartPolicy", restart_policy(p)?);
    set_opt(&mut host, "Binds", p.get("binds").cloned());
    set_opt(&mut host, "NetworkMode", p.str("network_mode").map(|s| json!(s)));
    if !host.is_empty() {
        body.insert("HostConfig".into(), Value::Object(host));
    }
    let v = post("/containers/create")
        .query_opt("name", p.str("name"))
        .query_opt("platform", p.str("platform"))
        .json(&Value::Object(body))
        .json_ok()?;
    let id = v["Id"].clone();
    Ok(Output::one(format!("Created container {}", id.as_str().unwrap_or("?")), v).summary("id", id))
}

pub(crate) fn remove(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    delete(cpath(id, ""))
        .query_opt("v", p.bool("v"))
        .query_opt("force", p.bool("force"))
        .query_opt("link", p.bool("link"))
        .send_ok()?;
    Ok(Output::one(format!("Removed container {id}"), json!({"id": id})).summary("removed", true))
}

pub(crate) fn rename(p: &Params) -> Result<Output> {
    let (id, name) = (p.req_str("id")?, p.req_str("name")?);
    post(cpath(id, "/rename")).query("name", name).send_ok()?;
    Ok(Output::one(format!("Renamed container {id} to {name}"), json!({"id": id, "name": name})))
}

fn top(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(cpath(id, "/top")).query_opt("ps_args", p.str("ps_args")).json_ok()?;
    let titles: Vec<String> = v["Titles"].as_array().into_iter().flatten().map(|t| t.as_str().unwrap_or("").to_string()).collect();
    let procs: Vec<Value> = v["Processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let mut m = Map::new();
            for (i, t) in titles.iter().enumerate() {
                m.insert(t.clone(), row.get(i).cloned().unwrap_or(Value::Null));
            }
            Value::Object(m)
        })
        .collect();
    let n = procs.len();
    let mut out = Output::new(format!("{n} processes in {id}")).summary("total_processes", n).summary("titles", json!(titles));
    out.data = procs;
    Ok(out)
}

pub(crate) fn changes(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(cpath(id, "/changes")).json_ok()?;
    let list: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let code = c["Kind"].as_i64().unwrap_or(-1);
            let word = match code {
                0 => "Modified",
                1 => "Added",
                2 => "Deleted",
                _ => "Unknown",
            };
            json!({"Path": c["Path"], "Kind": word, "KindCode": code})
        })
        .collect();
    Ok(Output::listed(&format!("filesystem changes in {id}"), list))
}

fn wait(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    if let Some(c) = p.str("condition") {
        if !matches!(c, "not-running" | "next-exit" | "removed") {
            return Err(Error::bad_params(format!("parameter 'condition' must be not-running, next-exit or removed, got \"{c}\"")));
        }
    }
    let timeout = io::bounded_seconds(p, "timeout", 60)?;
    // The engine answers at once and sends the body when the condition is met: read it with
    // a deadline instead of blocking until the invocation's wall-clock cap.
    let mut stream = post(cpath(id, "/wait")).query_opt("condition", p.str("condition")).stream()?;
    let deadline = std::time::Instant::now() + timeout;
    let mut body = Vec::new();
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(Error::Engine { status: 0, message: format!("container {id} did not stop within {}s (it keeps running)", timeout.as_secs()) });
        }
        match stream.read(deadline - now)? {
            berth_sdk::stream::Read::Data(d) => body.extend(d),
            berth_sdk::stream::Read::End => break,
            berth_sdk::stream::Read::Idle => {}
        }
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| Error::internal(format!("the engine's wait answer is not JSON: {e}")))?;
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::Engine { status: 0, message: format!("waiting for {id} failed: {msg}") });
    }
    let code = v["StatusCode"].clone();
    Ok(Output::one(format!("Container {id} exited with code {code}"), v).summary("exit_code", code))
}

pub(crate) fn export(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let info = get(cpath(id, "/export")).to_artifact("out")?;
    Ok(Output::one(
        format!("Exported container {id}: {} bytes, sha256 {}", info.size, info.sha256),
        json!({"id": id, "artifact": info.name, "size": info.size, "sha256": info.sha256}),
    )
    .summary("size", info.size)
    .summary("sha256", info.sha256))
}

pub(crate) fn prune(p: &Params) -> Result<Output> {
    let v = post("/containers/prune").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::pruned(v, "ContainersDeleted", "stopped containers"))
}

pub(crate) fn update(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let mut body = p.object_or_empty("body");
    set_opt(&mut body, "Memory", p.i64("memory").map(Value::from));
    set_opt(&mut body, "MemorySwap", p.i64("memory_swap").map(Value::from));
    set_opt(&mut body, "CpuShares", p.i64("cpu_shares").map(Value::from));
    set_opt(&mut body, "RestartPolicy", restart_policy(p)?);
    if body.is_empty() {
        return Err(Error::bad_params("nothing to update: give memory, memory_swap, cpu_shares, restart_policy or body"));
    }
    let v = post(cpath(id, "/update")).json(&Value::Object(body)).json_ok()?;
    Ok(Output::one(format!("Updated container {id}"), v).summary("id", id))
}
