//! The tenants config (TOML). Tokens are stored as SHA-256 hashes; a bad config fails with the
//! key and the line, and nothing starts half-configured.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::policy::{EnginePolicy, TenantPolicy};
use crate::runtime::{LimitSpec, Limits};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default, rename = "tenant")]
    tenants: Vec<Spanned<RawTenant>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    actions: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    cache: Option<PathBuf>,
    credentials: Option<PathBuf>,
    /// Invocation slots for all tenants together (the pooling allocator's size).
    max_concurrent: Option<u32>,
    /// Each linear memory's share of the pool, MiB: the most a guest's memory may grow to
    /// (the pool reserves 2 × max_concurrent of them, with guards, at start).
    pool_memory_mib: Option<u32>,
    /// SHA-256 of the bearer token `/metrics` takes on the main listener.
    metrics_token_sha256: Option<Spanned<String>>,
    /// A listener of its own for `/metrics` (no token), e.g. "127.0.0.1:9478".
    metrics_listen: Option<String>,
    /// What each engine takes from all tenants together: requests per second (0: no cap) ...
    engine_requests_per_second: Option<u32>,
    engine_burst: Option<u32>,
    /// ... requests in flight at once (0: no cap) ...
    engine_max_connections: Option<u32>,
    /// ... and how long a request may wait for them.
    engine_max_wait_secs: Option<f64>,
    /// HTTPS: the server's certificate chain and key (PEM files) ...
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// ... and, for mutual TLS, the CA that signs the SOAR platform's client certificates.
    client_ca: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address (otherwise refused).
    #[serde(default)]
    allow_plaintext: bool,
    /// Where the job store (SQLite) lives; default `$STATE_DIRECTORY`, `$XDG_STATE_HOME/berth`
    /// or `~/.local/state/berth`.
    state_dir: Option<PathBuf>,
    /// `postgres://…`: a job store shared by several replicas (instead of SQLite) ...
    database_url: Option<String>,
    /// ... or read from this file (a swarm secret).
    database_url_file: Option<PathBuf>,
    /// At SIGTERM: how long `/readyz` answers 503 while still serving (default 0) ...
    shutdown_delay_secs: Option<f64>,
    /// ... then how long in-flight invocations and jobs may take to finish (default 30).
    shutdown_grace_secs: Option<f64>,
    /// A replica whose heartbeat is older than this is dead to the others (default 10).
    job_lease_secs: Option<f64>,
    /// Threads serving requests, each with its own runtime and listener (default: the cores
    /// less one, at least one).
    workers: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: Spanned<String>,
    #[serde(default)]
    token_sha256: Option<Spanned<String>>,
    /// The default asset's address (`unix://`, `tcp://`, `ssh://`) ...
    engine: Option<String>,
    /// ... with TLS: `tls = { ca, cert, key, server_name }`.
    tls: Option<RawTls>,
    /// ... or a docker context of the server's user.
    context: Option<String>,
    /// ... and HTTP auth for a proxy in front of it: `auth = { username, password_file }` or
    /// `{ token_file }` (or `password`, `token` inline).
    auth: Option<RawAuth>,
    /// ... and an API version to use as is (`"1.41"`), never negotiated.
    api_version: Option<String>,
    /// Named engines (SOAR assets): `prod = "unix:///..."`, or
    /// `prod = { engine = "tcp://…", tls = {…} }`, or `prod = { context = "name" }`.
    #[serde(default)]
    assets: BTreeMap<String, RawAsset>,
    /// Engines a request may name itself (`_engine` in the body): CIDRs or `host:port` globs.
    #[serde(default)]
    request_engines: Vec<String>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    read_only: bool,
    label_scope: Option<Spanned<String>>,
    artifacts_dir: Option<PathBuf>,
    #[serde(default)]
    pins: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    limits: RawLimits,
    engine_policy: Option<Spanned<EnginePolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawAsset {
    Address(String),
    Table(Box<RawAssetTable>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssetTable {
    engine: Option<String>,
    tls: Option<RawTls>,
    context: Option<String>,
    auth: Option<RawAuth>,
    api_version: Option<String>,
}

/// HTTP auth to an engine (an authenticating proxy in front of it): basic or bearer, the
/// secret inline or in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

impl RawAuth {
    fn resolve(&self) -> Result<crate::engine::endpoint::EngineAuth, String> {
        use crate::engine::endpoint::EngineAuth;
        let secret = |v: &Option<String>, f: &Option<PathBuf>, what: &str| -> Result<Option<String>, String> {
            match (v, f) {
                (Some(_), Some(_)) => Err(format!("give {what} or {what}_file, not both")),
                (Some(v), None) => Ok(Some(v.clone())),
                (None, Some(f)) => EngineAuth::read_secret(f, &format!("{what}_file")).map(Some),
                (None, None) => Ok(None),
            }
        };
        (|| {
            let password = secret(&self.password, &self.password_file, "password")?;
            let token = secret(&self.token, &self.token_file, "token")?;
            EngineAuth::from_parts(self.username.clone(), password, token, "a password or password_file")?
                .ok_or_else(|| "give username and password (or password_file), or token (or token_file)".to_string())
        })()
        .map_err(|e| format!("auth: {e}"))
    }
}

/// TLS to an engine. Each of `ca`, `cert` and `key` is a file path or inline PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    server_name: Option<String>,
    /// Check the engine's certificate against `ca` (default true; false is the docker CLI's
    /// `--tls` without `--tlsverify`).
    verify: Option<bool>,
}

/// One asset's endpoint from its config forms.
fn endpoint(
    engine: Option<&str>,
    tls: Option<&RawTls>,
    context: Option<&str>,
    auth: Option<&RawAuth>,
    api_version: Option<&str>,
) -> Result<crate::engine::Endpoint, String> {
    let mut ep = endpoint_of(engine, tls, context)?;
    if let Some(v) = api_version {
        crate::engine::ApiVersion::pinnable(v).map_err(|e| format!("api_version {e}"))?;
        ep.api_version = Some(v.to_string());
    }
    if let Some(a) = auth {
        if ep.auth.is_some() {
            return Err("give the engine's credentials in auth or in the address, not both".into());
        }
        ep.auth = Some(a.resolve()?);
    }
    Ok(ep)
}

fn endpoint_of(engine: Option<&str>, tls: Option<&RawTls>, context: Option<&str>) -> Result<crate::engine::Endpoint, String> {
    use crate::engine::tls::{Pem, TlsSettings};
    match (engine, context) {
        (Some(_), Some(_)) => Err("give engine or context, not both".into()),
        (None, Some(c)) => {
            if tls.is_some() {
                return Err("a context carries its own TLS settings".into());
            }
            crate::engine::endpoint::from_context(&crate::engine::endpoint::Env::process().config_dir, c).map_err(|e| e.to_string())
        }
        (e, None) => {
            let mut ep = crate::engine::Endpoint::new(e.unwrap_or(crate::engine::DEFAULT_HOST), None);
            let host = &ep.host;
            ep.tls = match tls {
                None => None,
                Some(t) => {
                    if !host.starts_with("tcp://") {
                        return Err(format!("tls is for tcp:// engines, not '{host}'"));
                    }
                    let s = TlsSettings {
                        verify: t.verify.unwrap_or(true),
                        ca: t.ca.as_deref().map(Pem::from_config),
                        cert: t.cert.as_deref().map(Pem::from_config),
                        key: t.key.as_deref().map(Pem::from_config),
                        server_name: t.server_name.clone(),
                    };
                    // Load it now: a bad certificate fails the config, not the first call.
                    s.client_config().map_err(|e| format!("tls: {e:#}"))?;
                    Some(s)
                }
            };
            Ok(ep)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<u64>,
    cpu_secs: Option<f64>,
    timeout_secs: Option<f64>,
    engine_calls: Option<u32>,
    response_bytes: Option<u64>,
    concurrency: Option<u32>,
    requests_per_minute: Option<u32>,
    max_queued: Option<u32>,
    max_jobs: Option<u32>,
    max_job_results: Option<u32>,
    artifact_bytes: Option<u64>,
    artifact_quota_bytes: Option<u64>,
}

/// The server's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub actions: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub credentials: Option<PathBuf>,
    pub max_concurrent: u32,
    pub pool_memory_mib: u32,
    pub metrics_token_sha256: Option<[u8; 32]>,
    pub metrics_listen: Option<String>,
    pub engine_limits: crate::engine::EngineLimits,
    pub tls: Option<ServeTls>,
    pub allow_plaintext: bool,
    pub state_dir: Option<PathBuf>,
    pub database_url: Option<DatabaseUrl>,
    pub shutdown_delay: std::time::Duration,
    pub shutdown_grace: std::time::Duration,
    pub job_lease: std::time::Duration,
    pub workers: usize,
    pub tenants: Vec<Tenant>,
}

/// A database URL, which may hold a password: never printed whole.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(…)")
    }
}

