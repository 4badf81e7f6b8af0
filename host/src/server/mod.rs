//! `berth serve`: many tenants running actions side by side over HTTP, each confined to its
//! policy and limits, with an audit log, Prometheus metrics, async jobs and hot drop-in.

pub mod audit;
mod auth;
pub mod config;
mod jobs;
pub mod metrics;
mod openapi;
mod reload;
mod request_engine;
mod routes;
pub mod store;

use routes::{serve_metrics, tenant_artifacts, ActionQuery};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use crate::credentials::{CredentialStore, Credentials};
use crate::engine::{Body, EngineClient, Timeouts};
use crate::runtime::{Catalog, HostContext, Runtime, RuntimeConfig};
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
    /// This tenant's share of each asset's engine connection cap (long streams included).
    shares: std::collections::BTreeMap<String, Arc<Semaphore>>,
    slots: Semaphore,
    rate: governor::DefaultDirectRateLimiter,
    /// Invocations admitted and not finished (waiting for a slot or running).
    in_flight: std::sync::atomic::AtomicU32,
    /// Recent guest CPU use, for the fair scheduler.
    cpu: Arc<crate::runtime::fair::TenantCpu>,
    /// One upload at a time per tenant, so that uploads checked against the quota together
    /// cannot overrun it together.
    uploads: tokio::sync::Mutex<()>,
}

pub struct Server {
    runtime: Runtime,
    actions_dir: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    tenants: Vec<TenantState>,
    slots: Semaphore,
    /// Async jobs, results and leases, in a database that outlives the process.
    store: store::Store,
    /// Abort handles of the jobs this process runs.
    local_jobs: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// A replica that has not renewed its lease for this long is dead to the others.
    lease: Duration,
    /// Set at SIGTERM: `/readyz` answers 503 (the server still serves for `shutdown_delay`) ...
    draining: std::sync::atomic::AtomicBool,
    /// ... then this: nothing new is accepted or admitted.
    stopping: std::sync::atomic::AtomicBool,
    shutdown: Shutdown,
    audit: audit::Audit,
    pub metrics: metrics::Metrics,
    credentials: Arc<Credentials>,
    metrics_token: Option<[u8; 32]>,
    cpu: Arc<crate::runtime::fair::CpuScheduler>,
}

type Resp = Response<Body>;

fn json_response(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let body = Full::new(Bytes::from(serde_json::to_vec(v).expect("json"))).map_err(|n| match n {}).boxed();
    Response::builder().status(status).header("content-type", "application/json").body(body).expect("response")
}

fn error(status: StatusCode, msg: &str) -> Resp {
    json_response(status, &json!({"error": msg}))
}

/// Compiles at start-up (a cache miss: seconds each) are logged, so a slow start says why.
struct LogCompiles;

impl crate::runtime::cache::CompileProgress for LogCompiles {
    fn compiling(&self, name: &str, bytes: usize) {
        tracing::info!(component = name, bytes, "compiling (once, then cached)");
    }
    fn compiled(&self, name: &str, took: Duration) {
        tracing::info!(component = name, seconds = took.as_secs_f64(), "compiled");
    }
}

