//! The one gate between every engine request and the transport.
//!
//! [`Policy::admit`] sees every request: a guest's (`call`, `open`, `upgrade`,
//! `call-to-artifact`) and, through the [`Inspector`], the host's own inspections, which
//! count against the call budget and show in the audit. It
//! - matches the request against the Engine API's route table ([`routes`]) exactly as the
//!   engine's router will, and refuses paths that match no route and queries that repeat a key;
//! - keeps read-only invocations to GET and HEAD;
//! - checks bodies against the tenant's [`EnginePolicy`] (privileges, host namespaces, host
//!   paths, devices, drivers) and forces its resource caps;
//! - for a label-scoped tenant, finds every object the engine will act on, including those a
//!   body or query refers to, and lets the request through only if each carries the tenant's
//!   label; lists, prunes and events get the label merged into their filters; creates,
//!   commits and imports get it forced; tags may not overwrite another tenant's image;
//! - derives the registry from the request itself, so credentials go only where the image goes.
//!
//! Tenant-level checks (the action allowlist, pins, the read-only flag) are in [`tenant`].

pub mod canonical;
pub mod dockerfile;
pub mod globs;
mod kinds;
pub mod reference;
pub mod routes;
pub mod rules;
pub mod stored;
pub mod tenant;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

pub use globs::Globs;
pub use routes::{match_route, Matched};
pub use rules::EnginePolicy;
pub use stored::AfterCheck;
pub use tenant::TenantPolicy;

use crate::engine::OutBody;

/// What one invocation may ask of the engine.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Only GET and HEAD: set for actions declared read-only (and read-only tenants).
    pub read_only: bool,
    /// `(key, value)`: only objects carrying this label may be seen or touched.
    pub label_scope: Option<(String, String)>,
    /// What request bodies may hold.
    pub rules: Arc<EnginePolicy>,
    /// The engine's unix socket, which no bind mount may expose.
    pub engine_socket: Option<String>,
    /// The Engine API operations the action declared (contract 0.2): any other is refused.
    /// `None` when it declared none.
    pub operations: Option<Arc<[String]>>,
}

impl Policy {
    /// No tenant: the CLI without `--policy`. Routes, repeated keys and the read-only rule
    /// still hold.
    pub fn for_action(read_only: bool) -> Self {
        static OPEN: OnceLock<Arc<EnginePolicy>> = OnceLock::new();
        Policy {
            read_only,
            label_scope: None,
            rules: OPEN.get_or_init(|| Arc::new(EnginePolicy::unrestricted())).clone(),
            engine_socket: None,
            operations: None,
        }
    }

    /// Restricts the invocation to the operations its action declares (none: no restriction).
    pub fn declared_operations(mut self, ops: &[String]) -> Self {
        self.operations = (!ops.is_empty()).then(|| ops.into());
        self
    }
}

/// Why the gate refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Refused by policy: the invocation fails as denied.
    Denied(String),
    /// Malformed: a body that is not JSON, filters that are not an object.
    Invalid(String),
    /// The host's inspections ran out of the call budget.
    Limit(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Denied(m) | Refusal::Invalid(m) | Refusal::Limit(m) => m,
        }
    }
}

/// The host's own engine reads, made on the gate's behalf (GET, JSON, 404 → `None`).
pub trait Inspector: Send {
    fn inspect(&mut self, path: &str) -> impl Future<Output = Result<Option<Value>, Refusal>> + Send;
}

/// A request as the guest asked for it.
pub struct GateRequest<'a> {
    pub action: &'a str,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    /// The registry the guest asked credentials for (`X-Registry-Auth`).
    pub registry: Option<&'a str>,
    /// The registry of a `registry-auth` body (`POST /auth`).
    pub auth_body_registry: Option<&'a str>,
}

/// A request the gate let through: send exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Canonical path: the route template with the checked object encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The registry to attach `X-Registry-Auth` for: the one the request itself goes to.
    pub registry: Option<String>,
    /// Safe defaults applied where the request was silent ("field: value (why)"), for the
    /// action's result.
    pub applied: Vec<String>,
    /// What to inspect once the engine has answered with success ([`stored`]).
    pub after: Option<AfterCheck>,
}

/// Query keys the engine reads as lists, per route.
fn multi_key(template: &str, key: &str) -> bool {
    matches!((template, key), ("/commit" | "/images/create", "changes") | ("/build", "t") | ("/images/get", "names"))
}

fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The registry host of an image reference, as the engine reads it.
pub fn registry_of(image: &str) -> String {
    let r = match reference::Reference::parse(image) {
        Ok(r) => r.domain,
        Err(_) => reference::split_domain(image).0,
    };
    crate::credentials::normalize(&r)
}

/// Image references a repo/tag pair may name, normalised as the engine normalises them.
/// Engines differ on `repo=name:t1&tag=t2` (`name:t2` or `name:t1`), so every reading is
/// checked: `name:tag`, `name:own_tag`, and `name:latest` when neither is given. A digest
/// is kept whole. A reference the engine would refuse is refused here, naming `field`.
fn destinations(field: &str, repo: &str, tag: Option<&str>) -> Result<Vec<String>, Refusal> {
    let r = reference::Reference::parse(repo).map_err(|e| Refusal::Invalid(format!("{field}: {e}")))?;
    let mut out: Vec<String> = Vec::new();
    if r.digest.is_some() {
        out.push(r.familiar());
    }
    let name = r.familiar_name();
    for t in [tag.filter(|t| !t.is_empty()), r.tag.as_deref()].into_iter().flatten() {
        let d = format!("{name}:{t}");
        reference::Reference::parse(&d).map_err(|e| Refusal::Invalid(format!("{field}: {e}")))?;
        out.push(d);
    }
    if out.is_empty() {
        out.push(format!("{name}:latest"));
    }
    out.dedup();
    Ok(out)
}

/// The query `filters=<json>`, encoded.
fn filters_query(filters: Value) -> String {
    crate::engine::path::encode_query(&[("filters".into(), filters.to_string())])
}

fn seg(s: &str) -> String {
    routes::segment(s)
}

/// Operations an action may call without declaring them: they only tell who the engine is.
const IDENTITY_OPERATIONS: [&str; 3] = ["SystemPing", "SystemPingHead", "SystemVersion"];

