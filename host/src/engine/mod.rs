//! The Docker Engine client: API version negotiation, versioned paths and timeouts over a
//! pluggable [`Transport`].

pub mod endpoint;
pub mod path;
pub mod ssh;
pub mod stream;
pub mod tls;
pub mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::Mutex;

pub use endpoint::Endpoint;
pub use transport::{Body, BoxError, Transport, TransportError};

/// Highest API version berth speaks (the newest spec in `shared/engine-api`).
pub const MAX_API: ApiVersion = ApiVersion(1, 56);
/// Oldest engine API berth accepts.
pub const MIN_API: ApiVersion = ApiVersion(1, 24);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// A version given to use as is (`DOCKER_API_VERSION`, an asset's `api_version`): `1.x`,
    /// and not older than [`MIN_API`].
    pub fn pinnable(version: &str) -> Result<Self, String> {
        let v = ApiVersion::parse(version).filter(|v| v.0 == 1).ok_or_else(|| format!("'{version}' is not an API version like 1.41"))?;
        if v < MIN_API {
            return Err(format!("{v} is older than the oldest API berth speaks ({MIN_API})"));
        }
        Ok(v)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub headers: Duration,
    /// Between two reads of a response body (whole-body reads and artifacts).
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), headers: Duration::from_secs(120), body: Duration::from_secs(60) }
    }
}

/// Why an engine call failed on the host side (the engine's own HTTP errors are responses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    Transport(String),
    Timeout(String),
    Invalid(String),
    /// The engine refuses every API version berth can speak.
    Version(String),
    /// berth's own per-engine rate or connection cap held the request too long.
    Busy(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Transport(m) | EngineError::Timeout(m) | EngineError::Invalid(m) | EngineError::Version(m) | EngineError::Busy(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EngineError {}

/// A request body that can be sent again after a version renegotiation, or a one-shot stream.
pub enum OutBody {
    Empty,
    Bytes(Bytes),
    /// Streamed (an artifact); never replayed.
    Stream(Body),
}

impl std::fmt::Debug for OutBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutBody::Empty => f.write_str("Empty"),
            OutBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            OutBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl OutBody {
    fn replayable(&self) -> Option<Body> {
        match self {
            OutBody::Empty => Some(Empty::new().map_err(|n| match n {}).boxed()),
            OutBody::Bytes(b) => Some(Full::new(b.clone()).map_err(|n| match n {}).boxed()),
            OutBody::Stream(_) => None,
        }
    }
}

/// One engine, shared by every invocation that targets it.
/// Where the engine listens when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

pub struct EngineClient {
    transport: Arc<dyn Transport>,
    version: Mutex<Option<ApiVersion>>,
    /// A version given (`DOCKER_API_VERSION`): used as is, never negotiated or renegotiated.
    pinned: Option<ApiVersion>,
    pub timeouts: Timeouts,
    pub retry: Retry,
    throttle: Option<Throttle>,
    /// `Authorization` for an authenticating proxy in front of the engine.
    auth: Option<http::HeaderValue>,
}

/// What one engine takes from all of berth together (server mode): requests per second (a
/// token bucket, `governor`) and connections at once. 0 turns either off.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    pub requests_per_second: u32,
    pub burst: u32,
    pub max_connections: u32,
    /// How long a request may wait for the rate or a connection before it fails as busy.
    pub max_wait: Duration,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits { requests_per_second: 1000, burst: 1000, max_connections: 64, max_wait: Duration::from_secs(10) }
    }
}

struct Throttle {
    limits: EngineLimits,
    rate: Option<governor::DefaultDirectRateLimiter>,
    connections: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests that had to wait, and requests that waited too long.
    waited: prometheus_client::metrics::counter::Counter,
    refused: prometheus_client::metrics::counter::Counter,
}

