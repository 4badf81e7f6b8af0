//! What the swarm families share: versioned updates, waiting without holding a CPU slot,
//! and the one shape of the `secret` and `config` families.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{delete, get, json, post, seg, Action, Error, Kind, Map, Output, Param, Params, Result, Value};

/// Reads a swarm object and its `Version.Index`, which an update must send back.
pub fn versioned(path: &str) -> Result<(Value, u64)> {
    let v = get(path).json_ok()?;
    let version = v["Version"]["Index"].as_u64().ok_or_else(|| Error::internal(format!("{path}: the engine sent no Version.Index")))?;
    Ok((v, version))
}

/// The version to update against: the `version` param when given (optimistic locking by the
/// caller), else the one just read.
pub fn version_param(p: &Params, read: u64) -> u64 {
    p.i64("version").filter(|v| *v >= 0).map(|v| v as u64).unwrap_or(read)
}

/// Merges `patch` into `base` (JSON merge patch, RFC 7386: objects merge, `null` removes,
/// anything else replaces).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base.as_object_mut(), patch.as_object()) {
        (Some(b), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *base = patch.clone(),
    }
}

/// A list param given as a JSON array of strings or as comma-separated text.
pub fn names(p: &Params, name: &str) -> Result<Vec<String>> {
    names_value(p.get(name), name)
}

/// [`names`] on a value already read.
pub fn names_value(v: Option<&Value>, name: &str) -> Result<Vec<String>> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::bad_params(format!("parameter '{name}' must be a list of strings"))))
            .collect(),
        Some(_) => Err(Error::bad_params(format!("parameter '{name}' must be a list of strings or comma-separated text"))),
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Waits `d` on the engine (an event stream that ends at `until`), so that a waiting guest
/// holds no CPU slot on the host. Falls back to sleeping for what is left if the engine's
/// clock runs ahead.
pub fn pause(d: Duration) {
    let start = Instant::now();
    let now = unix_now();
    let _ = get("/events")
        .query("since", format!("{now:.3}"))
        .query("until", format!("{:.3}", now + d.as_secs_f64()))
        .query("filters", json!({"type": ["service"], "event": ["berth-pause"]}).to_string())
        .send();
    if let Some(left) = d.checked_sub(start.elapsed()) {
        std::thread::sleep(left);
    }
}

/// Calls `step` every `every` until it gives `Some`, or `timeout` passes (then `None`).
pub fn wait_for<T>(timeout: Duration, every: Duration, mut step: impl FnMut() -> Result<Option<T>>) -> Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = step()? {
            return Ok(Some(t));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        pause(every.min(deadline - now));
    }
}

/// The `timeout` param in seconds, 1–3600.
pub fn timeout(p: &Params, default: i64) -> Result<Duration> {
    crate::logs::bounded_seconds(p, "timeout", default)
}

/// A secret or a config: the two families have one shape.
pub trait Object {
    /// `secret` or `config`.
    const KIND: &'static str;
    /// `secrets` or `configs`: the path and the family.
    const PLURAL: &'static str;
    /// Whether the data is secret (never echoed, logged or audited).
    const SECRET: bool;
}

pub struct Secret;
impl Object for Secret {
    const KIND: &'static str = "secret";
    const PLURAL: &'static str = "secrets";
    const SECRET: bool = true;
}

pub struct Config;
impl Object for Config {
    const KIND: &'static str = "config";
    const PLURAL: &'static str = "configs";
    const SECRET: bool = false;
}

fn opath<O: Object>(id: &str) -> String {
    format!("/{}/{}", O::PLURAL, seg(id))
}

fn name_of(v: &Value) -> &str {
    v["Spec"]["Name"].as_str().unwrap_or("?")
}

