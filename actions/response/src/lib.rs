//! The `response` family: incident response on a container. Quarantine it reversibly (its
//! networks and state recorded on the engine itself, so any berth can release it), release
//! it, collect a forensic bundle (one tar with a manifest of hashes, streamed to disk), hunt
//! containers by indicators with the evidence for each match, and a timeline of a
//! container's events and state changes.
//!
//! The quarantine record is a volume, `berth-quarantine-<container id>`, whose labels hold the
//! ticket and what was taken away: the engine cannot relabel an existing container, and a
//! record kept by the engine survives the host that wrote it.

use std::time::{Duration, Instant};

use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::seg;
use berth_sdk::typed::Timestamp;

params! {
    struct Quarantine {
        container: String => "Container ID or name",
        ticket: String => "Incident ticket the quarantine belongs to (recorded as berth.quarantine)",
        mode: String = "pause" => "pause (keeps memory for forensics) or stop",
        timeout: i64 = 10 => "stop mode: seconds before the engine kills it",
    }
}

params! {
    struct Bundle {
        container: String => "Container ID or name",
        pause: bool = false => "Pause the container while collecting, for a consistent capture (unpaused after)",
        max_log_lines: i64 = 100000 => "Log lines kept (stdout and stderr together)",
    }
}

params! {
    struct Release {
        container: String => "Container ID or name",
    }
}

params! {
    struct Hunt {
        image: Option<String> => "Image name, id or repo digest the container runs",
        env: Option<String> => "Environment variable: NAME, NAME=VALUE, or a pattern with * (e.g. AWS_*=AKIA*)",
        label: Option<String> => "Label: key or key=value",
        process: Option<String> => "Process name (a word of a command line from top), e.g. xmrig",
        path: Option<String> => "Absolute path that exists in the container (archive stat)",
        port: Option<i64> => "Published host port",
        all: bool = false => "Include stopped containers (process hunts need running or paused ones)",
    }
}

params! {
    struct Timeline {
        container: String => "Container ID or name",
        since: Option<Timestamp> => "Start: unix seconds, RFC 3339, or a duration ago (1h); default: its creation",
        until: Option<Timestamp> => "End; default: now",
        max_events: i64 = 1000 => "At most this many events",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("response.quarantine", "Take a container out of service reversibly: record its networks and state, disconnect it from every network, pause or stop it")
            .kind(Kind::Contain)
            .ops(&["ContainerInspect", "VolumeInspect", "VolumeCreate", "NetworkDisconnect", "ContainerPause", "ContainerStop"])
            .output(&["data.*.container", "data.*.ticket", "data.*.networks", "data.*.state_before", "data.*.record", "summary.changed", "summary.ticket"])
            .typed(quarantine),
        Action::new("response.release", "Undo a quarantine: reconnect the recorded networks, resume or restart it, drop the record")
            .kind(Kind::Correct)
            .ops(&["VolumeInspect", "ContainerInspect", "NetworkConnect", "ContainerUnpause", "ContainerStart", "VolumeDelete"])
            .output(&["data.*.container", "data.*.ticket", "data.*.networks", "data.*.state", "summary.released"])
            .typed(release),
        Action::new("response.forensic-bundle", "One tar into the `out` artifact: inspect, logs (stdout and stderr apart), top, changes, a stats sample, the filesystem export, the image's inspect and history, engine info, and a manifest.json of every member's sha256, size and collection time")
            // Not read-only: it may pause (and unpause) the container it collects.
            .ops(&["ContainerInspect", "ContainerPause", "ContainerUnpause", "ContainerLogs", "ContainerTop", "ContainerChanges", "ContainerStats", "ContainerExport", "ImageInspect", "ImageHistory", "SystemInfo"])
            .output(&["data.*.container", "data.*.bundle.sha256", "data.*.bundle.size", "data.*.members.*.name", "data.*.members.*.sha256", "summary.sha256", "summary.members"])
            .typed(forensic_bundle),
        Action::new("response.hunt", "Find containers matching indicators (image, env, label, process, file path, published port), with the evidence for each")
            .read_only()
            .ops(&["ContainerList", "ContainerInspect", "ImageInspect", "ContainerTop", "ContainerArchiveInfo"])
            .output(&["data.*.Id", "data.*.Name", "data.*.indicator", "data.*.evidence", "summary.total_objects", "summary.containers_checked", "summary.unsearched"])
            .typed(hunt),
        Action::new("response.timeline", "A container's events and state changes, ordered, for the incident report")
            .read_only()
            .ops(&["ContainerInspect", "SystemEvents", "SystemPing"])
            .output(&["data.*.time", "data.*.source", "data.*.action", "data.*.detail", "summary.total_objects", "summary.container"])
            .typed(timeline),
    ]
}

