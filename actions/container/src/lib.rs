//! The `container` family: every Container and Exec operation of the Engine API, the
//! composites (exec with exit code, run-to-completion, snapshot) and the Splunk SOAR aliases,
//! on typed params.

mod exec;
mod io;
mod soar;

use berth_sdk::engine::need_api;
use berth_sdk::logs::log_output;
use berth_sdk::params;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;
use berth_sdk::typed::Filters;

params! {
    pub(crate) struct List {
        all: bool => "Include stopped containers",
        limit: Option<i64> => "Return this many most recently created containers",
        size: bool => "Include sizes (slower)",
        filters: Option<Filters> => "Filters, e.g. {\"status\": [\"exited\"], \"label\": [\"k=v\"]}",
    }
}

params! {
    pub(crate) struct Inspect {
        id: String => "Container ID or name",
        size: bool => "Include SizeRw and SizeRootFs",
    }
}

params! {
    pub(crate) struct Id {
        id: String => "Container ID or name",
    }
}

params! {
    /// The shape of a container: `container.create` and `container.run`.
    #[derive(Default)]
    pub(crate) struct Create {
        image: Option<String> => "Image to run (required unless the body has Image)",
        name: Option<String> => "Container name",
        platform: Option<String> => "Platform, e.g. linux/amd64",
        cmd: Option<Value> => "Command: a JSON array, or a string split as a shell would (quotes kept together)",
        entrypoint: Option<Value> => "Entrypoint: a JSON array, or a string split as a shell would",
        env: Option<Value> => "Environment: [\"K=V\"] or {\"K\": \"V\"}",
        labels: Option<Map<String, Value>> => "Labels {\"k\": \"v\"}",
        memory: Option<i64> => "Memory limit, bytes",
        cpu_shares: Option<i64> => "CPU shares (relative weight)",
        restart_policy: Option<String> => "no, always, unless-stopped, on-failure[:N]",
        binds: Option<Vec<Value>> => "Bind mounts, [\"/host:/ctr:ro\", \"volume:/data\"]",
        network_mode: Option<String> => "bridge, host, none, container:<id> or a network name",
        tty: Option<bool> => "Allocate a TTY",
        user: Option<String> => "User inside the container",
        working_dir: Option<String> => "Working directory",
        body: Option<Map<String, Value>> => "Full ContainerCreate body; structured params override its fields",
    }
}

params! {
    struct Start {
        id: String => "Container ID or name",
        detach_keys: Option<String> => "Override the detach key sequence",
    }
}

params! {
    struct Stop {
        id: String => "Container ID or name",
        t: Option<i64> => "Seconds to wait before killing",
        signal: Option<String> => "Signal to send (API >= 1.42)",
    }
}

params! {
    struct KillParams {
        id: String => "Container ID or name",
        signal: Option<String> => "Signal, e.g. SIGTERM or 15",
    }
}

params! {
    pub(crate) struct Remove {
        id: String => "Container ID or name",
        v: bool => "Remove anonymous volumes too",
        force: bool => "Kill it first if running",
        link: bool => "Remove the link instead of the container",
    }
}

params! {
    pub(crate) struct Rename {
        id: String => "Container ID or name",
        name: String => "New name",
    }
}

params! {
    struct Top {
        id: String => "Container ID or name",
        ps_args: Option<String> => "Arguments to ps, e.g. aux",
    }
}

params! {
    struct Wait {
        id: String => "Container ID or name",
        condition: Option<String> => "not-running (default), next-exit or removed",
        timeout: i64 = 60 => "Seconds to wait before giving up (the container keeps running)",
    }
}

params! {
    pub(crate) struct Prune {
        filters: Option<Filters> => "Filters: until, label",
    }
}

params! {
    #[derive(Default)]
    pub(crate) struct Update {
        id: String => "Container ID or name",
        memory: Option<i64> => "Memory limit, bytes",
        memory_swap: Option<i64> => "Memory + swap limit, bytes; -1 for unlimited",
        cpu_shares: Option<i64> => "CPU shares",
        restart_policy: Option<String> => "no, always, unless-stopped, on-failure[:N]",
        body: Option<Map<String, Value>> => "Full ContainerUpdate body; structured params override it",
    }
}

