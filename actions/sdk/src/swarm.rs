//! What the swarm families share: versioned updates, waiting without holding a CPU slot,
//! and the one shape of the `secret` and `config` families.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::typed::{Filters, Typed};
use crate::{delete, get, json, post, seg, Action, Error, Kind, Map, Output, Result, Value};

/// Reads a swarm object and its `Version.Index`, which an update must send back.
pub fn versioned(path: &str) -> Result<(Value, u64)> {
    let v = get(path).json_ok()?;
    let version = v["Version"]["Index"].as_u64().ok_or_else(|| Error::internal(format!("{path}: the engine sent no Version.Index")))?;
    Ok((v, version))
}

/// The version to update against: the `version` param when given (optimistic locking by the
/// caller), else the one just read.
pub fn version_or(version: Option<i64>, read: u64) -> u64 {
    version.filter(|v| *v >= 0).map(|v| v as u64).unwrap_or(read)
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
pub fn names_value(v: Option<&Value>, name: &str) -> Result<Vec<String>> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::bad_params(format!("parameter '{name}' must be a list of strings")))).collect()
        }
        Some(_) => Err(Error::bad_params(format!("parameter '{name}' must be a list of strings or comma-separated text"))),
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Waits `d` on the engine (an event stream that ends at `until`), so that a waiting guest
/// holds no CPU slot on the host. Falls back to sleeping for what is left if the engine's
/// clock runs ahead. An action that declares its operations and waits (through this or
/// [`wait_for`]) declares `SystemEvents` too.
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

/// Calls `step` every `every` until it gives `Some`, or `timeout` passes (then `None`); the
/// wait is reported as progress (seconds of the timeout) once it has lasted a second.
pub fn wait_for<T>(timeout: Duration, every: Duration, mut step: impl FnMut() -> Result<Option<T>>) -> Result<Option<T>> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if let Some(t) = step()? {
            return Ok(Some(t));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let waited = now - start;
        if waited >= Duration::from_secs(1) {
            crate::log::progress("wait", waited.as_secs(), Some(timeout.as_secs()), &format!("waiting for the engine (at most {} s)", timeout.as_secs()));
        }
        pause(every.min(deadline - now));
    }
}

/// A secret or a config: the two families have one shape.
pub trait Object {
    /// `secret` or `config`.
    const KIND: &'static str;
    /// `secrets` or `configs`: the path and the family.
    const PLURAL: &'static str;
    /// `Secret` or `Config`: the Engine API's operationIds are this and the verb
    /// (`SecretList`, `ConfigUpdate`), which each action declares so that the gate holds it
    /// to them.
    const OP: &'static str;
    /// The create params: the same fields, the data `#[secret]` for secrets.
    type Create: Typed + Into<NewObject> + 'static;
}

crate::params! {
    pub struct SecretCreate {
        name: String => "Name of the secret",
        #[secret] data: Option<String> => "The data, as text",
        #[secret] data_base64: Option<String> => "The data, base64-encoded (binary data)",
        labels: Option<Map<String, Value>> => "Labels",
        templating: Option<String> => "Templating driver, e.g. golang",
        driver: Option<String> => "External secret driver",
    }
}

crate::params! {
    pub struct ConfigCreate {
        name: String => "Name of the config",
        data: Option<String> => "The data, as text",
        data_base64: Option<String> => "The data, base64-encoded (binary data)",
        labels: Option<Map<String, Value>> => "Labels",
        templating: Option<String> => "Templating driver, e.g. golang",
    }
}

/// A secret or config to create, whichever family asked.
pub struct NewObject {
    pub name: String,
    pub data: Option<String>,
    pub data_base64: Option<String>,
    pub labels: Option<Map<String, Value>>,
    pub templating: Option<String>,
    pub driver: Option<String>,
}

impl From<SecretCreate> for NewObject {
    fn from(p: SecretCreate) -> Self {
        NewObject { name: p.name, data: p.data, data_base64: p.data_base64, labels: p.labels, templating: p.templating, driver: p.driver }
    }
}

impl From<ConfigCreate> for NewObject {
    fn from(p: ConfigCreate) -> Self {
        NewObject { name: p.name, data: p.data, data_base64: p.data_base64, labels: p.labels, templating: p.templating, driver: None }
    }
}

pub struct Secret;
impl Object for Secret {
    const KIND: &'static str = "secret";
    const PLURAL: &'static str = "secrets";
    const OP: &'static str = "Secret";
    type Create = SecretCreate;
}

pub struct Config;
impl Object for Config {
    const KIND: &'static str = "config";
    const PLURAL: &'static str = "configs";
    const OP: &'static str = "Config";
    type Create = ConfigCreate;
}

