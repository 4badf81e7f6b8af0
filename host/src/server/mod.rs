//! `berth serve`: many tenants running actions side by side over HTTP, each confined to its
//! policy and limits, with an audit log, Prometheus metrics, async jobs and hot drop-in.

pub mod audit;
pub mod config;
pub mod metrics;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use crate::credentials::{CredentialStore, Credentials};
use crate::engine::{Body, EngineClient, Timeouts};
use crate::runtime::{Artifacts, Catalog, HostContext, Runtime, RuntimeConfig};
use crate::spec::{ActionResult, FailureKind, RawParams};

pub use config::{Config, Tenant};

/// Largest request body accepted (params JSON).
const MAX_BODY: usize = 1 << 20;
/// Time a client has to send its request headers (slow-loris guard).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

struct TenantState {
    tenant: Tenant,
    /// One client per asset (engine) the tenant may talk to.
    engines: std::collections::BTreeMap<String, Arc<EngineClient>>,
    slots: Semaphore,
    bucket: Mutex<(f64, Instant)>,
    /// Invocations admitted and not finished (waiting for a slot or running).
    in_flight: std::sync::atomic::AtomicU32,
    /// Recent guest CPU use, for the fair scheduler.
    cpu: Arc<crate::runtime::fair::TenantCpu>,
}

enum JobState {
    Running(tokio::task::AbortHandle),
    Done(Box<ActionResult>),
    Cancelled,
}

struct Job {
    tenant: String,
    action: String,
    state: JobState,
    created: Instant,
}

/// Finished jobs are kept this long for their results to be fetched.
const JOB_RETENTION: Duration = Duration::from_secs(3600);

pub struct Server {
    runtime: Runtime,
    actions_dir: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    tenants: Vec<TenantState>,
    slots: Semaphore,
    jobs: Mutex<HashMap<String, Job>>,
    audit: audit::Audit,
    pub metrics: metrics::Metrics,
    credentials: Arc<Credentials>,
    metrics_token: Option<[u8; 32]>,
    cpu: Arc<crate::runtime::fair::CpuScheduler>,
}

type Resp = Response<Body>;

fn json_response(status: StatusCode, v: &Value) -> Resp {
    let body = Full::new(Bytes::from(serde_json::to_vec(v).expect("json"))).map_err(|n| match n {}).boxed();
    Response::builder().status(status).header("content-type", "application/json").body(body).expect("response")
}

fn error(status: StatusCode, msg: &str) -> Resp {
    json_response(status, &json!({"error": msg}))
}

/// Constant-time comparison of two hashes.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
}

