//! Remote engines: dockerd listening on TLS with client certificates (certificates made here
//! with rcgen), docker contexts, `DOCKER_TLS_VERIFY`, every handshake failure, retries across
//! a daemon restart, and ssh through a real sshd.

use berth_test_support as common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// A CA that signs server and client certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf certificate and key (PEM) for `names`, valid now or expired.
fn leaf(ca: &Ca, cn: &str, names: &[&str], client: bool, expired: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    if expired {
        p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        p.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    }
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }
    fn write(&self, f: &str, pem: &str) {
        std::fs::write(self.dir.path().join(f), pem).unwrap();
    }
}

/// ca.pem / cert.pem / key.pem (the client's, as DOCKER_CERT_PATH wants them), the engine's
/// server-cert.pem and server-key.pem (names engine.test and localhost, not the IP), an
/// expired engine certificate, and a second CA with its own client certificate.
fn pki() -> Pki {
    let p = Pki { dir: tempfile::tempdir().unwrap() };
    let good = ca("berth test CA");
    let other = ca("some other CA");
    p.write("ca.pem", &good.pem);
    p.write("other-ca.pem", &other.pem);
    let (c, k) = leaf(&good, "engine.test", &["engine.test", "localhost"], false, false);
    p.write("server-cert.pem", &c);
    p.write("server-key.pem", &k);
    let (c, k) = leaf(&good, "engine.test", &["engine.test"], false, true);
    p.write("expired-cert.pem", &c);
    p.write("expired-key.pem", &k);
    let (c, k) = leaf(&good, "berth client", &[], true, false);
    p.write("cert.pem", &c);
    p.write("key.pem", &k);
    let (c, k) = leaf(&other, "stranger", &[], true, false);
    p.write("other-cert.pem", &c);
    p.write("other-key.pem", &k);
    p
}