berth_sdk::family!(name: "response", actions: actions);

const RECORD_PREFIX: &str = "berth-quarantine-";

/// `/containers/<container><rest>`, the container percent-encoded.
fn cpath(container: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", seg(container))
}

fn inspect(container: &str) -> Result<Value> {
    get(cpath(container, "/json")).json_ok()
}

fn record_name(id: &str) -> String {
    format!("{RECORD_PREFIX}{id}")
}

/// The quarantine record of container `id`, if there is one.
fn record(id: &str) -> Result<Option<Value>> {
    let r = get(format!("/volumes/{}", seg(&record_name(id)))).send()?;
    if r.status == 404 {
        return Ok(None);
    }
    Ok(Some(r.ok()?.json()?))
}

fn label<'a>(rec: &'a Value, key: &str) -> &'a str {
    rec["Labels"][key].as_str().unwrap_or("")
}

/// The networks a container is on, with what reconnecting needs (aliases, static addresses).
fn networks_of(c: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, ep) in c["NetworkSettings"]["Networks"].as_object().into_iter().flatten() {
        let id = c["Id"].as_str().unwrap_or("");
        let aliases: Vec<Value> = ep["Aliases"].as_array().into_iter().flatten().filter(|a| !id.starts_with(a.as_str().unwrap_or("-"))).cloned().collect();
        out.insert(name.clone(), json!({"Aliases": aliases, "IPAMConfig": ep["IPAMConfig"].clone(), "NetworkID": ep["NetworkID"].clone()}));
    }
    out
}

/// Networks a container cannot be taken off (the engine refuses), so quarantine cannot cut.
fn fixed_network(name: &str) -> bool {
    name == "host" || name == "none"
}

fn quarantine(p: Quarantine) -> Result<Output> {
    if !matches!(p.mode.as_str(), "pause" | "stop") {
        return Err(Error::bad_params(format!("parameter 'mode' must be pause or stop, got '{}'", p.mode)));
    }
    if p.ticket.trim().is_empty() || p.ticket.len() > 200 || p.ticket.chars().any(char::is_control) {
        return Err(Error::bad_params("parameter 'ticket' must be 1 to 200 printable characters"));
    }
    if !(0..=300).contains(&p.timeout) {
        return Err(Error::bad_params("parameter 'timeout' must be between 0 and 300 seconds"));
    }
    let c = inspect(&p.container)?;
    let id = c["Id"].as_str().ok_or_else(|| Error::internal("the engine's inspect has no Id"))?.to_string();
    let name = c["Name"].as_str().unwrap_or("").trim_start_matches('/').to_string();
    // Write the record first: whatever fails after it, a rerun finishes the job and release
    // knows what to restore.
    let (rec, changed) = match record(&id)? {
        Some(rec) => {
            if label(&rec, "berth.quarantine") != p.ticket {
                return Err(Error::bad_params(format!(
                    "container {name} is already quarantined under ticket '{}'; release it first",
                    label(&rec, "berth.quarantine")
                )));
            }
            (rec, false)
        }
        None => {
            let state = c["State"]["Status"].as_str().unwrap_or("unknown").to_string();
            let networks = networks_of(&c);
            let labels = json!({
                "berth.quarantine": p.ticket,
                "berth.quarantine.container": id,
                "berth.quarantine.name": name,
                "berth.quarantine.state": state,
                "berth.quarantine.mode": p.mode,
                "berth.quarantine.networks": Value::Object(networks).to_string(),
            });
            let rec = post("/volumes/create").json(&json!({"Name": record_name(&id), "Labels": labels})).json_ok()?;
            (rec, true)
        }
    };
    let networks: Map<String, Value> = serde_json::from_str(label(&rec, "berth.quarantine.networks")).unwrap_or_default();
    let mut cut = Vec::new();
    let mut kept = Vec::new();
    let connected = c["NetworkSettings"]["Networks"].as_object().cloned().unwrap_or_default();
    for net in connected.keys() {
        if fixed_network(net) {
            kept.push(net.clone());
            continue;
        }
        post(format!("/networks/{}/disconnect", seg(net))).json(&json!({"Container": id, "Force": true})).send_ok()?;
        cut.push(net.clone());
    }
    let mode = label(&rec, "berth.quarantine.mode").to_string();
    let running = c["State"]["Running"].as_bool() == Some(true) && c["State"]["Paused"].as_bool() != Some(true);
    if running {
        if mode == "stop" {
            post(cpath(&id, "/stop")).query("t", p.timeout).send_ok()?;
        } else {
            post(cpath(&id, "/pause")).send_ok()?;
        }
    }
    let after = inspect(&id)?;
    let state_after = after["State"]["Status"].clone();
    let mut msg = if changed { format!("Quarantined {name} under {}: ", p.ticket) } else { format!("{name} was already quarantined under {}: ", p.ticket) };
    msg.push_str(&format!("{} network(s) cut, now {}", cut.len(), state_after.as_str().unwrap_or("?")));
    if !kept.is_empty() {
        msg.push_str(&format!("; it stays on {} (the engine cannot disconnect those)", kept.join(", ")));
    }
    let item = json!({
        "container": id, "name": name, "ticket": p.ticket, "mode": mode,
        "networks": networks, "disconnected": cut, "not_disconnected": kept,
        "state_before": label(&rec, "berth.quarantine.state"), "state": state_after,
        "record": record_name(&id),
    });
    Ok(Output::one(msg, item).summary("changed", changed || !cut.is_empty() || running).summary("ticket", p.ticket))
}