crate::params! {
    pub struct ObjectList {
        filters: Option<Filters> => "Filters: id, label, name, names",
    }
}

crate::params! {
    pub struct ObjectId {
        id: String => "ID or name",
    }
}

crate::params! {
    pub struct ObjectUpdate {
        id: String => "ID or name",
        labels: Option<Map<String, Value>> => "Labels to add or change; the others are kept",
        labels_remove: Option<Value> => "Label keys to remove (list or comma-separated), as --label-rm",
        replace_labels: bool => "Replace every label with `labels` instead of merging",
        version: Option<i64> => "The version read before (Version.Index); the current one when absent",
    }
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
    let op = |verb: &str| format!("{}{verb}", O::OP);
    vec![
        Action::new(format!("{k}.list"), format!("List {pl}"))
            .read_only()
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Labels", "data.*.CreatedAt", "summary.total_objects"])
            .ops(&[&op("List")])
            .typed(list::<O>),
        Action::new(format!("{k}.create"), format!("Create a {k}"))
            .kind(Kind::Generic)
            .output(&["data.*.ID", "data.*.name", "summary.id"])
            .ops(&[&op("Create")])
            .typed(create::<O>),
        Action::new(format!("{k}.inspect"), format!("Inspect a {k}"))
            .read_only()
            .output(&["data.*.ID", "data.*.Spec.Name", "data.*.Spec.Labels", "data.*.Version.Index"])
            .ops(&[&op("Inspect")])
            .typed(inspect::<O>),
        Action::new(
            format!("{k}.update"),
            format!("Update a {k}'s labels (the only field the engine lets change): merged, as docker's --label-add/--label-rm"),
        )
        .kind(Kind::Generic)
        .output(&["data.*.ID", "data.*.labels"])
        .ops(&[&op("Inspect"), &op("Update")])
        .typed(update::<O>),
        Action::new(format!("{k}.remove"), format!("Remove a {k}")).kind(Kind::Correct).output(&["data.*.id"]).ops(&[&op("Delete")]).typed(remove::<O>),
    ]
}

/// The data as the base64 the engine takes (empty for an external driver's secret).
fn data_of(kind: &str, p: &NewObject) -> Result<String> {
    match (&p.data, &p.data_base64) {
        (Some(_), Some(_)) => Err(Error::bad_params("give 'data' or 'data_base64', not both")),
        (Some(d), None) => Ok(crate::params::base64_encode(d.as_bytes())),
        (None, Some(b)) => {
            crate::params::base64_decode(b).ok_or_else(|| Error::bad_params("parameter 'data_base64' is not valid base64"))?;
            Ok(b.clone())
        }
        (None, None) if p.driver.is_some() => Ok(String::new()),
        (None, None) => Err(Error::bad_params(format!("a {kind} needs 'data' or 'data_base64'"))),
    }
}

fn list<O: Object>(p: ObjectList) -> Result<Output> {
    let v = get(format!("/{}", O::PLURAL)).query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json(O::PLURAL, &v))
}

/// Creates a secret or config; returns its ID.
pub fn create_object<O: Object>(p: &NewObject) -> Result<String> {
    let mut spec = Map::new();
    spec.insert("Name".into(), json!(p.name));
    let data = data_of(O::KIND, p)?;
    if !data.is_empty() {
        spec.insert("Data".into(), json!(data));
    }
    crate::params::set_opt(&mut spec, "Labels", p.labels.clone().map(Value::Object));
    if let Some(t) = &p.templating {
        spec.insert("Templating".into(), json!({"Name": t}));
    }
    if let Some(d) = &p.driver {
        spec.insert("Driver".into(), json!({"Name": d}));
    }
    let v = post(format!("/{}/create", O::PLURAL)).json(&Value::Object(spec)).json_ok()?;
    Ok(v["ID"].as_str().unwrap_or_default().to_string())
}

fn create<O: Object>(p: O::Create) -> Result<Output> {
    let p: NewObject = p.into();
    let id = create_object::<O>(&p)?;
    Ok(Output::one(format!("Created {} {} ({id})", O::KIND, p.name), json!({"ID": id, "name": p.name})).summary("id", id))
}

fn inspect<O: Object>(p: ObjectId) -> Result<Output> {
    let id = p.id.as_str();
    let mut v = get(opath::<O>(id)).json_ok()?;
    if O::PLURAL == "configs" {
        // Config data is not secret: show it as text too when it is.
        if let Some(text) = v["Spec"]["Data"].as_str().and_then(crate::params::base64_decode).and_then(|b| String::from_utf8(b).ok()) {
            v["Spec"]["DataText"] = json!(text);
        }
    }
    Ok(Output::new(format!("{} {} ({})", O::KIND, name_of(&v), v["ID"].as_str().unwrap_or(id))).summary("id", v["ID"].clone()).item(v))
}