impl Throttle {
    /// Waits for the rate and a connection slot; the permit is held until the response body
    /// is dropped.
    async fn admit(&self, addr: &str) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, EngineError> {
        let deadline = tokio::time::Instant::now() + self.limits.max_wait;
        let busy = |what: String| {
            self.refused.inc();
            EngineError::Busy(format!("the engine at {addr} is busy: {what}; still waiting after {:?}", self.limits.max_wait))
        };
        if let Some(rate) = &self.rate {
            if rate.check().is_err() {
                self.waited.inc();
                tokio::time::timeout_at(deadline, rate.until_ready())
                    .await
                    .map_err(|_| busy(format!("berth sends it at most {} requests per second", self.limits.requests_per_second)))?;
            }
        }
        let Some(sem) = &self.connections else { return Ok(None) };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                self.waited.inc();
                match tokio::time::timeout_at(deadline, sem.clone().acquire_owned()).await {
                    Ok(Ok(p)) => Ok(Some(p)),
                    _ => Err(busy(format!("{} requests are in flight, berth's cap for it", self.limits.max_connections))),
                }
            }
        }
    }
}

/// Retries of idempotent calls (GET and HEAD only) on connect errors, connections lost before
/// a response, and 502/503/504: exponential backoff from `base`, capped at `cap`, with
/// jitter (each delay is 50–100% of its step). POST, PUT and DELETE are never retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    /// 5 retries from 200 ms, or `BERTH_ENGINE_RETRIES` (0–20) from `BERTH_ENGINE_RETRY_BASE_MS`
    /// (1–10000) when set.
    fn default() -> Self {
        let env =
            |k: &str, range: std::ops::RangeInclusive<u64>| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|v| range.contains(v));
        Retry {
            attempts: env("BERTH_ENGINE_RETRIES", 0..=20).map(|n| n as u32).unwrap_or(5),
            base: Duration::from_millis(env("BERTH_ENGINE_RETRY_BASE_MS", 1..=10_000).unwrap_or(200)),
            cap: Duration::from_secs(2),
        }
    }
}

impl Retry {
    /// The delay before retry number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let step = self.base.saturating_mul(1u32 << n.min(16)).min(self.cap);
        step.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

impl EngineClient {
    pub fn new(transport: Arc<dyn Transport>, timeouts: Timeouts) -> Self {
        EngineClient { transport, version: Mutex::new(None), pinned: None, timeouts, retry: Retry::default(), throttle: None, auth: None }
    }

    /// Connects to a `DOCKER_HOST`-style address without TLS (nothing is sent until the
    /// first call).
    pub fn connect(addr: &str, timeouts: Timeouts) -> anyhow::Result<Self> {
        Self::connect_to(&Endpoint::plain(addr), timeouts)
    }

    /// Connects to an endpoint: an address and its TLS settings. `DOCKER_API_VERSION` pins the
    /// API version, as the docker CLI reads it.
    pub fn connect_to(ep: &Endpoint, timeouts: Timeouts) -> anyhow::Result<Self> {
        let mut c = Self::new(transport::connect(ep, timeouts.connect)?, timeouts);
        if let Some(a) = &ep.auth {
            c.auth = Some(a.header().map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        if let Some(v) = &ep.api_version {
            c.pin(v).map_err(|e| anyhow::anyhow!("api_version: {e}"))?;
        } else if let Some(v) = std::env::var("DOCKER_API_VERSION").ok().filter(|v| !v.trim().is_empty()) {
            c.pin(&v).map_err(|e| anyhow::anyhow!("DOCKER_API_VERSION: {e}"))?;
        }
        Ok(c)
    }

    /// Uses API `version` (`1.41`) as is: no negotiation, and a refusal is the engine's answer.
    pub fn pin(&mut self, version: &str) -> Result<(), String> {
        self.pinned = Some(ApiVersion::pinnable(version)?);
        Ok(())
    }

    /// Caps what this client sends the engine (see [`EngineLimits`]); `waited` and `refused`
    /// count requests that had to wait and that waited in vain (for metrics).
    pub fn limit(&mut self, limits: EngineLimits, waited: prometheus_client::metrics::counter::Counter, refused: prometheus_client::metrics::counter::Counter) {
        let rate = std::num::NonZeroU32::new(limits.requests_per_second).map(|r| {
            let burst = std::num::NonZeroU32::new(limits.burst).unwrap_or(r);
            governor::RateLimiter::direct(governor::Quota::per_second(r).allow_burst(burst))
        });
        let connections = (limits.max_connections > 0).then(|| Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize)));
        self.throttle = Some(Throttle { limits, rate, connections, waited, refused });
    }