/// Now, for the manifest (the guest's wall clock is the host's).
fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = rfc3339(d.as_secs() as i64);
    format!("{}.{:09}Z", s.trim_end_matches('Z'), d.subsec_nanos())
}

fn forensic_bundle(p: Bundle) -> Result<Output> {
    if p.max_log_lines < 0 {
        return Err(Error::bad_params("parameter 'max_log_lines' must be >= 0"));
    }
    let c = inspect(&p.container)?;
    let id = c["Id"].as_str().ok_or_else(|| Error::internal("the engine's inspect has no Id"))?.to_string();
    let running = c["State"]["Running"].as_bool() == Some(true);
    let paused_before = c["State"]["Paused"].as_bool() == Some(true);
    let pause_now = p.pause && running && !paused_before;
    if pause_now {
        post(cpath(&id, "/pause")).send_ok()?;
    }
    let collected = collect_bundle(&c, &id, running, p.max_log_lines as usize);
    if pause_now {
        // Whatever happened, the container is given back as it was.
        let resumed = post(cpath(&id, "/unpause")).send_ok();
        if let (Ok(_), Err(e)) = (&collected, resumed) {
            return Err(Error::Engine { status: 0, message: format!("the bundle was written, but unpausing {id} failed: {e}") });
        }
    }
    let (saved, members) = collected?;
    let n = members.len();
    let item = json!({
        "container": id, "name": c["Name"].as_str().unwrap_or("").trim_start_matches('/'),
        "bundle": {"artifact": saved.name, "size": saved.size, "sha256": saved.sha256},
        "members": members, "paused_during_collection": pause_now,
    });
    Ok(Output::one(format!("Forensic bundle of {id}: {n} members, {} bytes, sha256 {}", saved.size, saved.sha256), item)
        .summary("sha256", saved.sha256)
        .summary("size", saved.size)
        .summary("members", n))
}

