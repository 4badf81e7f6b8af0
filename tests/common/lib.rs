//! Test harness: drives the built `berth` binary (`make build`: `target/release/berth`, or
//! `BERTH_BIN`) against the isolated engine that `tests/engine.sh` starts (`make test` does
//! this; it exports `BERTH_TEST_DOCKER_HOST`), and calls that engine directly over a small
//! HTTP/1.1 client of its own to set up and check state. It does not link berth. Nothing here
//! talks to the machine's own daemon.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

pub mod authproxy;
pub mod serve;
pub mod variants;

pub const TEST_IMAGE: &str = "berth-test/busybox:latest";

/// The isolated engine's address.
pub fn docker_host() -> String {
    match std::env::var("BERTH_TEST_DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => panic!(
            "BERTH_TEST_DOCKER_HOST is not set: run the tests with `make test`, or \
             `tests/engine.sh run -- cargo test` (it starts an isolated dockerd)"
        ),
    }
}

/// Podman's Docker-compatible API, the second real engine (`tests/engine.sh run` starts it).
pub fn podman_host() -> String {
    match std::env::var("BERTH_TEST_PODMAN_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => panic!("BERTH_TEST_PODMAN_HOST is not set: run the tests with `make test` (tests/engine.sh run starts Podman too)"),
    }
}

pub fn workspace() -> PathBuf {
    // This crate is tests/common.
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// The `berth` binary under test: `BERTH_BIN`, or the release build of `make build`.
pub fn berth_bin() -> PathBuf {
    let p = std::env::var_os("BERTH_BIN").map(PathBuf::from).unwrap_or_else(|| target_dir().join("release/berth"));
    assert!(p.exists(), "{} is missing: run `make build` first (or set BERTH_BIN)", p.display());
    p
}

/// A tool `make clients` or `make toolchains` installed under target/toolchains.
pub fn toolchain(rel: &str) -> PathBuf {
    let p = target_dir().join("toolchains").join(rel);
    assert!(p.exists(), "{} is missing: run `make clients` first", p.display());
    p
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// A guest component built by `make build` (`cargo build --release --target wasm32-wasip2`).
pub fn wasm(crate_name: &str) -> PathBuf {
    let p = target_dir().join("wasm32-wasip2/release").join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(p.exists(), "{} is missing: run `make build` first", p.display());
    p
}

/// A Python or JavaScript family built by `make components` (target/components/NAME.wasm).
pub fn component(name: &str) -> PathBuf {
    let p = target_dir().join("components").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: run `make components` first", p.display());
    p
}

pub fn system_wasm() -> PathBuf {
    wasm("berth-action-system")
}

pub fn hostile_wasm() -> PathBuf {
    wasm("berth-test-hostile")
}

/// One configured `berth`: an actions dir of its own, a shared compile cache.
#[derive(Clone)]
pub struct Berth {
    pub actions: Arc<tempfile::TempDir>,
    pub cache: PathBuf,
    pub host: String,
    pub env: Vec<(String, String)>,
}

/// The compile cache shared by the tests of one run (the cache itself is under test
/// elsewhere): `tests/engine.sh run` gives every test binary the same directory
/// (`BERTH_TEST_CACHE`), so each component is compiled once per run, not once per binary.
pub fn shared_cache() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    match std::env::var_os("BERTH_TEST_CACHE") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            d
        }
        _ => DIR.get_or_init(|| tempfile::tempdir().unwrap()).path().to_path_buf(),
    }
}

/// A process's memory as `Berth::run_peak_rss` saw it (KiB). The anonymous part is what a
/// buffered body would grow; the file-backed part is the mapped binary and compiled
/// components, which do not grow with the data.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peak {
    pub hwm_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
}

impl std::fmt::Display for Peak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peak RSS {} KiB (anonymous {} KiB, file-backed {} KiB)", self.hwm_kib, self.anon_kib, self.file_kib)
    }
}

