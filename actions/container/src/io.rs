//! Container output (logs, attach, exec), stats and archives.

use std::time::{Duration, Instant};

use berth_sdk::logs::{bounded, LogParams};
use berth_sdk::params::base64_decode;
use berth_sdk::prelude::*;
use berth_sdk::typed::With;
use berth_sdk::Stdin;

pub use berth_sdk::logs::collect;

use crate::{cpath, ArchivePath, ArchivePut, Attach, Id, Resize, Stats};

/// Whether a container's stream is multiplexed: from Content-Type on API >= 1.42 (where the
/// engine tells), otherwise from the container's Tty setting.
pub fn multiplexed(id: &str, content_type: Option<&str>) -> Result<bool> {
    match berth_sdk::logs::mux_from_content_type(content_type) {
        Some(mux) => Ok(mux),
        None => Ok(!container_tty(id)?),
    }
}

pub fn container_tty(id: &str) -> Result<bool> {
    let v = get(cpath(id, "/json")).json_ok()?;
    Ok(v["Config"]["Tty"].as_bool().unwrap_or(false))
}

pub fn logs(With(Id { id }, p): With<Id, LogParams>) -> Result<Output> {
    let id = id.as_str();
    berth_sdk::logs::logs(&p, id, &cpath(id, "/logs"), |ct| multiplexed(id, ct))
}

/// Stdin for attach/exec: the `stdin` param, or the `in` artifact when `stdin_artifact` is set.
pub fn stdin_of(stdin: Option<&str>, stdin_artifact: bool) -> Stdin {
    if stdin_artifact {
        Stdin::Artifact("in".into())
    } else if let Some(s) = stdin {
        Stdin::Bytes(s.as_bytes().to_vec())
    } else {
        Stdin::None
    }
}

pub fn attach(p: Attach) -> Result<Output> {
    let id = p.id.as_str();
    let timeout = bounded(p.timeout, "timeout")?;
    let stdin = stdin_of(p.stdin.as_deref(), p.stdin_artifact);
    let info = get(cpath(id, "/json")).json_ok()?;
    // As the docker CLI: attaching to a stopped container would wait for nothing.
    if info["State"]["Running"].as_bool() != Some(true) && !p.logs {
        return Err(Error::Engine {
            status: 409,
            message: format!("cannot attach to a stopped container {id}; start it first (or set logs=true to read its past output)"),
        });
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    // A stopped container has only its past output: ask for that alone, so the answer ends
    // with it instead of waiting out the timeout for a stream that never comes.
    let running = info["State"]["Running"].as_bool() == Some(true);
    let mut stream = post(cpath(id, "/attach"))
        .query("stream", running)
        .query("stdout", p.stdout)
        .query("stderr", p.stderr)
        .query("stdin", stdin != Stdin::None)
        .query("logs", p.logs)
        .query_opt("detachKeys", p.detach_keys.as_deref())
        .upgrade(stdin)?;
    let c = collect(&mut stream, !tty, Instant::now() + timeout, usize::MAX)?;
    let (nso, nse) = c.lines();
    Ok(Output::one(
        format!("attached to {id}: {nso} stdout and {nse} stderr lines (ended by {})", if c.ended_by == "end" { "exit" } else { "timeout" }),
        c.json(tty),
    )
    .summary("stdout_lines", nso)
    .summary("stderr_lines", nse)
    .summary("ended_by", if c.ended_by == "end" { "exit" } else { "timeout" }))
}

pub fn attach_ws(_: Id) -> Result<Output> {
    Err(Error::bad_params(
        "WebSocket attach (GET /containers/{id}/attach/ws) is an interactive browser protocol; \
         use container.attach, which attaches over a hijacked connection with optional stdin",
    ))
}

pub fn resize(p: Resize) -> Result<Output> {
    let (id, h, w) = (p.id.as_str(), p.h, p.w);
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
    let cache =
        [&mem["stats"]["total_inactive_file"], &mem["stats"]["inactive_file"]].into_iter().find_map(|v| v.as_f64().filter(|c| *c < usage)).unwrap_or(0.0);
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

pub fn stats(p: Stats) -> Result<Output> {
    let (id, samples) = (p.id.as_str(), p.samples);
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
    header.and_then(base64_decode).and_then(|b| serde_json::from_slice::<Value>(&b).ok()).unwrap_or(Value::Null)
}

fn archive_path(path: &str) -> Result<&str> {
    if !path.starts_with('/') {
        return Err(Error::bad_params(format!("parameter 'path' must be absolute inside the container, got \"{path}\"")));
    }
    Ok(path)
}

pub fn archive_info(p: ArchivePath) -> Result<Output> {
    let id = p.id.as_str();
    let path = archive_path(&p.path)?;
    let r = head(cpath(id, "/archive")).query("path", path).send()?;
    if r.status == 404 {
        return Err(Error::Engine { status: 404, message: format!("No such container or path: {id}:{path}") });
    }
    let r = r.ok()?;
    let stat = path_stat(r.header("X-Docker-Container-Path-Stat"));
    Ok(Output::one(format!("{id}:{path}: {} bytes, mode {}", stat["size"], stat["mode"]), stat.clone()).summary("size", stat["size"].clone()))
}

pub fn archive_get(p: ArchivePath) -> Result<Output> {
    let id = p.id.as_str();
    let path = archive_path(&p.path)?;
    let saved = get(cpath(id, "/archive")).query("path", path).to_artifact("out")?;
    let stat = path_stat(saved.header("X-Docker-Container-Path-Stat"));
    Ok(Output::one(
        format!("Copied {id}:{path} into a {}-byte tar", saved.size),
        json!({"id": id, "path": path, "stat": stat, "size": saved.size, "sha256": saved.sha256}),
    )
    .summary("size", saved.size)
    .summary("sha256", saved.sha256))
}

pub fn archive_put(p: ArchivePut) -> Result<Output> {
    let id = p.id.as_str();
    let path = archive_path(&p.path)?;
    put(cpath(id, "/archive"))
        .query("path", path)
        .query_opt("noOverwriteDirNonDir", p.no_overwrite_dir_non_dir)
        .query_opt("copyUIDGID", p.copy_uid_gid)
        .artifact("in", "application/x-tar")
        .send_ok()?;
    Ok(Output::one(format!("Extracted the `in` tar into {id}:{path}"), json!({"id": id, "path": path})))
}