fn collect_bundle(c: &Value, id: &str, running: bool, max_log_lines: usize) -> Result<(berth_sdk::engine::Saved, Vec<Value>)> {
    use berth_sdk::engine::{Member, Tar};
    let tar = Tar::open("out")?;
    let mut members: Vec<Value> = Vec::new();
    let mut note = |m: Member, collected_at: String, source: &str| {
        members.push(json!({"name": m.name, "size": m.size, "sha256": m.sha256, "collected_at": collected_at, "source": source}));
    };
    let t = now_rfc3339();
    note(tar.json("container/inspect.json", c)?, t, "GET /containers/{id}/json");
    // Logs, stdout and stderr apart (demultiplexed unless the container has a TTY).
    let t = now_rfc3339();
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut stream = get(cpath(id, "/logs")).query("stdout", true).query("stderr", true).query("timestamps", true).stream()?;
    let logs = berth_sdk::logs::collect(&mut stream, !tty, Instant::now() + Duration::from_secs(60), max_log_lines)?;
    note(tar.bytes("container/logs/stdout.log", &logs.stdout)?, t.clone(), "GET /containers/{id}/logs?stdout=1");
    note(tar.bytes("container/logs/stderr.log", &logs.stderr)?, t, "GET /containers/{id}/logs?stderr=1");
    if running {
        let t = now_rfc3339();
        note(tar.response("container/top.json", get(cpath(id, "/top")))?, t, "GET /containers/{id}/top");
    }
    let t = now_rfc3339();
    note(tar.response("container/changes.json", get(cpath(id, "/changes")))?, t, "GET /containers/{id}/changes");
    if running {
        let t = now_rfc3339();
        note(tar.response("container/stats.json", get(cpath(id, "/stats")).query("stream", false))?, t, "GET /containers/{id}/stats?stream=false");
    }
    let t = now_rfc3339();
    note(tar.response("container/filesystem.tar", get(cpath(id, "/export")))?, t, "GET /containers/{id}/export");
    if let Some(image) = c["Image"].as_str() {
        let t = now_rfc3339();
        note(tar.response("image/inspect.json", get(format!("/images/{}/json", seg(image))))?, t.clone(), "GET /images/{image}/json");
        note(tar.response("image/history.json", get(format!("/images/{}/history", seg(image))))?, t, "GET /images/{image}/history");
    }
    let t = now_rfc3339();
    note(tar.response("engine/info.json", get("/info"))?, t, "GET /info");
    let manifest = json!({
        "format": "berth-forensic-bundle/1",
        "container": id,
        "created_at": now_rfc3339(),
        "logs_ended_by": logs.ended_by,
        "members": members,
    });
    tar.json("manifest.json", &manifest)?;
    let saved = tar.finish()?;
    Ok((saved, members))
}