impl Berth {
    /// `berth` with the given components installed (file name, source path).
    pub fn with(components: &[(&str, PathBuf)]) -> Self {
        Self::with_host(components, docker_host())
    }

    /// `berth` with components and an engine address of its own (tests that need no engine
    /// give one that does not exist).
    pub fn with_host(components: &[(&str, PathBuf)], host: String) -> Self {
        let actions = tempfile::tempdir().unwrap();
        for (name, src) in components {
            std::fs::copy(src, actions.path().join(name)).unwrap();
        }
        Berth { actions: Arc::new(actions), cache: shared_cache(), host, env: Vec::new() }
    }

    /// `berth` with the named families shipped with berth (`container`, `swarm`, …).
    pub fn families(names: &[&str]) -> Self {
        Self::families_at(names, docker_host())
    }

    pub fn families_at(names: &[&str], host: String) -> Self {
        let comps: Vec<(String, PathBuf)> = names.iter().map(|f| (format!("{f}.wasm"), wasm(&format!("berth-action-{f}")))).collect();
        let refs: Vec<(&str, PathBuf)> = comps.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
        Self::with_host(&refs, host)
    }

    pub fn system() -> Self {
        Self::with(&[("system.wasm", system_wasm())])
    }

    pub fn hostile() -> Self {
        Self::with(&[("system.wasm", system_wasm()), ("test.wasm", hostile_wasm())])
    }

    /// The same `berth` (same actions dir) with one more environment variable.
    pub fn clone_with_env(&self, k: &str, v: &str) -> Self {
        self.clone().env(k, v)
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.args(args)
            .env_remove("BERTH_CREDENTIALS")
            .env_remove("RUST_BACKTRACE")
            .env("DOCKER_HOST", &self.host)
            .env("BERTH_ACTIONS", self.actions.path())
            .env("BERTH_CACHE", &self.cache)
            // Keep the user's docker config out of the tests.
            .env("DOCKER_CONFIG", self.actions.path().join("no-docker-config"))
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `berth ARGS`, killing it if it runs past `limit` (a hang is a failure).
    pub fn run_within(&self, limit: Duration, args: &[&str]) -> Run {
        self.run_sampled(limit, args, |_| {})
    }

    /// The same `berth` with a compile cache of its own at `cache`, filled by running `warm`
    /// (an action of the family to measure), and a debug log: a run measured with it loads
    /// its family rather than compiling it (the shared test cache is also written by the
    /// authoring tests running beside the others), and [`assert_memory_flat`] checks it did.
    pub fn measured(&self, cache: &Path, warm: &[&str]) -> Berth {
        let own = self.clone_with_env("BERTH_CACHE", cache.to_str().unwrap()).env("BERTH_LOG", "berth=debug");
        own.run_within(Duration::from_secs(60), warm).ok();
        own
    }

    /// Runs `berth ARGS` and samples its memory until it exits: the kernel's high-water mark
    /// of its resident set, and the peaks of its anonymous and file-backed parts as sampled.
    pub fn run_peak_rss(&self, args: &[&str]) -> (Run, Peak) {
        let mut peak = Peak::default();
        let run = self.run_sampled(Duration::from_secs(300), args, |pid| {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let kib = |key: &str| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).unwrap_or(0);
                peak.hwm_kib = peak.hwm_kib.max(kib("VmHWM:"));
                peak.anon_kib = peak.anon_kib.max(kib("RssAnon:"));
                peak.file_kib = peak.file_kib.max(kib("RssFile:"));
            }
        });
        (run, peak)
    }

    /// Runs `berth ARGS`, calling `sample(pid)` every 5 ms while it runs; both pipes are
    /// drained meanwhile, so a chatty child never blocks on a full pipe.
    fn run_sampled(&self, limit: Duration, args: &[&str], mut sample: impl FnMut(u32)) -> Run {
        let started = Instant::now();
        let mut child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn berth");
        let drain = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                String::from_utf8_lossy(&v).into_owned()
            })
        };
        let out_t = drain(Box::new(child.stdout.take().unwrap()));
        let err_t = drain(Box::new(child.stderr.take().unwrap()));
        let status = loop {
            sample(child.id());
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth {args:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}", out_t.join().unwrap(), err_t.join().unwrap());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out_t.join().unwrap();
        let stderr = err_t.join().unwrap();
        let json = serde_json::from_str(stdout.trim()).ok();
        Run { code: status.code().unwrap_or(-1), stdout, stderr, json, elapsed: started.elapsed() }
    }

    /// Runs `berth ARGS` under a hang guard of 300 s: a first run or an install that compiles a
    /// 12–20 MB Python or JS component took over 120 s on a 2-core machine while both test
    /// groups and the other authoring tests ran beside it.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_within(Duration::from_secs(300), args)
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<Value>,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| panic!("stdout is not JSON: {self:#?}"))
    }

    /// Asserts the exit code, showing everything when it is wrong.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    pub fn ok(&self) -> &Value {
        self.expect_code(0);
        let j = self.json();
        assert_eq!(j["status"], "success", "{self:#?}");
        j
    }

    pub fn message(&self) -> String {
        self.json().get("message").and_then(Value::as_str).unwrap_or_default().to_string()
    }
}