fn tls_args(pki: &Pki, port: u16, cert: &str, key: &str) -> Vec<String> {
    vec![
        "--host".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--tlsverify".into(),
        "--tlscacert".into(),
        pki.path("ca.pem"),
        "--tlscert".into(),
        pki.path(cert),
        "--tlskey".into(),
        pki.path(key),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn failure(r: &Run) -> String {
    assert_ne!(r.code, 0, "expected a failure: {r:?}");
    r.message()
}

#[test]
fn tls_engines_good_and_bad() {
    let pki = pki();
    let base = PathBuf::from(format!("/tmp/berth-tls-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let (port, expired_port) = (free_port(), free_port());
    let unix = engines.start(base.join("good"), &args(&tls_args(&pki, port, "server-cert.pem", "server-key.pem")));
    engines.start(base.join("expired"), &args(&tls_args(&pki, expired_port, "expired-cert.pem", "expired-key.pem")));
    build_test_image(&unix);
    let families = ["system", "container", "image"];
    let b = Berth::families_at(&families, "unix:///nonexistent.sock".into());
    let flags = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["--host".to_string(), format!("tcp://127.0.0.1:{port}"), "--tlsverify".into(), "--tlscacert".into(), pki.path("ca.pem")];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |f: &[String], action: &[&str]| {
        let mut all: Vec<&str> = args(f);
        all.push("run");
        all.extend_from_slice(action);
        b.run_within(Duration::from_secs(60), &all)
    };
    let client = ["--tlscert", &pki.path("cert.pem"), "--tlskey", &pki.path("key.pem")].map(String::from);
    let good = flags(&[&client[0], &client[1], &client[2], &client[3], "--tls-server-name", "engine.test"]);

    // Good mutual TLS: the system, container and image families work.
    let r = run(&good, &["system.test-connectivity"]);
    let j = r.ok();
    assert_eq!(j["summary"]["transport"], "tls");
    let tls = &j["data"][0]["tls"];
    assert!(tls["version"].as_str().unwrap().starts_with("TLS 1."), "{tls}");
    assert!(!tls["cipher"].as_str().unwrap().is_empty(), "{tls}");
    assert!(tls["peer_subject"].as_str().unwrap().contains("engine.test"), "{tls}");
    assert_eq!(tls["peer_not_after"], "4096-01-01T00:00:00Z", "rcgen's default expiry, read from the engine's certificate: {tls}");
    run(&good, &["system.version"]).ok();
    run(&good, &["system.info"]).ok();
    let out = run(&good, &["container.run", &format!("image={TEST_IMAGE}"), "cmd=echo over-tls", "network_mode=none"]);
    assert!(out.ok().to_string().contains("over-tls"), "{out:?}");
    let name = unique("tlsc");
    run(&good, &["container.create", &format!("image={TEST_IMAGE}"), &format!("name={name}"), "cmd=sleep 60", "network_mode=none"]).ok();
    run(&good, &["container.start", &format!("id={name}")]).ok();
    let ex = run(&good, &["container.exec", &format!("id={name}"), "cmd=echo exec-over-tls"]);
    assert!(ex.ok().to_string().contains("exec-over-tls"), "the hijacked exec stream works over TLS: {ex:?}");
    run(&good, &["container.remove", &format!("id={name}"), "force=true"]).ok();
    let images = run(&good, &["image.list"]);
    assert!(images.ok().to_string().contains(TEST_IMAGE));
    run(&good, &["image.inspect", &format!("name={TEST_IMAGE}")]).ok();

    // Each failure says what failed.
    let m = failure(&run(&flags(&[&client[0], &client[1], &client[2], &client[3]]), &["system.ping"]));
    assert!(m.contains("not valid for the name '127.0.0.1'") && m.contains("hostname mismatch"), "{m}");
    let mut other_ca = good.clone();
    other_ca[4] = pki.path("other-ca.pem");
    let m = failure(&run(&other_ca, &["system.ping"]));
    assert!(m.contains("not signed by the given CA"), "{m}");
    let m = failure(&run(&flags(&["--tls-server-name", "engine.test"]), &["system.ping"]));
    assert!(m.contains("refused our client certificate"), "no client certificate: {m}");
    let wrong = flags(&["--tlscert", &pki.path("other-cert.pem"), "--tlskey", &pki.path("other-key.pem"), "--tls-server-name", "engine.test"]);
    let m = failure(&run(&wrong, &["system.ping"]));
    assert!(m.contains("refused our client certificate"), "a client certificate from another CA: {m}");
    let mut expired = good.clone();
    expired[1] = format!("tcp://127.0.0.1:{expired_port}");
    let m = failure(&run(&expired, &["system.ping"]));
    assert!(m.contains("has expired"), "{m}");
    // Plain HTTP to the TLS port, and TLS to a plain port.
    let m = failure(&run(&[String::from("--host"), format!("tcp://127.0.0.1:{port}")], &["system.ping"]));
    assert!(m.contains("speaks TLS"), "{m}");
    let plain = tcp_relay(unix.strip_prefix("unix://").unwrap());
    let m = failure(&run(&[String::from("--host"), plain.clone(), "--tls".into()], &["system.ping"]));
    assert!(m.contains("did not answer with TLS"), "{m}");
    // Plain tcp to a plain port works, for the system, container and image families.
    let plain = [String::from("--host"), plain];
    assert_eq!(run(&plain, &["system.test-connectivity"]).ok()["summary"]["transport"], "tcp");
    let out = run(&plain, &["container.run", &format!("image={TEST_IMAGE}"), "cmd=echo over-tcp", "network_mode=none"]);
    assert!(out.ok().to_string().contains("over-tcp"), "{out:?}");
    run(&plain, &["image.inspect", &format!("name={TEST_IMAGE}")]).ok();
    // Files that are not there, or not certificates.
    let m = failure(&run(&flags(&["--tlscert", "/nonexistent.pem", "--tlskey", "/nonexistent.pem"]), &["system.ping"]));
    assert!(m.contains("does not exist"), "{m}");
    let mut junk = good.clone();
    junk[4] = pki.path("key.pem");
    let m = failure(&run(&junk, &["system.ping"]));
    assert!(m.contains("holds no certificate") || m.contains("not PEM"), "{m}");

    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them.
    let env_b = Berth::families_at(&families, format!("tcp://localhost:{port}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", pki.dir.path().to_str().unwrap());
    assert_eq!(env_b.run(&["run", "system.test-connectivity"]).ok()["summary"]["transport"], "tls");

    // A docker context written as the docker CLI writes it, chosen with --context.
    let cfg = tempfile::tempdir().unwrap();
    let id = hex_sha256("remote-tls");
    let meta = cfg.path().join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).unwrap();
    let doc = serde_json::json!({"Name": "remote-tls", "Metadata": {"Description": "test"}, "Endpoints": {"docker": {"Host": format!("tcp://localhost:{port}"), "SkipTLSVerify": false}}});
    std::fs::write(meta.join("meta.json"), doc.to_string()).unwrap();
    let tlsdir = cfg.path().join("contexts/tls").join(&id).join("docker");
    std::fs::create_dir_all(&tlsdir).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(pki.dir.path().join(f), tlsdir.join(f)).unwrap();
    }
    let ctx_b = Berth::families_at(&families, "unix:///nonexistent.sock".into()).env("DOCKER_CONFIG", cfg.path().to_str().unwrap());
    let j = ctx_b.run(&["--context", "remote-tls", "run", "system.test-connectivity"]);
    assert_eq!(j.ok()["summary"]["transport"], "tls");
    // ... and as the current context of config.json, when no host is given.
    std::fs::write(cfg.path().join("config.json"), r#"{"currentContext": "remote-tls"}"#).unwrap();
    let mut c = ctx_b.command(&["run", "system.version"]);
    c.env_remove("DOCKER_HOST");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = ctx_b.run(&["--context", "nope", "run", "system.ping"]);
    m.expect_code(2);
    assert!(m.message().contains("\"nope\" does not exist"), "{}", m.message());
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// An sshd of our own on 127.0.0.1 (root login by key only), whose sessions get DOCKER_HOST
/// pointing at `engine`, so `docker system dial-stdio` reaches it.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(engine: &str) -> Sshd {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keygen = |file: &Path| {
        let ok = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(file).status().unwrap();
        assert!(ok.success());
    };
    keygen(&d.join("host_key"));
    keygen(&d.join("id"));
    let pubkey = std::fs::read_to_string(d.join("id.pub")).unwrap();
    std::fs::write(d.join("authorized_keys"), format!("environment=\"DOCKER_HOST={engine}\" {pubkey}")).unwrap();
    let port = free_port();
    let sshd_bin = ["/usr/sbin/sshd", "/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("openssh-server is not installed (tests/engine.sh ensure installs it)");
    std::fs::create_dir_all("/run/sshd").unwrap();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitUserEnvironment yes\nStrictModes no\nUsePAM no\nMaxSessions 50\nMaxStartups 50\n",
        d = d.display()
    );
    std::fs::write(d.join("sshd_config"), config).unwrap();
    let child = std::process::Command::new(sshd_bin)
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "sshd did not start: {}", std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(
        d.join("ssh_config"),
        format!("Host *\n  IdentityFile {d}/id\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n", d = d.display()),
    )
    .unwrap();
    Sshd { child, dir, port }
}

#[test]
fn ssh_runs_the_system_container_and_image_families() {
    let engine = docker_host();
    let s = sshd(&engine);
    let cfg = s.dir.path().join("ssh_config");
    let host = format!("ssh://root@127.0.0.1:{}", s.port);
    let b = Berth::families_at(&["system", "container", "image"], host.clone()).env("BERTH_SSH_COMMAND", &format!("ssh -F {}", cfg.display()));
    let j = b.run(&["run", "system.test-connectivity"]);
    assert_eq!(j.ok()["summary"]["transport"], "ssh", "{j:?}");
    b.run(&["run", "system.version"]).ok();
    b.run(&["run", "system.info"]).ok();
    let name = unique("sshc");
    b.run(&["run", "container.create", &format!("image={}", test_image()), &format!("name={name}"), "cmd=sleep 60", "network_mode=none"]).ok();
    b.run(&["run", "container.start", &format!("id={name}")]).ok();
    let ex = b.run(&["run", "container.exec", &format!("id={name}"), "cmd=echo exec-over-ssh"]);
    assert!(ex.ok().to_string().contains("exec-over-ssh"), "{ex:?}");
    b.run(&["run", "container.remove", &format!("id={name}"), "force=true"]).ok();
    assert!(b.run(&["run", "image.list"]).ok().to_string().contains(TEST_IMAGE));
    b.run(&["run", "image.inspect", &format!("name={TEST_IMAGE}")]).ok();
    // BatchMode: a key the server does not know fails at once, with ssh's own words.
    let other = s.dir.path().join("other");
    std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status().unwrap();
    let bad_cfg = s.dir.path().join("bad_config");
    let d = s.dir.path().display();
    std::fs::write(
        &bad_cfg,
        format!("Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n", other.display()),
    )
    .unwrap();
    let bad = Berth::families_at(&["system"], host).env("BERTH_SSH_COMMAND", &format!("ssh -F {}", bad_cfg.display()));
    let started = Instant::now();
    let r = bad.run_within(Duration::from_secs(60), &["run", "system.ping"]);
    assert_ne!(r.code, 0);
    assert!(r.message().contains("Permission denied"), "{}", r.message());
    assert!(started.elapsed() < Duration::from_secs(20), "never prompts, never hangs");
}

/// One HTTPS request to `berth serve`, trusting `ca` and presenting `client` if given.
fn https(addr: &str, ca: &str, client: Option<(&str, &str)>, path: &str, token: &str, body: &str) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    let cfg = match client {
        Some((c, k)) => b.with_client_auth_cert(vec![CertificateDer::from_pem_file(c).unwrap()], PrivateKeyDer::from_pem_file(k).unwrap()).unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), ServerName::try_from("localhost").unwrap()).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    Ok((status, text))
}

#[test]
fn serve_over_https_with_client_certificates() {
    let pki = pki();
    let tenants =
        format!("[[tenant]]\nname = \"soar\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n", common::serve::hash("soar-token"));
    let extra =
        format!("tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n", pki.path("server-cert.pem"), pki.path("server-key.pem"), pki.path("ca.pem"));
    let s = common::serve::Serve::start_with(&[("system.wasm", system_wasm())], &extra, &tenants);
    let addr = s.addr.replace("127.0.0.1", "localhost");
    let (status, text) =
        https(&addr, &pki.path("ca.pem"), Some((&pki.path("cert.pem"), &pki.path("key.pem"))), "/v1/actions/system.ping", "soar-token", "{}").unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Engine answered ping"), "{text}");
    // No client certificate, or one from another CA: refused in the handshake, no HTTP at all.
    let e = https(&addr, &pki.path("ca.pem"), None, "/v1/actions/system.ping", "soar-token", "{}").unwrap_err();
    assert!(e.contains("CertificateRequired") || e.contains("alert"), "{e}");
    let e = https(&addr, &pki.path("ca.pem"), Some((&pki.path("other-cert.pem"), &pki.path("other-key.pem"))), "/v1/actions/system.ping", "soar-token", "{}")
        .unwrap_err();
    assert!(e.contains("alert") || e.contains("BadCertificate") || e.contains("UnknownCA"), "{e}");
    // Plain HTTP to the HTTPS port gets nothing useful.
    assert_ne!(common::serve::http(&s.addr, "GET", "/healthz", None, None).0, 200);
    // A valid client certificate is not a tenant: the bearer token still is.
    let (status, _) =
        https(&addr, &pki.path("ca.pem"), Some((&pki.path("cert.pem"), &pki.path("key.pem"))), "/v1/actions/system.ping", "wrong-token", "{}").unwrap();
    assert_eq!(status, 401);
}

#[test]
fn serve_refuses_plain_http_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = format!(
        "[server]\nlisten = \"0.0.0.0:{}\"\n[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nallow = [\"system.*\"]\n",
        free_port(),
        common::serve::hash("t")
    );
    let err = common::serve::refused_start(&tenants, dir.path());
    assert!(err.contains("plain HTTP") && err.contains("allow_plaintext"), "{err}");
}