fn release(p: Release) -> Result<Output> {
    let c = inspect(&p.container)?;
    let id = c["Id"].as_str().unwrap_or("").to_string();
    let name = c["Name"].as_str().unwrap_or("").trim_start_matches('/').to_string();
    let Some(rec) = record(&id)? else {
        return Err(Error::bad_params(format!("container {name} is not quarantined (no {} record)", record_name(&id))));
    };
    let ticket = label(&rec, "berth.quarantine").to_string();
    let networks: Map<String, Value> = serde_json::from_str(label(&rec, "berth.quarantine.networks"))
        .map_err(|e| Error::internal(format!("the quarantine record's networks are unreadable: {e}")))?;
    let connected = c["NetworkSettings"]["Networks"].as_object().cloned().unwrap_or_default();
    let before = label(&rec, "berth.quarantine.state");
    // Unpaused before its networks come back: Podman accepts a connect to a paused container
    // and then loses it; dockerd takes either order.
    if before == "running" && c["State"]["Paused"].as_bool() == Some(true) {
        post(cpath(&id, "/unpause")).send_ok()?;
    }
    let mut reconnected = Vec::new();
    for (net, ep) in &networks {
        if fixed_network(net) || connected.contains_key(net) {
            continue;
        }
        let mut endpoint = json!({"Aliases": ep["Aliases"]});
        if ep["IPAMConfig"].is_object() {
            endpoint["IPAMConfig"] = ep["IPAMConfig"].clone();
        }
        post(format!("/networks/{}/connect", seg(net))).json(&json!({"Container": id, "EndpointConfig": endpoint})).send_ok()?;
        reconnected.push(net.clone());
    }
    // A stopped one starts with its networks back.
    if before == "running" && c["State"]["Running"].as_bool() != Some(true) {
        post(cpath(&id, "/start")).send_ok()?;
    }
    delete(format!("/volumes/{}", seg(&record_name(&id)))).send_ok()?;
    let state = inspect(&id)?["State"]["Status"].clone();
    let msg = format!("Released {name} from {ticket}: {} network(s) reconnected, now {}", reconnected.len(), state.as_str().unwrap_or("?"));
    Ok(Output::one(msg, json!({"container": id, "name": name, "ticket": ticket, "networks": reconnected, "state": state})).summary("released", true))
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn env_matches(pattern: &str, entry: &str) -> bool {
    let (pk, pv) = pattern.split_once('=').map_or((pattern, None), |(k, v)| (k, Some(v)));
    let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
    glob(pk, k) && pv.is_none_or(|pv| glob(pv, v))
}

/// The part of a container inspect an env hunt reads.
#[derive(serde::Deserialize)]
struct EnvOnly {
    #[serde(rename = "Config", default)]
    config: EnvConfig,
}

#[derive(serde::Deserialize, Default)]
struct EnvConfig {
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
}

fn hunt(p: Hunt) -> Result<Output> {
    if p.image.is_none() && p.env.is_none() && p.label.is_none() && p.process.is_none() && p.path.is_none() && p.port.is_none() {
        return Err(Error::bad_params("give at least one indicator: image, env, label, process, path or port"));
    }
    if let Some(path) = &p.path {
        if !path.starts_with('/') {
            return Err(Error::bad_params(format!("parameter 'path' must be absolute, got '{path}'")));
        }
    }
    let image_id = match &p.image {
        Some(img) => {
            let r = get(format!("/images/{}/json", seg(img))).send()?;
            if r.status == 404 {
                None
            } else {
                r.ok()?.json()?["Id"].as_str().map(str::to_string)
            }
        }
        None => None,
    };
    // Always all containers, then the live ones unless `all`: Podman's default list leaves out
    // paused containers, and a quarantined container is a paused one.
    let list = get("/containers/json").query("all", true).json_ok()?;
    let live = |s: &&Value| matches!(s["State"].as_str(), Some("running" | "paused" | "restarting"));
    let containers: Vec<&Value> = list.as_array().into_iter().flatten().filter(|s| p.all || live(s)).collect();
    let mut rows = Vec::new();
    let mut unsearched = Vec::new();
    for &s in &containers {
        let id = s["Id"].as_str().unwrap_or("").to_string();
        let name = s["Names"][0].as_str().unwrap_or("").trim_start_matches('/').to_string();
        let mut hit = |indicator: &str, evidence: Value| {
            rows.push(json!({"Id": id, "Name": name, "Image": s["Image"], "State": s["State"], "indicator": indicator, "evidence": evidence}))
        };
        if let Some(img) = &p.image {
            if image_id.as_deref().is_some_and(|i| s["ImageID"] == i) || s["Image"] == img.as_str() {
                hit("image", json!({"Image": s["Image"], "ImageID": s["ImageID"]}));
            }
        }
        if let Some(port) = p.port {
            for pt in s["Ports"].as_array().into_iter().flatten() {
                if pt["PublicPort"].as_i64() == Some(port) {
                    hit("port", pt.clone());
                }
            }
        }
        if let Some(l) = &p.label {
            let (k, v) = l.split_once('=').map_or((l.as_str(), None), |(k, v)| (k, Some(v)));
            if let Some(have) = s["Labels"][k].as_str() {
                if v.is_none_or(|v| v == have) {
                    hit("label", json!({k: have}));
                }
            }
        }
        if let Some(pattern) = &p.env {
            // Only the environment is read out of the inspect: the rest is skipped by the
            // parser, not built into a tree (a hunt inspects every container).
            let body = get(cpath(&id, "/json")).send_ok()?;
            let env: EnvOnly =
                serde_json::from_slice(&body.body).map_err(|e| Error::internal(format!("the engine's inspect of {id} is not what it should be: {e}")))?;
            for e in env.config.env.iter().flatten() {
                if env_matches(pattern, e) {
                    // The name is evidence; the value may be a secret: only its length.
                    let (k, v) = e.split_once('=').unwrap_or((e, ""));
                    hit("env", json!({"name": k, "value_length": v.len()}));
                }
            }
        }
        if let (Some(proc_name), true) = (&p.process, live(&s)) {
            let top = get(cpath(&id, "/top")).send_ok().ok().and_then(|r| serde_json::from_slice::<Value>(&r.body).ok());
            match top.as_ref().and_then(top_commands) {
                Some(procs) => {
                    for (pid, cmd) in procs {
                        if cmd.split_whitespace().any(|w| w == proc_name || w.rsplit('/').next() == Some(proc_name.as_str())) {
                            hit("process", json!({"CMD": cmd, "PID": pid}));
                        }
                    }
                }
                // Not a silent miss: the container is named as not searched, with why.
                None => unsearched.push(json!({"Id": id, "Name": name, "State": s["State"],
                    "reason": format!("the engine listed no processes for this {} container (it stopped meanwhile, or the engine cannot list a paused container's, as Podman)", s["State"].as_str().unwrap_or("?"))})),
            }
        }
        if let Some(path) = &p.path {
            let r = head(cpath(&id, "/archive")).query("path", path).send()?;
            if r.is_success() {
                let stat = r
                    .header("X-Docker-Container-Path-Stat")
                    .and_then(berth_sdk::params::base64_decode)
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .unwrap_or(Value::Null);
                hit("path", json!({"path": path, "stat": stat}));
            }
        }
    }
    let n = containers.len();
    let mut out = Output::listed("matches", rows).summary("containers_checked", n);
    if !unsearched.is_empty() {
        let names: Vec<&str> = unsearched.iter().filter_map(|u| u["Name"].as_str()).collect();
        out.message.push_str(&format!("; the processes of {} container(s) could not be searched: {}", names.len(), names.join(", ")));
        log::warn(&out.message);
    }
    Ok(out.summary("unsearched", unsearched))
}

/// The PID and command line of each process in a `top` answer: the engine's columns (dockerd),
/// or one column whose title and rows are whitespace-separated (Podman, which runs the
/// container's own `ps`). `None` when neither names a command column.
fn top_commands(top: &Value) -> Option<Vec<(String, String)>> {
    let titles: Vec<&str> = top["Titles"].as_array()?.iter().filter_map(Value::as_str).collect();
    let rows = top["Processes"].as_array()?;
    let is_cmd = |t: &str| matches!(t, "CMD" | "COMMAND" | "ARGS");
    let cell = |r: &Value, i: usize| r[i].as_str().unwrap_or("").to_string();
    if let Some(ci) = titles.iter().position(|t| is_cmd(t)) {
        let pi = titles.iter().position(|t| *t == "PID");
        return Some(rows.iter().map(|r| (pi.map(|i| cell(r, i)).unwrap_or_default(), cell(r, ci))).collect());
    }
    let [one] = titles.as_slice() else { return None };
    let words: Vec<&str> = one.split_whitespace().collect();
    let ci = words.iter().position(|t| is_cmd(t))?;
    let pi = words.iter().position(|t| *t == "PID");
    Some(
        rows.iter()
            .filter_map(|r| r[0].as_str())
            .map(|line| {
                let mut rest = line.trim_start();
                let mut fields = Vec::new();
                for _ in 0..ci {
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    fields.push(&rest[..end]);
                    rest = rest[end..].trim_start();
                }
                (pi.and_then(|i| fields.get(i)).unwrap_or(&"").to_string(), rest.trim_end().to_string())
            })
            .collect(),
    )
}

fn timeline(p: Timeline) -> Result<Output> {
    if !(1..=100_000).contains(&p.max_events) {
        return Err(Error::bad_params("parameter 'max_events' must be between 1 and 100000"));
    }
    let c = inspect(&p.container)?;
    let id = c["Id"].as_str().unwrap_or("").to_string();
    let name = c["Name"].as_str().unwrap_or("").trim_start_matches('/').to_string();
    let mut rows: Vec<(i128, Value)> = Vec::new();
    // The state the engine keeps: creation, last start, last finish.
    for (field, action) in [("Created", "created (inspect)"), ("State.StartedAt", "started (inspect)"), ("State.FinishedAt", "finished (inspect)")] {
        let v = field.split('.').fold(&c, |v, k| &v[k]);
        if let Some(t) = v.as_str().and_then(|t| berth_sdk::params::parse_rfc3339(t).map(|s| (s, t))) {
            if t.0 > 0 {
                rows.push((t.0 as i128 * 1_000_000_000, json!({"time": t.1, "source": "state", "action": action, "detail": c["State"]["Status"]})));
            }
        }
    }
    // The engine's events for it: since creation (or `since`) until now (or `until`).
    let created = c["Created"].as_str().and_then(berth_sdk::params::parse_rfc3339).unwrap_or(0);
    let since = Timestamp::as_query(&p.since).map(str::to_string).unwrap_or_else(|| created.to_string());
    let until = match Timestamp::as_query(&p.until) {
        Some(u) => u.to_string(),
        None => unix_now_from_engine()?,
    };
    // Container events name it as their actor; network events (connect, disconnect: what a
    // quarantine does) name it in their attributes.
    let req = get("/events").query("since", since).query("until", until).query_json("filters", Some(&json!({"type": ["container", "network"]})));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut truncated = false;
    for m in req.stream()?.json_messages(deadline) {
        let e = m?;
        let ours = match e["Type"].as_str() {
            Some("network") => e["Actor"]["Attributes"]["container"] == id.as_str(),
            _ => e["Actor"]["ID"] == id.as_str(),
        };
        if !ours {
            continue;
        }
        if rows.len() as i64 >= p.max_events {
            truncated = true;
            break;
        }
        let nanos = e["timeNano"].as_i64().map(i128::from).unwrap_or(e["time"].as_i64().unwrap_or(0) as i128 * 1_000_000_000);
        let secs = (nanos / 1_000_000_000) as i64;
        let detail = match e["Action"].as_str().unwrap_or("") {
            a if a.starts_with("exec_") => e["Actor"]["Attributes"]["execID"].clone(),
            "die" => json!({"exitCode": e["Actor"]["Attributes"]["exitCode"]}),
            "kill" => json!({"signal": e["Actor"]["Attributes"]["signal"]}),
            "connect" | "disconnect" => json!({"network": e["Actor"]["Attributes"]["name"]}),
            _ => Value::Null,
        };
        let detail = if detail.is_null() { e["Actor"]["Attributes"]["image"].clone() } else { detail };
        rows.push((
            nanos,
            json!({"time": rfc3339(secs), "time_nano": nanos as i64, "source": "event", "action": e["Action"], "type": e["Type"], "detail": detail}),
        ));
    }
    rows.sort_by_key(|(t, _)| *t);
    let n = rows.len();
    let mut out = Output::new(format!("{n} entries for {name}{}", if truncated { " (max_events reached)" } else { "" }))
        .summary("total_objects", n)
        .summary("container", id)
        .summary("truncated", truncated);
    out.data = rows.into_iter().map(|(_, v)| v).collect();
    Ok(out)
}

/// The engine's clock (its `Date` header, as unix seconds): the guest has no clock of its own
/// that the engine would agree with.
fn unix_now_from_engine() -> Result<String> {
    let r = get("/_ping").send_ok()?;
    let date = r.header("Date").ok_or_else(|| Error::internal("the engine sent no Date header"))?;
    // The Date header has whole seconds: one more takes in the events of this second (the
    // stream then waits out the rest of it).
    http_date(date).map(|s| (s + 1).to_string()).ok_or_else(|| Error::internal(format!("unreadable Date header '{date}'")))
}

/// `Tue, 01 Dec 2026 06:40:00 GMT` as unix seconds.
fn http_date(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let mon = *f.get(2)?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == mon)? + 1;
    let iso = format!("{}-{month:02}-{:0>2}T{}Z", f.get(3)?, f.get(1)?, f.get(4)?);
    berth_sdk::params::parse_rfc3339(&iso)
}

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_read_in_both_engines_shapes() {
        let dockerd = json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": [["root", "4242", "4200", "0", "15:06", "?", "00:00:00", "sleep 600"]]});
        assert_eq!(top_commands(&dockerd).unwrap(), [("4242".to_string(), "sleep 600".to_string())]);
        let podman = json!({"Titles": ["PID   USER     COMMAND"], "Processes": [["1 0        sleep 1000"], ["  7 root     /usr/bin/xmrig  -o pool "]]});
        assert_eq!(top_commands(&podman).unwrap(), [("1".to_string(), "sleep 1000".to_string()), ("7".to_string(), "/usr/bin/xmrig  -o pool".to_string())]);
        assert!(top_commands(&json!({"Titles": ["PID"], "Processes": [["1"]]})).is_none());
        assert!(top_commands(&Value::Null).is_none());
    }

    #[test]
    fn globs_and_env() {
        assert!(glob("AWS_*", "AWS_SECRET_ACCESS_KEY"));
        assert!(glob("*KEY*", "MY_KEY_1"));
        assert!(!glob("AWS_*", "GCP_X"));
        assert!(glob("a*b*c", "a-x-b-y-c") && !glob("a*b*c", "a-c"));
        assert!(env_matches("AWS_*=AKIA*", "AWS_ACCESS_KEY_ID=AKIA123"));
        assert!(!env_matches("AWS_*=AKIA*", "AWS_ACCESS_KEY_ID=xyz"));
        assert!(env_matches("TOKEN", "TOKEN=abc") && !env_matches("TOKEN", "TOKENS=abc"));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date("Tue, 01 Dec 2026 06:40:00 GMT"), berth_sdk::params::parse_rfc3339("2026-12-01T06:40:00Z"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_107_200), "2026-12-01T06:40:00Z");
    }
}