/// A direct engine call (not through berth), for setting up and checking state.
pub fn api(method: Method, path: &str, query: &str, body: Option<(&str, Vec<u8>)>) -> (u16, Vec<u8>) {
    api_at(&docker_host(), method, path, query, body)
}

/// [`api`] on the engine at `host`.
pub fn api_at(host: &str, method: Method, path: &str, query: &str, body: Option<(&str, Vec<u8>)>) -> (u16, Vec<u8>) {
    let mut headers = Vec::new();
    let body = body.map(|(ct, b)| {
        headers.push(("Content-Type".to_string(), ct.to_string()));
        b
    });
    api_with(host, method, path, query, &headers, body)
}

/// [`api_at`] with request headers: one HTTP/1.1 request per connection, to a
/// `unix://` or `tcp://` engine address; the body read whole (chunked or not).
pub fn api_with(host: &str, method: Method, path: &str, query: &str, headers: &[(String, String)], body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let target = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = Vec::new();
    let timeout = Some(Duration::from_secs(300));
    if let Some(sock) = host.strip_prefix("unix://") {
        let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap_or_else(|e| panic!("engine at {host}: {e}"));
        s.set_read_timeout(timeout).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        s.read_to_end(&mut raw).unwrap();
    } else {
        let addr = host.strip_prefix("tcp://").unwrap_or(host);
        let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("engine at {host}: {e}"));
        s.set_read_timeout(timeout).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        s.read_to_end(&mut raw).unwrap();
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("{method} {target}: no HTTP answer from {host}"));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method} {target}: bad status line: {head}"));
    let rest = raw[split + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { serve::dechunk(&rest) } else { rest };
    (status, body)
}

pub fn api_json(method: Method, path: &str, query: &str) -> Value {
    let (status, body) = api(method, path, query, None);
    assert!((200..300).contains(&status), "{path}: {status} {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// Builds `berth-test/busybox` (FROM scratch + static busybox and its applet links) once.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_test_image(&docker_host()));
    TEST_IMAGE
}

/// Builds the test image on the engine at `host` unless it is there.
pub fn build_test_image(host: &str) {
    {
        let (status, _) = api_at(host, Method::GET, "/images/berth-test%2Fbusybox:latest/json", "", None);
        if status == 200 {
            return;
        }
        let mut tar = tar::Builder::new(Vec::new());
        let dockerfile = b"FROM scratch\nCOPY rootfs/ /\nCMD [\"sh\"]\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(dockerfile.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "Dockerfile", &dockerfile[..]).unwrap();
        busybox_rootfs(&mut tar, "rootfs/");
        let ctx = tar.into_inner().unwrap();
        let (status, body) =
            api_at(host, Method::POST, "/build", "t=berth-test%2Fbusybox%3Alatest&networkmode=none&rm=1&forcerm=1", Some(("application/x-tar", ctx)));
        let text = String::from_utf8_lossy(&body);
        assert!(status == 200 && !text.contains("\"error\""), "building the test image failed: {status} {text}");
    }
}

/// Appends a root filesystem under `prefix`: static busybox, a link per applet, and `tmp`,
/// `etc`, `data` directories.
pub fn busybox_rootfs(tar: &mut tar::Builder<Vec<u8>>, prefix: &str) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).expect("busybox-static is not installed");
    let applets = Command::new(busybox).arg("--list").output().expect("busybox --list").stdout;
    tar.append_path_with_name(busybox, format!("{prefix}bin/busybox")).unwrap();
    for applet in String::from_utf8_lossy(&applets).lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox") {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, format!("{prefix}bin/{applet}"), "busybox").unwrap();
    }
    for d in ["tmp", "etc", "data"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o1777);
        tar.append_data(&mut h, format!("{prefix}{d}/"), &[][..]).unwrap();
    }
}