impl Policy {
    /// The one check every engine request passes before the transport. May rewrite the path
    /// (to the object's full id), the query (merged filters, forced labels) and a JSON body
    /// (forced labels and resource caps).
    pub async fn admit<I: Inspector>(&self, insp: &mut I, req: GateRequest<'_>, body: &mut OutBody) -> Result<Admitted, Refusal> {
        let m = match_route(req.method, req.path).map_err(|e| Refusal::Denied(e.0))?;
        let template = m.route.template;
        let mut seen = std::collections::HashSet::new();
        for (k, _) in &req.query {
            if !seen.insert(k.as_str()) && !multi_key(template, k) {
                return Err(Refusal::Denied(format!("query key '{k}' is repeated (the engine would read only the first)")));
            }
        }
        if self.read_only && !(req.method == Method::GET || req.method == Method::HEAD) {
            return Err(Refusal::Denied(format!("{} is read-only: {} {} refused (only GET and HEAD are allowed)", req.action, req.method, req.path)));
        }
        if let Some(ops) = &self.operations {
            let op = m.route.operation;
            // The engine's identity is every action's to read, declared or not: the SDK names
            // the engine (from /version) when a 404 says it lacks an endpoint.
            if !IDENTITY_OPERATIONS.contains(&op) && !ops.iter().any(|o| o == op) {
                return Err(Refusal::Denied(format!(
                    "{} declares the engine operations {}; {op} ({} {}) is not among them",
                    req.action,
                    ops.join(", "),
                    req.method,
                    req.path
                )));
            }
        }
        let decoded = if self.policed() { canonical_body(&m, body)? } else { None };
        let mut query = req.query;
        let registry = self.registry_for(&m, &query, decoded.as_ref(), body, req.registry, req.auth_body_registry)?;
        let mut gate = Gate { policy: self, insp, scope: self.label_scope.clone(), applied: Vec::new(), decoded, after: None };
        let path = gate.check(&m, &mut query, body).await?;
        if let Some(v) = gate.decoded.take() {
            // A route whose rules did not read the body: it goes as decoded all the same.
            set_body(body, &v);
        }
        let after = gate.after.filter(|_| self.policed());
        Ok(Admitted { path, query, registry, applied: gate.applied, after })
    }

    /// The registry a request goes to, derived from the request itself; a guest's `registry`
    /// that disagrees is refused, and so is a registry outside the tenant's list.
    /// `decoded`: the body as the canonical reading gave it, if it was read.
    fn registry_for(
        &self,
        m: &Matched,
        query: &[(String, String)],
        decoded: Option<&Value>,
        body: &OutBody,
        asked: Option<&str>,
        auth_body: Option<&str>,
    ) -> Result<Option<String>, Refusal> {
        let param = m.param.as_deref().unwrap_or("");
        let derived: Option<String> = match (m.route.method.as_str(), m.route.template) {
            ("POST", "/images/create") => q(query, "fromImage").filter(|s| !s.is_empty()).map(registry_of),
            ("POST", "/images/{name}/push") | ("GET", "/distribution/{name}/json") | ("POST", "/plugins/{name}/push") => Some(registry_of(param)),
            ("GET", "/images/search") => q(query, "term").map(registry_of),
            ("POST", "/plugins/pull") | ("POST", "/plugins/{name}/upgrade") | ("GET", "/plugins/privileges") => q(query, "remote").map(registry_of),
            ("POST", "/services/create") | ("POST", "/services/{id}/update") => {
                let parsed = match (decoded, body) {
                    (None, OutBody::Bytes(b)) => serde_json::from_slice::<Value>(b).ok(),
                    _ => None,
                };
                decoded.or(parsed.as_ref()).and_then(|v| v["TaskTemplate"]["ContainerSpec"]["Image"].as_str().map(registry_of))
            }
            ("POST", "/auth") => auth_body.map(crate::credentials::normalize),
            _ => None,
        };
        if let (Some(a), None) = (auth_body, &derived) {
            return Err(Refusal::Denied(format!("a registry auth body for '{a}' is only sent to POST /auth")));
        }
        if let Some(r) = &derived {
            if !self.rules.registry_allowed(r) {
                return Err(Refusal::Denied(format!("registry {r} is not in this tenant's registries")));
            }
        }
        match (asked, derived) {
            (None, _) => Ok(None),
            (Some(a), Some(d)) if crate::credentials::normalize(a) == d => Ok(Some(d)),
            (Some(a), Some(d)) => Err(Refusal::Denied(format!("registry: the request goes to {d}, so credentials for '{a}' are not sent"))),
            (Some(a), None) => {
                Err(Refusal::Denied(format!("registry: {} {} goes to no registry, so credentials for '{a}' are not sent", m.route.method, m.route.template)))
            }
        }
    }
}

impl Policy {
    /// Whether requests are policed at all (a label scope or an engine policy).
    pub fn policed(&self) -> bool {
        self.label_scope.is_some() || !self.rules.open
    }

    /// Checks a container as the engine stored it after a create (see
    /// [`EnginePolicy::verify_container`]), and its scope label.
    pub fn verify_container(&self, stored: &Value) -> Result<(), String> {
        self.rules.verify_container(stored, self.engine_socket.as_deref())?;
        if let Some((key, value)) = &self.label_scope {
            if stored["Config"]["Labels"][key.as_str()].as_str() != Some(value.as_str()) {
                return Err(format!("Labels as stored by the engine: the scope label {key}={value} is missing"));
            }
        }
        Ok(())
    }
}

/// The per-request state of a check.
struct Gate<'p, 'i, I> {
    policy: &'p Policy,
    insp: &'i mut I,
    scope: Option<(String, String)>,
    applied: Vec<String>,
    /// The body as [`canonical_body`] decoded it, taken by the first [`Gate::json_body`].
    decoded: Option<Value>,
    /// What the host must verify once the engine has stored the result.
    after: Option<AfterCheck>,
}

/// The kinds of object the gate can look up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Container,
    Image,
    Volume,
    Network,
    Service,
    Secret,
    Config,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Service => "service",
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
    pub fn inspect_path(self, name: &str) -> String {
        match self {
            Kind::Container => format!("/containers/{}/json", seg(name)),
            Kind::Image => format!("/images/{}/json", seg(name)),
            Kind::Volume => format!("/volumes/{}", seg(name)),
            Kind::Network => format!("/networks/{}", seg(name)),
            Kind::Service => format!("/services/{}", seg(name)),
            Kind::Secret => format!("/secrets/{}", seg(name)),
            Kind::Config => format!("/configs/{}", seg(name)),
        }
    }
    fn labels(self, v: &Value) -> &Value {
        match self {
            Kind::Container | Kind::Image => &v["Config"]["Labels"],
            Kind::Volume | Kind::Network => &v["Labels"],
            Kind::Service | Kind::Secret | Kind::Config => &v["Spec"]["Labels"],
        }
    }
}

