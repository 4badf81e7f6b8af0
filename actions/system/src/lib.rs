//! The `system` family: ping, version, info, df, auth, events, test-connectivity.

use std::time::{Duration, Instant};

use berth_sdk::engine;
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::typed::{Filters, NoParams, Timestamp};

params! {
    struct Ping {
        method: String = "GET" => "GET, or HEAD for the headers alone",
    }
}

params! {
    struct Df {
        r#type: Option<Vec<Value>> => "Object types to report: container, image, volume, build-cache (API >= 1.42)",
    }
}

params! {
    struct Auth {
        registry: String = "https://index.docker.io/v1/" => "Registry server address",
    }
}

params! {
    struct Events {
        since: Option<Timestamp> => "Start: unix seconds, RFC 3339, or a duration ago (10m)",
        until: Option<Timestamp> => "End: unix seconds, RFC 3339, or a duration ago; the stream ends there",
        filters: Option<Filters> => "Filters, e.g. {\"type\": [\"container\"], \"event\": [\"start\"]}",
        max_events: i64 = 100 => "Stop after this many events",
        max_duration: i64 = 10 => "Stop after this many seconds",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("system.ping", "Check that the engine answers (GET /_ping, or HEAD)")
            .read_only()
            .output(&["data.*.ok", "data.*.api_version", "data.*.os_type", "data.*.builder_version"])
            .ops(&["SystemPing", "SystemPingHead"])
            .typed(ping),
        Action::new("system.version", "Engine version, API version, OS and components")
            .read_only()
            .output(&["data.*.Version", "data.*.ApiVersion", "data.*.Os", "data.*.Arch", "summary.version", "summary.api_version"])
            .ops(&["SystemVersion"])
            .typed(version),
        Action::new("system.info", "System-wide engine information")
            .read_only()
            .output(&["data.*.ServerVersion", "data.*.Containers", "data.*.Images", "summary.containers", "summary.images"])
            .ops(&["SystemInfo"])
            .typed(info),
        Action::new("system.df", "Disk usage by images, containers, volumes and build cache")
            .read_only()
            .output(&["data.*.LayersSize", "data.*.Images", "data.*.Containers", "data.*.Volumes", "summary.layers_size"])
            .ops(&["SystemDataUsage"])
            .typed(df),
        Action::new("system.auth", "Check registry credentials held by the host (POST /auth)")
            .output(&["data.*.Status", "summary.status"])
            .ops(&["SystemAuth"])
            .typed(auth),
        Action::new("system.events", "Engine events, bounded by until, a max count or a max duration")
            .read_only()
            .output(&["data.*.Type", "data.*.Action", "data.*.Actor.ID", "data.*.time", "summary.total_events", "summary.ended_by"])
            .ops(&["SystemEvents", "SystemPing"])
            .typed(events),
        Action::new("system.test-connectivity", "Test connectivity: ping and version, the transport, and TLS details (SOAR convention)")
            .read_only()
            .output(&[
                "summary.version",
                "summary.api_version",
                "summary.transport",
                "data.*.tls.version",
                "data.*.tls.cipher",
                "data.*.tls.peer_subject",
                "data.*.tls.peer_not_after",
            ])
            .ops(&["SystemPing", "SystemVersion"])
            .typed(test_connectivity),
        // The Splunk SOAR Docker app's name for it.
        Action::new("test connectivity", "Validate the asset configuration for connectivity (Splunk SOAR)")
            .read_only()
            .output(&["summary.version", "summary.api_version", "summary.transport"])
            .ops(&["SystemPing", "SystemVersion"])
            .typed(test_connectivity),
    ]
}

berth_sdk::family!(name: "system", actions: actions);

fn ping(p: Ping) -> Result<Output> {
    let r = match p.method.as_str() {
        "GET" => get("/_ping"),
        "HEAD" => head("/_ping"),
        other => return Err(Error::bad_params(format!("parameter 'method' must be GET or HEAD, got '{other}'"))),
    }
    .send_ok()?;
    let h = |n: &str| r.header(n).map(|s| Value::String(s.to_string())).unwrap_or(Value::Null);
    let item = json!({
        "ok": r.is_success(),
        "api_version": h("Api-Version"),
        "os_type": h("Ostype"),
        "builder_version": h("Builder-Version"),
        "docker_experimental": r.header("Docker-Experimental") == Some("true"),
        "swarm": h("Swarm"),
    });
    let said = if r.text().trim().is_empty() { format!("HTTP {}", r.status) } else { r.text().trim().to_string() };
    Ok(Output::one(format!("Engine answered ping: {said}"), item.clone()).summary("ok", item["ok"].clone()).summary("api_version", item["api_version"].clone()))
}

fn version(_: NoParams) -> Result<Output> {
    let v = get("/version").json_ok()?;
    let (ver, api) = (v["Version"].clone(), v["ApiVersion"].clone());
    Ok(Output::one(format!("Docker Engine {} (API {}), {}/{}", str_of(&ver), str_of(&api), str_of(&v["Os"]), str_of(&v["Arch"])), v)
        .summary("version", ver)
        .summary("api_version", api)
        .summary("negotiated_api_version", engine_api_version()))
}

fn info(_: NoParams) -> Result<Output> {
    let v = get("/info").json_ok()?;
    let out = Output::new(format!(
        "{} containers ({} running), {} images, engine {}",
        v["Containers"],
        v["ContainersRunning"],
        v["Images"],
        str_of(&v["ServerVersion"])
    ))
    .summary("containers", v["Containers"].clone())
    .summary("containers_running", v["ContainersRunning"].clone())
    .summary("images", v["Images"].clone())
    .summary("server_version", v["ServerVersion"].clone());
    Ok(out.item(v))
}

