//! Per-invocation host state and the host side of the WIT `engine` and `log` interfaces.
//! Every engine call is checked here: path, method, headers, policy, call and byte limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::artifacts::Artifacts;
use super::bindings::berth::connector::{engine, types};
use super::streams::StreamHandle;
use super::{Limits, MemoryLimiter};
use crate::credentials::Credentials;
use crate::engine::{path, read_capped, Body, EngineClient, EngineError, OutBody, ReadError};
use crate::policy::{self, AfterCheck, GateRequest, Inspector, Kind, Policy, Refusal};

use types::{ArtifactInfo, ArtifactResponse, EngineError as WitError, Request, Response, ResponseHead};

/// Runs a host call (an expression on `$state`, awaited) with the guest CPU slot given up:
/// the host waits for the engine off the fair scheduler, and takes a slot again before guest
/// code resumes.
macro_rules! off_cpu {
    ($state:ident, $call:expr) => {{
        $state.cpu_off();
        let r = $call.await;
        $state.cpu_on().await;
        r
    }};
}
pub(super) use off_cpu;

/// One engine call, for logs and audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    /// The encoded query sent (or refused).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// 0 when no response arrived (refused or failed).
    pub status: u16,
    /// Response bytes handed to the guest or written to an artifact.
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Shared, invocation-independent context.
/// Where progress reports go besides the logs (the CLI's progress bar on a terminal).
pub trait ProgressSink: Send + Sync {
    fn report(&self, action: &str, id: &str, current: u64, total: Option<u64>, message: &str);
}

#[derive(Clone)]
pub struct HostContext {
    /// `None` when no engine may be reached (describe()).
    pub engine: Option<Arc<EngineClient>>,
    pub credentials: Arc<Credentials>,
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// The fair CPU scheduler and this invocation's tenant (server mode).
    pub cpu: Option<super::fair::CpuShare>,
    /// The tenant's share of the engine's connections (server mode): a permit is held from
    /// each request until its response body is dropped.
    pub engine_share: Option<Arc<tokio::sync::Semaphore>>,
}

impl HostContext {
    pub fn new(engine: Arc<EngineClient>, credentials: Arc<Credentials>) -> Self {
        HostContext { engine: Some(engine), credentials, progress: None, cpu: None, engine_share: None }
    }

    /// No engine and no credentials: for describe() and benchmarks.
    pub fn offline() -> Self {
        static NONE: std::sync::OnceLock<Arc<Credentials>> = std::sync::OnceLock::new();
        let credentials = NONE.get_or_init(|| Arc::new(Credentials::from_store(Default::default()))).clone();
        HostContext { engine: None, credentials, progress: None, cpu: None, engine_share: None }
    }

    fn engine(&self) -> Result<&Arc<EngineClient>, WitError> {
        self.engine.as_ref().ok_or_else(|| WitError::Denied("no engine calls are allowed here".into()))
    }

    pub(super) fn body_timeout(&self) -> Duration {
        self.engine.as_ref().map(|e| e.timeouts.body).unwrap_or(Duration::from_secs(60))
    }
}

/// Everything one invocation's `Store` holds.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) memory: MemoryLimiter,
    pub(super) ctx: HostContext,
    pub(super) action: String,
    pub(super) policy: Policy,
    pub(super) limits: Limits,
    pub(super) artifacts: Artifacts,
    pub(super) response_bytes: u64,
    pub(super) cpu: CpuAccount,
    pub(super) out: GuestOutput,
    /// What the invocation did, for its result and the audit.
    pub record: Record,
}

/// The guest's CPU time, counted in epoch ticks, and the fair scheduler's slot it holds.
pub(super) struct CpuAccount {
    pub(super) ticks: u64,
    /// The ticker's count when this store last counted a CPU tick (forced epoch bumps from the
    /// fair scheduler are not CPU time).
    pub(super) last_tick: u64,
    /// The guest CPU slot held, shared with the epoch callback's yield.
    pub(super) held: super::fair::Held,
}

/// What the guest wrote: its captured stdout and stderr, and its log lines and progress
/// events (each capped).
pub(super) struct GuestOutput {
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) log_lines: u32,
    pub(super) progress_events: u32,
}