fn json_body(body: &OutBody, what: &str, empty_ok: bool) -> Result<Value, Refusal> {
    match body {
        OutBody::Bytes(b) if !b.is_empty() => serde_json::from_slice(b).map_err(|e| Refusal::Invalid(format!("the {what} body is not JSON: {e}"))),
        OutBody::Empty | OutBody::Bytes(_) if empty_ok => Ok(json!({})),
        _ => Err(Refusal::Invalid(format!("the {what} body must be a JSON document"))),
    }
}

/// A policed tenant's JSON body, decoded as the engine will decode it: what the gate checks
/// next (the returned document) is, re-encoded, exactly what the engine receives
/// ([`canonical`]).
fn canonical_body(m: &Matched, body: &OutBody) -> Result<Option<Value>, Refusal> {
    let Some(node) = canonical::schema(m.route.method.as_str(), m.route.template) else { return Ok(None) };
    let op = m.route.operation;
    match body {
        OutBody::Empty => Ok(None),
        OutBody::Bytes(b) if b.is_empty() => Ok(None),
        OutBody::Bytes(b) => {
            // Encoded once, by the gate, after its rules (see [`Policy::admit`]).
            canonical::decode(node, b).map(Some).map_err(|e| Refusal::Denied(format!("{op} body: {e}")))
        }
        OutBody::Stream(_) => Err(Refusal::Denied(format!("{op}: a JSON body is sent whole, not streamed"))),
    }
}

fn set_body(body: &mut OutBody, v: &Value) {
    *body = OutBody::Bytes(Bytes::from(v.to_string()));
}

impl<I: Inspector> Gate<'_, '_, I> {
    fn rules(&self) -> &EnginePolicy {
        &self.policy.rules
    }

    fn socket(&self) -> Option<&str> {
        self.policy.engine_socket.as_deref()
    }

    /// The request's JSON body: as already decoded for a policed tenant, else parsed here.
    fn json_body(&mut self, body: &OutBody, what: &str, empty_ok: bool) -> Result<Value, Refusal> {
        match self.decoded.take() {
            Some(v) => Ok(v),
            None => json_body(body, what, empty_ok),
        }
    }

    /// Body checks for every tenant; reference, label and route checks for scoped ones: the
    /// endpoints that name no object here, every other one by the module of its kind
    /// ([`kinds`]).
    async fn check(&mut self, m: &Matched, query: &mut Vec<(String, String)>, body: &mut OutBody) -> Result<String, Refusal> {
        match (m.route.method.as_str(), m.route.template) {
            ("GET", "/_ping") | ("HEAD", "/_ping") | ("GET", "/version") | ("GET", "/info") => Ok(m.path_with(None)),
            ("GET", "/containers/json" | "/images/json" | "/volumes" | "/networks" | "/events" | "/services" | "/secrets" | "/configs")
            | ("POST", "/containers/prune" | "/images/prune" | "/volumes/prune" | "/networks/prune") => {
                if self.scope.is_some() {
                    self.merge_filters(query)?;
                }
                Ok(m.path_with(None))
            }
            (_, t) if t.starts_with("/containers") || t.starts_with("/exec") => self.containers(m, body).await,
            (_, t) if t.starts_with("/volumes") || t.starts_with("/networks") => self.volumes_and_networks(m, body).await,
            (_, t) if ["/services", "/secrets", "/configs", "/tasks"].iter().any(|p| t.starts_with(p)) => self.swarm_objects(m, query, body).await,
            (_, t) if t.starts_with("/images") || matches!(t, "/commit" | "/build" | "/distribution/{name}/json" | "/auth") => {
                self.images(m, query, body).await
            }
            _ => self.unlisted(m),
        }
    }

    /// A route no kind checks: refused for a scoped tenant, sent as it is otherwise.
    fn unlisted(&self, m: &Matched) -> Result<String, Refusal> {
        if self.scope.is_some() {
            Err(Refusal::Denied(format!("{} {} is not available to a label-scoped tenant", m.route.method, m.route.template)))
        } else {
            Ok(m.path_with(None))
        }
    }

    /// Looks up the object a path names; for a scoped tenant it must carry the label.
    /// Returns the id to send: a container's or network's full id (so that the engine acts on
    /// exactly the object checked), or the name as given.
    async fn object(&mut self, kind: Kind, name: &str) -> Result<String, Refusal> {
        if self.scope.is_none() {
            return Ok(name.to_string());
        }
        match self.lookup(kind, name).await? {
            None => Ok(name.to_string()), // the engine answers 404 itself
            Some(v) => {
                self.in_scope(kind, name, &v)?;
                Ok(Self::id_of(kind, name, &v))
            }
        }
    }

    /// An object a body or query refers to: it must exist and be in scope.
    async fn reference(&mut self, field: &str, kind: Kind, name: &str) -> Result<String, Refusal> {
        match self.lookup(kind, name).await? {
            None => Err(Refusal::Denied(format!("{field}: {} '{name}' does not exist (create it first)", kind.name()))),
            Some(v) => {
                self.in_scope(kind, name, &v).map_err(|e| Refusal::Denied(format!("{field}: {}", e.message())))?;
                Ok(Self::id_of(kind, name, &v))
            }
        }
    }

    fn id_of(kind: Kind, name: &str, v: &Value) -> String {
        match kind {
            Kind::Container | Kind::Network => v["Id"].as_str().unwrap_or(name).to_string(),
            Kind::Service | Kind::Secret | Kind::Config => v["ID"].as_str().unwrap_or(name).to_string(),
            Kind::Volume | Kind::Image => name.to_string(),
        }
    }

    async fn lookup(&mut self, kind: Kind, name: &str) -> Result<Option<Value>, Refusal> {
        if name.is_empty() {
            return Ok(None);
        }
        self.insp.inspect(&kind.inspect_path(name)).await
    }

    fn in_scope(&self, kind: Kind, name: &str, v: &Value) -> Result<(), Refusal> {
        let Some((key, value)) = &self.scope else { return Ok(()) };
        if kind.labels(v)[key.as_str()].as_str() == Some(value.as_str()) {
            Ok(())
        } else {
            Err(Refusal::Denied(format!("{} {name} is outside this tenant's scope ({key}={value})", kind.name())))
        }
    }

    async fn check_refs(&mut self, refs: &rules::References) -> Result<(), Refusal> {
        for (field, c) in &refs.containers {
            self.reference(field, Kind::Container, c).await?;
        }
        for (field, v) in &refs.volumes {
            self.reference(field, Kind::Volume, v).await?;
        }
        for (field, n) in &refs.networks {
            self.reference(field, Kind::Network, n).await?;
        }
        for (field, i) in &refs.images {
            self.image_usable(field, i).await?;
        }
        for (field, v) in &refs.secrets {
            self.reference(field, Kind::Secret, v).await?;
        }
        for (field, v) in &refs.configs {
            self.reference(field, Kind::Config, v).await?;
        }
        Ok(())
    }