    /// How long a request may wait for the engine's rate or a connection (server mode).
    pub fn max_wait(&self) -> Duration {
        self.throttle.as_ref().map(|t| t.limits.max_wait).unwrap_or(EngineLimits::default().max_wait)
    }

    /// `unix`, `tcp`, `tls` or `ssh`.
    pub fn transport_kind(&self) -> &'static str {
        self.transport.kind()
    }

    pub fn address(&self) -> &str {
        self.transport.address()
    }

    /// The negotiated version, negotiating on first use.
    pub async fn api_version(&self) -> Result<ApiVersion, EngineError> {
        if let Some(p) = self.pinned {
            return Ok(p);
        }
        let mut v = self.version.lock().await;
        if let Some(v) = *v {
            return Ok(v);
        }
        let negotiated = self.negotiate().await?;
        *v = Some(negotiated);
        Ok(negotiated)
    }

    /// A plain-HTTP request answered by a TLS engine (Go's "Client sent an HTTP request to an
    /// HTTPS server"), explained.
    fn speaks_tls(&self, body: &[u8]) -> Option<EngineError> {
        String::from_utf8_lossy(body).contains("HTTP request to an HTTPS server").then(|| {
            EngineError::Transport(format!("the engine at {} speaks TLS: connect with --tlsverify (or --tls), or DOCKER_TLS_VERIFY=1", self.address()))
        })
    }

    /// `HEAD /_ping` (falling back to `GET`), then min(ours, the engine's).
    pub async fn negotiate(&self) -> Result<ApiVersion, EngineError> {
        let mut engine_version = None;
        for method in [Method::HEAD, Method::GET] {
            let get = method == Method::GET;
            let resp = self.raw(method, "/_ping".into(), &HeaderMap::new(), OutBody::Empty.replayable().unwrap()).await?;
            if let Some(v) = resp.headers().get("api-version").and_then(|v| v.to_str().ok()) {
                engine_version = ApiVersion::parse(v);
            }
            if engine_version.is_some() {
                break;
            }
            if get && resp.status() == StatusCode::BAD_REQUEST {
                let text = read_capped(resp.into_body(), 4096, self.timeouts.body).await.unwrap_or_default();
                if let Some(e) = self.speaks_tls(&text) {
                    return Err(e);
                }
            }
        }
        let Some(engine) = engine_version else {
            return Err(EngineError::Version(format!("the engine at {} did not report an API version on /_ping; is it a Docker engine?", self.address())));
        };
        if engine < MIN_API {
            return Err(EngineError::Version(format!(
                "the engine at {} speaks API {engine}, older than the oldest berth supports ({MIN_API})",
                self.address()
            )));
        }
        Ok(engine.min(MAX_API))
    }

