//! The one trait every engine transport implements, and the transports: unix sockets, and
//! HTTP over a connector — plain TCP, TLS ([`super::tls`]) or ssh ([`super::ssh`]).
//!
//! A transport moves one HTTP request to the engine and back. It knows nothing of API
//! versions, policy or guests.

use std::path::PathBuf;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::Uri;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Request and response bodies, boxed so that transports and sources can vary.
pub type Body = BoxBody<Bytes, BoxError>;
pub use super::stream::BoxFuture;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to the Docker engine at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// No socket at the path, or no permission to use it: waiting does not change that, so
    /// it is not retried (like the docker CLI, which fails at once).
    #[error("cannot connect to the Docker engine at {addr}: {reason}")]
    NoEngine { addr: String, reason: String },
    #[error("timed out connecting to the Docker engine at {addr} after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("connection to the Docker engine at {addr} failed: {reason}")]
    Io { addr: String, reason: String },
}

/// Sends one request whose URI holds only a path and query (`/v1.41/info?x=1`).
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, TransportError>>;
    /// The address, for messages: `unix:///var/run/docker.sock`.
    fn address(&self) -> &str;
    /// `unix`, `tcp`, `tls` or `ssh`.
    fn kind(&self) -> &'static str {
        "unix"
    }
}

/// Builds the transport for an endpoint: a `DOCKER_HOST`-style address and its TLS settings.
pub fn connect(ep: &super::Endpoint, connect_timeout: Duration) -> anyhow::Result<std::sync::Arc<dyn Transport>> {
    let normalized = normalize_host(&ep.host, ep.tls.is_some());
    let addr = normalized.as_str();
    if let Some(path) = addr.strip_prefix("unix://") {
        if path.is_empty() {
            anyhow::bail!("engine address '{addr}' has no socket path");
        }
        if ep.tls.is_some() {
            anyhow::bail!("engine address '{addr}': TLS is for tcp:// addresses");
        }
        return Ok(std::sync::Arc::new(UnixTransport::new(path.into(), connect_timeout)));
    }
    if let Some(hostport) = addr.strip_prefix("tcp://") {
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("engine address '{addr}' must be tcp://host:port"))?;
        let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("engine address '{addr}' must be tcp://host:port"))?;
        if host.is_empty() || hostport.contains('/') {
            anyhow::bail!("engine address '{addr}' must be tcp://host:port");
        }
        let base = format!("http://{hostport}");
        base.parse::<Uri>().map_err(|e| anyhow::anyhow!("engine address '{addr}': {e}"))?;
        let addr = format!("tcp://{hostport}");
        return Ok(match &ep.tls {
            Some(tls) => {
                let connector = super::tls::TlsConnector::new(host, port, &addr, tls)?;
                std::sync::Arc::new(HttpTransport { base, addr, tls: true, client: pooled(ConnectTimeout { inner: connector, timeout: connect_timeout }) })
            }
            None => {
                let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                http.set_nodelay(true);
                std::sync::Arc::new(HttpTransport { base, addr, tls: false, client: pooled(ConnectTimeout { inner: http, timeout: connect_timeout }) })
            }
        });
    }
    if addr.starts_with("ssh://") {
        if ep.tls.is_some() {
            anyhow::bail!("engine address '{addr}': ssh:// is encrypted by ssh; TLS settings do not apply");
        }
        let target = super::ssh::SshTarget::parse(addr)?;
        let connector = super::ssh::SshConnector::new(target, addr, connect_timeout)?;
        return Ok(std::sync::Arc::new(HttpTransport {
            base: "http://docker".into(),
            addr: addr.to_string(),
            tls: false,
            // ssh itself may take a while to log in: its own ConnectTimeout bounds that.
            client: pooled(ConnectTimeout { inner: connector, timeout: connect_timeout * 3 }),
        }));
    }
    let scheme = addr.split("://").next().unwrap_or(addr);
    anyhow::bail!("engine address '{addr}': scheme '{scheme}' is not supported (use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host)")
}

/// A `DOCKER_HOST` as the docker CLI reads it: no scheme means `tcp://` (`localhost:2375`), a
/// bare absolute path is taken as the unix socket it names, and `tcp://HOST` without a port
/// means 2375, or 2376 with TLS.
pub fn normalize_host(addr: &str, tls: bool) -> String {
    let addr = addr.trim();
    if !addr.contains("://") {
        return if addr.starts_with('/') { format!("unix://{addr}") } else { normalize_host(&format!("tcp://{addr}"), tls) };
    }
    if let Some(rest) = addr.strip_prefix("tcp://") {
        let hostport = rest.trim_end_matches('/');
        // A port is the digits after the last colon, outside an IPv6 address's brackets.
        let has_port =
            hostport.rsplit_once(':').is_some_and(|(h, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!h.starts_with('[') || h.ends_with(']')));
        if !hostport.is_empty() && !has_port && !hostport.contains('/') {
            return format!("tcp://{hostport}:{}", if tls { 2376 } else { 2375 });
        }
    }
    addr.to_string()
}

/// HTTP/1.1 over a connector (TCP, TLS, ssh), with connection reuse.
pub struct HttpTransport<K: Send> {
    base: String,
    addr: String,
    tls: bool,
    client: Pooled<K>,
}

impl<K: Connect + Clone + Send + Sync + 'static> Transport for HttpTransport<K> {
    fn send(&self, req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        match format!("{}{pq}", self.base).parse::<Uri>() {
            Ok(uri) => parts.uri = uri,
            Err(e) => {
                let addr = self.addr.clone();
                return Box::pin(async move { Err(TransportError::Io { addr, reason: e.to_string() }) });
            }
        }
        dispatch(self.client.get(), Request::from_parts(parts, body), &self.addr)
    }

    fn address(&self) -> &str {
        &self.addr
    }

    fn kind(&self) -> &'static str {
        if self.tls {
            "tls"
        } else if self.addr.starts_with("ssh://") {
            "ssh"
        } else {
            "tcp"
        }
    }
}