impl Server {
    /// Builds everything up front: a bad config or actions dir fails before anything listens.
    pub async fn new(cfg: Config, actions_dir: PathBuf) -> anyhow::Result<Arc<Server>> {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: cfg.cache.clone().or_else(crate::runtime::cache::default_dir),
            pooling: true,
            pool_size: cfg.max_concurrent,
            map_cache_files: false,
        })?;
        let catalog = runtime.discover(&actions_dir).await?;
        for (path, why) in &catalog.skipped {
            tracing::warn!(path = %path.display(), "skipped component: {why}");
        }
        // Prepare every component now so the first request does not pay for it.
        for c in &catalog.components {
            runtime.prepare(c)?;
        }
        let mut tenants = Vec::new();
        for t in &cfg.tenants {
            if let Some(dir) = &t.artifacts_dir {
                std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("tenant {}: artifacts_dir {}: {e}", t.name, dir.display()))?;
            }
            let mut engines = std::collections::BTreeMap::new();
            for (asset, addr) in &t.assets {
                let client = EngineClient::connect(addr, Timeouts::default()).map_err(|e| anyhow::anyhow!("tenant {} asset {asset}: {e:#}", t.name))?;
                engines.insert(asset.clone(), Arc::new(client));
            }
            tenants.push(TenantState {
                engines,
                slots: Semaphore::new(t.concurrency as usize),
                bucket: Mutex::new((t.requests_per_minute as f64, Instant::now())),
                in_flight: std::sync::atomic::AtomicU32::new(0),
                cpu: crate::runtime::fair::TenantCpu::new(&t.name),
                tenant: t.clone(),
            });
        }
        let audit = audit::Audit::open(cfg.audit_log.as_deref())?;
        let credentials = Arc::new(Credentials::new(cfg.credentials.clone(), CredentialStore::docker_config_path()));
        Ok(Arc::new(Server {
            slots: Semaphore::new(cfg.max_concurrent as usize),
            catalog: RwLock::new(Arc::new(catalog)),
            actions_dir,
            tenants,
            jobs: Mutex::new(HashMap::new()),
            audit,
            metrics: metrics::Metrics::default(),
            credentials,
            metrics_token: cfg.metrics_token_sha256,
            cpu: crate::runtime::fair::CpuScheduler::new(crate::runtime::fair::CpuScheduler::default_slots(), runtime.engine().clone()),
            runtime,
        }))
    }

    /// Re-reads the actions directory; invocations already running keep their version.
    pub async fn rescan(&self) {
        match self.runtime.discover(&self.actions_dir).await {
            Ok(c) => {
                let changed = {
                    let old = self.catalog.read().unwrap();
                    old.components.iter().map(|c| &c.sha256).ne(c.components.iter().map(|c| &c.sha256))
                };
                if changed {
                    tracing::info!(components = c.components.len(), "actions directory changed; catalog reloaded");
                    *self.catalog.write().unwrap() = Arc::new(c);
                }
            }
            Err(e) => tracing::error!("rescan failed, keeping the current catalog: {e:#}"),
        }
    }

    fn metrics_response(&self) -> Resp {
        let body = Full::new(Bytes::from(self.metrics.render())).map_err(|n| match n {}).boxed();
        Response::builder().header("content-type", "text/plain; version=0.0.4").body(body).expect("response")
    }

    fn tenant(&self, req: &Request<Incoming>) -> Option<&TenantState> {
        let token = req.headers().get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        let h = config::hash_token(token);
        // Compare against every tenant so timing reveals nothing.
        let mut found = None;
        for t in &self.tenants {
            if ct_eq(&t.tenant.token_sha256, &h) {
                found = Some(t);
            }
        }
        found
    }

    fn take_rate(&self, t: &TenantState) -> bool {
        let rpm = t.tenant.requests_per_minute as f64;
        let mut b = t.bucket.lock().unwrap();
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rpm / 60.0).min(rpm);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        if path == "/healthz" {
            return json_response(StatusCode::OK, &json!({"status": "ok"}));
        }
        if path == "/metrics" {
            // Metrics name every tenant and action: they take a token of their own here, or
            // are served on `server.metrics_listen`.
            let Some(want) = &self.metrics_token else {
                return error(StatusCode::NOT_FOUND, "metrics are served on server.metrics_listen, or here with server.metrics_token_sha256");
            };
            let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(|t| config::hash_token(t.trim()));
            if !given.is_some_and(|g| ct_eq(want, &g)) {
                return error(StatusCode::UNAUTHORIZED, "/metrics needs the metrics bearer token");
            }
            return self.metrics_response();
        }
        let Some(tenant) = self.tenant(&req) else {
            self.metrics.count("berth_unauthorized_total", &[]);
            return error(StatusCode::UNAUTHORIZED, "missing or unknown bearer token");
        };
        let segs: Vec<String> = path.trim_start_matches('/').split('/').map(crate::engine::path::percent_decode_lossy).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (&method, segs.as_slice()) {
            (&Method::GET, ["v1", "actions"]) => self.catalog_for(tenant),
            (&Method::POST, ["v1", "actions", action]) => {
                let action = action.to_string();
                let query = req.uri().query().unwrap_or("").to_string();
                let body = match read_body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let is_async = query_flag(&query, "async");
                self.clone().run_action(tenant, &action, &body, &query, is_async).await
            }
            (&Method::GET, ["v1", "jobs", id]) => self.job(tenant, id, false),
            (&Method::DELETE, ["v1", "jobs", id]) => self.job(tenant, id, true),
            (&Method::GET, ["v1", "artifacts", name]) => self.artifact(tenant, name).await,
            _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
        }
    }

    fn catalog_for(&self, t: &TenantState) -> Resp {
        let catalog = self.catalog.read().unwrap().clone();
        let list: Vec<Value> = catalog
            .actions()
            .filter(|(_, a)| t.tenant.policy.allows(&a.name) && (!t.tenant.policy.read_only || a.read_only))
            .map(|(c, a)| {
                json!({
                    "name": a.name, "summary": a.summary, "kind": a.kind, "read_only": a.read_only,
                    "family": c.family.name, "sha256": c.sha256, "output": a.output, "schema": a.json_schema(),
                })
            })
            .collect();
        json_response(StatusCode::OK, &json!({"actions": list}))
    }

    fn tenant_index(&self, t: &TenantState) -> usize {
        self.tenants.iter().position(|x| std::ptr::eq(x, t)).expect("tenant of this server")
    }

    async fn run_action(self: Arc<Self>, t: &TenantState, action: &str, body: &[u8], query: &str, is_async: bool) -> Resp {
        let tenant = t.tenant.name.clone();
        let refuse = |status: StatusCode, kind: FailureKind, msg: String, params: Map<String, Value>| {
            let r = ActionResult::failed(params, kind, None, msg);
            (status, r)
        };
        // Everything that can be refused before running is checked (and audited) here.
        let checked = (|| {
            let catalog = self.catalog.read().unwrap().clone();
            let Some((file, spec)) = catalog.action(action) else {
                return Err(refuse(StatusCode::NOT_FOUND, FailureKind::BadParams, format!("unknown action '{action}'"), Map::new()));
            };
            let raw = match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) {
                Ok(Value::Object(m)) => RawParams::Json(m),
                _ => return Err(refuse(StatusCode::BAD_REQUEST, FailureKind::BadParams, "the request body must be a JSON object of params".into(), Map::new())),
            };
            let params = crate::invoke::admit(Some(&t.tenant.policy), &format!("tenant {tenant}"), file, spec, raw).map_err(|r| (status_of(&r), r))?;
            let artifacts = tenant_artifacts(&t.tenant, query).map_err(|e| refuse(StatusCode::BAD_REQUEST, FailureKind::BadParams, e, spec.redact(&params)))?;
            let asset = query_value(query, "asset").unwrap_or_else(|| "default".into());
            let Some(engine) = t.engines.get(&asset).cloned() else {
                let known: Vec<&str> = t.engines.keys().map(String::as_str).collect();
                return Err(refuse(StatusCode::BAD_REQUEST, FailureKind::BadParams, format!("unknown asset '{asset}' (tenant {tenant} has: {})", known.join(", ")), spec.redact(&params)));
            };
            if !self.take_rate(t) {
                return Err(refuse(StatusCode::TOO_MANY_REQUESTS, FailureKind::Limit, format!("tenant {tenant} is over {} requests per minute", t.tenant.requests_per_minute), spec.redact(&params)));
            }
            let cap = t.tenant.concurrency + t.tenant.max_queued;
            if t.in_flight.load(std::sync::atomic::Ordering::Relaxed) >= cap {
                return Err(refuse(StatusCode::TOO_MANY_REQUESTS, FailureKind::Limit, format!("tenant {tenant} has {cap} invocations running or queued (limits.concurrency + limits.max_queued)"), spec.redact(&params)));
            }
            if is_async {
                let running = self.jobs.lock().unwrap().values().filter(|j| j.tenant == tenant && matches!(j.state, JobState::Running(_))).count();
                if running >= t.tenant.max_jobs as usize {
                    return Err(refuse(StatusCode::TOO_MANY_REQUESTS, FailureKind::Limit, format!("tenant {tenant} has {running} async jobs running (limits.max_jobs)"), spec.redact(&params)));
                }
            }
            let mut artifacts = artifacts;
            if let Some(dir) = &t.tenant.artifacts_dir {
                let used = dir_bytes(dir);
                artifacts.cap_bytes(t.tenant.artifact_bytes.min(t.tenant.artifact_quota_bytes.saturating_sub(used)));
            }
            Ok((file.clone(), spec.clone(), params, artifacts, engine))
        })();
        let (file, spec, params, artifacts, engine) = match checked {
            Ok(x) => x,
            Err((status, result)) => {
                self.audit.record(&tenant, action, &result.parameter, &result, Duration::ZERO, &[], result.error.as_ref().map(|_| result.message.as_str()));
                self.metrics.observe(&tenant, action, &result, Duration::ZERO, 0);
                return json_response(status, &serde_json::to_value(&result).expect("json"));
            }
        };
        let idx = self.tenant_index(t);
        let me = self.clone();
        let action_name = action.to_string();
        let in_flight = InFlight::enter(self.clone(), idx);
        let work = async move {
            let _in_flight = in_flight;
            let t = &me.tenants[idx];
            let started = Instant::now();
            // Fair share: a tenant first takes one of its own slots, then a global one, so a
            // flooding tenant holds at most its `concurrency` of the pool.
            let _mine = t.slots.acquire().await.expect("semaphore open");
            let _global = me.slots.acquire().await.expect("semaphore open");
            let cpu = Some(crate::runtime::fair::CpuShare { sched: me.cpu.clone(), tenant: t.cpu.clone() });
            let outcome = crate::invoke::Invocation {
                runtime: &me.runtime,
                file: &file,
                spec: &spec,
                params,
                artifacts,
                limits: t.tenant.limits,
                policy: crate::invoke::policy_for(Some(&t.tenant.policy), &spec),
                ctx: HostContext { engine: Some(engine), credentials: me.credentials.clone(), progress: None, cpu },
            }
            .run()
            .await;
            (outcome.result, outcome.calls, started.elapsed())
        };
        let finish = {
            let me = self.clone();
            let tenant = tenant.clone();
            let action = action_name.clone();
            move |(result, calls, took): (ActionResult, Vec<crate::runtime::CallRecord>, Duration)| {
                let denial = result.error.as_ref().filter(|e| matches!(e.kind, FailureKind::Denied | FailureKind::Limit)).map(|_| result.message.clone());
                me.audit.record(&tenant, &action, &result.parameter, &result, took, &calls, denial.as_deref());
                me.metrics.observe(&tenant, &action, &result, took, calls.len());
                result
            }
        };
        if !is_async {
            let result = finish(work.await);
            return json_response(status_of(&result), &serde_json::to_value(&result).expect("json"));
        }
        let id = job_id();
        let me = self.clone();
        let jid = id.clone();
        // The job is registered before its task can finish: the task's completion takes the
        // same lock.
        let mut jobs = self.jobs.lock().unwrap();
        jobs.retain(|_, j| matches!(j.state, JobState::Running(_)) || j.created.elapsed() < JOB_RETENTION);
        // Results nobody fetched are bounded per tenant: the oldest finished ones go first.
        let mut finished: Vec<(Instant, String)> = jobs.iter().filter(|(_, j)| j.tenant == tenant && !matches!(j.state, JobState::Running(_))).map(|(id, j)| (j.created, id.clone())).collect();
        if finished.len() >= t.tenant.max_job_results as usize {
            finished.sort();
            let excess = finished.len() + 1 - (t.tenant.max_job_results as usize).max(1);
            for (_, id) in finished.into_iter().take(excess) {
                jobs.remove(&id);
            }
        }
        let handle = tokio::spawn(async move {
            let result = finish(work.await);
            if let Some(job) = me.jobs.lock().unwrap().get_mut(&jid) {
                if !matches!(job.state, JobState::Cancelled) {
                    job.state = JobState::Done(Box::new(result));
                }
            }
        });
        jobs.insert(id.clone(), Job { tenant: tenant.clone(), action: action_name, state: JobState::Running(handle.abort_handle()), created: Instant::now() });
        drop(jobs);
        json_response(StatusCode::ACCEPTED, &json!({"job": id, "status": "running"}))
    }

    fn job(&self, t: &TenantState, id: &str, cancel: bool) -> Resp {
        let mut jobs = self.jobs.lock().unwrap();
        let Some(job) = jobs.get_mut(id).filter(|j| j.tenant == t.tenant.name) else {
            return error(StatusCode::NOT_FOUND, "no such job");
        };
        if cancel {
            if let JobState::Running(h) = &job.state {
                h.abort();
                self.audit.record(&job.tenant, &job.action, &Map::new(), &ActionResult::failed(Map::new(), FailureKind::Denied, None, "cancelled".into()), Duration::ZERO, &[], Some("cancelled by the tenant"));
                job.state = JobState::Cancelled;
            }
        }
        match &job.state {
            JobState::Running(_) => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "running"})),
            JobState::Cancelled => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "cancelled"})),
            JobState::Done(r) => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "done", "result": r})),
        }
    }

    async fn artifact(&self, t: &TenantState, name: &str) -> Resp {
        let Some(dir) = &t.tenant.artifacts_dir else { return error(StatusCode::NOT_FOUND, "this tenant has no artifacts directory") };
        if !valid_artifact_name(name) {
            return error(StatusCode::BAD_REQUEST, "artifact names are plain file names");
        }
        match tokio::fs::File::open(dir.join(name)).await {
            Ok(f) => {
                let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                Response::builder()
                    .header("content-type", "application/octet-stream")
                    .header("content-length", len)
                    .body(crate::runtime::artifacts::file_body(f))
                    .expect("response")
            }
            Err(_) => error(StatusCode::NOT_FOUND, "no such artifact"),
        }
    }
}