    /// An image a container runs: the tenant's own, or an allowlisted base image that carries
    /// no tenant's label.
    async fn image_usable(&mut self, field: &str, image: &str) -> Result<(), Refusal> {
        let found = self.lookup(Kind::Image, image).await?;
        self.image_usable_as(field, image, found.as_ref())
    }

    /// [`Gate::image_usable`] on an image already looked up (`None`: not on the engine).
    fn image_usable_as(&self, field: &str, image: &str, found: Option<&Value>) -> Result<(), Refusal> {
        let (key, value) = self.scope.clone().expect("scoped");
        let label = found.map(|v| v["Config"]["Labels"][key.as_str()].clone()).unwrap_or(Value::Null);
        if label.as_str() == Some(value.as_str()) {
            return Ok(());
        }
        if !label.is_null() {
            return Err(Refusal::Denied(format!("{field}: image {image} belongs to another tenant ({key}={})", label.as_str().unwrap_or("?"))));
        }
        if self.rules().image_allowlisted(image) {
            return Ok(());
        }
        Err(Refusal::Denied(format!("{field}: image {image} is neither this tenant's ({key}={value}) nor in its images allowlist")))
    }

    /// A name a tag, commit, import, build or pull would (re)point: it may not take over an
    /// image outside the scope, nor a name reserved as a base image.
    /// Returns the names checked.
    async fn destinations(&mut self, field: &str, repo: &str, tag: Option<&str>) -> Result<Vec<String>, Refusal> {
        let (key, value) = self.scope.clone().expect("scoped");
        let names = destinations(field, repo, tag)?;
        for dest in &names {
            if self.rules().image_allowlisted(dest) && field != "fromImage" {
                return Err(Refusal::Denied(format!("{field}: {dest} is a base image name from the images allowlist; it cannot be overwritten")));
            }
            if let Some(v) = self.lookup(Kind::Image, dest).await? {
                let label = &v["Config"]["Labels"][key.as_str()];
                let base = label.is_null() && self.rules().image_allowlisted(dest) && field == "fromImage";
                if label.as_str() != Some(value.as_str()) && !base {
                    return Err(Refusal::Denied(format!("{field}: {dest} already names an image outside this tenant's scope ({key}={value})")));
                }
            } else if field == "fromImage" && !self.rules().image_allowlisted(dest) {
                // A pulled image carries no scope label, so the tenant could not use it anyway.
                return Err(Refusal::Denied(format!("fromImage: {dest} is not in this tenant's images allowlist")));
            }
        }
        Ok(names)
    }

    /// `filters=…` naming the scope label, for the host's own lists (`None`: not scoped).
    fn scope_filter(&self) -> Option<String> {
        let (key, value) = self.scope.as_ref()?;
        Some(filters_query(json!({"label": [format!("{key}={value}")]})))
    }

    /// A scoped tenant's count of `kind` on this engine must stay below `cap` (0: no cap).
    async fn quota(&mut self, kind: Kind, cap: u32) -> Result<(), Refusal> {
        if cap == 0 {
            return Ok(());
        }
        let q = self.scope_filter().expect("scoped");
        let list = match kind {
            Kind::Container => self.insp.inspect(&format!("/containers/json?all=1&{q}")).await?,
            Kind::Volume => self.insp.inspect(&format!("/volumes?{q}")).await?.map(|v| v["Volumes"].clone()),
            _ => self.insp.inspect(&format!("/networks?{q}")).await?,
        };
        let n = list.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
        if n >= cap as usize {
            return Err(Refusal::Limit(format!("this tenant has {n} {}s on the engine, its cap (engine_policy.max_{}s)", kind.name(), kind.name())));
        }
        Ok(())
    }

    /// A task list for a scoped tenant must name its services (`filters.service`), each in
    /// scope; they are sent by ID. Tasks carry no labels of their own to filter on.
    async fn scope_tasks(&mut self, query: &mut Vec<(String, String)>) -> Result<(), Refusal> {
        let mut filters = match query.iter().position(|(k, _)| k == "filters") {
            Some(i) => serde_json::from_str::<Value>(&query.remove(i).1).map_err(|_| Refusal::Invalid("filters must be a JSON object".into()))?,
            None => json!({}),
        };
        let services: Vec<String> = match filters.get("service") {
            Some(Value::Array(a)) => a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect(),
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if services.is_empty() {
            return Err(Refusal::Denied("tasks: a label-scoped tenant must filter the task list by service (filters={\"service\": [...]})".into()));
        }
        let mut ids = Vec::new();
        for s in services {
            ids.push(self.reference("filters.service", Kind::Service, &s).await?);
        }
        filters["service"] = json!(ids);
        query.push(("filters".into(), filters.to_string()));
        Ok(())
    }

    /// Lists, prunes and events: the scope label is ANDed with the guest's own filters.
    fn merge_filters(&self, query: &mut Vec<(String, String)>) -> Result<(), Refusal> {
        let (key, value) = self.scope.clone().expect("scoped");
        let label = format!("{key}={value}");
        let mut filters = match query.iter().position(|(k, _)| k == "filters") {
            Some(i) => {
                let raw = query.remove(i).1;
                if raw.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str::<Value>(&raw).map_err(|_| Refusal::Invalid("filters must be a JSON object".into()))?
                }
            }
            None => json!({}),
        };
        let obj = filters.as_object_mut().ok_or_else(|| Refusal::Invalid("filters must be a JSON object".into()))?;
        match obj.get_mut("label") {
            Some(Value::Array(a)) => a.push(json!(label)),
            Some(Value::Object(m)) => {
                m.insert(label, json!(true));
            }
            None => {
                obj.insert("label".into(), json!([label]));
            }
            Some(_) => return Err(Refusal::Invalid("filters.label must be a list or an object".into())),
        }
        query.push(("filters".into(), filters.to_string()));
        Ok(())
    }

    fn force_label(&self, v: &mut Value, field: &str) -> Result<(), Refusal> {
        let (key, value) = self.scope.clone().expect("scoped");
        let obj = v.as_object_mut().ok_or_else(|| Refusal::Invalid("the body must be a JSON object".into()))?;
        let labels = obj.entry(field).or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[key.as_str()] = json!(value);
        Ok(())
    }