/// A unique name for objects a test creates.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, optionally with
/// htpasswd auth; stopped when dropped.
pub struct Registry {
    pub addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().display()
        );
        if let Some((user, pass)) = auth {
            let hash = bcrypt::hash(pass, 5).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            cfg.push_str(&format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}/htpasswd\n", dir.path().display()));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is not installed (tests/engine.sh ensure installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "the registry at {addr} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { addr, child, _dir: dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tar holding `files` (path, contents, mode).
pub fn tar_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        t.append_data(&mut h, path, *data).unwrap();
    }
    t.into_inner().unwrap()
}

/// A TCP listener on 127.0.0.1 relaying every connection byte for byte to a unix socket:
/// the real engine reached over TCP. Returns `tcp://127.0.0.1:PORT`.
pub fn tcp_relay(socket: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = socket.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = std::os::unix::net::UnixStream::connect(&socket) else {
                continue;
            };
            let (mut c1, mut u1) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut c2, mut u2) = (client, upstream);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    format!("tcp://{addr}")
}

/// Isolated engines a test starts for itself (`tests/engine.sh start DIR ARGS`), stopped and
/// their directories removed when dropped, also when the test fails.
pub struct Engines(pub Vec<PathBuf>);

impl Engines {
    /// Starts (or reuses) the dockerd in `dir` with more dockerd `args`; its unix address.
    pub fn start(&mut self, dir: PathBuf, args: &[&str]) -> String {
        let mut all = vec!["start", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = Command::new(workspace().join("tests/engine.sh")).args(&all).output().unwrap();
        assert!(out.status.success(), "engine.sh {all:?}: {}", String::from_utf8_lossy(&out.stderr));
        if !self.0.contains(&dir) {
            self.0.push(dir);
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the dockerd in `dir` (SIGTERM), keeping its data, and waits until it is gone.
    pub fn kill(&self, dir: &Path) {
        let pid = std::fs::read_to_string(dir.join("docker.pid")).unwrap();
        Command::new("kill").args(["-TERM", pid.trim()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{}", pid.trim())).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = Command::new(workspace().join("tests/engine.sh")).args(["stop", d.to_str().unwrap()]).status();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// [`tcp_relay`] that also keeps every byte clients sent, to count the requests that reached
/// the engine's side. When the engine is down, or while the gate (third value) is shut, a
/// client's connection is closed once its request is read, as a stopped daemon's would be.
pub fn counting_relay(socket: &str) -> (String, Arc<std::sync::Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = socket.to_string();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = open.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = if gate.load(std::sync::atomic::Ordering::SeqCst) { std::os::unix::net::UnixStream::connect(&socket).ok() } else { None };
            let (mut c1, log) = (client.try_clone().unwrap(), log.clone());
            let mut u1 = upstream.as_ref().map(|u| u.try_clone().unwrap());
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 16384];
                loop {
                    let n = match c1.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    let sent = u1.as_mut().is_some_and(|u| u.write_all(&buf[..n]).is_ok());
                    if !sent {
                        let _ = c1.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
                if let Some(u) = u1 {
                    let _ = u.shutdown(std::net::Shutdown::Write);
                }
            });
            if let Some(mut u2) = upstream {
                let mut c2 = client;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (format!("tcp://{addr}"), seen, open)
}

/// How many requests in `bytes` start with `method path-prefix` (e.g. `POST`, `/containers/create`,
/// matched after the `/vX.Y` version prefix).
pub fn count_requests(bytes: &[u8], method: &str, path: &str) -> usize {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n")
        .filter(|l| {
            let mut parts = l.splitn(3, ' ');
            let (m, p) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let p = p.strip_prefix("/v").and_then(|r| r.split_once('/')).map(|(_, rest)| format!("/{rest}")).unwrap_or(p.to_string());
            m == method && p.starts_with(path)
        })
        .count()
}

/// Asserts that a run which streamed `size` bytes to a file kept its memory flat: under 24 MiB
/// of anonymous memory (4-7 MiB measured; what buffering would grow: frames kept while the
/// writer catches up once reached 40 MiB more in CI) and under 64 MiB resident in all (a debug
/// build maps ~29 MiB of its own code). It must have loaded its family from the compile cache
/// (`BERTH_LOG=berth=debug` says so): a compile is not what is measured.
pub fn assert_memory_flat(r: &Run, peak: Peak, size: u64) {
    eprintln!("{peak} while streaming {size} bytes");
    assert!(r.stderr.contains("source=Cached"), "the measured run compiled its family instead of loading it: {}", r.stderr);
    assert!(peak.anon_kib < 24 * 1024 && peak.hwm_kib < 64 * 1024, "{peak} while streaming {size} bytes");
}

/// POSTs `body` (exact bytes, JSON) to the engine directly.
pub fn post_raw(path: &str, query: &str, body: &str) -> (u16, Value) {
    let (st, b) = api(Method::POST, path, query, Some(("application/json", body.as_bytes().to_vec())));
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

pub fn post_json(path: &str, query: &str, body: Value) -> (u16, Value) {
    post_raw(path, query, &body.to_string())
}

/// Creates a container directly; returns its id.
pub fn create_direct(body: Value) -> String {
    let (st, v) = post_json("/containers/create", "", body.clone());
    assert_eq!(st, 201, "the engine refused {body}: {v}");
    v["Id"].as_str().unwrap().to_string()
}

/// Runs a container directly to its end; returns its output (stdout and stderr) and removes it.
pub fn run_direct(body: Value) -> String {
    let id = create_direct(body);
    let (st, b) = api(Method::POST, &format!("/containers/{id}/start"), "", None);
    assert!(st == 204 || st == 304, "start: {st} {}", String::from_utf8_lossy(&b));
    api(Method::POST, &format!("/containers/{id}/wait"), "", None);
    let (_, raw) = api(Method::GET, &format!("/containers/{id}/logs"), "stdout=1&stderr=1", None);
    api(Method::DELETE, &format!("/containers/{id}"), "force=1", None);
    demux(&raw)
}

/// The payloads of a multiplexed (non-TTY) log stream, joined.
pub fn demux(mut b: &[u8]) -> String {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        out.extend_from_slice(&b[8..8 + n.min(b.len() - 8)]);
        b = &b[(8 + n).min(b.len())..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub fn urlenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A private PostgreSQL cluster (`tests/engine.sh pg-start`), stopped and removed when dropped.
pub struct Postgres {
    pub url: String,
    dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(workspace().join("tests/engine.sh")).arg("pg-start").arg(dir.path().join("pg")).output().unwrap();
        assert!(out.status.success(), "engine.sh pg-start: {}", String::from_utf8_lossy(&out.stderr));
        Postgres { url: String::from_utf8_lossy(&out.stdout).trim().to_string(), dir }
    }

    /// Stops the cluster at once, as a crash would.
    pub fn stop(&self) {
        let _ = Command::new(workspace().join("tests/engine.sh")).arg("pg-stop").arg(self.dir.path().join("pg")).status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
