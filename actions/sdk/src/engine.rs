//! Engine calls from the guest: a small request builder over the WIT `engine` interface.

use crate::bindings::berth::connector::engine as wit;
use crate::bindings::berth::connector::types::{self as t, EngineError};
use crate::stream::Stream;
use crate::{Error, Result, Value};

/// A request to the Engine API, path relative to the API root (`/containers/json`).
pub struct Request(t::Request);

pub fn get(path: impl Into<String>) -> Request {
    Request::new("GET", path)
}
pub fn head(path: impl Into<String>) -> Request {
    Request::new("HEAD", path)
}
pub fn post(path: impl Into<String>) -> Request {
    Request::new("POST", path)
}
pub fn put(path: impl Into<String>) -> Request {
    Request::new("PUT", path)
}
pub fn delete(path: impl Into<String>) -> Request {
    Request::new("DELETE", path)
}

/// Percent-encodes one path segment taken from user input (an id or a name).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// What a path segment keeps unescaped: unreserved characters, `:` and `@`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b':').remove(b'@');

impl Request {
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        Request(t::Request { method: method.to_string(), path: path.into(), query: Vec::new(), headers: Vec::new(), body: t::Body::Empty, registry: None })
    }
    pub fn query(mut self, k: &str, v: impl ToString) -> Self {
        self.0.query.push((k.to_string(), v.to_string()));
        self
    }
    /// Adds the pair only when a value is present.
    pub fn query_opt<V: ToString>(self, k: &str, v: Option<V>) -> Self {
        match v {
            Some(v) => self.query(k, v),
            None => self,
        }
    }
    /// Adds a JSON-encoded value (Docker `filters`), only when present and not empty.
    pub fn query_json(self, k: &str, v: Option<&Value>) -> Self {
        match v {
            Some(Value::Null) | None => self,
            Some(Value::String(s)) if s.is_empty() => self,
            Some(Value::String(s)) => self.query(k, s),
            Some(v) => self.query(k, v.to_string()),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.0.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.0.body = t::Body::Bytes(body.to_string().into_bytes());
        self.header("Content-Type", "application/json")
    }
    pub fn bytes(mut self, body: Vec<u8>, content_type: &str) -> Self {
        self.0.body = t::Body::Bytes(body);
        self.header("Content-Type", content_type)
    }
    /// Body streamed by the host from the named input artifact.
    pub fn artifact(mut self, name: &str, content_type: &str) -> Self {
        self.0.body = t::Body::Artifact(name.to_string());
        self.header("Content-Type", content_type)
    }
    /// Body built by the host: the auth config for `registry` from its credential store.
    pub fn registry_auth_body(mut self, registry: &str) -> Self {
        self.0.body = t::Body::RegistryAuth(registry.to_string());
        self.header("Content-Type", "application/json")
    }
    /// Asks the host to attach `X-Registry-Auth` for `registry`.
    pub fn registry(mut self, registry: &str) -> Self {
        self.0.registry = Some(registry.to_string());
        self
    }

    /// Sends the request; any HTTP status is returned as a [`Response`].
    pub fn send(self) -> Result<Response> {
        let r = wit::call(&self.0).map_err(Error::from)?;
        Ok(Response { status: r.status, headers: r.headers, body: r.body })
    }
    /// Sends the request; a non-2xx status becomes [`Error::Engine`] with the engine's message.
    pub fn send_ok(self) -> Result<Response> {
        let (method, path) = (self.0.method.clone(), self.0.path.clone());
        let r = self.send()?;
        if r.is_success() {
            return Ok(r);
        }
        Err(missing_endpoint(&method, &path, engine_failure(r.status, &r.body)))
    }
    /// Sends the request and parses a 2xx JSON body.
    pub fn json_ok(self) -> Result<Value> {
        self.send_ok()?.json()
    }
    /// Sends the request and streams the 2xx body.
    pub fn stream(self) -> Result<Stream> {
        let (head, body) = wit::open(&self.0).map_err(Error::from)?;
        let stream = Stream::new(head.status, head.headers, body);
        if !(200..300).contains(&stream.status) {
            let body = stream.read_to_end(64 * 1024)?;
            return Err(missing_endpoint(&self.0.method, &self.0.path, engine_failure(head.status, &body)));
        }
        Ok(stream)
    }
    /// Sends the request asking the engine to take over the connection (`Upgrade: tcp`), as
    /// attach and exec start do; the host writes `stdin` and half-closes it, then the output
    /// streams until the engine closes the connection.
    pub fn upgrade(self, stdin: Stdin) -> Result<Stream> {
        let stdin = match stdin {
            Stdin::None => t::Body::Empty,
            Stdin::Bytes(b) => t::Body::Bytes(b),
            Stdin::Artifact(name) => t::Body::Artifact(name),
        };
        let (head, body) = wit::upgrade(&self.0, &stdin).map_err(Error::from)?;
        let stream = Stream::new(head.status, head.headers, body);
        if !(200..300).contains(&stream.status) && stream.status != 101 {
            let body = stream.read_to_end(64 * 1024)?;
            return Err(engine_failure(head.status, &body));
        }
        Ok(stream)
    }

    /// Sends the request with the 2xx body written by the host into the named output artifact.
    pub fn to_artifact(self, artifact: &str) -> Result<Saved> {
        let r = wit::call_to_artifact(&self.0, artifact).map_err(Error::from)?;
        match r.artifact {
            Some(info) if (200..300).contains(&r.status) => Ok(Saved { name: info.name, size: info.size, sha256: info.sha256, headers: r.headers }),
            _ => Err(missing_endpoint(&self.0.method, &self.0.path, engine_failure(r.status, &r.error_body))),
        }
    }
}