impl Server {
    /// Builds everything up front: a bad config or actions dir fails before anything listens.
    pub async fn new(cfg: Config, actions_dir: PathBuf) -> anyhow::Result<Arc<Server>> {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: cfg.cache.clone().or_else(crate::runtime::cache::default_dir),
            pool: Some(crate::runtime::PoolSpec { instances: cfg.max_concurrent, memory_mib: cfg.pool_memory_mib }),
            map_cache_files: false,
            compile_progress: Some(Arc::new(LogCompiles)),
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
        let metrics = metrics::Metrics::default();
        let mut shared: Vec<(crate::engine::Endpoint, Arc<EngineClient>)> = Vec::new();
        for t in &cfg.tenants {
            if let Some(dir) = &t.artifacts_dir {
                std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("tenant {}: artifacts_dir {}: {e}", t.name, dir.display()))?;
            }
            let mut engines = std::collections::BTreeMap::new();
            let mut shares = std::collections::BTreeMap::new();
            for (asset, ep) in &t.assets {
                // Each tenant that reaches an engine gets an equal part of its connection cap,
                // so one tenant's streams cannot hold every connection.
                if cfg.engine_limits.max_connections > 0 {
                    let users = cfg.tenants.iter().filter(|o| o.assets.values().any(|e| e == ep)).count().max(1);
                    let share = (cfg.engine_limits.max_connections as usize / users).max(1);
                    shares.insert(asset.clone(), Arc::new(Semaphore::new(share)));
                }
                // One client per engine, shared by every tenant and asset that names it: one
                // connection pool, one rate limit and one connection cap per daemon.
                let client = match shared.iter().find(|(e, _)| e == ep) {
                    Some((_, c)) => Arc::clone(c),
                    None => {
                        let mut c = EngineClient::connect_to(ep, Timeouts::default()).map_err(|e| anyhow::anyhow!("tenant {} asset {asset}: {e:#}", t.name))?;
                        let (waited, refused) = metrics.engine_counters(c.address());
                        c.limit(cfg.engine_limits, waited, refused);
                        let c = Arc::new(c);
                        shared.push((ep.clone(), c.clone()));
                        c
                    }
                };
                engines.insert(asset.clone(), client);
            }
            tenants.push(TenantState {
                engines,
                shares,
                slots: Semaphore::new(t.concurrency as usize),
                rate: governor::RateLimiter::direct(governor::Quota::per_minute(std::num::NonZeroU32::new(t.requests_per_minute.max(1)).expect("at least 1"))),
                in_flight: std::sync::atomic::AtomicU32::new(0),
                cpu: crate::runtime::fair::TenantCpu::new(&t.name),
                uploads: tokio::sync::Mutex::new(()),
                tenant: t.clone(),
            });
        }
        let audit = audit::Audit::open(cfg.audit_log.as_deref())?;
        let store_cfg = store::StoreConfig {
            state_dir: cfg
                .state_dir
                .clone()
                .or_else(store::default_state_dir)
                .ok_or_else(|| anyhow::anyhow!("no state directory: set [server] state_dir (or HOME)"))?,
            database_url: cfg.database_url.as_ref().map(|u| u.0.clone()),
            lease: cfg.job_lease,
            config_sha256: cfg.tenants_sha256(),
        };
        let store = store::Store::open(&store_cfg, &store::replica_name()).await.map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!("{}", store.describe());
        let credentials = Arc::new(Credentials::new(cfg.credentials.clone(), CredentialStore::docker_config_path()));
        let server = Arc::new(Server {
            slots: Semaphore::new(cfg.max_concurrent as usize),
            catalog: RwLock::new(Arc::new(catalog)),
            actions_dir,
            tenants,
            store,
            local_jobs: Mutex::new(HashMap::new()),
            lease: cfg.job_lease,
            draining: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            shutdown: Shutdown { delay: cfg.shutdown_delay, grace: cfg.shutdown_grace },
            audit,
            metrics,
            credentials,
            metrics_token: cfg.metrics_token_sha256,
            cpu: crate::runtime::fair::CpuScheduler::new(crate::runtime::fair::CpuScheduler::default_slots(), runtime.engine().clone()),
            runtime,
        });
        // What a previous run of this server (or a dead replica) left running.
        server.sweep().await;
        Ok(server)
    }

    fn tenant_index(&self, t: &TenantState) -> usize {
        self.tenants.iter().position(|x| std::ptr::eq(x, t)).expect("tenant of this server")
    }

    async fn run_action(self: Arc<Self>, t: &TenantState, action: &str, body: &[u8], query: &ActionQuery) -> Resp {
        let tenant = t.tenant.name.clone();
        let Checked { catalog, params, artifacts, engines, fan_out, asset_timeout, own_engine } = match self.check_request(t, action, body, query).await {
            Ok(x) => x,
            Err((status, result)) => {
                self.audit.record(&tenant, action, &result.parameter, &result, Duration::ZERO, &[], result.error.as_ref().map(|_| result.message.as_str()));
                self.metrics.observe(&tenant, action, &result, Duration::ZERO, 0);
                if query.raw {
                    return routes::raw_response(&result, status);
                }
                return json_response(status, &result);
            }
        };
        let idx = self.tenant_index(t);
        let me = self.clone();
        let action_name = action.to_string();
        let shown = if query.is_async { catalog.action(action).map(|(_, spec)| spec.redact(&params)).unwrap_or_default() } else { Map::new() };
        let in_flight = InFlight::enter(self.clone(), idx);
        let resolved = action_name.clone();
        let work = async move {
            let _in_flight = in_flight;
            let t = &me.tenants[idx];
            // The catalog this request was checked against (a reload may swap the server's).
            let (file, spec) = catalog.action(&resolved).expect("resolved when checked");
            let started = Instant::now();
            // Fair share: a tenant first takes one of its own slots, then a global one, so a
            // flooding tenant holds at most its `concurrency` of the pool.
            let _mine = t.slots.acquire().await.expect("semaphore open");
            let _global = me.slots.acquire().await.expect("semaphore open");
            let cpu = Some(crate::runtime::fair::CpuShare { sched: me.cpu.clone(), tenant: t.cpu.clone() });
            let policy = crate::invoke::policy_for(Some(&t.tenant.policy), spec);
            let mut runs = Vec::new();
            for (asset, engine) in engines {
                let engine_share = t.shares.get(&asset).cloned();
                // An engine the request named is the tenant's: the server's registry
                // credentials never go to it.
                let credentials = if own_engine { Arc::new(Credentials::from_store(Default::default())) } else { me.credentials.clone() };
                let ctx = HostContext { engine: Some(engine), credentials, progress: None, cpu: cpu.clone(), engine_share };
                let inv = crate::invoke::Invocation {
                    runtime: &me.runtime,
                    file,
                    spec,
                    params: params.clone(),
                    artifacts: artifacts.clone(),
                    limits: t.tenant.limits,
                    policy: policy.clone(),
                    ctx,
                };
                runs.push((asset, inv));
            }
            if !fan_out {
                let (_, inv) = runs.pop().expect("one asset");
                let outcome = inv.run().await;
                return (outcome.result, outcome.calls, outcome.written, started.elapsed());
            }
            // Each engine in its own sandbox, a few at once; within the tenant's slot.
            let (result, outcomes) = crate::invoke::fan_out(runs, asset_timeout, 8, crate::invoke::FanOut::Here).await;
            let calls = outcomes.into_iter().flat_map(|o| o.calls).collect();
            (result, calls, Vec::new(), started.elapsed())
        };
        let finish = {
            let me = self.clone();
            let tenant = tenant.clone();
            let action = action_name.clone();
            move |(result, calls, written, took): (ActionResult, Vec<crate::runtime::CallRecord>, Vec<crate::runtime::artifacts::Written>, Duration)| {
                let denial = result.error.as_ref().filter(|e| matches!(e.kind, FailureKind::Denied | FailureKind::Limit)).map(|_| result.message.clone());
                me.audit.record(&tenant, &action, &result.parameter, &result, took, &calls, denial.as_deref());
                me.audit.artifacts(&tenant, &action, &written);
                me.metrics.observe(&tenant, &action, &result, took, calls.len());
                result
            }
        };
        if !query.is_async {
            let result = finish(work.await);
            if query.raw {
                return routes::raw_response(&result, status_of(&result));
            }
            return json_response(status_of(&result), &result);
        }
        self.start_job(t, action_name, &shown, work, finish).await
    }
}