impl Config {
    /// A digest of the tenants as loaded: replicas sharing a job store must agree on it.
    pub fn tenants_sha256(&self) -> String {
        hex::encode(Sha256::digest(format!("{:?}", self.tenants).as_bytes()))
    }
}

/// HTTPS for `berth serve`.
#[derive(Debug, Clone)]
pub struct ServeTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl Config {
    /// Plain HTTP only on loopback, unless `allow_plaintext = true` says otherwise.
    pub fn check_listener(&self) -> Result<(), String> {
        if self.tls.is_some() || self.allow_plaintext {
            return Ok(());
        }
        let host = self.listen.rsplit_once(':').map(|(h, _)| h).unwrap_or(&self.listen).trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "listen = \"{}\": plain HTTP (bearer tokens in the clear) is served only on loopback; set [server] tls_cert and tls_key for HTTPS, or allow_plaintext = true",
                self.listen
            ))
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub token_sha256: [u8; 32],
    /// Asset name → engine endpoint; `default` is used when a request names none.
    pub assets: BTreeMap<String, crate::engine::Endpoint>,
    /// Allowlist, read-only flag, label scope, pins and engine policy.
    pub policy: TenantPolicy,
    pub artifacts_dir: Option<PathBuf>,
    /// Engines a request may name (`_engine`); none when empty.
    pub request_engines: Vec<super::request_engine::Rule>,
    pub limits: Limits,
    pub concurrency: u32,
    pub requests_per_minute: u32,
    /// Invocations that may wait for a slot beyond `concurrency`; more answer 429.
    pub max_queued: u32,
    /// Async jobs running at once; more answer 429.
    pub max_jobs: u32,
    /// Finished async jobs whose results are kept; the oldest go first.
    pub max_job_results: u32,
    /// Bytes one invocation may write to artifacts.
    pub artifact_bytes: u64,
    /// Bytes the tenant's artifacts directory may hold.
    pub artifact_quota_bytes: u64,
}