fn update<O: Object>(p: ObjectUpdate) -> Result<Output> {
    let id = p.id.as_str();
    let (v, read) = versioned(&opath::<O>(id))?;
    let mut spec = v["Spec"].clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("Data"); // the engine refuses any change but labels; data is never resent
    }
    let remove = names_value(p.labels_remove.as_ref(), "labels_remove")?;
    if p.labels.is_none() && remove.is_empty() && !p.replace_labels {
        return Err(Error::bad_params("give 'labels' to add or change, 'labels_remove', or replace_labels=true"));
    }
    let mut labels = if p.replace_labels { Map::new() } else { spec["Labels"].as_object().cloned().unwrap_or_default() };
    for (k, v) in p.labels.iter().flatten() {
        labels.insert(k.clone(), v.as_str().map(|s| json!(s)).unwrap_or_else(|| json!(v.to_string())));
    }
    for k in &remove {
        labels.remove(k);
    }
    spec["Labels"] = Value::Object(labels);
    let oid = v["ID"].as_str().unwrap_or(id).to_string();
    let version = version_or(p.version, read);
    post(format!("{}/update", opath::<O>(&oid))).query("version", version).json(&spec).send_ok()?;
    Ok(Output::one(format!("Updated the labels of {} {}", O::KIND, name_of(&v)), json!({"ID": oid, "labels": spec["Labels"]})))
}

fn remove<O: Object>(p: ObjectId) -> Result<Output> {
    delete(opath::<O>(&p.id)).send_ok()?;
    Ok(Output::one(format!("Removed {} {}", O::KIND, p.id), json!({"id": p.id})))
}

/// Names each task as `docker service ps` does: `Name` is `service.slot` (`service.node-id` for
/// a global service), with `ServiceName` and `NodeHostname` beside the IDs. One list call each
/// for the services and the nodes named; a name the engine does not give (a node list this
/// caller may not read) is left out.
pub fn name_tasks(tasks: &mut [Value]) {
    let ids = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = tasks.iter().filter_map(|t| t[key].as_str().map(str::to_string)).filter(|s| !s.is_empty()).collect();
        v.sort();
        v.dedup();
        v
    };
    let names = |path: &str, ids: Vec<String>, name: fn(&Value) -> Option<&str>| -> HashMap<String, String> {
        if ids.is_empty() {
            return Default::default();
        }
        let listed = get(path).query_json("filters", Some(&json!({"id": ids}))).json_ok().unwrap_or(Value::Null);
        listed.as_array().into_iter().flatten().filter_map(|o| Some((o["ID"].as_str()?.to_string(), name(o)?.to_string()))).collect()
    };
    let services = names("/services", ids("ServiceID"), |s| s["Spec"]["Name"].as_str());
    let nodes = names("/nodes", ids("NodeID"), |n| n["Description"]["Hostname"].as_str());
    for t in tasks.iter_mut() {
        let service = t["ServiceID"].as_str().and_then(|id| services.get(id)).cloned();
        let node = t["NodeID"].as_str().and_then(|id| nodes.get(id)).cloned();
        if let Some(svc) = &service {
            let suffix = match t["Slot"].as_u64() {
                Some(slot) if slot > 0 => slot.to_string(),
                _ => t["NodeID"].as_str().unwrap_or("").to_string(),
            };
            t["Name"] = json!(format!("{svc}.{suffix}"));
            t["ServiceName"] = json!(svc);
        }
        if let Some(host) = node {
            t["NodeHostname"] = json!(host);
        }
    }
}

crate::params! {
    /// How service and task logs name the task that wrote each line, as `docker service logs`.
    #[derive(Default)]
    pub struct TaskLogView {
        raw: bool => "Lines as the engine sent them, without the task prefix (docker service logs --raw)",
        no_resolve: bool => "Service and node IDs in the prefix instead of their names",
        no_trunc: bool => "Full task IDs in the prefix",
        no_task_ids: bool => "No task ID in the prefix",
    }
}

/// The prefix of each log line, `service.slot.task-id@node`, by task ID, as `docker service
/// logs` writes it. Built from the tasks the engine lists; a line whose task is not among them
/// is named from the IDs its details carry.
pub struct TaskPrefixes {
    view: TaskLogView,
    timestamps: bool,
    /// Digits of the largest slot, to align the `|` column.
    width: usize,
    by_task: HashMap<String, Value>,
}

fn digits(n: u64) -> usize {
    n.max(1).to_string().len()
}