/// A request that passed every check made before running: what to run, on which engines.
struct Checked {
    catalog: Arc<Catalog>,
    params: Map<String, Value>,
    artifacts: crate::runtime::Artifacts,
    engines: Vec<(String, Arc<EngineClient>)>,
    fan_out: bool,
    asset_timeout: Duration,
    /// The engine is one the request named: it gets no registry credentials.
    own_engine: bool,
}

/// A refusal before running: its HTTP status and `action_result`.
type Refused = (StatusCode, ActionResult);

fn bad_params(msg: String, params: Map<String, Value>) -> Refused {
    (StatusCode::BAD_REQUEST, ActionResult::failed(params, FailureKind::BadParams, None, msg))
}

impl Server {
    /// Everything that can be refused before running (and is then audited): the action, its
    /// params under the tenant's policy, artifacts, assets, and the tenant's rate, queue and
    /// job caps.
    async fn check_request(&self, t: &TenantState, action: &str, body: &[u8], query: &ActionQuery) -> Result<Checked, Refused> {
        let tenant = &t.tenant.name;
        let catalog = self.catalog.read().unwrap().clone();
        let Some((file, spec)) = catalog.action(action) else {
            // Near names only among what this tenant may run: the 404 reveals nothing else.
            let allowed = catalog.actions().map(|(_, a)| a.name.as_str()).filter(|n| t.tenant.policy.allows(n));
            let close = crate::spec::near(action, allowed);
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
            return Err((StatusCode::NOT_FOUND, ActionResult::failed(Map::new(), FailureKind::BadParams, None, format!("unknown action '{action}'{hint}"))));
        };
        let (raw, own_engine) = match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) {
            Ok(Value::Object(mut m)) => {
                let own = request_engine::take(&mut m);
                (RawParams::Json(m), own)
            }
            _ => return Err(bad_params("the request body must be a JSON object of params".into(), Map::new())),
        };
        let params = crate::invoke::admit(Some(&t.tenant.policy), &format!("tenant {tenant}"), file, spec, raw).map_err(|r| (status_of(&r), r))?;
        let shown = || spec.redact(&params);
        let mut artifacts = tenant_artifacts(&t.tenant, query).map_err(|e| bad_params(e, shown()))?;
        let engines = match &own_engine {
            None => assets_of(t, query).map_err(|e| bad_params(e, shown()))?,
            Some(spec) => {
                if t.tenant.request_engines.is_empty() {
                    return Err((
                        StatusCode::FORBIDDEN,
                        ActionResult::failed(
                            shown(),
                            FailureKind::Denied,
                            None,
                            format!("tenant {tenant} may not name engines in requests (no request_engines)"),
                        ),
                    ));
                }
                if query.asset.is_some() || query.assets.is_some() {
                    return Err(bad_params("give _engine or asset/assets, not both".into(), shown()));
                }
                let ep = request_engine::endpoint(&t.tenant.request_engines, spec).await.map_err(|(denied, e)| {
                    if denied {
                        (StatusCode::FORBIDDEN, ActionResult::failed(shown(), FailureKind::Denied, None, e))
                    } else {
                        bad_params(e, shown())
                    }
                })?;
                let client = EngineClient::connect_to(&ep, Timeouts::default()).map_err(|e| bad_params(format!("_engine: {e:#}"), shown()))?;
                tracing::info!(tenant = %tenant, engine = %ep.host, "an engine named in the request");
                self.audit.request_engine(tenant, action, &ep.host);
                vec![("request".to_string(), Arc::new(client))]
            }
        };
        let fan_out = query.assets.is_some();
        if fan_out && artifacts.has_outputs() {
            return Err(bad_params("a fan-out over assets takes no output artifacts (each engine would write the same file)".into(), shown()));
        }
        let asset_timeout = match query.asset_timeout.as_deref() {
            None => t.tenant.limits.wall,
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s).min(t.tenant.limits.wall),
                _ => return Err(bad_params(format!("asset_timeout '{v}' is not a positive number of seconds"), shown())),
            },
        };
        if let Err((status, e)) = self.admission(t, query.is_async).await {
            return Err((status, ActionResult::failed(shown(), FailureKind::Limit, None, e)));
        }
        // The quota's directory walk only for invocations that can write an artifact.
        if let Some(dir) = t.tenant.artifacts_dir.as_ref().filter(|_| artifacts.has_outputs()) {
            let used = dir_bytes(dir);
            artifacts.cap_bytes(t.tenant.artifact_bytes.min(t.tenant.artifact_quota_bytes.saturating_sub(used)));
        }
        let catalog = catalog.clone();
        Ok(Checked { catalog, params, artifacts, engines, fan_out, asset_timeout, own_engine: own_engine.is_some() })
    }

    /// The tenant's request rate, its invocations running or queued, and its async jobs.
    /// With a shared job store, the rate and the job cap are counted across replicas.
    async fn admission(&self, t: &TenantState, is_async: bool) -> Result<(), (StatusCode, String)> {
        let tenant = &t.tenant.name;
        let limit = |e: String| (StatusCode::TOO_MANY_REQUESTS, e);
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "berth serve is stopping; send the request to another replica".into()));
        }
        self.take_rate(t).await.map_err(limit)?;
        let cap = t.tenant.concurrency + t.tenant.max_queued;
        if t.in_flight.load(std::sync::atomic::Ordering::Relaxed) >= cap {
            return Err(limit(format!("tenant {tenant} has {cap} invocations running or queued (limits.concurrency + limits.max_queued)")));
        }
        if is_async {
            let running = self.store.running(tenant).await.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
            if running >= t.tenant.max_jobs as usize {
                return Err(limit(format!("tenant {tenant} has {running} async jobs running (limits.max_jobs)")));
            }
        }
        Ok(())
    }
}

