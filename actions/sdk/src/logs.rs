//! Bounded output reading shared by the families: container, service and task logs, attach
//! and exec all demultiplex a stream and stop at an end, a deadline or a line cap.

use std::time::{Duration, Instant};

use crate::stream::{Demux, Output as Out, Read, Stream};
use crate::{get, json, Action, Error, Output, Param, Params, Result, Value};

/// Output collected from a log, attach or exec stream.
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

pub fn bounded_seconds(p: &Params, name: &str, default: i64) -> Result<Duration> {
    bounded(p.i64(name).unwrap_or(default), name)
}

/// Seconds between 1 and 3600, for the param `name`.
pub fn bounded(s: i64, name: &str) -> Result<Duration> {
    if !(1..=3600).contains(&s) {
        return Err(Error::bad_params(format!("parameter '{name}' must be between 1 and 3600 seconds")));
    }
    Ok(Duration::from_secs(s as u64))
}

/// The params of every logs action: `Action::new(..).read_only().param(id)` then this.
pub fn log_params(a: Action) -> Action {
    a.param(Param::bool("stdout").default(true))
        .param(Param::bool("stderr").default(true))
        .param(Param::string("since").describe("Unix seconds, RFC 3339 or a duration ago (10m)"))
        .param(Param::string("until").describe("Unix seconds, RFC 3339 or a duration ago"))
        .param(Param::bool("timestamps").default(false))
        .param(Param::any("tail").default("all").describe("Lines from the end, or all (-1)"))
        .param(Param::bool("follow").default(false).describe("Keep reading new output, bounded by max_duration / max_lines"))
        .param(Param::int("max_duration").default(10).describe("Follow: stop after this many seconds"))
        .param(Param::int("max_lines").default(10000).describe("Keep at most this many lines: the newest (follow: stop after this many)"))
        .output(&["data.*.stdout", "data.*.stderr", "summary.stdout_lines", "summary.stderr_lines", "summary.truncated"])
}

/// Reads the logs at `path` (`/containers/{id}/logs`, `/services/{id}/logs`, `/tasks/{id}/logs`)
/// with the params of [`log_params`]. `mux` tells from the response's Content-Type whether the
/// stream is multiplexed.
pub fn logs(p: &Params, id: &str, path: &str, mux: impl Fn(Option<&str>) -> Result<bool>) -> Result<Output> {
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
        let mut stream = get(path)
            .query("stdout", p.bool("stdout").unwrap_or(true))
            .query("stderr", p.bool("stderr").unwrap_or(true))
            .query("follow", follow)
            .query("timestamps", p.flag("timestamps"))
            .query("tail", tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()))
            .query_opt("since", p.timestamp("since")?)
            .query_opt("until", p.timestamp("until")?)
            .stream()?;
        let mux = mux(stream.header("Content-Type"))?;
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


/// Whether a stream is multiplexed, from its Content-Type on API >= 1.42 (where the engine
/// tells); `None` when the caller must decide from the object's TTY setting.
pub fn mux_from_content_type(ct: Option<&str>) -> Option<bool> {
    match ct {
        Some(ct) if ct.contains("multiplexed-stream") => Some(true),
        Some(ct) if ct.contains("raw-stream") && crate::engine::need_api(1, 42, "").is_ok() => Some(false),
        _ => None,
    }
}
