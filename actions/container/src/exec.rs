//! Exec operations and the composites: exec with exit code, run-to-completion, snapshot.

use std::time::{Duration, Instant};

use berth_sdk::commit::CommitOpts;
use berth_sdk::logs::bounded;
use berth_sdk::params;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;
use berth_sdk::stream::Read;
use berth_sdk::typed::With;
use berth_sdk::{seg, Stdin};

use crate::io::{collect, stdin_of};
use crate::{command, cpath, env_list, Create};

params! {
    /// What runs in an exec: `exec.create` and `container.exec`.
    pub(crate) struct ExecShape {
        id: String => "Container ID or name",
        cmd: Value => "Command: a JSON array, or a string split as a shell would (quotes kept together)",
        env: Option<Value> => "Environment: [\"K=V\"] or {\"K\": \"V\"}",
        user: Option<String> => "",
        working_dir: Option<String> => "",
        tty: bool => "",
        privileged: bool => "",
        detach_keys: Option<String> => "",
        body: Option<Map<String, Value>> => "Full ExecConfig body; structured params override it",
    }
}

params! {
    pub(crate) struct ExecCreate {
        attach_stdin: bool => "",
    }
}

params! {
    pub(crate) struct ExecStart {
        id: String => "Exec ID",
        detach: bool => "",
        tty: bool => "",
        stdin: Option<String> => "Text written to stdin, then closed",
        stdin_artifact: bool => "Write the `in` artifact to stdin instead",
        timeout: i64 = 30 => "",
    }
}

params! {
    pub(crate) struct ExecId {
        id: String => "Exec ID",
    }
}

params! {
    pub(crate) struct ExecResize {
        id: String => "Exec ID",
        h: i64 => "",
        w: i64 => "",
    }
}

params! {
    pub(crate) struct ExecRun {
        fail_on_exit_code: bool => "A non-zero exit code fails the action (default: success, with exit_code)",
        stdin: Option<String> => "Text written to stdin, then closed",
        stdin_artifact: bool => "Write the `in` artifact to stdin instead",
        timeout: i64 = 30 => "Seconds the command may run",
    }
}

params! {
    pub(crate) struct RunOpts {
        timeout: i64 = 60 => "Seconds the container may run before it is killed",
        remove: bool = true => "Remove the container afterwards",
        fail_on_exit_code: bool => "A non-zero exit code fails the action (default: success, with exit_code)",
    }
}

params! {
    pub(crate) struct Snapshot {
        id: String => "Container ID or name",
        body: Option<Map<String, Value>> => "Container config for the image",
    }
}

fn epath(id: &str, rest: &str) -> String {
    format!("/exec/{}{rest}", seg(id))
}

/// The ExecConfig body from structured params (or `body`).
fn exec_config(p: &ExecShape, attach_stdin: bool) -> Result<Value> {
    let mut body = p.body.clone().unwrap_or_default();
    set_opt(&mut body, "Cmd", command(Some(&p.cmd), "cmd")?);
    set_opt(&mut body, "Env", env_list(p.env.as_ref())?);
    set_opt(&mut body, "User", p.user.clone().map(Value::String));
    set_opt(&mut body, "WorkingDir", p.working_dir.clone().map(Value::String));
    set_opt(&mut body, "Tty", Some(Value::Bool(p.tty)));
    set_opt(&mut body, "Privileged", Some(Value::Bool(p.privileged)));
    set_opt(&mut body, "DetachKeys", p.detach_keys.clone().map(Value::String));
    if body.get("Cmd").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return Err(Error::bad_params("parameter 'cmd' is required (a JSON array, or a string split as a shell would)"));
    }
    body.entry("AttachStdout").or_insert(json!(true));
    body.entry("AttachStderr").or_insert(json!(true));
    body.insert("AttachStdin".into(), json!(attach_stdin));
    Ok(Value::Object(body))
}

