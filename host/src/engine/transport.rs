//! The one trait every engine transport implements, and the transports: unix sockets, and
//! HTTP over a connector — plain TCP, TLS ([`super::tls`]) or ssh ([`super::ssh`]).
//!
//! A transport moves one HTTP request to the engine and back. It knows nothing of API
//! versions, policy or guests.

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::rt::{Read, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connect, Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;
use sync_wrapper::SyncWrapper;
use tower_service::Service;

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
        let target = format!("http://{hostport}/").parse::<Uri>().map_err(|e| anyhow::anyhow!("engine address '{addr}': {e}"))?;
        let addr = format!("tcp://{hostport}");
        return Ok(match &ep.tls {
            Some(tls) => {
                let connector = super::tls::TlsConnector::new(host, port, &addr, tls)?;
                std::sync::Arc::new(HttpTransport {
                    addr,
                    tls: true,
                    client: Pooled::new(ConnectTimeout { inner: connector, timeout: connect_timeout }, target),
                })
            }
            None => {
                let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                http.set_nodelay(true);
                std::sync::Arc::new(HttpTransport { addr, tls: false, client: Pooled::new(ConnectTimeout { inner: http, timeout: connect_timeout }, target) })
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
            addr: addr.to_string(),
            tls: false,
            // ssh itself may take a while to log in: its own ConnectTimeout bounds that.
            client: Pooled::new(ConnectTimeout { inner: connector, timeout: connect_timeout * 3 }, Uri::from_static("http://docker/")),
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
pub struct HttpTransport<K: Dialer> {
    addr: String,
    tls: bool,
    client: Pooled<K>,
}

impl<K: Dialer> Transport for HttpTransport<K> {
    fn send(&self, req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
        self.client.send(req, &self.addr)
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
    addr: String,
    client: Pooled<ConnectTimeout<UnixConnector>>,
}

impl UnixTransport {
    pub fn new(socket: PathBuf, connect_timeout: Duration) -> Self {
        let target = hyperlocal::Uri::new(&socket, "/").into();
        let client = Pooled::new(ConnectTimeout { inner: UnixConnector, timeout: connect_timeout }, target);
        let addr = format!("unix://{}", socket.display());
        UnixTransport { addr, client }
    }
}

impl Transport for UnixTransport {
    fn send(&self, req: Request<Body>) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
        self.client.send(req, &self.addr)
    }

    fn address(&self) -> &str {
        &self.addr
    }
}

/// A connection to the engine as hyper drives it: async I/O, and what it negotiated.
pub trait Io: Read + Write + Connection + Unpin + Send + 'static {}
impl<T: Read + Write + Connection + Unpin + Send + 'static> Io for T {}

/// What makes connections to the engine (a unix socket, TCP, TLS, ssh): a connector for
/// hyper's client, which the kept-alive connections below dial too.
pub trait Dialer: Service<Uri, Response: Io, Future: Send, Error: Into<BoxError>> + Connect + Clone + Send + Sync + 'static {}
impl<K: Service<Uri, Response: Io, Future: Send, Error: Into<BoxError>> + Connect + Clone + Send + Sync + 'static> Dialer for K {}

/// The client every transport uses: kept-alive HTTP/1.1 connections, each driven by the task
/// whose request it carries (no connection task, no hand-off between tasks), and large reads
/// for tarballs (fewer syscalls per GiB exported). Idle connections are kept per thread: in
/// `berth serve` a request is served, run and answered on one worker's runtime, and its engine
/// connection stays there. Hijacked streams (attach, exec) go through hyper's pooled client,
/// which hands the connection over once upgraded.
pub struct Pooled<K: Dialer> {
    dial: Arc<Dial<K>>,
    idle: Arc<Idle<K::Response>>,
    upgrades: thread_local::ThreadLocal<Client<K, Body>>,
}

/// The connector, and what it dials (the socket path, host:port or ssh target).
struct Dial<K> {
    connector: K,
    target: Uri,
}

/// Idle connections kept per thread, and for how long.
const MAX_IDLE_PER_THREAD: usize = 32;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffer: large reads for tarballs.
const READ_BUF: usize = 256 * 1024;

/// A connection: its sender, the connection to poll, and what it negotiated (TLS details,
/// copied into each response's extensions).
struct Live<T: Io> {
    send: http1::SendRequest<Body>,
    conn: http1::Connection<T, Body>,
    connected: Connected,
    since: std::time::Instant,
}

impl<T: Io> Live<T> {
    /// Drives the connection's I/O; true once it has ended (closed by either side, or failed).
    fn ended(&mut self, cx: &mut Context<'_>) -> bool {
        Pin::new(&mut self.conn).poll(cx).is_ready()
    }

    /// Still open and ready for another request.
    fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.ended(cx) && self.send.is_ready()
    }
}

struct Idle<T: Io>(thread_local::ThreadLocal<RefCell<Vec<Live<T>>>>);

impl<T: Io> Idle<T> {
    /// A kept-alive connection of this thread that is still open and ready, if any.
    fn checkout(&self) -> Option<Live<T>> {
        let mut idle = self.0.get_or_default().borrow_mut();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Some(mut live) = idle.pop() {
            // One the engine closed while it sat idle ends when polled.
            if live.since.elapsed() < IDLE_TIMEOUT && live.reusable(&mut cx) {
                return Some(live);
            }
        }
        None
    }

    /// Keeps `live`, whose last response was read to its end, if it can take another request.
    fn put(&self, mut live: Live<T>, cx: &mut Context<'_>) {
        // Let the connection see the end of the message: it is idle then.
        if !live.reusable(cx) {
            return;
        }
        let mut idle = self.0.get_or_default().borrow_mut();
        if idle.len() < MAX_IDLE_PER_THREAD {
            live.since = std::time::Instant::now();
            idle.push(live);
        }
    }
}

impl<K: Dialer> Pooled<K> {
    fn new(connector: K, target: Uri) -> Self {
        Pooled {
            dial: Arc::new(Dial { connector, target }),
            idle: Arc::new(Idle(thread_local::ThreadLocal::new())),
            upgrades: thread_local::ThreadLocal::new(),
        }
    }

    /// Sends `req`, whose URI holds the path and query; `addr` names the engine in errors.
    fn send(&self, mut req: Request<Body>, addr: &str) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
        let addr = addr.to_string();
        if req.headers().contains_key(http::header::UPGRADE) {
            // hyper's client takes the request's URI as the connector's target.
            *req.uri_mut() = with_target(&self.dial.target, req.uri());
            return dispatch(self.upgrades(), req, addr);
        }
        let (dial, idle) = (self.dial.clone(), self.idle.clone());
        Box::pin(async move {
            loop {
                let (mut live, reused) = match idle.checkout() {
                    Some(live) => (live, true),
                    None => (dial.connect(&addr).await?, false),
                };
                match drive(&mut live, req).await {
                    Ok(mut resp) => {
                        live.connected.get_extras(resp.extensions_mut());
                        return Ok(resp.map(|body| Driven { body, live: SyncWrapper::new(Some(live)), idle }.boxed()));
                    }
                    // A kept-alive connection the engine closed just as it was taken: the
                    // request was not sent, so it goes on a new connection.
                    Err(Drive::NotSent(mut e)) if reused && e.message().is_some() => req = e.take_message().expect("message"),
                    Err(Drive::NotSent(e)) => return Err(classify(&addr, &e.into_error(), false)),
                    Err(Drive::Closed) => return Err(TransportError::Io { addr, reason: "the engine closed the connection before it answered".into() }),
                }
            }
        })
    }

    fn upgrades(&self) -> &Client<K, Body> {
        self.upgrades.get_or(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(IDLE_TIMEOUT)
                .pool_max_idle_per_host(MAX_IDLE_PER_THREAD)
                .http1_read_buf_exact_size(READ_BUF)
                .build(self.dial.connector.clone())
        })
    }
}

/// `target` (what hyper's client dials) with the path and query of `pq`.
fn with_target(target: &Uri, pq: &Uri) -> Uri {
    let mut parts = target.clone().into_parts();
    parts.path_and_query = pq.path_and_query().cloned();
    Uri::from_parts(parts).unwrap_or_else(|_| pq.clone())
}

impl<K: Dialer> Dial<K> {
    /// A new connection; `addr` names the engine in errors.
    async fn connect(&self, addr: &str) -> Result<Live<K::Response>, TransportError> {
        let failed = |e: K::Error| {
            let e: BoxError = e.into();
            classify(addr, &*e, true)
        };
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await.map_err(failed)?;
        let io = connector.call(self.target.clone()).await.map_err(failed)?;
        let connected = io.connected();
        let (send, conn) = http1::Builder::new().read_buf_exact_size(Some(READ_BUF)).handshake(io).await.map_err(|e| classify(addr, &e, true))?;
        Ok(Live { send, conn, connected, since: std::time::Instant::now() })
    }
}

enum Drive {
    /// hyper's error, with the request when it was never sent.
    NotSent(Box<hyper::client::conn::TrySendError<Request<Body>>>),
    Closed,
}

/// Sends `req` on `live`, polling the connection until the response's head has arrived.
async fn drive<T: Io>(live: &mut Live<T>, req: Request<Body>) -> Result<Response<Incoming>, Drive> {
    let mut response = std::pin::pin!(live.send.try_send_request(req));
    let mut closed = false;
    std::future::poll_fn(|cx| {
        closed = closed || live.ended(cx);
        match response.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map_err(|e| Drive::NotSent(Box::new(e)))),
            Poll::Pending if closed => Poll::Ready(Err(Drive::Closed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A response body that drives its connection while it is read, and returns the connection
/// to its thread's idle set once read to the end (dropped early, the connection closes).
struct Driven<T: Io> {
    body: Incoming,
    /// Never shared: the wrapper makes the body `Sync`, as boxed bodies must be.
    live: SyncWrapper<Option<Live<T>>>,
    idle: Arc<Idle<T>>,
}

impl<T: Io> Driven<T> {
    /// The next frame, with the connection driven first; at the end of the body the
    /// connection goes back to the idle set.
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        use http_body::Body as _;
        let live = self.live.get_mut();
        if live.as_mut().is_some_and(|l| l.ended(cx)) {
            *live = None;
        }
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = &frame {
            if let Some(l) = live.take() {
                self.idle.put(l, cx);
            }
        }
        frame
    }
}

impl<T: Io> http_body::Body for Driven<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.get_mut().next_frame(cx).map_err(|e| Box::new(e) as BoxError)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<T: Io> Drop for Driven<T> {
    fn drop(&mut self) {
        // A body dropped unread (a HEAD, a 204, a status-only check) keeps its connection when
        // the rest of it has already arrived: read what is there without waiting.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..16 {
            if self.live.get_mut().is_none() || !matches!(self.next_frame(&mut cx), Poll::Ready(Some(Ok(_)))) {
                return;
            }
        }
    }
}

/// Sends a request through hyper's pooled client, mapping errors for `addr`.
fn dispatch<K: Connect + Clone + Send + Sync + 'static>(
    client: &Client<K, Body>,
    req: Request<Body>,
    addr: String,
) -> BoxFuture<'static, Result<Response<Body>, TransportError>> {
    let fut = client.request(req);
    Box::pin(async move {
        match fut.await {
            Ok(resp) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed())),
            Err(e) => Err(classify(&addr, &e, e.is_connect())),
        }
    })
}