/// Flint's model: a request names its engine and gives the TLS material as PEM text. Only a
/// tenant whose `request_engines` allow the address may; every address the name resolves to
/// is checked; PEM fields are never read as paths.
#[test]
fn requests_name_engines_only_where_their_tenant_allows() {
    use serde_json::json;
    let pki = pki();
    let base = PathBuf::from(format!("/tmp/berth-reqeng-{}", std::process::id()));
    let mut engines = Engines(Vec::new());
    let port = free_port();
    engines.start(base.join("tls"), &args(&tls_args(&pki, port, "server-cert.pem", "server-key.pem")));
    let tenants = format!(
        "[[tenant]]\nname = \"flint\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\nrequest_engines = [\"127.0.0.0/8\", \"::1\"]\n\n\
         [[tenant]]\nname = \"fixed\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n",
        common::serve::hash("flint-token"),
        common::serve::hash("fixed-token")
    );
    let s = common::serve::Serve::start(&[("system.wasm", system_wasm())], &tenants);
    let pem = |f: &str| std::fs::read_to_string(pki.path(f)).unwrap();
    let engine = |host: String| json!({"host": host, "ca": pem("ca.pem"), "cert": pem("cert.pem"), "key": pem("key.pem")});
    let run = |token: &str, body: serde_json::Value| {
        common::serve::http(&s.addr, "POST", "/v1/actions/system.test-connectivity", Some(token), Some(&body.to_string()))
    };

    // By name (the certificate's): TLS to the engine the request named, not the tenant's own.
    let (st, j) = run("flint-token", json!({"_engine": engine(format!("tcp://localhost:{port}"))}));
    assert_eq!(st, 200, "{j}");
    assert_eq!(j["summary"]["transport"], "tls", "{j}");
    assert!(j["data"][0]["tls"]["peer_subject"].as_str().unwrap().contains("engine.test"), "{j}");
    assert!(j["parameter"].get("_engine").is_none(), "the engine and its key are not echoed: {j}");
    assert!(!s.log().contains("BEGIN PRIVATE KEY") && !format!("{:?}", s.audit()).contains("PRIVATE KEY"));
    let named: Vec<_> = s.audit().into_iter().filter(|r| r["event"] == "request_engine").collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(
        named[0]["engine"].as_str().unwrap().starts_with("tcp://127.0.0.1:") || named[0]["engine"].as_str().unwrap().starts_with("tcp://[::1]:"),
        "the address it was pinned to: {named:?}"
    );

    // Another tenant may not; an address outside the rules is refused; PEM is text, not a path.
    let (st, j) = run("fixed-token", json!({"_engine": engine(format!("tcp://localhost:{port}"))}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("may not name engines"), "{j}");
    let (st, j) = run("flint-token", json!({"_engine": engine("tcp://192.0.2.10:2376".into())}));
    assert_eq!(st, 403, "{j}");
    assert!(j["message"].as_str().unwrap().contains("not among this tenant's request_engines"), "{j}");
    let (st, j) = run("flint-token", json!({"_engine": {"host": format!("tcp://127.0.0.1:{port}"), "ca": pki.path("ca.pem")}}));
    assert_eq!(st, 400, "{j}");
    assert!(j["message"].as_str().unwrap().contains("must be PEM text"), "{j}");
    let (st, j) = run("flint-token", json!({"_engine": {"host": "unix:///var/run/docker.sock"}}));
    assert_eq!(st, 400, "{j}");
    let (st, _) = common::serve::http(
        &s.addr,
        "POST",
        "/v1/actions/system.ping?asset=default",
        Some("flint-token"),
        Some(&json!({"_engine": engine(format!("tcp://localhost:{port}"))}).to_string()),
    );
    assert_eq!(st, 400, "_engine and asset together");
    // Without _engine, the tenant's own engine as ever.
    assert_eq!(run("flint-token", json!({})).1["summary"]["transport"], "unix");
}