pub fn exec_create(With(shape, opts): With<ExecShape, ExecCreate>) -> Result<Output> {
    let id = shape.id.as_str();
    let v = post(cpath(id, "/exec")).json(&exec_config(&shape, opts.attach_stdin)?).json_ok()?;
    let exec_id = v["Id"].clone();
    Ok(Output::one(format!("Created exec {} in {id}", exec_id.as_str().unwrap_or("?")), v).summary("exec_id", exec_id))
}

pub fn exec_start(p: ExecStart) -> Result<Output> {
    let id = p.id.as_str();
    let tty = p.tty;
    let body = json!({"Detach": p.detach, "Tty": tty});
    if p.detach {
        post(epath(id, "/start")).json(&body).send_ok()?;
        return Ok(Output::one(format!("Started exec {id} detached"), json!({"id": id, "detached": true})));
    }
    let timeout = bounded(p.timeout, "timeout")?;
    let mut stream = post(epath(id, "/start")).json(&body).upgrade(stdin_of(p.stdin.as_deref(), p.stdin_artifact))?;
    let c = collect(&mut stream, !tty, Instant::now() + timeout, usize::MAX)?;
    let (nso, nse) = c.lines();
    Ok(Output::one(format!("exec {id}: {nso} stdout and {nse} stderr lines"), c.json(tty)).summary("ended_by", c.ended_by))
}

pub fn exec_inspect(p: ExecId) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(epath(id, "/json")).json_ok()?;
    Ok(Output::new(format!("exec {id}: running {}, exit code {}", v["Running"], v["ExitCode"]))
        .summary("running", v["Running"].clone())
        .summary("exit_code", v["ExitCode"].clone())
        .item(v))
}

pub fn exec_resize(p: ExecResize) -> Result<Output> {
    let (id, h, w) = (p.id.as_str(), p.h, p.w);
    if h < 1 || w < 1 {
        return Err(Error::bad_params("parameters 'h' and 'w' must be positive"));
    }
    post(epath(id, "/resize")).query("h", h).query("w", w).send_ok()?;
    Ok(Output::one(format!("Resized exec {id} to {w}x{h}"), json!({"id": id, "h": h, "w": w})))
}

/// `container.exec`: create + start (attached) + inspect, under a timeout.
pub fn exec(With(shape, p): With<ExecShape, ExecRun>) -> Result<Output> {
    let id = shape.id.as_str();
    let timeout = bounded(p.timeout, "timeout")?;
    let stdin = stdin_of(p.stdin.as_deref(), p.stdin_artifact);
    let tty = shape.tty;
    let created = post(cpath(id, "/exec")).json(&exec_config(&shape, stdin != Stdin::None)?).json_ok()?;
    let exec_id = created["Id"].as_str().ok_or_else(|| Error::internal("the engine returned no exec id"))?.to_string();
    let mut stream = post(epath(&exec_id, "/start")).json(&json!({"Detach": false, "Tty": tty})).upgrade(stdin)?;
    let c = collect(&mut stream, !tty, Instant::now() + timeout, usize::MAX)?;
    drop(stream);
    // The output ends when the process exits; the exit code may take a moment to be recorded.
    let mut info = get(epath(&exec_id, "/json")).json_ok()?;
    let settle = Instant::now() + Duration::from_secs(2);
    while info["Running"].as_bool() == Some(true) && c.ended_by == "end" && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
        info = get(epath(&exec_id, "/json")).json_ok()?;
    }
    if c.ended_by != "end" || info["Running"].as_bool() == Some(true) {
        return Err(Error::Internal(format!("the command in {id} did not finish within {}s (exec {exec_id} may still be running)", timeout.as_secs())));
    }
    let code = info["ExitCode"].clone();
    fail_on_exit(p.fail_on_exit_code, &code, &c.stdout, &c.stderr, &format!("the command in {id}"))?;
    let mut item = c.json(tty);
    item["exit_code"] = code.clone();
    item["exec_id"] = json!(exec_id);
    Ok(Output::one(format!("Command in {id} exited with code {code}"), item).summary("exit_code", code))
}