/// What an invocation did: its engine calls, its first violation, the artifacts it wrote and
/// the safe defaults the policy applied.
#[derive(Default)]
pub struct Record {
    /// Engine calls made, in order.
    pub calls: Vec<CallRecord>,
    /// The first sandbox or policy violation, which decides how a failure is reported.
    pub violation: Option<String>,
    /// Whether that first violation was a cap (reported as `limit`) rather than a refusal.
    pub violation_is_limit: bool,
    /// Output artifacts written.
    pub written: Vec<crate::runtime::artifacts::Written>,
    /// Safe defaults the policy applied to this invocation's requests.
    pub applied: Vec<String>,
}

impl HostState {
    pub fn new(ctx: HostContext, action: &str, mut policy: Policy, limits: Limits, artifacts: Artifacts) -> Self {
        // The engine's own socket, which no bind mount may expose.
        if policy.engine_socket.is_none() {
            policy.engine_socket = ctx.engine.as_ref().and_then(|e| e.address().strip_prefix("unix://").map(str::to_string));
        }
        // No preopens, no env, no args, no sockets, no name lookup; stdout/stderr captured.
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let stderr = MemoryOutputPipe::new(64 * 1024);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_blocking_current_thread(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(limits.memory_bytes),
            ctx,
            action: action.to_string(),
            policy,
            limits,
            artifacts,
            response_bytes: 0,
            cpu: CpuAccount { ticks: 0, last_tick: super::REAL_TICKS.load(std::sync::atomic::Ordering::Relaxed), held: Default::default() },
            out: GuestOutput { stdout, stderr, log_lines: 0, progress_events: 0 },
            record: Record::default(),
        }
    }

    /// Records a cap that was hit (see [`HostState::violate`]).
    pub(super) fn violate_limit(&mut self, why: String) -> String {
        if self.record.violation.is_none() {
            self.record.violation_is_limit = true;
        }
        self.violate(why)
    }

    fn violate(&mut self, why: String) -> String {
        if self.record.violation.is_none() {
            self.record.violation = Some(why.clone());
        }
        tracing::warn!(action = %self.action, "{why}");
        why
    }