/// The engines a request names: `?asset=NAME` (default: "default"), or `?assets=a,b` /
/// `?assets=*` for a fan-out.
fn assets_of(t: &TenantState, query: &ActionQuery) -> Result<Vec<(String, Arc<EngineClient>)>, String> {
    let tenant = &t.tenant.name;
    let known = || t.engines.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
    let names: Vec<String> = match (query.assets.as_deref(), query.asset.as_deref()) {
        (Some(_), Some(_)) => return Err("give either asset or assets, not both".into()),
        (Some("*"), None) => t.engines.keys().cloned().collect(),
        (Some(list), None) => list.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
        (None, one) => vec![one.unwrap_or("default").to_string()],
    };
    if names.is_empty() {
        return Err(format!("assets names no asset (tenant {tenant} has: {})", known()));
    }
    let mut engines: Vec<(String, Arc<EngineClient>)> = Vec::new();
    for asset in names {
        let Some(engine) = t.engines.get(&asset).cloned() else {
            return Err(format!("unknown asset '{asset}' (tenant {tenant} has: {})", known()));
        };
        if engines.iter().any(|(a, _)| a == &asset) {
            return Err(format!("asset '{asset}' is named twice"));
        }
        engines.push((asset, engine));
    }
    Ok(engines)
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
    std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()).unwrap_or(0)
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

