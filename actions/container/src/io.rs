//! Container output (logs, attach, exec), stats and archives.

use std::time::{Duration, Instant};

use berth_sdk::engine::need_api;
use berth_sdk::params::base64_decode;
use berth_sdk::prelude::*;
use berth_sdk::stream::{Demux, Output as Out, Read, Stream};
use berth_sdk::Stdin;

use crate::cpath;

/// Output collected from a container stream.
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `end`, `max_duration` or `max_lines`.
    pub ended_by: &'static str,
}

impl Collected {
    pub fn json(&self, tty: bool) -> Value {
        json!({
            "stdout": String::from_utf8_lossy(&self.stdout),
            "stderr": String::from_utf8_lossy(&self.stderr),
            "tty": tty,
        })
    }
    pub fn lines(&self) -> (usize, usize) {
        (String::from_utf8_lossy(&self.stdout).lines().count(), String::from_utf8_lossy(&self.stderr).lines().count())
    }
}

/// Reads `stream` until it ends, `deadline` passes or `max_lines` lines arrived,
/// demultiplexing unless the container has a TTY. Stream type 3 fails the action.
pub fn collect(stream: &mut Stream, mux: bool, deadline: Instant, max_lines: usize) -> Result<Collected> {
    let (mut stdout, mut stderr, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut demux = Demux::default();
    let newlines = |b: &Vec<u8>| b.iter().filter(|&&c| c == b'\n').count();
    let ended_by = loop {
        let now = Instant::now();
        if now >= deadline {
            break "max_duration";
        }
        match stream.read(deadline - now)? {
            Read::Data(chunk) if mux => {
                for (kind, data) in demux.push(&chunk) {
                    match kind {
                        Out::Stdout | Out::Stdin => stdout.extend(data),
                        Out::Stderr => stderr.extend(data),
                        Out::SystemError => errors.push(String::from_utf8_lossy(&data).trim().to_string()),
                    }
                }
            }
            Read::Data(chunk) => stdout.extend(chunk),
            Read::End => break "end",
            Read::Idle => {}
        }
        if newlines(&stdout) + newlines(&stderr) >= max_lines {
            break "max_lines";
        }
    };
    if !errors.is_empty() {
        return Err(Error::Engine { status: 500, message: format!("the engine reported a stream error: {}", errors.join("; ")) });
    }
    Ok(Collected { stdout, stderr, ended_by })
}

/// Whether a container's stream is multiplexed: from Content-Type on API >= 1.42 (where the
/// engine tells), otherwise from the container's Tty setting.
pub fn multiplexed(id: &str, content_type: Option<&str>) -> Result<bool> {
    match content_type {
        Some(ct) if ct.contains("multiplexed-stream") => return Ok(true),
        Some(ct) if ct.contains("raw-stream") && need_api(1, 42, "").is_ok() => return Ok(false),
        _ => {}
    }
    Ok(!container_tty(id)?)
}

pub fn container_tty(id: &str) -> Result<bool> {
    let v = get(cpath(id, "/json")).json_ok()?;
    Ok(v["Config"]["Tty"].as_bool().unwrap_or(false))
}

pub fn bounded_seconds(p: &Params, name: &str, default: i64) -> Result<Duration> {
    let s = p.i64(name).unwrap_or(default);
    if !(1..=3600).contains(&s) {
        return Err(Error::bad_params(format!("parameter '{name}' must be between 1 and 3600 seconds")));
    }
    Ok(Duration::from_secs(s as u64))
}

pub fn logs(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let max_lines = p.i64("max_lines").unwrap_or(10000).max(1) as usize;
    let max_duration = bounded_seconds(p, "max_duration", 10)?;
    // `tail`: a number of lines, or all (-1 too, as the engine and the docker CLI take it).
    let tail: Option<usize> = match p.get("tail") {
        None => None,
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got {n}")))? as usize),
        Some(Value::String(s)) if s == "all" || s == "-1" || s.is_empty() => None,
        Some(Value::String(s)) => Some(s.parse::<usize>().map_err(|_| Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got \"{s}\"")))?),
        Some(other) => return Err(Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got {other}"))),
    };
    let follow = p.flag("follow");
    let read = |tail: Option<usize>| -> Result<(Collected, bool)> {
        let mut stream = get(cpath(id, "/logs"))
            .query("stdout", p.bool("stdout").unwrap_or(true))
            .query("stderr", p.bool("stderr").unwrap_or(true))
            .query("follow", follow)
            .query("timestamps", p.flag("timestamps"))
            .query("tail", tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()))
            .query_opt("since", p.timestamp("since")?)
            .query_opt("until", p.timestamp("until")?)
            .stream()?;
        let mux = multiplexed(id, stream.header("Content-Type"))?;
        let limit = if follow { max_lines } else { usize::MAX };
        Ok((collect(&mut stream, mux, Instant::now() + max_duration, limit)?, mux))
    };
    // Without follow, the cap keeps the newest lines: ask the engine for one more than the cap;
    // if that many come, older lines exist and the newest `max_lines` are read again.
    let wanted = tail.map_or(max_lines + 1, |t| t.min(max_lines + 1));
    let (mut c, mut mux) = read(if follow { tail } else { Some(wanted) })?;
    let mut cut = false;
    if !follow {
        let (so, se) = c.lines();
        if so + se > max_lines {
            (c, mux) = read(Some(max_lines))?;
            cut = true;
        }
    }
    let (nso, nse) = c.lines();
    let mut msg = format!("{nso} stdout and {nse} stderr lines from {id}");
    if cut {
        msg.push_str(&format!(" (the newest {max_lines}; older lines were cut: raise max_lines or set tail)"));
    }
    Ok(Output::one(msg, c.json(!mux))
        .summary("stdout_lines", nso)
        .summary("stderr_lines", nse)
        .summary("truncated", cut)
        .summary("ended_by", if cut { "max_lines" } else { c.ended_by }))
}