    /// Checks a request and turns it into what the engine client sends. Everything passes the
    /// policy gate ([`Policy::admit`]), which may rewrite the path, query and JSON body.
    async fn prepare(&mut self, req: &Request) -> Result<Prepared, WitError> {
        if self.record.calls.len() as u32 >= self.limits.engine_calls {
            let why = self.violate_limit(format!("engine call limit of {} per invocation reached", self.limits.engine_calls));
            return Err(WitError::Limit(why));
        }
        let method = policy::parse_method(&req.method).map_err(WitError::Invalid)?;
        path::validate_path(&req.path).map_err(|e| self.refuse(&req.method, &req.path, &[], WitError::Invalid(e)))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            if !policy::guest_header_allowed(k) {
                return Err(WitError::Invalid(format!("header '{k}' is set by the host, not by actions")));
            }
            let name = HeaderName::try_from(k.as_str()).map_err(|_| WitError::Invalid(format!("bad header name '{k}'")))?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|_| WitError::Invalid(format!("bad value for header '{k}'")))?;
            headers.append(name, value);
        }
        let auth_body_registry = match &req.body {
            types::Body::RegistryAuth(reg) => Some(reg.as_str()),
            _ => None,
        };
        let mut body = match &req.body {
            types::Body::Empty | types::Body::RegistryAuth(_) => OutBody::Empty,
            types::Body::Bytes(b) => OutBody::Bytes(Bytes::copy_from_slice(b)),
            types::Body::Artifact(_) => OutBody::Empty, // opened once admitted
        };
        let gate_req = GateRequest {
            action: &self.action,
            method: &method,
            path: &req.path,
            query: req.query.clone(),
            registry: req.registry.as_deref(),
            auth_body_registry,
        };
        let engine = self.ctx.engine.clone();
        let mut insp = HostInspector { engine: engine.as_deref(), calls: &mut self.record.calls, max_calls: self.limits.engine_calls };
        let admitted = self.policy.admit(&mut insp, gate_req, &mut body).await;
        let admitted = match admitted {
            Ok(a) => a,
            Err(Refusal::Invalid(m)) => return Err(self.refuse(&req.method, &req.path, &req.query, WitError::Invalid(m))),
            Err(Refusal::Limit(m)) => {
                let why = self.violate_limit(m);
                return Err(self.refuse(&req.method, &req.path, &req.query, WitError::Limit(why)));
            }
            Err(Refusal::Denied(m)) => {
                let why = self.violate(m);
                return Err(self.refuse(&req.method, &req.path, &req.query, WitError::Denied(why)));
            }
        };
        for a in &admitted.applied {
            if !self.record.applied.contains(a) {
                self.record.applied.push(a.clone());
            }
        }
        if let Some(reg) = &admitted.registry {
            // Without held credentials an empty config goes (the engine insists on the header
            // for pushes), so the registry sees an anonymous client.
            let auth = self.ctx.credentials.get(reg).map_err(WitError::Invalid)?.unwrap_or_else(|| {
                tracing::debug!(registry = %reg, "no credentials held; sending the request anonymously");
                crate::credentials::AuthConfig::default()
            });
            let v = HeaderValue::try_from(auth.header_value()).map_err(|_| WitError::Invalid("bad credentials".into()))?;
            headers.insert("x-registry-auth", v);
        }
        match &req.body {
            types::Body::Artifact(name) => {
                let (stream, size) = self.artifacts.open_input(name).await.map_err(WitError::Invalid)?;
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(size));
                body = OutBody::Stream(stream);
            }
            types::Body::RegistryAuth(reg) => match self.ctx.credentials.get(reg).map_err(WitError::Invalid)? {
                Some(auth) => body = OutBody::Bytes(Bytes::from(auth.body())),
                None => {
                    return Err(WitError::Invalid(format!("no credentials held for registry '{reg}' (give --credentials FILE, or log in with docker login)")))
                }
            },
            _ => {}
        }
        let query = path::encode_query(&admitted.query);
        Ok(Prepared { method, path: admitted.path, query, headers, body, after: admitted.after })
    }

    fn refuse(&mut self, method: &str, path: &str, query: &[(String, String)], e: WitError) -> WitError {
        let why = match &e {
            WitError::Denied(m) | WitError::Invalid(m) | WitError::Limit(m) | WitError::Transport(m) | WitError::Timeout(m) => m.clone(),
        };
        self.record.calls.push(CallRecord {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: path::encode_query(query),
            status: 0,
            bytes: 0,
            refused: Some(why),
        });
        e
    }

    pub(super) async fn send(&mut self, req: &Request) -> Result<http::Response<Body>, WitError> {
        self.send_with(req, false).await
    }

    /// Sends a checked request; `upgrade` asks the engine to take over the connection.
    pub(super) async fn send_with(&mut self, req: &Request, upgrade: bool) -> Result<http::Response<Body>, WitError> {
        let Prepared { method, path: send_path, query, mut headers, body, after } = self.prepare(req).await?;
        if upgrade {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(http::header::UPGRADE, HeaderValue::from_static("tcp"));
        }
        let engine = self.ctx.engine()?.clone();
        let ping = send_path == "/_ping";
        let share = match self.ctx.engine_share.clone() {
            None => None,
            Some(sem) => {
                let total = sem.available_permits();
                match tokio::time::timeout(engine.max_wait(), sem.acquire_owned()).await {
                    Ok(Ok(p)) => Some(p),
                    _ => {
                        let why = self.violate_limit(format!(
                            "this tenant's share of the engine's connections is in use (still waiting after {:?}; {total} were free when this request came)",
                            engine.max_wait()
                        ));
                        return Err(self.refuse(&req.method, &send_path, &[], WitError::Limit(why)));
                    }
                }
            }
        };
        // A call the engine takes more than a second to answer (a wait, a stop, a commit) is
        // said where progress goes (the CLI's stderr), so a long wait is never silent.
        let sink = self.ctx.progress.as_ref().map(|s| (s, self.action.as_str()));
        let what = || format!("{} {send_path}", req.method.to_ascii_uppercase());
        match said_if_slow(sink, what, engine.send(method, &send_path, &query, &headers, body)).await {
            Ok(mut resp) => {
                if let Some(p) = share {
                    resp = crate::engine::hold(resp, p);
                }
                if ping {
                    annotate_transport(&mut resp, engine.transport_kind());
                }
                self.record.calls.push(CallRecord {
                    method: req.method.to_ascii_uppercase(),
                    path: send_path,
                    query,
                    status: resp.status().as_u16(),
                    bytes: 0,
                    refused: None,
                });
                if let Some(after) = after.filter(|_| resp.status().is_success()) {
                    resp = self.verify_stored(&engine, resp, after).await?;
                }
                Ok(resp)
            }
            Err(e) => Err(self.refuse(&req.method, &send_path, &[], guest_error(e))),
        }
    }

    /// The second line of defence after a create or an update: what the engine stored is
    /// inspected and checked against the policy ([`policy::stored`]) before the guest sees the
    /// answer; on any difference what was made is removed and the request refused. A
    /// response that names the object (a create's id, an import's or build's progress) is
    /// read whole first, within the body cap.
    async fn verify_stored(&mut self, engine: &EngineClient, resp: http::Response<Body>, after: AfterCheck) -> Result<http::Response<Body>, WitError> {
        use http_body_util::BodyExt;
        let (parts, body) = resp.into_parts();
        let bytes = if after.reads_response() {
            match read_capped(body, self.limits.body_bytes as usize, engine.timeouts.body).await {
                Ok(b) => Some(b),
                Err(e) => return Err(WitError::Transport(format!("reading the engine's answer to check what it stored: {e}"))),
            }
        } else {
            drop(body);
            None
        };
        let response = bytes.as_deref().unwrap_or_default();
        // (kind, id) of each object to check.
        let objects: Vec<(Kind, String)> = match &after {
            AfterCheck::Created(kind) => match policy::stored::created_id(*kind, response) {
                Some(id) => vec![(*kind, id)],
                None => return Err(WitError::Transport(format!("the engine's answer to a {} create names no id", kind.name()))),
            },
            AfterCheck::Updated(kind, id) => vec![(*kind, id.clone())],
            AfterCheck::Images(names) => names.iter().cloned().chain(policy::stored::image_ids(response)).map(|n| (Kind::Image, n)).collect(),
        };
        let mut failed: Option<(String, Vec<(Kind, String)>)> = None;
        for (kind, id) in &objects {
            let mut insp = HostInspector { engine: Some(engine), calls: &mut self.record.calls, max_calls: self.limits.engine_calls.saturating_add(8) };
            let verdict = match insp.inspect(&kind.inspect_path(id)).await {
                Ok(Some(stored)) => self.policy.verify_stored(&mut insp, *kind, id, &stored).await,
                // A name a failed build or import never made.
                Ok(None) if *kind == Kind::Image => Ok(()),
                Ok(None) => Err(format!("the {} {id} is not on the engine", kind.name())),
                Err(e) => Err(e.message().to_string()),
            };
            if let Err(why) = verdict {
                // Everything the request made goes: for images, each name and id it pointed.
                let all = if *kind == Kind::Image { objects.clone() } else { vec![(*kind, id.clone())] };
                failed = Some((why, all));
                break;
            }
        }
        if let Some((why, remove)) = failed {
            let mut removed = Vec::new();
            for (kind, id) in remove {
                let (path, query) = kind.removal(&id);
                if let Ok(r) = engine.send(http::Method::DELETE, &path, query, &HeaderMap::new(), OutBody::Empty).await {
                    if r.status().is_success() {
                        removed.push(format!("{} {id}", kind.name()));
                    }
                }
            }
            let gone = if removed.is_empty() { String::new() } else { format!("; removed: {}", removed.join(", ")) };
            let why = self.violate(format!("{why}{gone}"));
            return Err(WitError::Denied(why));
        }
        let body = match bytes {
            Some(b) => http_body_util::Full::new(b).map_err(|e| match e {}).boxed(),
            None => http_body_util::Empty::new().map_err(|e| match e {}).boxed(),
        };
        Ok(http::Response::from_parts(parts, body))
    }

    /// Bytes the guest may still receive.
    fn byte_budget(&self) -> u64 {
        self.limits.response_bytes.saturating_sub(self.response_bytes)
    }

    pub(super) fn take_bytes(&mut self, n: u64) -> Result<(), WitError> {
        if n > self.byte_budget() {
            let why = self.violate_limit(format!("response byte limit of {} per invocation exceeded", self.limits.response_bytes));
            return Err(WitError::Limit(why));
        }
        self.response_bytes += n;
        if let Some(c) = self.record.calls.last_mut() {
            c.bytes += n;
        }
        Ok(())
    }

    pub(super) async fn read_whole(&mut self, body: Body) -> Result<Bytes, WitError> {
        let cap = self.limits.body_bytes.min(self.byte_budget()) as usize;
        match read_capped(body, cap, self.ctx.body_timeout()).await {
            Ok(b) => {
                self.take_bytes(b.len() as u64)?;
                Ok(b)
            }
            Err(ReadError::TooLarge(_)) if cap as u64 == self.limits.body_bytes => {
                let why = self.violate_limit(format!("a response body exceeded the {}-byte cap", self.limits.body_bytes));
                Err(WitError::Limit(why))
            }
            Err(ReadError::TooLarge(_)) => {
                let why = self.violate_limit(format!("response byte limit of {} per invocation exceeded", self.limits.response_bytes));
                Err(WitError::Limit(why))
            }
            Err(ReadError::Timeout(d)) => Err(WitError::Timeout(format!("the engine stopped sending the response body for {d:?}"))),
            Err(ReadError::Io(m)) => Err(WitError::Transport(m)),
        }
    }
}