/// Serves plain HTTP until the process ends (see [`serve_with`]).
pub async fn serve(server: Arc<Server>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_with(server, listener, None).await
}

/// The rustls acceptor for `[server] tls_cert`/`tls_key`, requiring a client certificate
/// signed by `client_ca` when one is given.
pub fn tls_acceptor(t: &config::ServeTls) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use crate::engine::tls::{certs, private_key, Pem};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&Pem::File(t.cert.clone()), "certificate (server.tls_cert)")?;
    let key = private_key(&Pem::File(t.key.clone()), "key (server.tls_key)")?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(&Pem::File(ca.clone()), "client CA (server.client_ca)")? {
                roots.add(c)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| anyhow::anyhow!("server.tls_cert and tls_key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// How a replica stops at SIGTERM or SIGINT.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    /// `/readyz` answers 503 this long, still serving, so a load balancer drains the replica.
    delay: Duration,
    /// Then in-flight invocations and jobs get this long to finish.
    grace: Duration,
}

/// Serves until SIGTERM or SIGINT, over TLS when an acceptor is given, then stops gracefully
/// (see [`Server::stop`]). Rescans the actions directory every 2 s and on SIGHUP. One accept
/// loop on the current runtime; `berth serve` runs one per core ([`run`]).
pub async fn serve_with(server: Arc<Server>, listener: tokio::net::TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<()> {
    let stop = server.clone().supervise()?;
    let serving = tokio::spawn(serve_until_stopped(server.clone(), listener, tls, stop.clone()));
    server.stop(stop, async move { serving.await.unwrap_or(false) }).await;
    Ok(())
}

/// The instant a stop was asked for, plus the delay: accept loops close then.
type StopAt = tokio::sync::watch::Receiver<Option<tokio::time::Instant>>;

impl Server {
    /// Starts the background tasks (rescans, the job lease) and the signal watcher on the
    /// current runtime; answers the channel that says when to stop accepting.
    fn supervise(self: Arc<Self>) -> anyhow::Result<StopAt> {
        use tokio::signal::unix::{signal, SignalKind};
        reload::spawn_rescans(self.clone());
        tokio::spawn(self.clone().keep_lease());
        let (tx, rx) = tokio::sync::watch::channel(None);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            let _ = tx.send(Some(self.begin_drain(name)));
            // Keep the channel open until every loop has seen it.
            tx.closed().await;
        });
        Ok(rx)
    }
}

/// Accepts on `listener` until the stop instant, then lets the connections it served finish
/// their requests within the grace period counted from the stop; true when they all did.
async fn serve_until_stopped(server: Arc<Server>, listener: tokio::net::TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, mut stop: StopAt) -> bool {
    let grace = server.shutdown.grace;
    let router = routes::router(server);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        let deadline = async {
            match stop_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            changed = stop.changed(), if stop_at.is_none() => {
                match changed {
                    Ok(()) => stop_at = *stop.borrow_and_update(),
                    Err(_) => std::future::pending::<()>().await,
                }
                continue;
            }
            _ = deadline => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(router.clone());
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).clone();
            let ended = match tls {
                None => watcher.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc)).await,
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => watcher.watch(http.serve_connection(hyper_util::rt::TokioIo::new(s), svc)).await,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, "TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    let from = stop.borrow().unwrap_or_else(tokio::time::Instant::now);
    tokio::time::timeout_at(from + grace, graceful.shutdown()).await.is_ok()
}

