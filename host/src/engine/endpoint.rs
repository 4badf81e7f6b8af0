//! Where the engine is, as the docker CLI decides it: `--host`/`DOCKER_HOST`, the TLS flags
//! and `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, and docker contexts (`--context`,
//! `DOCKER_CONTEXT`, `currentContext` in `config.json`, `contexts/{meta,tls}`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::tls::{Pem, TlsSettings};
use super::DEFAULT_HOST;

/// An engine address and, for `tcp://`, its TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub tls: Option<TlsSettings>,
    /// HTTP auth to send (an authenticating proxy in front of the engine).
    pub auth: Option<EngineAuth>,
    /// An API version to use as is (`1.41`), never negotiated; `DOCKER_API_VERSION` otherwise.
    pub api_version: Option<String>,
}

impl Endpoint {
    pub fn plain(host: &str) -> Endpoint {
        Endpoint::new(host, None)
    }

    /// `host` with its TLS settings; a `tcp://USER:PASSWORD@host` address gives basic auth, and
    /// the address kept (shown in errors and logs) is without them.
    pub fn new(host: &str, tls: Option<TlsSettings>) -> Endpoint {
        let (host, auth) = take_userinfo(host);
        Endpoint { host, tls, auth, api_version: None }
    }
}

/// HTTP auth to the engine: basic (a user and password) or a bearer token, as an
/// authenticating proxy in front of the engine wants. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum EngineAuth {
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for EngineAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineAuth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            EngineAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl EngineAuth {
    /// The `Authorization` header value, marked sensitive (left out of hyper's debug output).
    pub fn header(&self) -> Result<http::HeaderValue, String> {
        use base64::Engine as _;
        let v = match self {
            EngineAuth::Basic { username, password } => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))),
            EngineAuth::Bearer(t) => format!("Bearer {t}"),
        };
        let mut h = http::HeaderValue::try_from(v).map_err(|_| "the engine credentials hold characters a header cannot carry".to_string())?;
        h.set_sensitive(true);
        Ok(h)
    }

    /// Basic auth from a username and password, or bearer from a token; `None` when none is
    /// given. `password_hint` says how a password is given (in a message to a username alone).
    pub fn from_parts(username: Option<String>, password: Option<String>, token: Option<String>, password_hint: &str) -> Result<Option<EngineAuth>, String> {
        match (username, password, token) {
            (_, Some(_), Some(_)) => Err("a password or a token, not both".into()),
            (Some(username), Some(password), None) => Ok(Some(EngineAuth::Basic { username, password })),
            (None, Some(_), None) => Err("a password needs a username".into()),
            (Some(_), None, None) => Err(format!("a username needs {password_hint}")),
            (None, None, Some(t)) => Ok(Some(EngineAuth::Bearer(t))),
            (Some(_), None, Some(_)) => Err("a token takes no username".into()),
            (None, None, None) => Ok(None),
        }
    }

    /// A password or token from a file: its text without the trailing newline, never empty.
    pub fn read_secret(path: &Path, what: &str) -> Result<String, String> {
        let s = std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        if s.is_empty() {
            return Err(format!("the {what} file {} is empty", path.display()));
        }
        Ok(s)
    }
}

/// `tcp://USER:PASSWORD@HOST:PORT` → (`tcp://HOST:PORT`, basic auth); percent-escapes in the
/// user and password are decoded. Other addresses are returned as they are (`ssh://user@host`
/// names an ssh user, not HTTP auth).
pub fn take_userinfo(addr: &str) -> (String, Option<EngineAuth>) {
    let Some(rest) = addr.strip_prefix("tcp://") else { return (addr.to_string(), None) };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return (addr.to_string(), None) };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (format!("tcp://{host}"), Some(EngineAuth::Basic { username: decode(user), password: decode(pass) }))
}

/// The CLI's flags (each `None`/false when not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub host: Option<String>,
    pub context: Option<String>,
    pub tls: bool,
    pub tlsverify: bool,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub engine_username: Option<String>,
    pub engine_password_file: Option<PathBuf>,
    pub engine_token_file: Option<PathBuf>,
}

/// The environment and the docker config directory, passed in so tests can vary them.
pub struct Env<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: PathBuf,
}

impl Env<'_> {
    pub fn process() -> Env<'static> {
        static VAR: fn(&str) -> Option<String> = |k| std::env::var(k).ok().filter(|v| !v.is_empty());
        let config_dir = crate::credentials::docker_config_dir().unwrap_or_else(|| PathBuf::from(".docker"));
        Env { var: &VAR, config_dir }
    }
    fn get(&self, k: &str) -> Option<String> {
        (self.var)(k).filter(|v| !v.is_empty())
    }
}

