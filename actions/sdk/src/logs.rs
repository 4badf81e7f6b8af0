//! Bounded output reading shared by the families: container, service and task logs, attach
//! and exec all demultiplex a stream and stop at an end, a deadline or a line cap.

use std::time::{Duration, Instant};

use crate::stream::{Demux, Output as Out, Read, Stream};
use crate::typed::Timestamp;
use crate::{get, json, Action, Error, Output, Result, Value};

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

/// Seconds between 1 and 3600, for the param `name`.
pub fn bounded(s: i64, name: &str) -> Result<Duration> {
    if !(1..=3600).contains(&s) {
        return Err(Error::bad_params(format!("parameter '{name}' must be between 1 and 3600 seconds")));
    }
    Ok(Duration::from_secs(s as u64))
}

crate::params! {
    /// The params of every logs action, after its object's id: `With<Id, LogParams>`.
    pub struct LogParams {
        stdout: bool = true => "",
        stderr: bool = true => "",
        since: Option<Timestamp> => "Unix seconds, RFC 3339 or a duration ago (10m)",
        until: Option<Timestamp> => "Unix seconds, RFC 3339 or a duration ago",
        timestamps: bool => "",
        tail: Value = "all" => "Lines from the end, or all (-1)",
        follow: bool => "Keep reading new output, bounded by max_duration / max_lines",
        max_duration: i64 = 10 => "Follow: stop after this many seconds",
        max_lines: i64 = 10000 => "Keep at most this many lines: the newest (follow: stop after this many)",
    }
}

/// The output paths of every logs action.
pub fn log_output(a: Action) -> Action {
    a.output(&["data.*.stdout", "data.*.stderr", "summary.stdout_lines", "summary.stderr_lines", "summary.truncated"])
}

/// Reads the logs at `path` (`/containers/{id}/logs`, `/services/{id}/logs`, `/tasks/{id}/logs`)
/// with [`LogParams`]. `mux` tells from the response's Content-Type whether the stream is
/// multiplexed.
pub fn logs(p: &LogParams, id: &str, path: &str, mux: impl Fn(Option<&str>) -> Result<bool>) -> Result<Output> {
    logs_shaped(p, id, path, mux, None)
}

/// Rewrites the lines of one output (stdout or stderr) read with `details=true`.
pub type Shape<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>>;

/// [`logs`], asking the engine for each line's details (`details=true`) and passing each output
/// through `shape` when one is given: how the swarm families name the task of each line.
pub fn logs_shaped(p: &LogParams, id: &str, path: &str, mux: impl Fn(Option<&str>) -> Result<bool>, shape: Option<Shape>) -> Result<Output> {
    let max_lines = p.max_lines.max(1) as usize;
    let max_duration = bounded(p.max_duration, "max_duration")?;
    // `tail`: a number of lines, or all (-1 too, as the engine and the docker CLI take it).
    let tail: Option<usize> = match &p.tail {
        Value::Null => None,
        Value::Number(n) if n.as_i64() == Some(-1) => None,
        Value::Number(n) => {
            Some(n.as_u64().ok_or_else(|| Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got {n}")))? as usize)
        }
        Value::String(s) if s == "all" || s == "-1" || s.is_empty() => None,
        Value::String(s) => {
            Some(s.parse::<usize>().map_err(|_| Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got \"{s}\"")))?)
        }
        other => return Err(Error::bad_params(format!("parameter 'tail' must be a number of lines, -1 or \"all\", got {other}"))),
    };
    let follow = p.follow;
    let read = |tail: Option<usize>| -> Result<(Collected, bool)> {
        let mut stream = get(path)
            .query("stdout", p.stdout)
            .query("stderr", p.stderr)
            .query("follow", follow)
            .query("timestamps", p.timestamps)
            .query_opt("details", shape.map(|_| true))
            .query("tail", tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()))
            .query_opt("since", Timestamp::as_query(&p.since))
            .query_opt("until", Timestamp::as_query(&p.until))
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
    if let Some(shape) = shape {
        c.stdout = shape(&c.stdout)?;
        c.stderr = shape(&c.stderr)?;
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