impl Server {
    /// `/readyz` turns unready now; the server stops accepting at the instant answered.
    fn begin_drain(&self, signal: &str) -> tokio::time::Instant {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("berth: {signal}: draining (/readyz answers 503), stopping in {:?}", self.shutdown.delay);
        tokio::time::Instant::now() + self.shutdown.delay
    }

    /// After the accept loops closed: waits for their connections to finish (`drained`, within
    /// the grace period), then for this replica's jobs for what is left of it; interrupts the
    /// jobs left (recorded, never re-run) and flushes the audit log.
    async fn stop(&self, mut stop: StopAt, drained: impl std::future::Future<Output = bool>) {
        let at = loop {
            if let Some(t) = *stop.borrow_and_update() {
                break t;
            }
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::time::sleep_until(at).await;
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        let grace = self.shutdown.grace;
        let until = at + grace;
        let requests_done = drained.await;
        while self.local_job_count() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let interrupted = self.interrupt_local_jobs(&format!("berth serve stopped and the job did not finish within the grace period ({grace:?})")).await;
        self.audit.flush();
        eprintln!(
            "berth: stopped: {} in-flight requests, {interrupted} async jobs interrupted",
            if requests_done { "finished all" } else { "cut off the last" }
        );
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
    if let Err(e) = cfg.check_listener() {
        eprintln!("berth: bad config: {e}");
        return 2;
    }
    let tls = match cfg.tls.as_ref().map(tls_acceptor).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("berth: bad config: {e:#}");
            return 2;
        }
    };
    let actions = cfg.actions.clone().unwrap_or(actions);
    let workers = cfg.workers;
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
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
        let listener = match bind_shared(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("berth: cannot listen on {listen}: {e}");
                return 2;
            }
        };
        let addr = listener.local_addr().expect("bound");
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("berth: {}", server.runtime.allocation());
        eprintln!("berth: serving on {scheme}://{addr} ({workers} workers, a runtime and a listener each)");
        let stop = match server.clone().supervise() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth: cannot watch signals: {e}");
                return 1;
            }
        };
        // Workers 1..n: a thread each, with its own current-thread runtime and a listener on
        // the same address (SO_REUSEPORT: the kernel spreads connections), so a request is
        // served, run and answered on one thread. Each keeps its runtime up until the end, so
        // the async jobs it started finish or are interrupted, never dropped.
        let (end_tx, end_rx) = tokio::sync::watch::channel(false);
        let mut drained = Vec::new();
        let mut threads = Vec::new();
        for n in 1..workers {
            let (tx, rx) = tokio::sync::oneshot::channel();
            drained.push(rx);
            let (server, tls, stop, mut end) = (server.clone(), tls.clone(), stop.clone(), end_rx.clone());
            let spawned = std::thread::Builder::new().name(format!("berth-worker-{n}")).spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a worker runtime");
                rt.block_on(async move {
                    let ok = match bind_shared(&addr.to_string()).await {
                        Ok(l) => serve_until_stopped(server, l, tls, stop).await,
                        Err(e) => {
                            tracing::error!("worker {n}: cannot listen on {addr}: {e}");
                            true
                        }
                    };
                    let _ = tx.send(ok);
                    while !*end.borrow_and_update() {
                        if end.changed().await.is_err() {
                            break;
                        }
                    }
                });
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!("cannot start worker {n}: {e}"),
            }
        }
        let first = tokio::spawn(serve_until_stopped(server.clone(), listener, tls, stop.clone()));
        let all_drained = async move {
            let mut ok = first.await.unwrap_or(false);
            for rx in drained {
                ok &= rx.await.unwrap_or(false);
            }
            ok
        };
        server.stop(stop, all_drained).await;
        let _ = end_tx.send(true);
        for t in threads {
            let _ = t.join();
        }
        0
    })
}

/// A listener on `addr` that other workers may bind too (SO_REUSEPORT).
async fn bind_shared(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address");
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(1024),
            Err(e) => last = e,
        }
    }
    Err(last)
}