/// A config problem, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct ConfigError {
    pub path: String,
    pub msg: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError { path: path.display().to_string(), msg: format!("cannot read: {e}") })?;
        Self::parse(&text).map_err(|msg| ConfigError { path: path.display().to_string(), msg })
    }

    /// Parses and validates; the error names the key and the line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| format!("line {}: ", line_of(text, s.start))).unwrap_or_default();
            format!("{line}{}", e.message())
        })?;
        if raw.tenants.is_empty() {
            return Err("no [[tenant]] configured".into());
        }
        let pool_memory_mib = raw.server.pool_memory_mib.unwrap_or(crate::runtime::pool::DEFAULT_MEMORY_MIB);
        if !(16..=4096).contains(&pool_memory_mib) {
            return Err(format!("server.pool_memory_mib: {pool_memory_mib} is not between 16 and 4096"));
        }
        let mut seen = Seen::default();
        let tenants = raw.tenants.into_iter().map(|t| tenant(t, text, pool_memory_mib, &mut seen)).collect::<Result<Vec<_>, _>>()?;
        server(raw.server, text, pool_memory_mib, tenants)
    }
}

/// "line N: key: msg", for the key at `span` of the config `text`.
fn at(text: &str, span: std::ops::Range<usize>, key: &str, msg: String) -> String {
    format!("line {}: {key}: {msg}", line_of(text, span.start))
}

