//! The audit log: one JSON line per invocation or refusal, secrets already redacted.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::runtime::CallRecord;
use crate::spec::ActionResult;

pub struct Audit {
    file: Option<Mutex<std::fs::File>>,
}

impl Audit {
    pub fn open(path: Option<&Path>) -> anyhow::Result<Audit> {
        let file = match path {
            None => None,
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| anyhow::anyhow!("cannot open the audit log {}: {e}", p.display()))?,
            )),
        };
        Ok(Audit { file })
    }

    /// Makes every record written so far durable (at a graceful stop).
    pub fn flush(&self) {
        if let Some(f) = &self.file {
            let f = f.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.sync_all() {
                tracing::warn!("audit log: {e}");
            }
        }
    }

    /// Writes one record. `params` must already be redacted of declared secrets (the
    /// action_result echo is); environment values and secret-like fields are redacted here.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        tenant: &str,
        action: &str,
        params: &Map<String, Value>,
        result: &ActionResult,
        took: Duration,
        calls: &[CallRecord],
        denial: Option<&str>,
    ) {
        if self.file.is_none() {
            return;
        }
        self.write(&json!({
            "ts": now(),
            "tenant": tenant,
            "action": action,
            "params": redact_secretish(&Value::Object(params.clone())),
            "status": result.status,
            "error": result.error,
            "message": result.message,
            "duration_ms": took.as_secs_f64() * 1e3,
            "engine_calls": calls,
            "denied": denial,
        }));
    }

    /// Chain of custody: one record per output artifact an invocation wrote (a forensic
    /// bundle, an export), with its file name, size and sha256.
    pub fn artifacts(&self, tenant: &str, action: &str, written: &[crate::runtime::artifacts::Written]) {
        for w in written {
            let name = w.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            self.write(&json!({"ts": now(), "tenant": tenant, "action": action, "artifact": name, "size": w.size, "sha256": w.sha256}));
        }
    }

    /// A request that named its own engine (`_engine`): the address it was pinned to.
    pub fn request_engine(&self, tenant: &str, action: &str, engine: &str) {
        self.write(&json!({"ts": now(), "tenant": tenant, "action": action, "event": "request_engine", "engine": engine}));
    }

    /// An input artifact a tenant uploaded, with its size and sha256.
    pub fn upload(&self, tenant: &str, name: &str, size: u64, sha256: &str) {
        self.write(&json!({"ts": now(), "tenant": tenant, "action": "artifact.upload", "artifact": name, "size": size, "sha256": sha256}));
    }

    /// An async job's life: `started`, `done`, `cancelled`, `interrupted` (its server stopped
    /// while it ran), each with the job id, so its trail is complete across restarts.
    pub fn job(&self, tenant: &str, action: &str, job: &str, event: &str, message: Option<&str>) {
        self.write(&json!({"ts": now(), "tenant": tenant, "action": action, "job": job, "event": event, "message": message}));
    }

    /// One record, one line. One write per record on an O_APPEND file: records never
    /// interleave.
    fn write(&self, rec: &Value) {
        let Some(file) = &self.file else { return };
        let mut line = serde_json::to_vec(rec).expect("json");
        line.push(b'\n');
        if let Err(e) = file.lock().unwrap().write_all(&line) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}

/// Seconds since the epoch, for a record's `ts`.
fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Keys whose values never reach the audit log, wherever they sit in the params.
fn secretish(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    ["password", "passwd", "secret", "token", "credential", "auth", "private_key", "apikey", "api_key", "identitytoken"].iter().any(|s| k.contains(s))
}

/// Redacts environment values (`K=V` → `K=<redacted>`, `{"K": "V"}` → `{"K": "<redacted>"}`)
/// and secret-like fields, recursively.
pub fn redact_secretish(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let red = if secretish(k) {
                        json!("<redacted>")
                    } else if k.eq_ignore_ascii_case("env") {
                        redact_env(v)
                    } else {
                        redact_secretish(v)
                    };
                    (k.clone(), red)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_secretish).collect()),
        other => other.clone(),
    }
}

fn redact_env(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|e| match e.as_str() {
                    Some(s) => json!(format!("{}=<redacted>", s.split('=').next().unwrap_or(""))),
                    None => json!("<redacted>"),
                })
                .collect(),
        ),
        Value::Object(m) => Value::Object(m.keys().map(|k| (k.clone(), json!("<redacted>"))).collect()),
        Value::String(s) => json!(s.lines().map(|l| format!("{}=<redacted>", l.split('=').next().unwrap_or(""))).collect::<Vec<_>>().join("\n")),
        _ => json!("<redacted>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_secretish_fields_are_redacted() {
        let v = json!({"env": ["A=1", "PASS=hunter2"], "body": {"Env": ["X=y"], "Image": "a", "HostConfig": {"x": 1}}, "registry_password": "p", "labels": {"a": "b"}});
        let r = redact_secretish(&v);
        assert_eq!(
            r,
            json!({"env": ["A=<redacted>", "PASS=<redacted>"], "body": {"Env": ["X=<redacted>"], "Image": "a", "HostConfig": {"x": 1}}, "registry_password": "<redacted>", "labels": {"a": "b"}})
        );
        assert!(!r.to_string().contains("hunter2"));
    }
}