/// An output artifact written by the host as a tar, member by member (`engine.open-tar`):
/// members from bytes, or from engine responses streamed straight to disk. Nothing appears
/// until [`Tar::finish`]; dropped unfinished, it leaves nothing.
pub struct Tar(wit::TarWriter);

/// A member the host added to a [`Tar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Tar {
    pub fn open(artifact: &str) -> Result<Tar> {
        wit::open_tar(artifact).map(Tar).map_err(Error::from)
    }

    /// Adds a member holding `data`.
    pub fn bytes(&self, name: &str, data: &[u8]) -> Result<Member> {
        let m = self.0.add_bytes(name, data).map_err(Error::from)?;
        Ok(Member { name: m.name, size: m.size, sha256: m.sha256 })
    }

    /// Adds a member holding `v` as pretty JSON.
    pub fn json(&self, name: &str, v: &Value) -> Result<Member> {
        self.bytes(name, serde_json::to_string_pretty(v).unwrap_or_default().as_bytes())
    }

    /// Sends `req` and streams its 2xx body into a member; another status is an engine error.
    pub fn response(&self, name: &str, req: Request) -> Result<Member> {
        let m = self.0.add_response(name, &req.0).map_err(Error::from)?;
        if !(200..300).contains(&m.status) {
            return Err(missing_endpoint(&req.0.method, &req.0.path, engine_failure(m.status, &m.error_body)));
        }
        Ok(Member { name: m.name, size: m.size, sha256: m.sha256 })
    }

    /// Ends the tar; returns the artifact's size and sha256.
    pub fn finish(self) -> Result<Saved> {
        let info = self.0.finish().map_err(Error::from)?;
        Ok(Saved { name: info.name, size: info.size, sha256: info.sha256, headers: Vec::new() })
    }
}

/// An output artifact the host wrote, with the response headers.
#[derive(Debug, Clone)]
pub struct Saved {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub headers: Vec<(String, String)>,
}

impl Saved {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// What an upgraded connection gets on its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    None,
    Bytes(Vec<u8>),
    /// An input artifact the host streams in.
    Artifact(String),
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn ok(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(engine_failure(self.status, &self.body))
        }
    }
    pub fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::internal(format!("engine sent invalid JSON ({e})")))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The engine's own message from an error body (`{"message": "..."}`), else the text.
/// A 404 without an object-specific message means the engine has no such endpoint (Podman
/// lacks a few): say so, naming the engine from `/version`, instead of a bare "Not Found".
fn missing_endpoint(method: &str, path: &str, e: Error) -> Error {
    let Error::Engine { status: 404, message } = &e else { return e };
    let m = message.trim().to_ascii_lowercase();
    if !matches!(m.as_str(), "page not found" | "404 page not found" | "not found" | "http 404" | "404 not found") {
        return e;
    }
    let engine = get("/version")
        .send()
        .ok()
        .and_then(|r| r.json().ok())
        .map(|v| {
            let comp = &v["Components"][0];
            let name = comp["Name"].as_str().or(v["Platform"]["Name"].as_str()).unwrap_or("the engine").to_string();
            let version = comp["Version"].as_str().or(v["Version"].as_str()).unwrap_or("");
            format!("{name} {version}").trim().to_string()
        })
        .unwrap_or_else(|| "the engine".into());
    Error::Engine {
        status: 404,
        message: format!("{engine} does not implement {} {path} (it answered 404 \"{}\")", method.to_ascii_uppercase(), message.trim()),
    }
}

pub fn engine_failure(status: u16, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let message = if message.is_empty() { format!("HTTP {status}") } else { message };
    Error::Engine { status, message }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Denied(m) | EngineError::Limit(m) => Error::Denied(m),
            // Invalid requests come from bad input (an id with "..", a missing artifact or credential).
            EngineError::Invalid(m) => Error::BadParams(m),
            EngineError::Transport(m) | EngineError::Timeout(m) => Error::Engine { status: 0, message: m },
        }
    }
}

/// The API version the host negotiated with the engine, e.g. "1.41".
pub fn api_version() -> Result<String> {
    wit::api_version().map_err(Error::from)
}

/// Fails with a clear "needs API >= X" error when the negotiated version is older.
pub fn need_api(major: u32, minor: u32, what: &str) -> Result<()> {
    let have = api_version()?;
    let parsed = have.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v >= (major, minor) => Ok(()),
        _ => Err(Error::bad_params(format!("{what} needs API >= {major}.{minor}; the engine speaks {have}"))),
    }
}
