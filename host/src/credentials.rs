//! Registry credentials, held by the host only. Guests name a registry; the host attaches
//! `X-Registry-Auth` (base64url JSON) or builds the `/auth` body. Nothing here is ever logged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// One registry's credentials, in the Engine API's `AuthConfig` shape.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub password: String,
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty", default)]
    pub server_address: String,
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty", default)]
    pub identity_token: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig").field("username", &self.username).field("server_address", &self.server_address).field("password", &"<redacted>").finish()
    }
}

impl AuthConfig {
    /// The `X-Registry-Auth` header value: base64url of the JSON config.
    pub fn header_value(&self) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(self).expect("serialises"))
    }
    /// The body of `POST /auth`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serialises")
    }
    /// Every string that must never show in output or logs.
    pub fn secrets(&self) -> Vec<&str> {
        [self.password.as_str(), self.identity_token.as_str()].into_iter().filter(|s| s.len() >= 4).collect()
    }
}

/// The docker CLI's config directory: `$DOCKER_CONFIG`, else `~/.docker` (credentials,
/// `currentContext` and contexts live there).
pub fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// Where credentials come from: berth's own file first, then the docker CLI's config.
#[derive(Debug, Default, Clone)]
pub struct CredentialStore {
    entries: HashMap<String, AuthConfig>,
}

#[derive(Deserialize)]
struct BerthFile {
    #[serde(default)]
    registries: HashMap<String, AuthConfig>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

impl CredentialStore {
    /// Loads `berth_file` (JSON `{"registries": {"host:port": {"username", "password"}}}`) if
    /// given, then `docker_config` (`~/.docker/config.json` `auths`) for registries not yet set.
    pub fn load(berth_file: Option<&Path>, docker_config: Option<&Path>) -> anyhow::Result<Self> {
        let mut store = CredentialStore::default();
        if let Some(p) = berth_file {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading credentials file {}", p.display()))?;
            let f: BerthFile = serde_json::from_str(&text)
                .with_context(|| format!("credentials file {}: expected {{\"registries\": {{\"host\": {{\"username\", \"password\"}}}}}}", p.display()))?;
            for (reg, mut cfg) in f.registries {
                if cfg.server_address.is_empty() {
                    cfg.server_address = reg.clone();
                }
                store.entries.insert(normalize(&reg), cfg);
            }
        }
        if let Some(p) = docker_config.filter(|p| p.exists()) {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let c: DockerConfig = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            for (reg, a) in c.auths {
                let key = normalize(&reg);
                if store.entries.contains_key(&key) {
                    continue;
                }
                let mut cfg = AuthConfig { username: a.username, password: a.password, server_address: reg.clone(), identity_token: a.identity_token };
                if !a.auth.is_empty() {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(a.auth.trim())
                        .with_context(|| format!("{}: auths.\"{reg}\".auth is not base64", p.display()))?;
                    let raw = String::from_utf8(raw).with_context(|| format!("{}: auths.\"{reg}\".auth is not UTF-8", p.display()))?;
                    let (u, pw) = raw.split_once(':').with_context(|| format!("{}: auths.\"{reg}\".auth is not base64 of user:password", p.display()))?;
                    cfg.username = u.to_string();
                    cfg.password = pw.to_string();
                }
                store.entries.insert(key, cfg);
            }
        }
        Ok(store)
    }

    /// The default docker CLI config path: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub fn docker_config_path() -> Option<PathBuf> {
        docker_config_dir().map(|d| d.join("config.json"))
    }

    pub fn get(&self, registry: &str) -> Option<&AuthConfig> {
        self.entries.get(&normalize(registry))
    }

    pub fn insert(&mut self, registry: &str, cfg: AuthConfig) {
        self.entries.insert(normalize(registry), cfg);
    }

    /// Every secret held, so output and logs can be checked or scrubbed.
    pub fn secrets(&self) -> Vec<&str> {
        self.entries.values().flat_map(AuthConfig::secrets).collect()
    }
}

/// `https://host:port/v2/` and `host:port` name the same registry; Docker Hub has many names.
pub fn normalize(registry: &str) -> String {
    let r = registry.trim();
    let r = r.strip_prefix("https://").or_else(|| r.strip_prefix("http://")).unwrap_or(r);
    let host = r.split('/').next().unwrap_or(r).to_ascii_lowercase();
    match host.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalize(DOCKER_HUB), "docker.io");
        assert_eq!(normalize("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(normalize("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn header_is_base64url_json() {
        let c = AuthConfig { username: "u".into(), password: "p?>".into(), server_address: "r".into(), ..Default::default() };
        let h = c.header_value();
        assert!(!h.contains('+') && !h.contains('/'));
        let back = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&back).unwrap(), serde_json::json!({"username":"u","password":"p?>","serveraddress":"r"}));
        assert!(!format!("{c:?}").contains("p?>"));
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, r#"{"auths":{"https://127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjN0"}}}"#).unwrap();
        let s = CredentialStore::load(None, Some(&p)).unwrap();
        let c = s.get("127.0.0.1:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "s3cr3t"));
    }
}

/// Credentials loaded on first use, so that runs that never touch a registry never read them.
#[derive(Debug, Default)]
pub struct Credentials {
    berth_file: Option<PathBuf>,
    docker_config: Option<PathBuf>,
    cell: std::sync::OnceLock<Result<CredentialStore, String>>,
}

impl Credentials {
    pub fn new(berth_file: Option<PathBuf>, docker_config: Option<PathBuf>) -> Self {
        Credentials { berth_file, docker_config, cell: std::sync::OnceLock::new() }
    }

    /// Already-loaded credentials (tests, server config).
    pub fn from_store(store: CredentialStore) -> Self {
        let c = Credentials::default();
        let _ = c.cell.set(Ok(store));
        c
    }

    fn store(&self) -> Result<&CredentialStore, String> {
        self.cell
            .get_or_init(|| CredentialStore::load(self.berth_file.as_deref(), self.docker_config.as_deref()).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn get(&self, registry: &str) -> Result<Option<AuthConfig>, String> {
        Ok(self.store()?.get(registry).cloned())
    }

    /// Secrets of loaded credentials (none if they were never needed).
    pub fn loaded_secrets(&self) -> Vec<String> {
        match self.cell.get() {
            Some(Ok(s)) => s.secrets().into_iter().map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }
}
