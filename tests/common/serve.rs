//! `berth serve` for the integration tests: a server process on a free port, with its own
//! actions directory, audit log and config; a minimal HTTP client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{docker_host, shared_cache};

/// The token `/metrics` takes in the test servers.
pub const METRICS_TOKEN: &str = "metrics-token";

pub struct Serve {
    pub addr: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token of the label-scoped tenant "red" of the isolation tests.
pub const RED: &str = "red-token";

/// Red: label-scoped (`team=<scope>`; a test that prunes must not see another test's red
/// objects) with the default engine policy, the test image as its base image, one host
/// directory of its own, and `extra_policy` lines.
pub fn red_tenant_as(scope: &str, extra_policy: &str) -> String {
    format!(
        r#"
[[tenant]]
name = "red"
token_sha256 = "{}"
engine = "{{engine}}"
allow = ["*"]
label_scope = "team={scope}"
artifacts_dir = "{{dir}}/red"
[tenant.engine_policy]
images = ["berth-test/busybox:*"]
host_paths = ["{{dir}}/red-data"]
{extra_policy}
"#,
        hash(RED)
    )
}

pub fn hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Serve {
    /// Starts `berth serve` with `tenants` (TOML tables, `{dir}` replaced by the work dir) and
    /// the given components.
    pub fn start(components: &[(&str, PathBuf)], tenants: &str) -> Serve {
        Self::start_with(components, "", tenants)
    }

    /// [`Serve::start`] with more `[server]` lines (`{dir}` replaced too).
    pub fn start_with(components: &[(&str, PathBuf)], server_extra: &str, tenants: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let actions = dir.path().join("actions");
        std::fs::create_dir(&actions).unwrap();
        for (name, src) in components {
            std::fs::copy(src, actions.join(name)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        // Each server its own job store, unless the test names one (a restart, replicas).
        let state = if server_extra.contains("state_dir") || server_extra.contains("database_url") {
            String::new()
        } else {
            format!("state_dir = \"{}/state\"\n", dir.path().display())
        };
        let cfg = format!(
            "[server]\nlisten = \"{addr}\"\nactions = \"{}\"\naudit_log = \"{}/audit.jsonl\"\ncache = \"{}\"\nmax_concurrent = 64\nmetrics_token_sha256 = \"{}\"\n{state}{}\n\n{}",
            actions.display(),
            dir.path().display(),
            shared_cache().display(),
            hash(METRICS_TOKEN),
            server_extra.replace("{dir}", &dir.path().display().to_string()),
            tenants.replace("{dir}", &dir.path().display().to_string()).replace("{engine}", &docker_host())
        );
        std::fs::write(dir.path().join("tenants.toml"), cfg).unwrap();
        let child = spawn(dir.path());
        let mut s = Serve { addr, child, dir };
        // Over HTTPS the test speaks TLS itself: here, wait for the port.
        s.wait_up(server_extra.contains("tls_cert"));
        s
    }

    fn wait_up(&mut self, tls: bool) {
        let started = Instant::now();
        while !(if tls { std::net::TcpStream::connect(&self.addr).is_ok() } else { http(&self.addr, "GET", "/healthz", None, None).0 == 200 }) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("berth serve exited ({status}): {}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "berth serve did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`, then the same server again (same config, state directory and port).
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.start_again();
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after it exited.
    pub fn start_again(&mut self) {
        self.child = spawn(self.dir.path());
        self.wait_up(false);
    }

    /// Sends a signal (`TERM`, `INT`, …) to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the server to exit; None if it still runs after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn run(&self, token: &str, action: &str, params: Value) -> (u16, Value) {
        http(&self.addr, "POST", &format!("/v1/actions/{}", action.replace(' ', "%20")), Some(token), Some(&params.to_string()))
    }

    /// A config for another server on a free port with this one's actions and `tenants`: for
    /// [`refused_start`].
    pub fn config_for(&self, tenants: &str) -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\nactions = \"{}\"\n\n{tenants}", self.dir.path().join("actions").display())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `berth serve` with `config` (written into `dir`), which must refuse to start: exit 2. Its
/// stderr, which says why.
pub fn refused_start(config: &str, dir: &Path) -> String {
    let path = tempfile::Builder::new().prefix("refused-").suffix(".toml").tempfile_in(dir).unwrap().into_temp_path();
    std::fs::write(&path, config).unwrap();
    let out = Command::new(super::berth_bin()).args(["serve", "--config"]).arg(&path).env_remove("RUST_BACKTRACE").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

/// `berth serve --config DIR/tenants.toml`, logging (appended) to DIR/serve.log.
fn spawn(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).unwrap();
    Command::new(super::berth_bin())
        .args(["serve", "--config"])
        .arg(dir.join("tenants.toml"))
        .env("BERTH_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// A minimal HTTP/1.1 client: one request per connection.
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let (status, bytes) = http_raw(addr, method, path, token, body);
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub fn http_raw(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Vec<u8>) {
    http_bytes(addr, method, path, token, "application/json", body.unwrap_or("").as_bytes())
}

/// [`http_raw`] with a body of any bytes and content type (uploads).
pub fn http_bytes(addr: &str, method: &str, path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len());
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return (0, Vec::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let Some(split) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, resp);
    };
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut body = resp[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

/// The payload of a chunked body (as far as it goes).
pub(crate) fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let end = (nl + 2 + size).min(b.len());
        out.extend_from_slice(&b[nl + 2..end]);
        b = b.get(end + 2..).unwrap_or_default();
    }
    out
}