params! {
    pub(crate) struct Stats {
        id: String => "Container ID or name",
        samples: i64 = 1 => "1: one sample with a CPU baseline; N: stream N samples",
    }
}

params! {
    pub(crate) struct Resize {
        id: String => "Container ID or name",
        h: i64 => "Height, rows",
        w: i64 => "Width, columns",
    }
}

params! {
    pub(crate) struct Attach {
        id: String => "Container ID or name",
        stdout: bool = true => "",
        stderr: bool = true => "",
        logs: bool => "Replay earlier output first",
        stdin: Option<String> => "Text written to the container's stdin, then closed",
        stdin_artifact: bool => "Write the `in` artifact to stdin instead",
        detach_keys: Option<String> => "",
        timeout: i64 = 10 => "Seconds to collect output",
    }
}

params! {
    pub(crate) struct ArchivePath {
        id: String => "Container ID or name",
        path: String => "Absolute path inside the container",
    }
}

params! {
    pub(crate) struct ArchivePut {
        id: String => "Container ID or name",
        path: String => "Absolute directory inside the container",
        no_overwrite_dir_non_dir: Option<bool> => "Refuse to replace a directory with a file or the reverse",
        copy_uid_gid: Option<bool> => "Keep the tar's UID/GID",
    }
}

fn actions() -> Vec<Action> {
    let changed = ["data.*.id", "data.*.changed", "summary.changed"];
    vec![
        Action::new("container.list", "List containers")
            .read_only()
            .output(&["data.*.Id", "data.*.Names", "data.*.Image", "data.*.State", "data.*.Status", "summary.total_objects"])
            .ops(&["ContainerList"])
            .typed(list),
        Action::new("container.inspect", "Low-level information on a container")
            .read_only()
            .output(&["data.*.Id", "data.*.Name", "data.*.State.Status", "data.*.Config.Image", "summary.status"])
            .ops(&["ContainerInspect"])
            .typed(inspect),
        Action::new("container.create", "Create a container from structured params or a full JSON body")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "data.*.Warnings", "summary.id"])
            .ops(&["ContainerCreate"])
            .typed(create),
        Action::new("container.start", "Start a container")
            .kind(Kind::Correct)
            .output(&changed)
            .ops(&["ContainerStart"])
            .typed(|p: Start| lifecycle(Lifecycle { id: p.id, detach_keys: p.detach_keys, ..Default::default() }, "start")),
        Action::new("container.stop", "Stop a container")
            .kind(Kind::Contain)
            .output(&changed)
            .ops(&["ContainerStop"])
            .typed(|p: Stop| lifecycle(Lifecycle { id: p.id, t: p.t, signal: p.signal, ..Default::default() }, "stop")),
        Action::new("container.restart", "Restart a container")
            .kind(Kind::Correct)
            .output(&changed)
            .ops(&["ContainerRestart"])
            .typed(|p: Stop| lifecycle(Lifecycle { id: p.id, t: p.t, signal: p.signal, ..Default::default() }, "restart")),
        Action::new("container.kill", "Send a signal to a container (default SIGKILL)")
            .kind(Kind::Contain)
            .output(&changed)
            .ops(&["ContainerKill"])
            .typed(|p: KillParams| lifecycle(Lifecycle { id: p.id, signal: p.signal, ..Default::default() }, "kill")),
        Action::new("container.pause", "Pause every process in a container")
            .kind(Kind::Contain)
            .output(&changed)
            .ops(&["ContainerPause"])
            .typed(|p: Id| lifecycle(Lifecycle { id: p.id, ..Default::default() }, "pause")),
        Action::new("container.unpause", "Resume a paused container")
            .kind(Kind::Correct)
            .output(&changed)
            .ops(&["ContainerUnpause"])
            .typed(|p: Id| lifecycle(Lifecycle { id: p.id, ..Default::default() }, "unpause")),
        Action::new("container.remove", "Remove a container")
            .kind(Kind::Correct)
            .output(&["data.*.id", "summary.removed"])
            .ops(&["ContainerDelete"])
            .typed(remove),
        Action::new("container.rename", "Rename a container").kind(Kind::Generic).output(&["data.*.id", "data.*.name"]).ops(&["ContainerRename"]).typed(rename),
        Action::new("container.top", "Processes running in a container")
            .read_only()
            .output(&["data.*.PID", "data.*.CMD", "summary.total_processes"])
            .ops(&["ContainerTop"])
            .typed(top),
        Action::new("container.changes", "Filesystem changes since the container was created")
            .read_only()
            .output(&["data.*.Path", "data.*.Kind", "summary.total_objects"])
            .ops(&["ContainerChanges"])
            .typed(changes),
        Action::new("container.wait", "Wait for a container to stop; returns its exit code")
            .output(&["data.*.StatusCode", "summary.exit_code"])
            .ops(&["ContainerWait"])
            .typed(wait),
        log_output(Action::new("container.logs", "Container logs, split into stdout and stderr").read_only())
            .ops(&["ContainerLogs", "ContainerInspect"])
            .typed(io::logs),
        Action::new("container.export", "Export a container's filesystem as a tar into the `out` artifact")
            .read_only()
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .ops(&["ContainerExport"])
            .typed(export),
        Action::new("container.prune", "Delete stopped containers")
            .kind(Kind::Correct)
            .output(&["data.*.ContainersDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .ops(&["ContainerPrune"])
            .typed(prune),
        Action::new("container.update", "Change a container's resources or restart policy")
            .kind(Kind::Correct)
            .output(&["data.*.Warnings", "summary.id"])
            .ops(&["ContainerUpdate"])
            .typed(update),
        Action::new("container.stats", "Resource usage: CPU %, memory, network, block I/O, pids")
            .read_only()
            .output(&[
                "data.*.figures.cpu_percent",
                "data.*.figures.memory_usage",
                "data.*.figures.memory_limit",
                "summary.cpu_percent",
                "summary.memory_percent",
            ])
            .ops(&["ContainerStats"])
            .typed(io::stats),
        Action::new("container.resize", "Resize a container's TTY").kind(Kind::Generic).ops(&["ContainerResize"]).typed(io::resize),
        Action::new("container.attach", "Attach to a container and collect its output until it exits or a timeout")
            .kind(Kind::Investigate)
            .output(&["data.*.stdout", "data.*.stderr", "summary.ended_by"])
            .ops(&["ContainerInspect", "ContainerAttach"])
            .typed(io::attach),
        Action::new("container.attach-ws", "WebSocket attach: not supported; use container.attach")
            .read_only()
            .ops(&["ContainerAttachWebsocket"])
            .typed(io::attach_ws),
        Action::new("container.archive-info", "Stat a path inside a container (HEAD archive)")
            .read_only()
            .output(&["data.*.name", "data.*.size", "data.*.mode", "data.*.mtime"])
            .ops(&["ContainerArchiveInfo"])
            .typed(io::archive_info),
        Action::new("container.archive-get", "Copy a path out of a container as a tar into the `out` artifact")
            .read_only()
            .output(&["data.*.stat", "data.*.size", "data.*.sha256"])
            .ops(&["ContainerArchive"])
            .typed(io::archive_get),
        Action::new("container.archive-put", "Extract the `in` tar artifact into a directory of a container")
            .kind(Kind::Correct)
            .ops(&["PutContainerArchive"])
            .typed(io::archive_put),
        Action::new("exec.create", "Create an exec instance in a running container")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "summary.exec_id"])
            .ops(&["ContainerExec"])
            .typed(exec::exec_create),
        Action::new("exec.start", "Start an exec instance and collect its output")
            .kind(Kind::Generic)
            .output(&["data.*.stdout", "data.*.stderr"])
            .ops(&["ExecStart"])
            .typed(exec::exec_start),
        Action::new("exec.inspect", "Inspect an exec instance")
            .read_only()
            .output(&["data.*.ExitCode", "data.*.Running", "summary.exit_code"])
            .ops(&["ExecInspect"])
            .typed(exec::exec_inspect),
        Action::new("exec.resize", "Resize an exec instance's TTY").kind(Kind::Generic).ops(&["ExecResize"]).typed(exec::exec_resize),
        Action::new("container.exec", "Run a command in a running container; return stdout, stderr and exit code")
            .kind(Kind::Generic)
            .output(&["data.*.stdout", "data.*.stderr", "data.*.exit_code", "summary.exit_code"])
            .ops(&["ContainerExec", "ExecStart", "ExecInspect"])
            .typed(exec::exec),
        Action::new("container.run", "Create, start, wait for and collect the logs of a container (docker run --rm)")
            .kind(Kind::Generic)
            .output(&["data.*.stdout", "data.*.stderr", "data.*.exit_code", "summary.exit_code", "summary.id"])
            .ops(&["ContainerCreate", "ContainerWait", "ContainerStart", "ContainerKill", "ContainerInspect", "ContainerLogs", "ContainerDelete"])
            .typed(exec::run),
        Action::new("container.snapshot", "Commit a container to an image (forensic snapshot)")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "summary.image_id"])
            .ops(&["ImageCommit"])
            .typed(exec::snapshot),
    ]
    .into_iter()
    .chain(soar::actions())
    .collect()
}