/// Names and tokens of the tenants read so far: each may appear once.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    tokens: HashSet<[u8; 32]>,
}

/// One `[[tenant]]` table, validated.
fn tenant(t: Spanned<RawTenant>, text: &str, pool_memory_mib: u32, seen: &mut Seen) -> Result<Tenant, String> {
    let at = |span: std::ops::Range<usize>, key: &str, msg: String| at(text, span, key, msg);
    let span = t.span();
    let t = t.into_inner();
    let name = t.name.get_ref().clone();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(at(t.name.span(), "tenant.name", format!("\"{name}\" must be letters, digits, - or _")));
    }
    if !seen.names.insert(name.clone()) {
        return Err(at(t.name.span(), "tenant.name", format!("tenant \"{name}\" is defined twice")));
    }
    let Some(tok) = &t.token_sha256 else {
        return Err(at(span.clone(), "tenant.token_sha256", format!("tenant \"{name}\" has no token_sha256")));
    };
    let token = hex::decode(tok.get_ref().trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| at(tok.span(), "tenant.token_sha256", "must be 64 hex digits (berth hash-token TOKEN prints it)".into()))?;
    if !seen.tokens.insert(token) {
        return Err(at(tok.span(), "tenant.token_sha256", format!("tenant \"{name}\" shares a token with another tenant")));
    }
    let policy = tenant_policy(&t, text)?;
    let l = &t.limits;
    if l.memory_mb.is_some_and(|m| m > pool_memory_mib as u64) {
        let why =
            format!("{} MiB is more than a guest's memory can grow to in the pool (server.pool_memory_mib = {pool_memory_mib})", l.memory_mb.unwrap_or(0));
        return Err(at(span.clone(), "tenant.limits.memory_mb", why));
    }
    let limits = LimitSpec {
        memory_mb: l.memory_mb,
        cpu_secs: l.cpu_secs,
        timeout_secs: l.timeout_secs,
        engine_calls: l.engine_calls,
        response_bytes: l.response_bytes,
    }
    .validate()
    .map_err(|e| at(span.clone(), &format!("tenant.limits.{}", e.key), e.msg))?;
    let assets = tenant_assets(&t, &name, span.clone(), text)?;
    let request_engines = t
        .request_engines
        .iter()
        .map(|r| super::request_engine::Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| at(span.clone(), "tenant.request_engines", e))?;
    Ok(Tenant {
        name,
        token_sha256: token,
        assets,
        policy,
        artifacts_dir: t.artifacts_dir,
        request_engines,
        limits,
        concurrency: l.concurrency.unwrap_or(8).max(1),
        requests_per_minute: l.requests_per_minute.unwrap_or(6000).max(1),
        max_queued: l.max_queued.unwrap_or(64),
        max_jobs: l.max_jobs.unwrap_or(16).max(1),
        max_job_results: l.max_job_results.unwrap_or(100),
        artifact_bytes: l.artifact_bytes.unwrap_or(8 << 30),
        artifact_quota_bytes: l.artifact_quota_bytes.unwrap_or(32 << 30),
    })
}

/// A tenant's engines: `assets` and `engine` (the "default" asset), by name.
fn tenant_assets(t: &RawTenant, name: &str, span: std::ops::Range<usize>, text: &str) -> Result<BTreeMap<String, crate::engine::Endpoint>, String> {
    let at = |span: std::ops::Range<usize>, key: &str, msg: String| at(text, span, key, msg);
    let mut assets = BTreeMap::new();
    for (asset, a) in &t.assets {
        let ep = match a {
            RawAsset::Address(addr) => endpoint(Some(addr), None, None, None, None),
            RawAsset::Table(t) => endpoint(t.engine.as_deref(), t.tls.as_ref(), t.context.as_deref(), t.auth.as_ref(), t.api_version.as_deref()),
        }
        .map_err(|e| at(span.clone(), &format!("tenant.assets.{asset}"), e))?;
        assets.insert(asset.clone(), ep);
    }
    if t.engine.is_some() || t.context.is_some() || t.tls.is_some() {
        let ep = endpoint(t.engine.as_deref(), t.tls.as_ref(), t.context.as_deref(), t.auth.as_ref(), t.api_version.as_deref())
            .map_err(|e| at(span.clone(), "tenant.engine", e))?;
        if assets.insert("default".into(), ep).is_some() {
            return Err(at(span, "tenant.engine", format!("tenant \"{name}\" sets both engine and assets.default")));
        }
    }
    if assets.is_empty() {
        assets.insert("default".into(), crate::engine::Endpoint::plain(crate::engine::DEFAULT_HOST));
    }
    Ok(assets)
}