/// Awaits `fut`; when it takes over a second and progress is listened to (`sink`: the CLI's
/// stderr, and the action), says "waiting for the engine: {what}" there once and goes on
/// waiting.
pub(super) async fn said_if_slow<F: std::future::Future>(sink: Option<(&Arc<dyn ProgressSink>, &str)>, what: impl FnOnce() -> String, fut: F) -> F::Output {
    let Some((sink, action)) = sink else { return fut.await };
    tokio::pin!(fut);
    tokio::select! {
        r = &mut fut => r,
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
            sink.report(action, "engine", 0, None, &format!("waiting for the engine: {}", what()));
            fut.await
        }
    }
}

/// A request the gate admitted, ready for the transport.
struct Prepared {
    method: http::Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: OutBody,
    after: Option<AfterCheck>,
}

/// The host's own inspections for the gate: sent like any call, counted against the budget
/// and recorded for the audit.
struct HostInspector<'a> {
    engine: Option<&'a EngineClient>,
    calls: &'a mut Vec<CallRecord>,
    max_calls: u32,
}

impl Inspector for HostInspector<'_> {
    async fn inspect(&mut self, path: &str) -> Result<Option<serde_json::Value>, Refusal> {
        let engine = self.engine.ok_or_else(|| Refusal::Denied("no engine calls are allowed here".into()))?;
        if self.calls.len() as u32 >= self.max_calls {
            return Err(Refusal::Limit(format!("engine call limit of {} per invocation reached (policy inspections count)", self.max_calls)));
        }
        // A list's filters ride in the path: `/containers/json?all=1&filters=…`.
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut record = CallRecord { method: "GET".into(), path: path.to_string(), query: query.to_string(), status: 0, bytes: 0, refused: None };
        let resp = match engine.send(http::Method::GET, path, query, &HeaderMap::new(), OutBody::Empty).await {
            Ok(r) => r,
            Err(e) => {
                record.refused = Some(format!("policy inspection failed: {e}"));
                self.calls.push(record);
                return Err(Refusal::Denied(format!("cannot check {path} for the policy: {e}")));
            }
        };
        let status = resp.status();
        record.status = status.as_u16();
        let bytes = read_capped(resp.into_body(), 4 << 20, engine.timeouts.body).await;
        record.bytes = bytes.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        self.calls.push(record);
        let bytes = bytes.map_err(|e| Refusal::Denied(format!("cannot check {path} for the policy: {e}")))?;
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Refusal::Denied(format!("cannot check {path} for the policy: the engine answered {status}")));
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Refusal::Denied(format!("cannot check {path} for the policy: {e}")))
    }
}