fn df(p: Df) -> Result<Output> {
    let mut req = get("/system/df");
    if let Some(types) = &p.r#type {
        engine::need_api(1, 42, "parameter 'type' of system.df")?;
        for t in types {
            let t = t.as_str().ok_or_else(|| Error::bad_params("parameter 'type' must be a list of strings"))?;
            if !matches!(t, "container" | "image" | "volume" | "build-cache") {
                return Err(Error::bad_params(format!("parameter 'type': unknown object type \"{t}\" (expected container, image, volume or build-cache)")));
            }
            req = req.query("type", t);
        }
    }
    let v = req.json_ok()?;
    let count = |k: &str| v[k].as_array().map(|a| a.len()).unwrap_or(0);
    let out = Output::new(format!(
        "{} images, {} containers, {} volumes; layers use {} bytes",
        count("Images"),
        count("Containers"),
        count("Volumes"),
        v["LayersSize"]
    ))
    .summary("layers_size", v["LayersSize"].clone())
    .summary("images", count("Images"))
    .summary("containers", count("Containers"))
    .summary("volumes", count("Volumes"))
    .summary("build_cache", count("BuildCache"));
    Ok(out.item(v))
}

fn auth(p: Auth) -> Result<Output> {
    let registry = p.registry.as_str();
    let mut v = post("/auth").registry_auth_body(registry).json_ok().map_err(|e| match e {
        Error::Engine { status, message } => Error::Engine { status, message: format!("login to registry {registry} failed: {message}") },
        other => other,
    })?;
    // An identity token is a credential: never hand it to the caller.
    let token = v.as_object_mut().and_then(|o| o.remove("IdentityToken")).is_some_and(|t| t != "");
    let status = v["Status"].as_str().unwrap_or("").to_string();
    Ok(Output::one(format!("Registry {registry}: {status}"), json!({"Status": status, "registry": registry}))
        .summary("status", status)
        .summary("identity_token_issued", token))
}

fn events(p: Events) -> Result<Output> {
    let (max_events, max_duration) = (p.max_events, p.max_duration);
    if max_events < 1 {
        return Err(Error::bad_params("parameter 'max_events' must be at least 1"));
    }
    if !(1..=3600).contains(&max_duration) {
        return Err(Error::bad_params("parameter 'max_duration' must be between 1 and 3600 seconds"));
    }
    let deadline = Instant::now() + Duration::from_secs(max_duration as u64);
    // Podman stops reading its event log at `until` in real time, so an `until` already passed
    // ends the stream before the events it holds: it is asked instead for every event it holds
    // since `since` (`stream=false`, no `until`), and those after `until` are left out here.
    let until = Timestamp::as_query(&p.until).map(str::to_string);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let past = until.as_deref().and_then(|u| u.parse::<f64>().ok()).filter(|u| *u <= now);
    let cut_at = match past {
        Some(u) if head("/_ping").send().is_ok_and(|r| r.header("Libpod-Api-Version").is_some()) => Some(u),
        _ => None,
    };
    let stream = get("/events")
        .query_opt("since", Timestamp::as_query(&p.since))
        .query_opt("until", if cut_at.is_some() { None } else { until })
        .query_opt("stream", cut_at.map(|_| false))
        .query_json("filters", Filters::as_query(&p.filters))
        .stream()?;
    let mut messages = stream.json_messages(deadline);
    let mut events = Vec::new();
    let mut ended_by = "until";
    for m in messages.by_ref() {
        let m = m?;
        if let Some(u) = cut_at {
            let t = m["timeNano"].as_f64().map(|n| n / 1e9).or_else(|| m["time"].as_f64()).unwrap_or(0.0);
            if t > u {
                break;
            }
        }
        events.push(m);
        if events.len() as i64 >= max_events {
            ended_by = "max_events";
            break;
        }
    }
    if messages.timed_out() {
        ended_by = "max_duration";
    }
    let n = events.len();
    let mut out = Output::new(format!("{n} events (ended by {ended_by})")).summary("total_events", n).summary("ended_by", ended_by);
    out.data = events;
    Ok(out)
}

fn test_connectivity(_: NoParams) -> Result<Output> {
    let ping = get("/_ping").send_ok()?;
    let v = get("/version").json_ok()?;
    // The host annotates /_ping answers with how it reached the engine.
    let h = |n: &str| ping.header(n).map(|s| Value::String(s.to_string())).unwrap_or(Value::Null);
    let transport = h("x-berth-transport");
    let tls = match ping.header("x-berth-tls-version") {
        Some(_) => json!({
            "version": h("x-berth-tls-version"),
            "cipher": h("x-berth-tls-cipher"),
            "peer_subject": h("x-berth-tls-peer-subject"),
            "peer_not_after": h("x-berth-tls-peer-not-after"),
        }),
        None => Value::Null,
    };
    let negotiated = engine_api_version();
    let mut msg = format!(
        "Connectivity test passed: Docker Engine {} (API {}, negotiated {negotiated}) over {}",
        str_of(&v["Version"]),
        str_of(&v["ApiVersion"]),
        transport.as_str().unwrap_or("?")
    );
    if !tls.is_null() {
        msg.push_str(&format!(
            ", {} {}, certificate {} valid until {}",
            str_of(&tls["version"]),
            str_of(&tls["cipher"]),
            str_of(&tls["peer_subject"]),
            str_of(&tls["peer_not_after"])
        ));
    }
    Ok(Output::one(
        msg,
        json!({"version": v["Version"], "api_version": v["ApiVersion"], "negotiated_api_version": negotiated, "transport": transport, "tls": tls}),
    )
    .summary("version", v["Version"].clone())
    .summary("api_version", v["ApiVersion"].clone())
    .summary("transport", transport))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn engine_api_version() -> String {
    engine::api_version().unwrap_or_default()
}