/// Stdin for attach/exec: the `stdin` param, or the `in` artifact when `stdin_artifact` is set.
pub fn stdin_of(p: &Params) -> Stdin {
    if p.flag("stdin_artifact") {
        Stdin::Artifact("in".into())
    } else if let Some(s) = p.get("stdin").and_then(Value::as_str) {
        Stdin::Bytes(s.as_bytes().to_vec())
    } else {
        Stdin::None
    }
}

pub fn attach(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let timeout = bounded_seconds(p, "timeout", 10)?;
    let stdin = stdin_of(p);
    let info = get(cpath(id, "/json")).json_ok()?;
    // As the docker CLI: attaching to a stopped container would wait for nothing.
    if info["State"]["Running"].as_bool() != Some(true) && !p.flag("logs") {
        return Err(Error::Engine { status: 409, message: format!("cannot attach to a stopped container {id}; start it first (or set logs=true to read its past output)") });
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut stream = post(cpath(id, "/attach"))
        .query("stream", true)
        .query("stdout", p.bool("stdout").unwrap_or(true))
        .query("stderr", p.bool("stderr").unwrap_or(true))
        .query("stdin", stdin != Stdin::None)
        .query("logs", p.flag("logs"))
        .query_opt("detachKeys", p.str("detach_keys"))
        .upgrade(stdin)?;
    let c = collect(&mut stream, !tty, Instant::now() + timeout, usize::MAX)?;
    let (nso, nse) = c.lines();
    Ok(Output::one(format!("attached to {id}: {nso} stdout and {nse} stderr lines (ended by {})", if c.ended_by == "end" { "exit" } else { "timeout" }), c.json(tty))
        .summary("stdout_lines", nso)
        .summary("stderr_lines", nse)
        .summary("ended_by", if c.ended_by == "end" { "exit" } else { "timeout" }))
}

pub fn attach_ws(_: &Params) -> Result<Output> {
    Err(Error::bad_params(
        "WebSocket attach (GET /containers/{id}/attach/ws) is an interactive browser protocol; \
         use container.attach, which attaches over a hijacked connection with optional stdin",
    ))
}

pub fn resize(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let (h, w) = (p.i64("h").unwrap_or(0), p.i64("w").unwrap_or(0));
    if h < 1 || w < 1 {
        return Err(Error::bad_params("parameters 'h' and 'w' must be positive"));
    }
    post(cpath(id, "/resize")).query("h", h).query("w", w).send_ok()?;
    Ok(Output::one(format!("Resized the TTY of {id} to {w}x{h}"), json!({"id": id, "h": h, "w": w})))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The docker CLI's figures from one stats sample.
pub fn stats_figures(s: &Value) -> Value {
    let cpu_delta = num(&s["cpu_stats"]["cpu_usage"]["total_usage"]) - num(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta = num(&s["cpu_stats"]["system_cpu_usage"]) - num(&s["precpu_stats"]["system_cpu_usage"]);
    let online = match s["cpu_stats"]["online_cpus"].as_f64() {
        Some(n) if n > 0.0 => n,
        _ => s["cpu_stats"]["cpu_usage"]["percpu_usage"].as_array().map(|a| a.len() as f64).filter(|n| *n > 0.0).unwrap_or(1.0),
    };
    let cpu_percent = if cpu_delta > 0.0 && sys_delta > 0.0 { cpu_delta / sys_delta * online * 100.0 } else { 0.0 };
    let mem = &s["memory_stats"];
    let usage = num(&mem["usage"]);
    // Page cache is not counted, as the CLI does: cgroup v1 total_inactive_file, v2 inactive_file.
    let cache = [&mem["stats"]["total_inactive_file"], &mem["stats"]["inactive_file"]]
        .into_iter()
        .find_map(|v| v.as_f64().filter(|c| *c < usage))
        .unwrap_or(0.0);
    let used = usage - cache;
    let limit = num(&mem["limit"]);
    let mem_percent = if limit > 0.0 { used / limit * 100.0 } else { 0.0 };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += num(&n["rx_bytes"]);
            tx += num(&n["tx_bytes"]);
        }
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"].as_array().into_iter().flatten() {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += num(&e["value"]),
            Some("write") => write += num(&e["value"]),
            _ => {}
        }
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "read": s["read"],
        "cpu_percent": round(cpu_percent),
        "memory_usage": used as u64,
        "memory_limit": limit as u64,
        "memory_percent": round(mem_percent),
        "network_rx_bytes": rx as u64,
        "network_tx_bytes": tx as u64,
        "block_read_bytes": read as u64,
        "block_write_bytes": write as u64,
        "pids": s["pids_stats"]["current"],
    })
}