/// `fail_on_exit_code=true`: a non-zero exit code fails the action, with the end of its
/// stdout and of its stderr (a failure carries a message only, so both go in it).
fn fail_on_exit(fail_on_exit_code: bool, code: &Value, stdout: &[u8], stderr: &[u8], what: &str) -> Result<()> {
    if !fail_on_exit_code || code.as_i64() == Some(0) {
        return Ok(());
    }
    let tail = |b: &[u8], name: &str| {
        let text = String::from_utf8_lossy(b);
        let t: String = text.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect();
        if t.trim().is_empty() {
            String::new()
        } else {
            format!("; {name}: {}", t.trim())
        }
    };
    Err(Error::Engine { status: 0, message: format!("{what} exited with code {code}{}{}", tail(stdout, "stdout"), tail(stderr, "stderr")) })
}

/// `container.run`: create + start + wait + logs, optionally removing the container.
pub fn run(With(shape, p): With<Create, RunOpts>) -> Result<Output> {
    let timeout = bounded(p.timeout, "timeout")?;
    let remove = p.remove;
    let created = crate::create(shape)?;
    let id = created.summary["id"].as_str().ok_or_else(|| Error::internal("no container id"))?.to_string();
    let result = run_created(&id, timeout);
    if remove {
        let removed = delete(cpath(&id, "")).query("force", true).query("v", true).send_ok();
        if let (Ok(_), Err(e)) = (&result, removed) {
            return Err(Error::Engine { status: 0, message: format!("the container ran, but removing it failed: {e}") });
        }
    }
    let (code, logs, tty) = result?;
    fail_on_exit(p.fail_on_exit_code, &code, &logs.stdout, &logs.stderr, &format!("container {}", &id[..12.min(id.len())]))?;
    let mut item = logs.json(tty);
    item["id"] = json!(id);
    item["exit_code"] = code.clone();
    item["removed"] = json!(remove);
    Ok(Output::one(format!("Container {} exited with code {code}", &id[..12.min(id.len())]), item).summary("exit_code", code).summary("id", id))
}

fn run_created(id: &str, timeout: Duration) -> Result<(Value, berth_sdk::logs::Collected, bool)> {
    // Register the wait before starting, so a fast exit cannot be missed. The engine sends the
    // headers at once and the body when the container stops.
    let mut wait = post(cpath(id, "/wait")).query("condition", "next-exit").stream()?;
    post(cpath(id, "/start")).send_ok()?;
    let deadline = Instant::now() + timeout;
    let mut body = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            let _ = post(cpath(id, "/kill")).send();
            return Err(Error::Internal(format!("container {id} did not exit within {}s; it was killed", timeout.as_secs())));
        }
        match wait.read(deadline - now)? {
            Read::Data(d) => body.extend(d),
            Read::End => break,
            Read::Idle => {}
        }
    }
    let status: Value = serde_json::from_slice(&body).map_err(|e| Error::internal(format!("bad wait response ({e})")))?;
    if let Some(msg) = status["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::Engine { status: 500, message: format!("waiting for {id} failed: {msg}") });
    }
    let tty = crate::io::container_tty(id)?;
    let mut logs = get(cpath(id, "/logs")).query("stdout", true).query("stderr", true).stream()?;
    let collected = collect(&mut logs, !tty, Instant::now() + Duration::from_secs(30), usize::MAX)?;
    Ok((status["StatusCode"].clone(), collected, tty))
}

/// `container.snapshot`: commit a container to an image (Splunk's "take container snapshot").
pub fn snapshot(With(p, opts): With<Snapshot, CommitOpts>) -> Result<Output> {
    berth_sdk::commit::commit(&p.id, opts, p.body.map(Value::Object).as_ref())
}