/// The `[server]` table, validated, around the tenants.
fn server(s: RawServer, text: &str, pool_memory_mib: u32, tenants: Vec<Tenant>) -> Result<Config, String> {
    let at = |span: std::ops::Range<usize>, key: &str, msg: String| at(text, span, key, msg);
    let metrics_token_sha256 = match &s.metrics_token_sha256 {
        None => None,
        Some(t) => Some(
            hex::decode(t.get_ref().trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| at(t.span(), "server.metrics_token_sha256", "must be 64 hex digits (berth hash-token TOKEN prints it)".into()))?,
        ),
    };
    let tls = match (s.tls_cert, s.tls_key) {
        (Some(cert), Some(key)) => Some(ServeTls { cert, key, client_ca: s.client_ca }),
        (None, None) if s.client_ca.is_some() => return Err("server.client_ca needs tls_cert and tls_key".into()),
        (None, None) => None,
        _ => return Err("server.tls_cert and server.tls_key go together".into()),
    };
    let secs = |v: Option<f64>, default: f64, key: &str, max: f64| -> Result<std::time::Duration, String> {
        let v = v.unwrap_or(default);
        if v.is_finite() && (0.0..=max).contains(&v) {
            Ok(std::time::Duration::from_secs_f64(v))
        } else {
            Err(format!("server.{key} must be between 0 and {max} seconds"))
        }
    };
    let shutdown_delay = secs(s.shutdown_delay_secs, 0.0, "shutdown_delay_secs", 3600.0)?;
    let shutdown_grace = secs(s.shutdown_grace_secs, 30.0, "shutdown_grace_secs", 3600.0)?;
    let job_lease = secs(s.job_lease_secs, 10.0, "job_lease_secs", 3600.0)?;
    if job_lease < std::time::Duration::from_secs(3) {
        return Err("server.job_lease_secs must be at least 3 (a lease is renewed three times before it runs out)".into());
    }
    let database_url = match (s.database_url, s.database_url_file) {
        (Some(_), Some(_)) => return Err("server.database_url and database_url_file: give one".into()),
        (Some(u), None) => Some(u),
        (None, Some(f)) => Some(std::fs::read_to_string(&f).map_err(|e| format!("server.database_url_file {}: {e}", f.display()))?.trim().to_string()),
        (None, None) => None,
    };
    if let Some(u) = &database_url {
        if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
            return Err("server.database_url must be a postgres:// or postgresql:// URL".into());
        }
    }
    Ok(Config {
        tls,
        allow_plaintext: s.allow_plaintext,
        state_dir: s.state_dir,
        database_url: database_url.map(DatabaseUrl),
        shutdown_delay,
        shutdown_grace,
        job_lease,
        workers: match s.workers {
            Some(0) => return Err("server.workers must be at least 1".into()),
            Some(n) => n.min(256) as usize,
            // One core is left to the engine and the rest of the machine: on 2 cores one
            // worker serves more than two competing with dockerd (`make bench`).
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).saturating_sub(1).max(1),
        },
        metrics_token_sha256,
        metrics_listen: s.metrics_listen,
        listen: s.listen.unwrap_or_else(|| "127.0.0.1:8478".into()),
        actions: s.actions,
        audit_log: s.audit_log,
        cache: s.cache,
        credentials: s.credentials,
        max_concurrent: s.max_concurrent.unwrap_or(256).clamp(1, 10_000),
        pool_memory_mib,
        engine_limits: {
            let d = crate::engine::EngineLimits::default();
            let rate = s.engine_requests_per_second.unwrap_or(d.requests_per_second);
            let wait = s.engine_max_wait_secs.unwrap_or(d.max_wait.as_secs_f64());
            if !(0.0..=3600.0).contains(&wait) {
                return Err("server.engine_max_wait_secs must be between 0 and 3600".into());
            }
            crate::engine::EngineLimits {
                requests_per_second: rate,
                burst: s.engine_burst.unwrap_or(rate),
                max_connections: s.engine_max_connections.unwrap_or(d.max_connections),
                max_wait: std::time::Duration::from_secs_f64(wait),
            }
        },
        tenants,
    })
}