    /// `changes` may not set the scope key, and is read as the one Dockerfile the engine
    /// parses ([`dockerfile`]); a last `LABEL`, on a line of its own, sets the key to the
    /// tenant's value.
    fn force_changes_label(&self, query: &mut Vec<(String, String)>) -> Result<(), Refusal> {
        let (key, value) = self.scope.clone().expect("scoped");
        let changes: Vec<&str> = query.iter().filter(|(k, _)| k == "changes").map(|(_, v)| v.as_str()).collect();
        dockerfile::check_changes(&changes, &key).map_err(|e| Refusal::Denied(format!("changes: {e}")))?;
        query.push(("changes".into(), format!("LABEL {}={}", serde_json::to_string(&key).expect("str"), serde_json::to_string(&value).expect("str"))));
        Ok(())
    }
}

pub fn parse_method(m: &str) -> Result<Method, String> {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(format!("HTTP method '{m}' is not used by the Engine API")),
    }
}

/// Headers the host owns; a guest may not set them.
pub fn guest_header_allowed(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !matches!(
        n.as_str(),
        "host"
            | "x-registry-auth"
            | "x-registry-config"
            | "authorization"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-authorization"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Engine state for the gate's unit tests: inspect paths → documents.
    #[derive(Default)]
    struct Objects(HashMap<String, Value>, Vec<String>);

    impl Inspector for Objects {
        fn inspect(&mut self, path: &str) -> impl Future<Output = Result<Option<Value>, Refusal>> + Send {
            self.1.push(path.to_string());
            let v = self.0.get(path).cloned();
            async move { Ok(v) }
        }
    }

    fn red() -> Policy {
        Policy {
            read_only: false,
            label_scope: Some(("team".into(), "red".into())),
            rules: Arc::new(EnginePolicy::default()),
            engine_socket: None,
            operations: None,
        }
    }

    fn objects() -> Objects {
        let mut o = Objects::default();
        o.0.insert("/containers/mine/json".into(), json!({"Id": "c0ffee", "Config": {"Labels": {"team": "red"}}}));
        o.0.insert("/containers/mine%2Falias/json".into(), json!({"Id": "beef", "Config": {"Labels": {"team": "blue"}}}));
        o.0.insert("/containers/theirs/json".into(), json!({"Id": "beef", "Config": {"Labels": {"team": "blue"}}}));
        o.0.insert("/images/app:1/json".into(), json!({"Id": "sha256:1", "Config": {"Labels": {"team": "red"}}}));
        o.0.insert("/images/their:latest/json".into(), json!({"Id": "sha256:2", "Config": {"Labels": {"team": "blue"}}}));
        o.0.insert("/images/reg:5000%2Ftheir%2Fapp/json".into(), json!({"Id": "sha256:2", "Config": {"Labels": {"team": "blue"}}}));
        o.0.insert("/volumes/theirvol".into(), json!({"Name": "theirvol", "Labels": {"team": "blue"}}));
        o.0.insert("/volumes/myvol".into(), json!({"Name": "myvol", "Labels": {"team": "red"}}));
        o
    }

    fn run(p: &Policy, o: &mut Objects, method: Method, path: &str, query: &[(&str, &str)], body: Option<Value>) -> Result<(Admitted, OutBody), Refusal> {
        let mut b = body.map(|v| OutBody::Bytes(Bytes::from(v.to_string()))).unwrap_or(OutBody::Empty);
        let req = GateRequest {
            action: "t",
            method: &method,
            path,
            query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            registry: None,
            auth_body_registry: None,
        };
        let a = futures_util::FutureExt::now_or_never(p.admit(o, req, &mut b)).expect("no real I/O")?;
        Ok((a, b))
    }

    fn body_json(b: &OutBody) -> Value {
        match b {
            OutBody::Bytes(b) => serde_json::from_slice(b).unwrap(),
            _ => Value::Null,
        }
    }

    #[test]
    fn scoped_objects_by_greedy_route() {
        let p = red();
        let mut o = objects();
        let (a, _) = run(&p, &mut o, Method::POST, "/containers/mine/stop", &[], None).unwrap();
        assert_eq!(a.path, "/containers/c0ffee/stop", "rewritten to the id checked");
        let e = run(&p, &mut o, Method::GET, "/containers/mine/alias/json", &[], None).unwrap_err();
        assert!(e.message().contains("mine/alias is outside"), "{e:?}");
        let e = run(&p, &mut o, Method::POST, "/images/reg:5000/their/app/tag", &[("repo", "x")], None).unwrap_err();
        assert!(e.message().contains("reg:5000/their/app is outside"), "{e:?}");
        let e = run(&p, &mut o, Method::GET, "/swarm", &[], None).unwrap_err();
        assert!(e.message().contains("not available to a label-scoped tenant"), "{e:?}");
        let e = run(&p, &mut o, Method::GET, "/containers/json", &[("filters", "{}"), ("filters", "{}")], None).unwrap_err();
        assert!(e.message().contains("repeated"), "{e:?}");
        let e = run(&p, &mut o, Method::GET, "/nope", &[], None).unwrap_err();
        assert!(e.message().contains("not an Engine API route"), "{e:?}");
    }

    fn swarm_objects() -> Objects {
        let mut o = objects();
        o.0.insert("/services/web".into(), json!({"ID": "svc1", "Spec": {"Name": "web", "Labels": {"team": "red"}}}));
        o.0.insert("/services/svc1".into(), json!({"ID": "svc1", "Spec": {"Name": "web", "Labels": {"team": "red"}}}));
        o.0.insert("/services/db".into(), json!({"ID": "svc2", "Spec": {"Name": "db", "Labels": {"team": "blue"}}}));
        o.0.insert("/secrets/mypw".into(), json!({"ID": "sec1", "Spec": {"Name": "mypw", "Labels": {"team": "red"}}}));
        o.0.insert("/secrets/theirpw".into(), json!({"ID": "sec2", "Spec": {"Name": "theirpw", "Labels": {"team": "blue"}}}));
        o.0.insert("/configs/theircfg".into(), json!({"ID": "cfg2", "Spec": {"Name": "theircfg", "Labels": {"team": "blue"}}}));
        o.0.insert("/tasks/t1".into(), json!({"ID": "t1", "ServiceID": "svc2"}));
        o.0.insert("/services/svc2".into(), json!({"ID": "svc2", "Spec": {"Name": "db", "Labels": {"team": "blue"}}}));
        o
    }

    fn service(cs: Value) -> Value {
        json!({"Name": "s", "TaskTemplate": {"ContainerSpec": cs}})
    }

    #[test]
    fn services_pass_the_container_rules_and_the_scope() {
        // A service's nodes pull its image: the registry must be the tenant's.
        let rules = EnginePolicy { registries: Globs::new(&["docker.io"]).unwrap(), ..EnginePolicy::default() };
        let p = Policy { rules: Arc::new(rules), ..red() };
        let mut o = swarm_objects();
        let create = |o: &mut Objects, cs: Value| run(&p, o, Method::POST, "/services/create", &[], Some(service(cs)));
        let (_, b) = create(&mut o, json!({"Image": "app:1", "Secrets": [{"SecretID": "mypw", "File": {"Name": "pw"}}]})).unwrap();
        let v = body_json(&b);
        assert_eq!(v["Labels"]["team"], "red");
        assert_eq!(v["TaskTemplate"]["ContainerSpec"]["Labels"]["team"], "red", "the task containers carry the label too");
        assert_eq!(v["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"], json!(512i64 << 20), "forced caps");
        for (cs, why) in [
            (json!({"Image": "app:1", "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}), "Mounts"),
            (json!({"Image": "app:1", "CapabilityAdd": ["SYS_ADMIN"]}), "capability SYS_ADMIN"),
            (json!({"Image": "app:1", "Privileges": {"Seccomp": {"Mode": "unconfined"}}}), "seccomp:unconfined"),
            (json!({"Image": "app:1", "Secrets": [{"SecretID": "theirpw"}]}), "Secrets: secret theirpw is outside"),
            (json!({"Image": "app:1", "Configs": [{"ConfigID": "theircfg"}]}), "Configs: config theircfg is outside"),
            (json!({"Image": "their:latest"}), "belongs to another tenant"),
            (json!({"Image": "app:1", "Mounts": [{"Type": "volume", "Source": "theirvol", "Target": "/v"}]}), "theirvol is outside"),
        ] {
            let e = create(&mut o, cs).unwrap_err();
            assert!(e.message().contains(why), "{why}: {e:?}");
        }
        let host_net = json!({"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}, "Networks": [{"Target": "host"}]}});
        let e = run(&p, &mut o, Method::POST, "/services/create", &[], Some(host_net)).unwrap_err();
        assert!(e.message().contains("host network"), "{e:?}");
        let plugin = json!({"Name": "s", "TaskTemplate": {"Runtime": "plugin", "PluginSpec": {"Remote": "x"}}});
        let e = run(&p, &mut o, Method::POST, "/services/create", &[], Some(plugin)).unwrap_err();
        assert!(e.message().contains("TaskTemplate.Runtime"), "{e:?}");
        // Objects by path: in scope, rewritten to the ID; another tenant's refused.
        let (a, _) = run(&p, &mut o, Method::DELETE, "/services/web", &[], None).unwrap();
        assert_eq!(a.path, "/services/svc1");
        let e = run(&p, &mut o, Method::POST, "/services/db/update", &[("version", "1")], Some(service(json!({"Image": "app:1"})))).unwrap_err();
        assert!(e.message().contains("service db is outside"), "{e:?}");
        let e = run(&p, &mut o, Method::GET, "/tasks/t1/logs", &[], None).unwrap_err();
        assert!(e.message().contains("svc2 is outside"), "{e:?}");
        let e = run(&p, &mut o, Method::GET, "/tasks", &[], None).unwrap_err();
        assert!(e.message().contains("filter the task list by service"), "{e:?}");
        let (a, _) = run(&p, &mut o, Method::GET, "/tasks", &[("filters", r#"{"service":["web"]}"#)], None).unwrap();
        assert_eq!(a.query, vec![("filters".to_string(), r#"{"service":["svc1"]}"#.to_string())]);
        let (_, b) = run(&p, &mut o, Method::POST, "/secrets/mypw/update", &[("version", "3")], Some(json!({"Name": "mypw", "Labels": {}}))).unwrap();
        assert_eq!(body_json(&b)["Labels"]["team"], "red", "an update cannot drop the label");
        let e = run(&p, &mut o, Method::DELETE, "/secrets/theirpw", &[], None).unwrap_err();
        assert!(e.message().contains("secret theirpw is outside"), "{e:?}");
        let (a, _) = run(&p, &mut o, Method::GET, "/secrets", &[], None).unwrap();
        assert!(a.query[0].1.contains("team=red"));
        let e = run(&p, &mut o, Method::POST, "/secrets/create", &[], Some(json!({"Name": "x", "Driver": {"Name": "vault"}}))).unwrap_err();
        assert!(e.message().contains("external secret drivers"), "{e:?}");
        for (m, path) in [(Method::GET, "/nodes"), (Method::POST, "/swarm/leave"), (Method::GET, "/plugins"), (Method::POST, "/plugins/pull")] {
            let e = run(&p, &mut o, m, path, &[], None).unwrap_err();
            assert!(e.message().contains("not available to a label-scoped tenant"), "{path}: {e:?}");
        }
    }

    fn red_list(kind: &str) -> String {
        let f = json!({"label": ["team=red"]}).to_string();
        format!("/{kind}?{}", crate::engine::path::encode_query(&[("filters".into(), f)]))
    }

    #[test]
    fn replicas_are_summed_over_the_tenants_services_and_rollbacks_checked() {
        let p =
            Policy { rules: Arc::new(EnginePolicy { max_replicas: 4, registries: Globs::new(&["docker.io"]).unwrap(), ..EnginePolicy::default() }), ..red() };
        let mut o = swarm_objects();
        let spec = |mode: Value| json!({"Name": "s", "Mode": mode, "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}});
        o.0.insert(red_list("services"), json!([{"ID": "svc1", "Spec": spec(json!({"Replicated": {"Replicas": 3}}))}]));
        o.0.insert("/nodes".into(), json!([{"ID": "n1"}, {"ID": "n2"}]));
        let create = |o: &mut Objects, mode: Value| run(&p, o, Method::POST, "/services/create", &[], Some(spec(mode)));
        create(&mut o, json!({"Replicated": {"Replicas": 1}})).unwrap();
        let e = create(&mut o, json!({"Replicated": {"Replicas": 2}})).unwrap_err();
        assert!(matches!(&e, Refusal::Limit(m) if m.contains("5 tasks")), "{e:?}");
        let e = create(&mut o, json!({"Global": {}})).unwrap_err();
        assert!(e.message().contains("5 tasks"), "a global service counts one task per node: {e:?}");
        assert!(create(&mut o, json!({"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 3}})).is_ok());
        // An update replaces the service's own count.
        assert!(run(&p, &mut o, Method::POST, "/services/web/update", &[("version", "1")], Some(spec(json!({"Replicated": {"Replicas": 4}})))).is_ok());
        // A rollback restores the previous spec, whatever the body says: that spec is checked.
        let unsafe_prev = json!({"Name": "web", "Labels": {"team": "red"}, "TaskTemplate": {"ContainerSpec": {"Image": "app:1", "Labels": {"team": "red"}, "Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}}});
        o.0.insert("/services/svc1".into(), json!({"ID": "svc1", "Spec": {"Name": "web", "Labels": {"team": "red"}}, "PreviousSpec": unsafe_prev}));
        let e = run(
            &p,
            &mut o,
            Method::POST,
            "/services/web/update",
            &[("version", "1"), ("rollback", "previous")],
            Some(spec(json!({"Replicated": {"Replicas": 1}}))),
        )
        .unwrap_err();
        assert!(e.message().starts_with("rollback: the previous spec") && e.message().contains("Mounts"), "{e:?}");
    }

    #[test]
    fn stored_state_is_verified() {
        let p = red();
        let mut o = swarm_objects();
        let verify = |o: &mut Objects, kind: Kind, v: Value| futures_util::FutureExt::now_or_never(p.verify_stored(o, kind, "x", &v)).unwrap();
        o.0.insert(red_list("services"), json!([]));
        let limits = json!({"MemoryBytes": 512i64 << 20, "NanoCPUs": 1_000_000_000i64, "Pids": 256});
        let labels = json!({"team": "red"});
        let svc = |limits: &Value| json!({"ID": "x", "Spec": {"Name": "s", "Labels": labels, "TaskTemplate": {"ContainerSpec": {"Image": "app:1", "Labels": labels}, "Resources": {"Limits": limits}}}});
        let e = verify(&mut o, Kind::Service, svc(&json!({}))).unwrap_err();
        assert!(e.contains("lack the forced caps"), "{e}");
        let forced = {
            let mut s = svc(&json!({}))["Spec"].clone();
            p.rules.service_spec(&mut s, None).unwrap();
            s["TaskTemplate"]["Resources"]["Limits"].clone()
        };
        let _ = limits;
        verify(&mut o, Kind::Service, svc(&forced)).unwrap();
        let e =
            verify(&mut o, Kind::Volume, json!({"Name": "x", "Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/"}, "Labels": labels}))
                .unwrap_err();
        assert!(e.contains("the volume as stored by the engine"), "{e}");
        let e = verify(&mut o, Kind::Volume, json!({"Name": "x", "Driver": "local", "Labels": {"team": "blue"}})).unwrap_err();
        assert!(e.contains("lacks the scope label team=red"), "{e}");
        let f = json!({"name": ["n"]}).to_string();
        o.0.insert(
            format!("/networks?{}", crate::engine::path::encode_query(&[("filters".into(), f)])),
            json!([{"Name": "n", "Id": "x"}, {"Name": "n", "Id": "y"}, {"Name": "nn", "Id": "z"}]),
        );
        let e = verify(
            &mut o,
            Kind::Network,
            json!({"Name": "n", "Id": "x", "Driver": "bridge", "Options": {}, "IPAM": {"Driver": "default"}, "ConfigFrom": {"Network": ""}, "Labels": labels}),
        )
        .unwrap_err();
        assert!(e.contains("another network is also named 'n'"), "{e}");
        let e = verify(&mut o, Kind::Secret, json!({"ID": "x", "Spec": {"Name": "s", "Labels": labels, "Driver": {"Name": "vault"}}})).unwrap_err();
        assert!(e.contains("external driver"), "{e}");
        verify(&mut o, Kind::Image, json!({"Id": "sha256:1", "Config": {"Labels": labels}})).unwrap();
        assert!(verify(&mut o, Kind::Image, json!({"Id": "sha256:1", "Config": {"Labels": null}})).is_err());
    }

    #[test]
    fn filters_are_merged_not_replaced() {
        let p = red();
        let mut o = objects();
        let (a, _) = run(&p, &mut o, Method::POST, "/containers/prune", &[("filters", r#"{"label":["team=blue"],"until":["1h"]}"#)], None).unwrap();
        let f: Value = serde_json::from_str(q(&a.query, "filters").unwrap()).unwrap();
        assert_eq!(f, json!({"label": ["team=blue", "team=red"], "until": ["1h"]}));
        let (a, _) = run(&p, &mut o, Method::GET, "/containers/json", &[("all", "1")], None).unwrap();
        assert_eq!(q(&a.query, "filters"), Some(r#"{"label":["team=red"]}"#));
        assert!(run(&p, &mut o, Method::GET, "/containers/json", &[("filters", "[]")], None).is_err());
    }

    #[test]
    fn creates_check_references_and_get_the_label() {
        let p = red();
        let mut o = objects();
        let body = json!({"Image": "app:1", "Labels": {"team": "blue"}, "HostConfig": {"NetworkMode": "none", "Binds": ["myvol:/d"]}});
        let (_, b) = run(&p, &mut o, Method::POST, "/containers/create", &[], Some(body)).unwrap();
        let v = body_json(&b);
        assert_eq!(v["Labels"]["team"], "red");
        assert_eq!(v["HostConfig"]["Memory"], json!(512i64 << 20));
        for (body, field) in [
            (json!({"Image": "app:1", "HostConfig": {"NetworkMode": "container:theirs"}}), "HostConfig.NetworkMode"),
            (json!({"Image": "app:1", "HostConfig": {"NetworkMode": "none", "PidMode": "container:theirs"}}), "HostConfig.PidMode"),
            (json!({"Image": "app:1", "HostConfig": {"NetworkMode": "none", "VolumesFrom": ["theirs"]}}), "HostConfig.VolumesFrom"),
            (json!({"Image": "app:1", "HostConfig": {"NetworkMode": "none", "Binds": ["theirvol:/d"]}}), "HostConfig.Binds"),
            (json!({"Image": "app:1", "HostConfig": {"NetworkMode": "none", "Binds": ["newvol:/d"]}}), "HostConfig.Binds"),
            (json!({"Image": "their", "HostConfig": {"NetworkMode": "none"}}), "Image"),
            (json!({"Image": "busybox", "HostConfig": {"NetworkMode": "none"}}), "Image"),
        ] {
            let e = run(&p, &mut o, Method::POST, "/containers/create", &[], Some(body.clone())).unwrap_err();
            assert!(e.message().starts_with(field), "{body}: {e:?}");
        }
    }

    #[test]
    fn images_tags_and_commits() {
        let mut p = red();
        let mut o = objects();
        let e = run(&p, &mut o, Method::POST, "/images/app:1/tag", &[("repo", "their"), ("tag", "latest")], None).unwrap_err();
        assert!(e.message().contains("already names an image outside"), "{e:?}");
        let e = run(&p, &mut o, Method::POST, "/images/app:1/tag", &[("repo", "their")], None).unwrap_err();
        assert!(e.message().contains("their:latest"), "{e:?}");
        run(&p, &mut o, Method::POST, "/images/app:1/tag", &[("repo", "fresh"), ("tag", "2")], None).unwrap();
        let e = run(&p, &mut o, Method::POST, "/commit", &[("container", "mine"), ("changes", "LABEL team=blue")], None).unwrap_err();
        assert!(e.message().starts_with("changes"), "{e:?}");
        let (a, b) = run(&p, &mut o, Method::POST, "/commit", &[("container", "mine"), ("repo", "snap")], None).unwrap();
        assert_eq!(q(&a.query, "container"), Some("c0ffee"));
        assert_eq!(body_json(&b)["Labels"]["team"], "red");
        assert!(a.query.iter().any(|(k, v)| k == "changes" && v == r#"LABEL "team"="red""#));
        assert!(run(&p, &mut o, Method::POST, "/commit", &[("container", "theirs")], None).is_err());
        assert!(run(&p, &mut o, Method::POST, "/build", &[], None).unwrap_err().message().starts_with("build"));
        Arc::make_mut(&mut p.rules).build = true;
        let (a, _) = run(&p, &mut o, Method::POST, "/build", &[("t", "x:1"), ("labels", r#"{"team":"blue","a":"b"}"#)], None).unwrap();
        assert_eq!(serde_json::from_str::<Value>(q(&a.query, "labels").unwrap()).unwrap(), json!({"team": "red", "a": "b"}));
        assert!(run(&p, &mut o, Method::POST, "/build", &[("t", "their")], None).is_err());
    }

    #[test]
    fn registries_come_from_the_request() {
        let mut p = Policy::for_action(false);
        let mut o = objects();
        let mut b = OutBody::Empty;
        let req = |reg: Option<&'static str>, from: &'static str| GateRequest {
            action: "image.pull",
            method: &Method::POST,
            path: "/images/create",
            query: vec![("fromImage".into(), from.into())],
            registry: reg,
            auth_body_registry: None,
        };
        let admit = |p: &Policy, o: &mut Objects, b: &mut OutBody, r| futures_util::FutureExt::now_or_never(p.admit(o, r, b)).unwrap();
        assert_eq!(admit(&p, &mut o, &mut b, req(Some("b.example:5000"), "b.example:5000/x")).unwrap().registry.as_deref(), Some("b.example:5000"));
        let e = admit(&p, &mut o, &mut b, req(Some("a.example"), "b.example:5000/x")).unwrap_err();
        assert!(e.message().contains("goes to b.example:5000"), "{e:?}");
        assert_eq!(admit(&p, &mut o, &mut b, req(Some("index.docker.io"), "busybox")).unwrap().registry.as_deref(), Some("docker.io"));
        p.rules = Arc::new(EnginePolicy { registries: Globs::from(&["a.example"][..]), ..EnginePolicy::unrestricted() });
        assert!(admit(&p, &mut o, &mut b, req(None, "b.example:5000/x")).unwrap_err().message().contains("not in this tenant's registries"));
        let e = admit(
            &p,
            &mut o,
            &mut b,
            GateRequest { action: "x", method: &Method::GET, path: "/info", query: vec![], registry: Some("a.example"), auth_body_registry: None },
        )
        .unwrap_err();
        assert!(e.message().contains("goes to no registry"), "{e:?}");
    }

    #[test]
    fn read_only_allows_only_get_head() {
        let p = Policy::for_action(true);
        let mut o = objects();
        assert!(run(&p, &mut o, Method::GET, "/info", &[], None).is_ok());
        let e = run(&p, &mut o, Method::POST, "/containers/x/stop", &[], None).unwrap_err();
        assert!(e.message().contains("read-only") && e.message().contains("POST /containers/x/stop"), "{e:?}");
        assert!(run(&Policy::for_action(false), &mut o, Method::DELETE, "/containers/x", &[], None).is_ok());
    }

    #[test]
    fn declared_operations_are_the_only_ones_allowed() {
        let p = Policy::for_action(false).declared_operations(&["ContainerInspect".into(), "ContainerStop".into()]);
        let mut o = objects();
        assert!(run(&p, &mut o, Method::GET, "/containers/x/json", &[], None).is_ok());
        assert!(run(&p, &mut o, Method::POST, "/containers/x/stop", &[], None).is_ok());
        let e = run(&p, &mut o, Method::DELETE, "/containers/x", &[], None).unwrap_err();
        assert!(e.message().contains("ContainerDelete (DELETE /containers/x) is not among them"), "{e:?}");
        // The operation is the route the engine will match, whatever the path spells: with an
        // encoded slash, `/containers/x%2Fjson` reads like an inspect but is a delete of `x/json`.
        let e = run(&p, &mut o, Method::DELETE, "/containers/x%2Fjson", &[], None).unwrap_err();
        assert!(e.message().contains("ContainerDelete"), "{e:?}");
        // And `/containers/x%2Fstop` is the engine's stop of `x`: declared, so allowed.
        assert!(run(&p, &mut o, Method::POST, "/containers/x%2Fstop", &[], None).is_ok());
        // The engine's identity needs no declaration (an error message names the engine).
        assert!(run(&p, &mut o, Method::GET, "/version", &[], None).is_ok());
        assert!(run(&p, &mut o, Method::HEAD, "/_ping", &[], None).is_ok());
        assert!(run(&p, &mut o, Method::GET, "/info", &[], None).unwrap_err().message().contains("SystemInfo"));
        // Declaring nothing restricts nothing.
        let open = Policy::for_action(false).declared_operations(&[]);
        assert!(run(&open, &mut o, Method::DELETE, "/containers/x", &[], None).is_ok());
    }

    #[test]
    fn methods_and_headers() {
        assert_eq!(parse_method("get").unwrap(), Method::GET);
        assert!(parse_method("CONNECT").is_err());
        assert!(!guest_header_allowed("X-Registry-Auth"));
        assert!(guest_header_allowed("Content-Type"));
    }

    #[test]
    fn destination_names() {
        let d = |r: &str, t: Option<&str>| destinations("repo", r, t).unwrap();
        assert_eq!(d("fresh", Some("v9")), ["fresh:v9"]);
        assert_eq!(d("fresh:v9", None), ["fresh:v9"]);
        assert_eq!(d("fresh:v9", Some("x")), ["fresh:x", "fresh:v9"]);
        assert_eq!(d("fresh:v9", Some("v9")), ["fresh:v9"]);
        assert_eq!(d("reg:5000/a", None), ["reg:5000/a:latest"]);
        assert_eq!(d("docker.io/library/fresh", None), ["fresh:latest"]);
        assert_eq!(d("index.docker.io/team/app:2", None), ["team/app:2"]);
        assert!(destinations("repo", "x:v9:v8", None).unwrap_err().message().starts_with("repo: 'x:v9:v8' is not a valid image reference"));
        assert!(destinations("repo", "Fresh", None).is_err());
    }
}