berth_sdk::family!(name: "container", actions: actions);

/// What a lifecycle verb (start, stop, restart, kill, pause, unpause) sends.
#[derive(Default)]
pub(crate) struct Lifecycle {
    pub id: String,
    pub t: Option<i64>,
    pub signal: Option<String>,
    pub detach_keys: Option<String>,
}

pub(crate) fn cpath(id: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", berth_sdk::seg(id))
}

pub(crate) fn lifecycle(p: Lifecycle, verb: &str) -> Result<Output> {
    let id = p.id.as_str();
    if p.signal.is_some() && matches!(verb, "stop" | "restart") {
        need_api(1, 42, &format!("parameter 'signal' of container.{verb}"))?;
    }
    let r = post(cpath(id, &format!("/{verb}")))
        .query_opt("detachKeys", p.detach_keys.as_deref())
        .query_opt("t", p.t)
        .query_opt("signal", p.signal.as_deref())
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

pub(crate) fn list(p: List) -> Result<Output> {
    let v = get("/containers/json")
        .query("all", p.all)
        .query_opt("limit", p.limit)
        .query("size", p.size)
        .query_json("filters", Filters::as_query(&p.filters))
        .json_ok()?;
    Ok(Output::listed_json("containers", &v))
}

pub(crate) fn inspect(p: Inspect) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(cpath(id, "/json")).query("size", p.size).json_ok()?;
    let status = v["State"]["Status"].clone();
    Ok(Output::new(format!("Container {} is {}", v["Name"].as_str().unwrap_or(id).trim_start_matches('/'), status.as_str().unwrap_or("?")))
        .summary("id", v["Id"].clone())
        .summary("status", status)
        .summary("running", v["State"]["Running"].clone())
        .item(v))
}