pub fn stats(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let samples = p.i64("samples").unwrap_or(1);
    if !(1..=600).contains(&samples) {
        return Err(Error::bad_params("parameter 'samples' must be between 1 and 600"));
    }
    let mut out = Vec::new();
    if samples == 1 {
        // stream=false: the engine takes two readings, so the CPU figure has a baseline.
        let s = get(cpath(id, "/stats")).query("stream", false).json_ok()?;
        out.push(json!({"figures": stats_figures(&s), "raw": s}));
    } else {
        let stream = get(cpath(id, "/stats")).query("stream", true).stream()?;
        let deadline = Instant::now() + Duration::from_secs(samples as u64 * 2 + 5);
        for s in stream.json_messages(deadline).take(samples as usize) {
            let s = s?;
            out.push(json!({"figures": stats_figures(&s), "raw": s}));
        }
    }
    let last = out.last().map(|s| s["figures"].clone()).unwrap_or(Value::Null);
    let mut o = Output::new(format!("{} stats samples for {id}: cpu {}%, memory {}%", out.len(), last["cpu_percent"], last["memory_percent"]))
        .summary("samples", out.len())
        .summary("cpu_percent", last["cpu_percent"].clone())
        .summary("memory_usage", last["memory_usage"].clone())
        .summary("memory_limit", last["memory_limit"].clone())
        .summary("memory_percent", last["memory_percent"].clone())
        .summary("pids", last["pids"].clone());
    o.data = out;
    Ok(o)
}

fn path_stat(header: Option<&str>) -> Value {
    header
        .and_then(base64_decode)
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null)
}

fn archive_path(p: &Params) -> Result<&str> {
    let path = p.req_str("path")?;
    if !path.starts_with('/') {
        return Err(Error::bad_params(format!("parameter 'path' must be absolute inside the container, got \"{path}\"")));
    }
    Ok(path)
}

pub fn archive_info(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let path = archive_path(p)?;
    let r = head(cpath(id, "/archive")).query("path", path).send()?;
    if r.status == 404 {
        return Err(Error::Engine { status: 404, message: format!("No such container or path: {id}:{path}") });
    }
    let r = r.ok()?;
    let stat = path_stat(r.header("X-Docker-Container-Path-Stat"));
    Ok(Output::one(format!("{id}:{path}: {} bytes, mode {}", stat["size"], stat["mode"]), stat.clone()).summary("size", stat["size"].clone()))
}

pub fn archive_get(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let path = archive_path(p)?;
    let saved = get(cpath(id, "/archive")).query("path", path).to_artifact("out")?;
    let stat = path_stat(saved.header("X-Docker-Container-Path-Stat"));
    Ok(Output::one(
        format!("Copied {id}:{path} into a {}-byte tar", saved.size),
        json!({"id": id, "path": path, "stat": stat, "size": saved.size, "sha256": saved.sha256}),
    )
    .summary("size", saved.size)
    .summary("sha256", saved.sha256))
}

pub fn archive_put(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let path = archive_path(p)?;
    put(cpath(id, "/archive"))
        .query("path", path)
        .query_opt("noOverwriteDirNonDir", p.bool("no_overwrite_dir_non_dir"))
        .query_opt("copyUIDGID", p.bool("copy_uid_gid"))
        .artifact("in", "application/x-tar")
        .send_ok()?;
    Ok(Output::one(format!("Extracted the `in` tar into {id}:{path}"), json!({"id": id, "path": path})))
}
