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
}

impl Endpoint {
    pub fn plain(host: &str) -> Endpoint {
        Endpoint { host: host.to_string(), tls: None }
    }
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
        return Ok(ep);
    }
    let host = flags.host.clone().or_else(|| env.get("DOCKER_HOST")).unwrap_or_else(|| DEFAULT_HOST.to_string());
    let verify = flags.tlsverify || env.get("DOCKER_TLS_VERIFY").is_some();
    let any_file = flags.tlscacert.is_some() || flags.tlscert.is_some() || flags.tlskey.is_some();
    if !(flags.tls || verify || any_file) {
        return Ok(Endpoint { host, tls: None });
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
    Ok(Endpoint { host, tls: Some(tls) })
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
    Ok(Endpoint { host: host.to_string(), tls: (has_tls || (skip && host.starts_with("tcp://"))).then_some(tls) })
}

#[cfg(test)]
mod tests {
    use super::*;
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