/// A command given as a JSON array, or as a string split as a shell would.
pub(crate) fn command(v: Option<&Value>, name: &str) -> Result<Option<Value>> {
    berth_sdk::params::command_value(v, name)
}

pub(crate) fn env_list(env: Option<&Value>) -> Result<Option<Value>> {
    match env {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.iter().all(|e| e.as_str().is_some_and(|s| s.contains('='))) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::Object(m)) => Ok(Some(json!(berth_sdk::params::key_values(m)))),
        Some(_) => Err(Error::bad_params("parameter 'env' must be [\"K=V\", ...] or {\"K\": \"V\"}")),
    }
}

fn restart_policy(s: Option<&str>) -> Result<Option<Value>> {
    let Some(s) = s else { return Ok(None) };
    let (name, retries) = s.split_once(':').unwrap_or((s, ""));
    if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(Error::bad_params(format!("parameter 'restart_policy' must be no, always, unless-stopped or on-failure[:N], got \"{s}\"")));
    }
    let mut v = json!({"Name": name});
    if !retries.is_empty() {
        let n: i64 = retries.parse().map_err(|_| Error::bad_params(format!("parameter 'restart_policy': bad retry count \"{retries}\"")))?;
        v["MaximumRetryCount"] = json!(n);
    }
    Ok(Some(v))
}