    /// Sends `method path?query` under the negotiated version. The path must already be
    /// validated. On a 400 "client version ... too new/old" the version is renegotiated and a
    /// replayable request sent once more.
    pub async fn send(&self, method: Method, path: &str, query: &str, headers: &HeaderMap, body: OutBody) -> Result<Response<Body>, EngineError> {
        // `/_ping` is unversioned in every API version (as the docker CLI sends it): no
        // negotiation, so a ping is one round trip even as an engine's first request.
        let version = if path == "/_ping" { None } else { Some(self.api_version().await?) };
        let pq = |v: Option<ApiVersion>| {
            let prefix = v.map(|v| format!("/v{v}")).unwrap_or_default();
            if query.is_empty() {
                format!("{prefix}{path}")
            } else {
                format!("{prefix}{path}?{query}")
            }
        };
        let (first, retry) = match body {
            OutBody::Stream(b) => (b, None),
            other => (other.replayable().expect("empty and byte bodies replay"), Some(other)),
        };
        let resp = self.raw(method.clone(), pq(version), headers, first).await?;
        if resp.status() != StatusCode::BAD_REQUEST {
            return Ok(resp);
        }
        // Read the (small) 400 body: a TLS engine answering plain HTTP, or our version refused.
        let (parts, b) = resp.into_parts();
        let bytes = read_capped(b, 64 * 1024, self.timeouts.body).await.unwrap_or_default();
        if let Some(e) = self.speaks_tls(&bytes) {
            return Err(e);
        }
        let text = String::from_utf8_lossy(&bytes);
        let Some(version) = version.filter(|_| self.pinned.is_none() && is_version_refusal(&text)) else {
            return Ok(Response::from_parts(parts, full(bytes)));
        };
        let renegotiated = self.negotiate().await?;
        *self.version.lock().await = Some(renegotiated);
        match retry.and_then(|b| b.replayable()) {
            Some(b) if renegotiated != version => {
                tracing::info!(from = %version, to = %renegotiated, "engine refused the API version; renegotiated");
                self.raw(method, pq(Some(renegotiated)), headers, b).await
            }
            _ => Err(EngineError::Version(format!("the engine at {} refused API {version}: {}", self.address(), text.trim()))),
        }
    }

