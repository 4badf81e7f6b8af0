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
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("cannot open the audit log {}: {e}", p.display()))?,
            )),
        };
        Ok(Audit { file })
    }

    /// Writes one record. `params` must already be redacted (the action_result echo is).
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, tenant: &str, action: &str, params: &Map<String, Value>, result: &ActionResult, took: Duration, calls: &[CallRecord], denial: Option<&str>) {
        let Some(file) = &self.file else { return };
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let rec = json!({
            "ts": ts,
            "tenant": tenant,
            "action": action,
            "params": params,
            "status": result.status,
            "error": result.error,
            "message": result.message,
            "duration_ms": took.as_secs_f64() * 1e3,
            "engine_calls": calls,
            "denied": denial,
        });
        let mut line = serde_json::to_vec(&rec).expect("json");
        line.push(b'\n');
        // One write per record on an O_APPEND file: records never interleave.
        if let Err(e) = file.lock().unwrap().write_all(&line) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}