pub(crate) fn create(p: Create) -> Result<Output> {
    let mut body = p.body.unwrap_or_default();
    set_opt(&mut body, "Image", p.image.map(Value::String));
    set_opt(&mut body, "Cmd", command(p.cmd.as_ref(), "cmd")?);
    set_opt(&mut body, "Entrypoint", command(p.entrypoint.as_ref(), "entrypoint")?);
    set_opt(&mut body, "Env", env_list(p.env.as_ref())?);
    set_opt(&mut body, "Labels", p.labels.map(Value::Object));
    set_opt(&mut body, "Tty", p.tty.map(Value::Bool));
    set_opt(&mut body, "User", p.user.map(Value::String));
    set_opt(&mut body, "WorkingDir", p.working_dir.map(Value::String));
    if !body.get("Image").is_some_and(Value::is_string) {
        return Err(Error::bad_params("parameter 'image' is required (or an Image in 'body')"));
    }
    let mut host = match body.remove("HostConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    set_opt(&mut host, "Memory", p.memory.map(Value::from));
    set_opt(&mut host, "CpuShares", p.cpu_shares.map(Value::from));
    set_opt(&mut host, "RestartPolicy", restart_policy(p.restart_policy.as_deref())?);
    set_opt(&mut host, "Binds", p.binds.map(Value::Array));
    set_opt(&mut host, "NetworkMode", p.network_mode.map(Value::String));
    if !host.is_empty() {
        body.insert("HostConfig".into(), Value::Object(host));
    }
    let v =
        post("/containers/create").query_opt("name", p.name.as_deref()).query_opt("platform", p.platform.as_deref()).json(&Value::Object(body)).json_ok()?;
    let id = v["Id"].clone();
    Ok(Output::one(format!("Created container {}", id.as_str().unwrap_or("?")), v).summary("id", id))
}

pub(crate) fn remove(p: Remove) -> Result<Output> {
    let id = p.id.as_str();
    delete(cpath(id, "")).query("v", p.v).query("force", p.force).query("link", p.link).send_ok()?;
    Ok(Output::one(format!("Removed container {id}"), json!({"id": id})).summary("removed", true))
}

pub(crate) fn rename(p: Rename) -> Result<Output> {
    let (id, name) = (p.id.as_str(), p.name.as_str());
    post(cpath(id, "/rename")).query("name", name).send_ok()?;
    Ok(Output::one(format!("Renamed container {id} to {name}"), json!({"id": id, "name": name})))
}

fn top(p: Top) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(cpath(id, "/top")).query_opt("ps_args", p.ps_args.as_deref()).json_ok()?;
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

pub(crate) fn changes(p: Id) -> Result<Output> {
    let id = p.id.as_str();
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

fn wait(p: Wait) -> Result<Output> {
    let id = p.id.as_str();
    if let Some(c) = p.condition.as_deref() {
        if !matches!(c, "not-running" | "next-exit" | "removed") {
            return Err(Error::bad_params(format!("parameter 'condition' must be not-running, next-exit or removed, got \"{c}\"")));
        }
    }
    let timeout = berth_sdk::logs::bounded(p.timeout, "timeout")?;
    // The engine answers at once and sends the body when the condition is met: read it with
    // a deadline instead of blocking until the invocation's wall-clock cap.
    let mut stream = post(cpath(id, "/wait")).query_opt("condition", p.condition.as_deref()).stream()?;
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

pub(crate) fn export(p: Id) -> Result<Output> {
    let id = p.id.as_str();
    let info = get(cpath(id, "/export")).to_artifact("out")?;
    Ok(Output::one(
        format!("Exported container {id}: {} bytes, sha256 {}", info.size, info.sha256),
        json!({"id": id, "artifact": info.name, "size": info.size, "sha256": info.sha256}),
    )
    .summary("size", info.size)
    .summary("sha256", info.sha256))
}

pub(crate) fn prune(p: Prune) -> Result<Output> {
    let v = post("/containers/prune").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::pruned(v, "ContainersDeleted", "stopped containers"))
}

pub(crate) fn update(p: Update) -> Result<Output> {
    let id = p.id.as_str();
    let mut body = p.body.unwrap_or_default();
    set_opt(&mut body, "Memory", p.memory.map(Value::from));
    set_opt(&mut body, "MemorySwap", p.memory_swap.map(Value::from));
    set_opt(&mut body, "CpuShares", p.cpu_shares.map(Value::from));
    set_opt(&mut body, "RestartPolicy", restart_policy(p.restart_policy.as_deref())?);
    if body.is_empty() {
        return Err(Error::bad_params("nothing to update: give memory, memory_swap, cpu_shares, restart_policy or body"));
    }
    let v = post(cpath(id, "/update")).json(&Value::Object(body)).json_ok()?;
    Ok(Output::one(format!("Updated container {id}"), v).summary("id", id))
}