/// The standard actions of a secret or config family.
pub fn object_actions<O: Object>() -> Vec<Action> {
    let (k, pl) = (O::KIND, O::PLURAL);
    let id = || Param::string("id").required().describe(if O::SECRET { "Secret ID or name" } else { "Config ID or name" });
    let data = {
        let p = Param::string("data").describe("The data, as text");
        if O::SECRET { p.secret() } else { p }
    };
    let data64 = {
        let p = Param::string("data_base64").describe("The data, base64-encoded (binary data)");
        if O::SECRET { p.secret() } else { p }
    };
    vec![
        Action::new(&format!("{k}.list"), &format!("List {pl}"))
            .read_only()
            .param(Param::any("filters").describe("Filters: id, label, name, names"))
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Labels", "data.*.CreatedAt", "summary.total_objects"])
            .run(list::<O>),
        Action::new(&format!("{k}.create"), &format!("Create a {k}"))
            .kind(Kind::Generic)
            .param(Param::string("name").required())
            .param(data)
            .param(data64)
            .param(Param::object("labels"))
            .param(Param::string("templating").describe("Templating driver, e.g. golang"))
            .param(Param::string("driver").describe("External secret driver (secrets only)"))
            .output(&["data.*.ID", "data.*.name", "summary.id"])
            .run(create::<O>),
        Action::new(&format!("{k}.inspect"), &format!("Inspect a {k}"))
            .read_only()
            .param(id())
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Labels", "data.*.Version.Index"])
            .run(inspect::<O>),
        Action::new(&format!("{k}.update"), &format!("Update a {k}'s labels (the only field the engine lets change)"))
            .kind(Kind::Generic)
            .param(id())
            .param(Param::object("labels").required().describe("The new labels (they replace the old ones)"))
            .param(Param::int("version").describe("The version read before (Version.Index); the current one when absent"))
            .output(&["data.*.ID", "data.*.labels"])
            .run(update::<O>),
        Action::new(&format!("{k}.remove"), &format!("Remove a {k}"))
            .kind(Kind::Correct)
            .param(id())
            .output(&["data.*.id"])
            .run(remove::<O>),
    ]
}

/// The `data` / `data_base64` params as the base64 the engine takes.
pub fn data_param<O: Object>(p: &Params) -> Result<String> {
    match (p.str("data"), p.str("data_base64")) {
        (Some(_), Some(_)) => Err(Error::bad_params("give 'data' or 'data_base64', not both")),
        (Some(d), None) => Ok(crate::params::base64_encode(d.as_bytes())),
        (None, Some(b)) => {
            crate::params::base64_decode(b).ok_or_else(|| Error::bad_params("parameter 'data_base64' is not valid base64"))?;
            Ok(b.to_string())
        }
        (None, None) if p.str("driver").is_some() => Ok(String::new()),
        (None, None) => Err(Error::bad_params(format!("a {} needs 'data' or 'data_base64'", O::KIND))),
    }
}

fn list<O: Object>(p: &Params) -> Result<Output> {
    let v = get(format!("/{}", O::PLURAL)).query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::listed_json(O::PLURAL, &v))
}

/// Creates a secret or config named `name` from `p`'s data; returns its ID.
pub fn create_named<O: Object>(p: &Params, name: &str) -> Result<String> {
    let mut spec = Map::new();
    spec.insert("Name".into(), json!(name));
    let data = data_param::<O>(p)?;
    if !data.is_empty() {
        spec.insert("Data".into(), json!(data));
    }
    crate::params::set_opt(&mut spec, "Labels", p.get("labels").cloned());
    if let Some(t) = p.str("templating") {
        spec.insert("Templating".into(), json!({"Name": t}));
    }
    if let Some(d) = p.str("driver") {
        if !O::SECRET {
            return Err(Error::bad_params("parameter 'driver' is for secrets only"));
        }
        spec.insert("Driver".into(), json!({"Name": d}));
    }
    let v = post(format!("/{}/create", O::PLURAL)).json(&Value::Object(spec)).json_ok()?;
    Ok(v["ID"].as_str().unwrap_or_default().to_string())
}

fn create<O: Object>(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let id = create_named::<O>(p, name)?;
    Ok(Output::one(format!("Created {} {name} ({id})", O::KIND), json!({"ID": id, "name": name})).summary("id", id))
}

fn inspect<O: Object>(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let mut v = get(opath::<O>(id)).json_ok()?;
    if !O::SECRET {
        // Config data is not secret: show it as text too when it is.
        if let Some(text) = v["Spec"]["Data"].as_str().and_then(crate::params::base64_decode).and_then(|b| String::from_utf8(b).ok()) {
            v["Spec"]["DataText"] = json!(text);
        }
    }
    Ok(Output::new(format!("{} {} ({})", O::KIND, name_of(&v), v["ID"].as_str().unwrap_or(id))).summary("id", v["ID"].clone()).item(v))
}

fn update<O: Object>(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let (v, read) = versioned(&opath::<O>(id))?;
    let mut spec = v["Spec"].clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("Data"); // the engine refuses any change but labels; data is never resent
    }
    spec["Labels"] = p.get("labels").cloned().unwrap_or(json!({}));
    let oid = v["ID"].as_str().unwrap_or(id).to_string();
    post(format!("{}/update", opath::<O>(&oid))).query("version", version_param(p, read)).json(&spec).send_ok()?;
    Ok(Output::one(format!("Updated the labels of {} {}", O::KIND, name_of(&v)), json!({"ID": oid, "labels": spec["Labels"]})))
}

fn remove<O: Object>(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    delete(opath::<O>(id)).send_ok()?;
    Ok(Output::one(format!("Removed {} {id}", O::KIND), json!({"id": id})))
}