/// The context the docker CLI would use: `--context`; `default` when a host is given by flag
/// or `DOCKER_HOST`; then `DOCKER_CONTEXT`; then `currentContext`; then `default`.
pub fn context_name(flags: &Flags, env: &Env) -> anyhow::Result<String> {
    if let Some(c) = &flags.context {
        if flags.host.is_some() {
            anyhow::bail!("conflicting options: give --host or --context, not both");
        }
        return Ok(c.clone());
    }
    if flags.host.is_some() || env.get("DOCKER_HOST").is_some() {
        return Ok("default".into());
    }
    if let Some(c) = env.get("DOCKER_CONTEXT") {
        return Ok(c);
    }
    let cfg = env.config_dir.join("config.json");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cfg.display()))?;
        if let Some(c) = v["currentContext"].as_str().filter(|c| !c.is_empty()) {
            return Ok(c.to_string());
        }
    }
    Ok("default".into())
}

/// Resolves the endpoint from flags, environment and contexts.
pub fn resolve(flags: &Flags, env: &Env) -> anyhow::Result<Endpoint> {
    let name = context_name(flags, env)?;
    if name != "default" {
        let mut ep = from_context(&env.config_dir, &name)?;
        if let (Some(tls), Some(sn)) = (ep.tls.as_mut(), &flags.tls_server_name) {
            tls.server_name = Some(sn.clone());
        }
        return with_auth(ep, flags);
    }
    let host = flags.host.clone().or_else(|| env.get("DOCKER_HOST")).unwrap_or_else(|| DEFAULT_HOST.to_string());
    let verify = flags.tlsverify || env.get("DOCKER_TLS_VERIFY").is_some();
    let any_file = flags.tlscacert.is_some() || flags.tlscert.is_some() || flags.tlskey.is_some();
    if !(flags.tls || verify || any_file) {
        return with_auth(Endpoint::new(&host, None), flags);
    }
    // As the docker CLI: each file defaults to DOCKER_CERT_PATH (or the config dir), and is
    // used only if it exists; a missing CA is an error only when verifying.
    let dir = env.get("DOCKER_CERT_PATH").map(PathBuf::from).unwrap_or_else(|| env.config_dir.clone());
    let mut tls = TlsSettings::from_dir(&dir, verify);
    let given = |p: &Option<PathBuf>, what: &str| -> anyhow::Result<Option<Pem>> {
        match p {
            Some(p) if p.exists() => Ok(Some(Pem::File(p.clone()))),
            Some(p) => anyhow::bail!("the {what} {} does not exist", p.display()),
            None => Ok(None),
        }
    };
    if let Some(ca) = given(&flags.tlscacert, "CA certificate (--tlscacert)")? {
        tls.ca = Some(ca);
    }
    if let Some(c) = given(&flags.tlscert, "client certificate (--tlscert)")? {
        tls.cert = Some(c);
    }
    if let Some(k) = given(&flags.tlskey, "client key (--tlskey)")? {
        tls.key = Some(k);
    }
    tls.server_name = flags.tls_server_name.clone();
    if !host.starts_with("tcp://") {
        anyhow::bail!("TLS needs a tcp:// engine address, not '{host}'");
    }
    with_auth(Endpoint::new(&host, Some(tls)), flags)
}

/// Credentials from the flags (files) take the place of any in the address.
fn with_auth(mut ep: Endpoint, flags: &Flags) -> anyhow::Result<Endpoint> {
    let read = |p: &Option<PathBuf>, what| p.as_deref().map(|p| EngineAuth::read_secret(p, what)).transpose();
    let auth = (|| {
        let password = read(&flags.engine_password_file, "engine password")?;
        let token = read(&flags.engine_token_file, "engine token")?;
        EngineAuth::from_parts(flags.engine_username.clone(), password, token, "a password file (--engine-password-file)")
    })()
    .map_err(|e| anyhow::anyhow!("engine credentials: {e}"))?;
    if let Some(auth) = auth {
        ep.auth = Some(auth);
    }
    Ok(ep)
}