/// The hash stored for a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The policy part of a tenant table: allowlist, read-only, label scope, pins and
/// `[engine_policy]`. A label-scoped tenant gets the safe default engine policy unless it
/// says otherwise; a tenant with neither a scope nor an `[engine_policy]` table gets none.
fn tenant_policy(t: &RawTenant, text: &str) -> Result<TenantPolicy, String> {
    let at = |span: std::ops::Range<usize>, key: &str, msg: String| format!("line {}: {key}: {msg}", line_of(text, span.start));
    let name = t.name.get_ref();
    for a in &t.allow {
        let g = a.get_ref().trim_start_matches('!');
        if g.is_empty() || g.chars().any(char::is_control) {
            return Err(at(a.span(), "tenant.allow", format!("\"{}\" is not an action glob", a.get_ref())));
        }
        crate::policy::Globs::new(&[g]).map_err(|e| at(a.span(), "tenant.allow", e))?;
    }
    if t.allow.is_empty() {
        return Err(at(t.name.span(), "tenant.allow", format!("tenant \"{name}\" allows no action (add e.g. allow = [\"system.*\"])")));
    }
    let label_scope = match &t.label_scope {
        None => None,
        Some(s) => match s.get_ref().split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Some((k.to_string(), v.to_string())),
            _ => return Err(at(s.span(), "tenant.label_scope", format!("\"{}\" must be key=value", s.get_ref()))),
        },
    };
    let mut pins = BTreeMap::new();
    for (family, digest) in &t.pins {
        let d = digest.get_ref().trim().trim_start_matches("sha256:").to_ascii_lowercase();
        if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at(digest.span(), &format!("tenant.pins.{family}"), "must be a sha256 digest (64 hex digits)".into()));
        }
        pins.insert(family.clone(), d);
    }
    let engine = match (&t.engine_policy, &label_scope) {
        (Some(p), _) => {
            p.get_ref().validate().map_err(|e| at(p.span(), "tenant.engine_policy", e))?;
            p.get_ref().clone()
        }
        (None, Some(_)) => EnginePolicy::default(),
        (None, None) => EnginePolicy::unrestricted(),
    };
    Ok(TenantPolicy {
        allow: t.allow.iter().map(|a| a.get_ref().clone()).collect(),
        compiled: Default::default(),
        read_only: t.read_only,
        label_scope,
        pins,
        engine: std::sync::Arc::new(engine),
    })
}