/// On `/_ping` answers, the host says how it reached the engine (`x-berth-transport`) and,
/// over TLS, what the connection negotiated and whom it reached: what a SOAR "test
/// connectivity" button shows.
fn annotate_transport(resp: &mut http::Response<Body>, kind: &'static str) {
    let tls = resp.extensions().get::<crate::engine::stream::TlsInfo>().cloned();
    let h = resp.headers_mut();
    h.insert("x-berth-transport", HeaderValue::from_static(kind));
    if let Some(t) = tls {
        for (k, v) in [
            ("x-berth-tls-version", t.version),
            ("x-berth-tls-cipher", t.cipher),
            ("x-berth-tls-peer-subject", t.peer_subject),
            ("x-berth-tls-peer-not-after", t.peer_not_after),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
    }
}

/// The one conversion of an engine client's error into what the guest is told.
fn guest_error(e: EngineError) -> WitError {
    match e {
        EngineError::Timeout(m) => WitError::Timeout(m),
        EngineError::Invalid(m) => WitError::Invalid(m),
        EngineError::Transport(m) | EngineError::Version(m) => WitError::Transport(m),
        EngineError::Busy(m) => WitError::Limit(m),
    }
}

pub(super) fn headers_of(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter().filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))).collect()
}

impl types::Host for HostState {}