/// Counts an invocation of a tenant as in flight until dropped (finished, failed or cancelled).
struct InFlight(Arc<Server>, usize);

impl InFlight {
    fn enter(s: Arc<Server>, idx: usize) -> Self {
        s.tenants[idx].in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(s, idx)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.tenants[self.1].in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Bytes held by the files of a directory (not recursive: artifacts are plain names).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn status_of(r: &ActionResult) -> StatusCode {
    match r.error.as_ref().map(|e| e.kind) {
        None => StatusCode::OK,
        Some(FailureKind::BadParams) => StatusCode::BAD_REQUEST,
        Some(FailureKind::Denied) | Some(FailureKind::Limit) => StatusCode::FORBIDDEN,
        Some(FailureKind::Engine) => StatusCode::BAD_GATEWAY,
        Some(FailureKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `?out=NAME&in=NAME`: artifacts are plain names inside the tenant's artifacts directory.
fn tenant_artifacts(t: &Tenant, query: &str) -> Result<Artifacts, String> {
    let mut arts = Artifacts::default();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let is_out = match k {
            "out" => true,
            "in" => false,
            _ => continue,
        };
        let v = crate::engine::path::percent_decode_lossy(v);
        let Some(dir) = &t.artifacts_dir else { return Err(format!("tenant {} has no artifacts directory", t.name)) };
        if !valid_artifact_name(&v) {
            return Err(format!("artifact '{v}' must be a plain file name"));
        }
        if is_out {
            arts.output("out", dir.join(&v));
        } else {
            arts.input("in", dir.join(&v));
        }
    }
    Ok(arts)
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| crate::engine::path::percent_decode_lossy(v))
}

fn query_flag(query: &str, name: &str) -> bool {
    query.split('&').any(|kv| kv == name || kv == format!("{name}=true") || kv == format!("{name}=1"))
}

fn job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, Resp> {
    let body = req.into_body();
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match tokio::time::timeout(Duration::from_secs(30), limited.collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes().to_vec()),
        Ok(Err(_)) => Err(error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large or broken")),
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "request body not received in time")),
    }
}

/// Serves until the process ends. Rescans the actions directory every 2 s and on SIGHUP.
pub async fn serve(server: Arc<Server>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    {
        let s = server.clone();
        tokio::spawn(async move {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                match hup.as_mut() {
                    Some(h) => {
                        tokio::select! {
                            _ = h.recv() => tracing::info!("SIGHUP: rescanning the actions directory"),
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        }
                    }
                    None => tokio::time::sleep(Duration::from_secs(2)).await,
                }
                s.rescan().await;
            }
        });
    }
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let s = server.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let s = s.clone();
                async move { Ok::<_, Infallible>(s.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// The metrics listener: `/metrics` and `/healthz` only, no token (bind it where only the
/// monitoring system reaches).
async fn serve_metrics(server: Arc<Server>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let s = server.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let s = s.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/metrics" => s.metrics_response(),
                        "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
                        _ => error(StatusCode::NOT_FOUND, "only /metrics and /healthz here"),
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// `berth serve`: load the config, build everything, listen.
pub fn run(config_path: &Path, listen: Option<&str>, actions: PathBuf) -> i32 {
    let mut cfg = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: bad config: {e}");
            return 2;
        }
    };
    if let Some(l) = listen {
        cfg.listen = l.to_string();
    }
    let actions = cfg.actions.clone().unwrap_or(actions);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listen = cfg.listen.clone();
        let metrics_listen = cfg.metrics_listen.clone();
        let server = match Server::new(cfg, actions).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth: cannot start the server: {e:#}");
                return 2;
            }
        };
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("berth: cannot listen on {listen}: {e}");
                return 2;
            }
        };
        if let Some(ml) = metrics_listen {
            match tokio::net::TcpListener::bind(&ml).await {
                Ok(l) => {
                    eprintln!("berth: metrics on http://{}/metrics", l.local_addr().map(|a| a.to_string()).unwrap_or(ml));
                    tokio::spawn(serve_metrics(server.clone(), l));
                }
                Err(e) => {
                    eprintln!("berth: cannot listen on {ml} (server.metrics_listen): {e}");
                    return 2;
                }
            }
        }
        eprintln!("berth: serving on http://{}", listener.local_addr().map(|a| a.to_string()).unwrap_or(listen));
        match serve(server, listener).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth: server failed: {e:#}");
                1
            }
        }
    })
}