/// `berth run --policy FILE`: the same TOML as one tenant's table (`allow`, `read_only`,
/// `label_scope`, `pins`, `[engine_policy]`); `name` and `token_sha256` may be left out.
pub fn parse_policy(text: &str) -> Result<TenantPolicy, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PolicyFile {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        token_sha256: Option<String>,
        #[serde(default)]
        engine: Option<String>,
        #[serde(default)]
        allow: Vec<Spanned<String>>,
        #[serde(default)]
        read_only: bool,
        label_scope: Option<Spanned<String>>,
        #[serde(default)]
        pins: BTreeMap<String, Spanned<String>>,
        engine_policy: Option<Spanned<EnginePolicy>>,
    }
    let f: PolicyFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| format!("line {}: ", line_of(text, s.start))).unwrap_or_default();
        format!("{line}{}", e.message())
    })?;
    let _ = (&f.token_sha256, &f.engine);
    let raw = RawTenant {
        name: Spanned::new(0..0, f.name.unwrap_or_else(|| "policy".into())),
        token_sha256: None,
        engine: None,
        tls: None,
        context: None,
        auth: None,
        api_version: None,
        assets: BTreeMap::new(),
        request_engines: Vec::new(),
        allow: if f.allow.is_empty() { vec![Spanned::new(0..0, "*".to_string())] } else { f.allow },
        read_only: f.read_only,
        label_scope: f.label_scope,
        artifacts_dir: None,
        pins: f.pins,
        limits: RawLimits::default(),
        engine_policy: f.engine_policy,
    };
    tenant_policy(&raw, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn policy_files() {
        let p = parse_policy("label_scope = \"team=red\"\n[engine_policy]\nhost_paths = [\"/srv/red\"]\n").unwrap();
        assert_eq!(p.label_scope, Some(("team".into(), "red".into())));
        assert_eq!(p.engine.host_paths, ["/srv/red"]);
        assert!(!p.engine.privileged);
        assert!(p.allows("anything"));
        let e = parse_policy("[engine_policy]\nprivilegd = true\n").unwrap_err();
        assert!(e.contains("privilegd"), "{e}");
        let e = parse_policy("[engine_policy]\nhost_paths = [\"srv\"]\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("host_paths"), "{e}");
        assert!(parse_policy("").unwrap().engine.privileged, "no scope, no table: unrestricted");
    }

    #[test]
    fn allowlist_with_negation() {
        let cfg = Config::parse(&format!(
            "[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"container.*\", \"!container.remove\", \"system.ping\"]\n"
        ))
        .unwrap();
        let t = &cfg.tenants[0].policy;
        assert!(t.allows("container.stop"));
        assert!(!t.allows("container.remove"));
        assert!(t.allows("system.ping"));
        assert!(!t.allows("system.info"));
        assert_eq!(hash_token("test"), <[u8; 32]>::try_from(hex::decode(TOKEN_HASH).unwrap()).unwrap());
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = Config::parse("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"nothex\"\nallow = [\"*\"]\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("token_sha256"), "{e}");
        let e = Config::parse(&format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\ncolour = 1\n")).unwrap_err();
        assert!(e.contains("line 5") && e.contains("colour"), "{e}");
        let e =
            Config::parse(&format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\nlabel_scope = \"nolabel\"\n")).unwrap_err();
        assert!(e.contains("line 5") && e.contains("label_scope"), "{e}");
        let two = format!("[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\n[[tenant]]\nname = \"b\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\n");
        let e = Config::parse(&two).unwrap_err();
        assert!(e.contains("line 7") && e.contains("shares a token"), "{e}");
        let e = Config::parse(&format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\n[tenant.limits]\nmemory_mb = 0\n"))
            .unwrap_err();
        assert!(e.contains("memory_mb"), "{e}");
        assert!(Config::parse("").unwrap_err().contains("no [[tenant]]"));
        let both = format!(
            "[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\nengine = \"unix:///a\"\n[tenant.assets]\ndefault = \"unix:///b\"\n"
        );
        assert!(Config::parse(&both).unwrap_err().contains("engine"));
        let assets = format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\n[tenant.assets]\nprod = \"unix:///p\"\n");
        let cfg = Config::parse(&assets).unwrap();
        assert_eq!(cfg.tenants[0].assets.get("prod").map(|e| e.host.as_str()), Some("unix:///p"));
        let tls = format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\n[tenant.assets]\nprod = {{ engine = \"unix:///p\", tls = {{ ca = \"/x\" }} }}\n");
        assert!(Config::parse(&tls).unwrap_err().contains("tls is for tcp:// engines"));
        let tls = format!("[[tenant]]\nname = \"red\"\ntoken_sha256 = \"{TOKEN_HASH}\"\nallow = [\"*\"]\nengine = \"tcp://h:2376\"\ntls = {{ ca = \"/nonexistent/ca.pem\" }}\n");
        assert!(Config::parse(&tls).unwrap_err().contains("cannot read the CA certificate /nonexistent/ca.pem"));
    }
}