/// The directory name the docker CLI stores a context under: the SHA-256 of its name.
pub fn context_dir_name(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// A named context from `contexts/meta/<id>/meta.json` and `contexts/tls/<id>/docker/`.
pub fn from_context(config_dir: &Path, name: &str) -> anyhow::Result<Endpoint> {
    let id = context_dir_name(name);
    let meta_path = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|_| anyhow::anyhow!("docker context \"{name}\" does not exist (no {})", meta_path.display()))?;
    let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", meta_path.display()))?;
    let docker = &meta["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("docker context \"{name}\" has no docker endpoint Host ({})", meta_path.display()))?;
    let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
    let skip = docker["SkipTLSVerify"].as_bool().unwrap_or(false);
    let tls = TlsSettings::from_dir(&tls_dir, !skip);
    let has_tls = tls.ca.is_some() || tls.cert.is_some() || tls.key.is_some();
    Ok(Endpoint::new(host, (has_tls || (skip && host.starts_with("tcp://"))).then_some(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_a_tcp_address_is_basic_auth_and_leaves_the_address() {
        let (host, auth) = take_userinfo("tcp://soar:pa%40ss%20w@10.0.0.5:2376");
        assert_eq!(host, "tcp://10.0.0.5:2376");
        assert_eq!(auth, Some(EngineAuth::Basic { username: "soar".into(), password: "pa@ss w".into() }));
        assert_eq!(take_userinfo("ssh://ops@host").0, "ssh://ops@host");
        assert_eq!(take_userinfo("tcp://host:2375/path@x"), ("tcp://host:2375/path@x".to_string(), None));
        let shown = format!("{:?}", EngineAuth::Basic { username: "soar".into(), password: "hunter2".into() });
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(EngineAuth::Bearer("t".into()).header().unwrap(), "Bearer t");
    }
    use std::collections::HashMap;

    type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

    fn env<'a>(vars: &'a HashMap<&'static str, String>, dir: &Path) -> (Lookup<'a>, PathBuf) {
        (Box::new(move |k: &str| vars.get(k).cloned()), dir.to_path_buf())
    }

    fn write_context(dir: &Path, name: &str, host: &str, tls: bool) {
        let id = context_dir_name(name);
        let meta = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        let doc = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(meta.join("meta.json"), doc.to_string()).unwrap();
        if tls {
            let t = dir.join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&t).unwrap();
            std::fs::write(t.join("ca.pem"), "x").unwrap();
        }
    }

    #[test]
    fn the_docker_cli_order() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), "prod", "tcp://10.0.0.1:2376", true);
        write_context(dir.path(), "lab", "ssh://ops@lab", false);
        std::fs::write(dir.path().join("config.json"), r#"{"currentContext": "lab"}"#).unwrap();
        let mut vars = HashMap::new();
        let resolve_with = |vars: &HashMap<&'static str, String>, flags: &Flags| {
            let (f, d) = env(vars, dir.path());
            resolve(flags, &Env { var: &*f, config_dir: d })
        };
        // currentContext from config.json
        assert_eq!(resolve_with(&vars, &Flags::default()).unwrap().host, "ssh://ops@lab");
        // DOCKER_CONTEXT over it
        vars.insert("DOCKER_CONTEXT", "prod".to_string());
        let ep = resolve_with(&vars, &Flags::default()).unwrap();
        assert_eq!(ep.host, "tcp://10.0.0.1:2376");
        let tls = ep.tls.unwrap();
        assert!(tls.verify && tls.ca.is_some() && tls.cert.is_none());
        // DOCKER_HOST over both: the default context
        vars.insert("DOCKER_HOST", "unix:///x.sock".to_string());
        assert_eq!(resolve_with(&vars, &Flags::default()).unwrap(), Endpoint::plain("unix:///x.sock"));
        // --context over DOCKER_HOST
        let flags = Flags { context: Some("lab".into()), ..Flags::default() };
        assert_eq!(resolve_with(&vars, &flags).unwrap().host, "ssh://ops@lab");
        let both = Flags { context: Some("lab".into()), host: Some("unix:///y".into()), ..Flags::default() };
        assert!(resolve_with(&vars, &both).unwrap_err().to_string().contains("not both"));
        let missing = Flags { context: Some("nope".into()), ..Flags::default() };
        assert!(resolve_with(&vars, &missing).unwrap_err().to_string().contains("\"nope\" does not exist"));
        // TLS from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let mut vars = HashMap::new();
        vars.insert("DOCKER_HOST", "tcp://h:2376".to_string());
        vars.insert("DOCKER_TLS_VERIFY", "1".to_string());
        vars.insert("DOCKER_CERT_PATH", dir.path().display().to_string());
        let ep = resolve_with(&vars, &Flags::default()).unwrap();
        let tls = ep.tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca, Some(Pem::File(dir.path().join("ca.pem"))));
        assert_eq!(tls.cert, None, "absent files are not used");
        let flags = Flags { tlscert: Some(dir.path().join("nope.pem")), ..Flags::default() };
        assert!(resolve_with(&vars, &flags).unwrap_err().to_string().contains("does not exist"));
    }
}