impl TaskPrefixes {
    /// `tasks` as the engine listed them (named here); `replicas` of the service (or the one
    /// task's slot) sets the alignment as the docker CLI does.
    pub fn new(view: TaskLogView, timestamps: bool, mut tasks: Vec<Value>, replicas: u64) -> Self {
        if !view.no_resolve {
            name_tasks(&mut tasks);
        }
        let by_task = tasks.into_iter().filter_map(|t| Some((t["ID"].as_str()?.to_string(), t))).collect();
        TaskPrefixes { view, timestamps, width: digits(replicas), by_task }
    }

    fn prefix(&self, details: &HashMap<String, String>) -> String {
        let detail = |k: &str| details.get(k).map(String::as_str).unwrap_or("");
        let (task_id, node_id, service_id) = (detail("com.docker.swarm.task.id"), detail("com.docker.swarm.node.id"), detail("com.docker.swarm.service.id"));
        let task = self.by_task.get(task_id);
        let field = |k: &str| task.and_then(|t| t[k].as_str());
        let (service, node) =
            if self.view.no_resolve { (service_id, node_id) } else { (field("ServiceName").unwrap_or(service_id), field("NodeHostname").unwrap_or(node_id)) };
        let slot = task.and_then(|t| t["Slot"].as_u64()).unwrap_or(0);
        let mut name = format!("{service}.{slot}");
        if !self.view.no_task_ids {
            name.push('.');
            name.push_str(if self.view.no_trunc { task_id } else { &task_id[..task_id.len().min(12)] });
        }
        let pad = self.width.saturating_sub(digits(slot));
        format!("{name}@{node}{}    | ", " ".repeat(pad))
    }

    /// Rewrites one output's lines `[timestamp ]details message` as
    /// `[timestamp ]prefix    | message`. (With `raw`, the logs are read without details and
    /// not shaped.)
    pub fn shape(&self, buf: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(buf.len() + buf.len() / 2);
        for line in buf.split_inclusive(|&b| b == b'\n') {
            let mut rest = line;
            if self.timestamps {
                let cut = rest.iter().position(|&b| b == b' ').map_or(rest.len(), |i| i + 1);
                out.extend_from_slice(&rest[..cut]);
                rest = &rest[cut..];
            }
            let cut = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let details = parse_details(&String::from_utf8_lossy(&rest[..cut]));
            if !details.contains_key("com.docker.swarm.task.id") {
                return Err(Error::internal(format!("a log line without its task's details: {:?}", String::from_utf8_lossy(line))));
            }
            out.extend_from_slice(self.prefix(&details).as_bytes());
            out.extend_from_slice(rest.get(cut + 1..).unwrap_or_default());
        }
        Ok(out)
    }
}

/// The details before a log line: `k=v,k=v`, each side URL-encoded.
fn parse_details(s: &str) -> HashMap<String, String> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((unescape(k), unescape(v)))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(view: TaskLogView, timestamps: bool) -> TaskPrefixes {
        let task = json!({"ID": "y43lw8mssvd8kvyorfq1csnzf", "Slot": 2, "ServiceName": "lg", "NodeHostname": "vm", "ServiceID": "svc", "NodeID": "node"});
        TaskPrefixes { view, timestamps, width: 2, by_task: [("y43lw8mssvd8kvyorfq1csnzf".to_string(), task)].into() }
    }

    const LINE: &str = "com.docker.swarm.node.id=node,com.docker.swarm.service.id=svc,com.docker.swarm.task.id=y43lw8mssvd8kvyorfq1csnzf hello from a b\n";

    #[test]
    fn lines_are_named_as_docker_service_logs_names_them() {
        let line = LINE;
        let p = prefixes(TaskLogView::default(), false);
        assert_eq!(String::from_utf8(p.shape(line.as_bytes()).unwrap()).unwrap(), "lg.2.y43lw8mssvd8@vm     | hello from a b\n");
        let p = prefixes(TaskLogView { no_resolve: true, no_trunc: true, ..Default::default() }, false);
        assert_eq!(String::from_utf8(p.shape(line.as_bytes()).unwrap()).unwrap(), "svc.2.y43lw8mssvd8kvyorfq1csnzf@node     | hello from a b\n");
        let p = prefixes(TaskLogView { no_task_ids: true, ..Default::default() }, true);
        let stamped = format!("2026-12-03T15:06:22.5Z {line}");
        assert_eq!(String::from_utf8(p.shape(stamped.as_bytes()).unwrap()).unwrap(), "2026-12-03T15:06:22.5Z lg.2@vm     | hello from a b\n");
        assert!(prefixes(TaskLogView::default(), false).shape(b"no details here\n").is_err());
    }

    #[test]
    fn details_are_url_decoded() {
        let d = parse_details("a%3Db=c+d%2C,e=%zz");
        assert_eq!(d["a=b"], "c d,");
        assert_eq!(d["e"], "%zz");
    }
}