    /// One request, retried per [`Retry`] when it is idempotent (GET/HEAD without a body).
    async fn raw(&self, method: Method, pq: String, headers: &HeaderMap, body: Body) -> Result<Response<Body>, EngineError> {
        use http_body::Body as _;
        let idempotent = (method == Method::GET || method == Method::HEAD) && body.is_end_stream();
        let mut body = Some(body);
        let mut attempt = 0;
        loop {
            let b = body.take().unwrap_or_else(|| OutBody::Empty.replayable().expect("empty"));
            let (result, retryable) = self.raw_once(method.clone(), &pq, headers, b).await;
            if !idempotent || !retryable || attempt >= self.retry.attempts {
                return result;
            }
            let delay = self.retry.delay(attempt);
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            // The first retry is said (a refused connection is otherwise seconds of silence).
            if attempt == 0 {
                tracing::warn!("{why}; retrying {method} up to {} times (BERTH_ENGINE_RETRIES)", self.retry.attempts);
            } else {
                tracing::info!(engine = %self.address(), %method, attempt = attempt + 1, ?delay, %why, "retrying an idempotent engine call");
            }
            drop(result);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Sends once; the flag says whether the failure may be retried (for idempotent calls).
    async fn raw_once(&self, method: Method, pq: &str, headers: &HeaderMap, body: Body) -> (Result<Response<Body>, EngineError>, bool) {
        let mut req = Request::builder().method(method).uri(pq).header("Host", "docker").header("User-Agent", concat!("berth/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(a) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, a.clone());
        }
        let req = match req.body(body) {
            Ok(r) => r,
            Err(e) => return (Err(EngineError::Invalid(format!("bad engine request: {e}"))), false),
        };
        let permit = match &self.throttle {
            Some(t) => match t.admit(self.address()).await {
                Ok(p) => p,
                Err(e) => return (Err(e), false),
            },
            None => None,
        };
        match tokio::time::timeout(self.timeouts.headers, self.transport.send(req)).await {
            Ok(Ok(resp)) => {
                let gateway = matches!(resp.status().as_u16(), 502..=504);
                // The connection slot is held until the body is read or dropped.
                let resp = match permit {
                    Some(p) => hold(resp, p),
                    None => resp,
                };
                (Ok(resp), gateway)
            }
            Ok(Err(TransportError::ConnectTimeout { addr, after })) => {
                (Err(EngineError::Timeout(format!("timed out connecting to the Docker engine at {addr} after {after:?}"))), true)
            }
            Ok(Err(e @ TransportError::NoEngine { .. })) => (Err(EngineError::Transport(e.to_string())), false),
            Ok(Err(e)) => (Err(EngineError::Transport(e.to_string())), true),
            Err(_) => (
                Err(EngineError::Timeout(format!("the Docker engine at {} sent no response headers within {:?}", self.address(), self.timeouts.headers))),
                false,
            ),
        }
    }
}

fn is_version_refusal(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("client version") && (t.contains("too new") || t.contains("too old") || t.contains("not supported"))
}

/// `resp` with `guard` (a connection permit) kept alive until its body is read or dropped.
pub fn hold<G: Send + Sync + 'static>(resp: http::Response<Body>, guard: G) -> http::Response<Body> {
    resp.map(|b| {
        b.map_frame(move |f| {
            let _held = &guard;
            f
        })
        .boxed()
    })
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|n| match n {}).boxed()
}

/// Reads a whole body, failing past `cap` bytes or when a read stalls for `idle`. The buffer
/// is sized from the length the engine announced (up to `cap`, and 16 MiB before any of it
/// arrives), and the result owns it alone: `Vec::from` takes it over without a copy.
pub async fn read_capped(mut body: Body, cap: usize, idle: Duration) -> Result<Bytes, ReadError> {
    use http_body::Body as _;
    const UP_FRONT: u64 = 16 << 20;
    let mut out = bytes::BytesMut::with_capacity(body.size_hint().lower().min(cap as u64).min(UP_FRONT) as usize);
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ReadError::Timeout(idle)),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(e))) => return Err(ReadError::Io(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > cap {
                        return Err(ReadError::TooLarge(cap));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the engine stopped sending for {0:?}")]
    Timeout(Duration),
    #[error("reading the engine's response failed: {0}")]
    Io(String),
    #[error("the response is larger than the {0}-byte cap")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion(1, 41)));
        assert!(ApiVersion(1, 41) < ApiVersion(1, 56));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 10));
        assert_eq!(ApiVersion::parse("x"), None);
        assert_eq!(MAX_API.min(ApiVersion(1, 41)), ApiVersion(1, 41));
    }

    #[test]
    fn version_refusal_detected() {
        assert!(is_version_refusal(r#"{"message":"client version 1.56 is too new. Maximum supported API version is 1.41"}"#));
        assert!(is_version_refusal(r#"{"message":"client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client"}"#));
        assert!(!is_version_refusal(r#"{"message":"invalid filter"}"#));
    }

    /// A body of known length, in many frames (a large listing), is read into one buffer of
    /// that size, which the guest's copy then takes over; a length past the cap is refused.
    #[tokio::test]
    async fn a_whole_body_is_read_into_one_buffer_the_guest_takes_over() {
        struct Pieces(std::collections::VecDeque<Bytes>);
        impl http_body::Body for Pieces {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
                std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
            }
            fn size_hint(&self) -> http_body::SizeHint {
                http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
            }
        }
        let data = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let body = || Pieces(data.chunks(4096).map(Bytes::copy_from_slice).collect()).boxed();
        let b = read_capped(body(), 1 << 20, Duration::from_secs(5)).await.unwrap();
        let at = b.as_ptr();
        let v = Vec::from(b);
        assert_eq!((v.as_ptr(), v.capacity(), v.len()), (at, 100_000, 100_000), "regrown or copied");
        assert_eq!(v, data);
        // Over the cap, whatever the length says.
        assert_eq!(read_capped(body(), 99_999, Duration::from_secs(5)).await.unwrap_err(), ReadError::TooLarge(99_999));
        assert_eq!(read_capped(full(data), 99_999, Duration::from_secs(5)).await.unwrap_err(), ReadError::TooLarge(99_999));
    }
}