impl HostState {
    async fn api_version_on_host(&mut self) -> Result<String, WitError> {
        self.ctx.engine()?.api_version().await.map(|v| v.to_string()).map_err(guest_error)
    }

    async fn call_on_host(&mut self, req: Request) -> Result<Response, WitError> {
        let resp = self.send(&req).await?;
        let (parts, body) = resp.into_parts();
        let body = if req.method.eq_ignore_ascii_case("HEAD") { Bytes::new() } else { self.read_whole(body).await? };
        Ok(Response { status: parts.status.as_u16(), headers: headers_of(&parts.headers), body: Vec::from(body) })
    }

    async fn open_on_host(&mut self, req: Request) -> Result<(ResponseHead, Resource<StreamHandle>), WitError> {
        let resp = self.send(&req).await?;
        let (parts, body) = resp.into_parts();
        let what = format!("{} {}", req.method.to_ascii_uppercase(), req.path);
        let handle = self
            .table
            .push(StreamHandle { body, pending: Bytes::new(), ended: false, what })
            .map_err(|e| WitError::Limit(format!("too many open streams: {e}")))?;
        Ok((ResponseHead { status: parts.status.as_u16(), headers: headers_of(&parts.headers) }, handle))
    }

    async fn call_to_artifact_on_host(&mut self, req: Request, artifact: String) -> Result<ArtifactResponse, WitError> {
        self.artifacts.check_output(&artifact).map_err(WitError::Invalid)?;
        let resp = self.send(&req).await?;
        let (parts, body) = resp.into_parts();
        let status = parts.status.as_u16();
        let headers = headers_of(&parts.headers);
        if !parts.status.is_success() {
            let error_body = Vec::from(self.read_whole(body).await?);
            return Ok(ArtifactResponse { status, headers, artifact: None, error_body });
        }
        let written = self.artifacts.write_output(&artifact, body, self.ctx.body_timeout()).await.map_err(|e| {
            if e.starts_with(crate::runtime::artifacts::ARTIFACT_LIMIT) {
                WitError::Limit(self.violate_limit(e))
            } else {
                WitError::Transport(e)
            }
        })?;
        if let Some(c) = self.record.calls.last_mut() {
            c.bytes += written.size;
        }
        let info = ArtifactInfo { name: artifact, size: written.size, sha256: written.sha256.clone() };
        self.record.written.push(written);
        Ok(ArtifactResponse { status, headers, artifact: Some(info), error_body: Vec::new() })
    }

    async fn upgrade_on_host(&mut self, req: Request, stdin: types::Body) -> Result<(ResponseHead, Resource<StreamHandle>), WitError> {
        self.upgrade_impl(req, stdin).await
    }
}

impl engine::Host for HostState {
    // Guest CPU slots are given up while the host waits for the engine (server mode).
    async fn api_version(&mut self) -> Result<String, WitError> {
        off_cpu!(self, self.api_version_on_host())
    }

    async fn call(&mut self, req: Request) -> Result<Response, WitError> {
        off_cpu!(self, self.call_on_host(req))
    }

    async fn open(&mut self, req: Request) -> Result<(ResponseHead, Resource<StreamHandle>), WitError> {
        off_cpu!(self, self.open_on_host(req))
    }

    async fn call_to_artifact(&mut self, req: Request, artifact: String) -> Result<ArtifactResponse, WitError> {
        off_cpu!(self, self.call_to_artifact_on_host(req, artifact))
    }

    async fn open_tar(&mut self, artifact: String) -> Result<Resource<super::bundle::TarWriter>, WitError> {
        self.open_tar_impl(artifact)
    }

    async fn upgrade(&mut self, req: Request, stdin: types::Body) -> Result<(ResponseHead, Resource<StreamHandle>), WitError> {
        off_cpu!(self, self.upgrade_on_host(req, stdin))
    }
}

impl HostState {
    /// Gives up the guest CPU slot (if this invocation runs under the fair scheduler).
    pub(super) fn cpu_off(&mut self) {
        drop(self.cpu.held.take());
    }

    /// Takes a guest CPU slot again before returning to guest code.
    pub(super) async fn cpu_on(&mut self) {
        if let Some(c) = self.ctx.cpu.clone() {
            let p = c.sched.acquire(&c.tenant).await;
            self.cpu.held.set(Some(p));
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