/// HTTP/1.1 over a unix socket (hyper + hyperlocal), with connection reuse.
pub struct UnixTransport {
    socket: PathBuf,
    addr: String,
    client: Pooled<ConnectTimeout<UnixConnector>>,
}

impl UnixTransport {
    pub fn new(socket: PathBuf, connect_timeout: Duration) -> Self {
        let client = pooled(ConnectTimeout { inner: UnixConnector, timeout: connect_timeout });
        let addr = format!("unix://{}", socket.display());
        UnixTransport { socket, addr, client }
    }
}

impl Transport for UnixTransport {
    fn send(&self, req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        parts.uri = hyperlocal::Uri::new(&self.socket, pq).into();
        dispatch(self.client.get(), Request::from_parts(parts, body), &self.addr)
    }

    fn address(&self) -> &str {
        &self.addr
    }
}

/// The client every transport uses: pooled connections, large reads for tarballs (fewer
/// syscalls per GiB exported). One pool per thread: a connection is driven by a task of the
/// runtime of the thread that made it, so a request served on one thread (one runtime per
/// worker in `berth serve`) never hands off to another thread's runtime.
pub struct Pooled<K: Send> {
    connector: K,
    clients: thread_local::ThreadLocal<Client<K, Body>>,
}

impl<K: Connect + Clone + Send + Sync + 'static> Pooled<K> {
    fn get(&self) -> &Client<K, Body> {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(32)
                .http1_read_buf_exact_size(256 * 1024)
                .build(self.connector.clone())
        })
    }
}

fn pooled<K: Connect + Clone + Send + Sync + 'static>(connector: K) -> Pooled<K> {
    Pooled { connector, clients: thread_local::ThreadLocal::new() }
}

/// Sends a request whose URI the transport has set, mapping errors for `addr`.
fn dispatch<K: Connect + Clone + Send + Sync + 'static>(
    client: &Client<K, Body>,
    req: Request<Body>,
    addr: &str,
) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
    let fut = client.request(req);
    let addr = addr.to_string();
    Box::pin(async move {
        match fut.await {
            Ok(resp) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed())),
            Err(e) => Err(classify(&addr, e)),
        }
    })
}

fn classify(addr: &str, e: hyper_util::client::legacy::Error) -> TransportError {
    use std::error::Error;
    let mut src: Option<&(dyn Error + 'static)> = e.source();
    let mut reason = e.to_string();
    let mut kind = None;
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            kind = kind.or(Some(io.kind()));
        }
        if let Some(t) = s.downcast_ref::<ConnectTimedOut>() {
            return TransportError::ConnectTimeout { addr: addr.to_string(), after: t.0 };
        }
        // io::Error::source() skips the error it wraps: look inside too.
        let tls = s
            .downcast_ref::<rustls::Error>()
            .or_else(|| s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>()));
        if let Some(t) = tls {
            return TransportError::Io { addr: addr.to_string(), reason: super::tls::explain_rustls(t, addr, "the expected name") };
        }
        reason = s.to_string();
        src = s.source();
    }
    if e.is_connect() {
        let hint = if reason.starts_with("TLS") || reason.starts_with("ssh") {
            ""
        } else if reason.contains("No such file") || reason.contains("refused") {
            "; is dockerd running?"
        } else if reason.contains("ermission denied") {
            "; is this user allowed to use the socket?"
        } else {
            ""
        };
        let reason = format!("{reason}{hint}");
        match kind {
            Some(std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) if addr.starts_with("unix://") => {
                TransportError::NoEngine { addr: addr.to_string(), reason }
            }
            _ => TransportError::Connect { addr: addr.to_string(), reason },
        }
    } else {
        TransportError::Io { addr: addr.to_string(), reason }
    }
}

#[derive(Debug)]
struct ConnectTimedOut(Duration);
impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connect timed out after {:?}", self.0)
    }
}
impl std::error::Error for ConnectTimedOut {}

/// Wraps any connector with a connect timeout.
#[derive(Clone)]
pub struct ConnectTimeout<C> {
    inner: C,
    timeout: Duration,
}

impl<C> tower_service::Service<Uri> for ConnectTimeout<C>
where
    C: tower_service::Service<Uri> + Send,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<C::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fut = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimedOut(timeout)) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_host;

    #[test]
    fn docker_host_forms_as_the_docker_cli_reads_them() {
        for (given, tls, want) in [
            ("localhost:2375", false, "tcp://localhost:2375"),
            ("10.0.0.5", false, "tcp://10.0.0.5:2375"),
            ("tcp://engine", false, "tcp://engine:2375"),
            ("tcp://engine", true, "tcp://engine:2376"),
            ("tcp://engine/", true, "tcp://engine:2376"),
            ("tcp://[::1]", false, "tcp://[::1]:2375"),
            ("tcp://[::1]:4243", false, "tcp://[::1]:4243"),
            ("tcp://engine:2376", false, "tcp://engine:2376"),
            ("/var/run/docker.sock", false, "unix:///var/run/docker.sock"),
            ("unix:///run/d.sock", false, "unix:///run/d.sock"),
            ("ssh://me@host", false, "ssh://me@host"),
            ("npipe:////./pipe/docker", false, "npipe:////./pipe/docker"),
        ] {
            assert_eq!(normalize_host(given, tls), want, "{given}");
        }
    }
}