/// What went wrong reaching the engine at `addr`; `connecting` when no connection was made.
fn classify(addr: &str, e: &(dyn std::error::Error + 'static), connecting: bool) -> TransportError {
    use std::error::Error;
    let mut src: Option<&(dyn Error + 'static)> = Some(e);
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
    if connecting {
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

    /// An HTTP/1.1 server on loopback that answers `ok` to each request and closes a
    /// connection after `per_conn` answers (as an engine or a proxy in front of it may close an
    /// idle kept-alive connection); returns its address and its count of accepted connections.
    async fn closing_server(per_conn: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..per_conn {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        buf.drain(..end);
                        if sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn ping() -> http::Request<super::Body> {
        http::Request::get("/_ping").header("Host", "docker").body(super::Body::default()).unwrap()
    }

    async fn get(t: &dyn super::Transport) -> Result<String, String> {
        use http_body_util::BodyExt;
        let resp = t.send(ping()).await.map_err(|e| e.to_string())?;
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_response_dropped_unread_keeps_its_connection() {
        let (addr, accepted) = closing_server(100).await;
        let t = super::connect(&crate::engine::Endpoint::plain(&format!("tcp://{addr}")), std::time::Duration::from_secs(5)).unwrap();
        for _ in 0..5 {
            let resp = t.send(ping()).await.unwrap();
            assert_eq!(resp.status(), 200);
            // Its two bytes arrive with the head; give them a moment, then drop it unread.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            drop(resp);
        }
        assert_eq!(get(&*t).await.unwrap(), "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "six requests, one connection");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn kept_alive_connections_are_reused_and_one_the_server_closed_is_replaced() {
        let (addr, accepted) = closing_server(5).await;
        let t = super::connect(&crate::engine::Endpoint::plain(&format!("tcp://{addr}")), std::time::Duration::from_secs(5)).unwrap();
        for _ in 0..5 {
            assert_eq!(get(&*t).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "five requests, one connection");
        // The server has closed that connection: the next request goes on a new one.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for _ in 0..3 {
            assert_eq!(get(&*t).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

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
