//! One invocation pipeline, used by the CLI and the server alike: the action-level checks of a
//! policy (allowlist, read-only, pins), loading the component, and running it in a fresh
//! sandbox under the gate, its limits and its artifacts.

use serde_json::{Map, Value};

use crate::policy::{Policy, TenantPolicy};
use crate::runtime::{Artifacts, ComponentFile, HostContext, Limits, Outcome, Runtime};
use crate::spec::{ActionResult, ActionSpec, FailureKind, RawParams};

/// Everything one invocation needs.
pub struct Invocation<'a> {
    pub runtime: &'a Runtime,
    pub file: &'a ComponentFile,
    pub spec: &'a ActionSpec,
    pub params: Map<String, Value>,
    pub artifacts: Artifacts,
    pub limits: Limits,
    pub policy: Policy,
    pub ctx: HostContext,
}

/// Checks before anything runs: the tenant's (or `--policy` file's) allowlist, read-only
/// flag and pins, then the params. `who` names the tenant in messages.
pub fn admit(tenant: Option<&TenantPolicy>, who: &str, file: &ComponentFile, spec: &ActionSpec, raw: RawParams) -> Result<Map<String, Value>, ActionResult> {
    if let Some(tp) = tenant {
        tp.admit_action(who, &spec.name, spec.read_only, &file.family.name, &file.sha256)
            .map_err(|why| ActionResult::failed(Map::new(), FailureKind::Denied, None, why))?;
    }
    spec.validate(raw).map_err(|e| ActionResult::failed(Map::new(), FailureKind::BadParams, None, e.0))
}

/// The gate's policy for an action: the tenant's, or the open one (the CLI without `--policy`).
pub fn policy_for(tenant: Option<&TenantPolicy>, spec: &ActionSpec) -> Policy {
    match tenant {
        Some(tp) => tp.for_invocation(spec.read_only),
        None => Policy::for_action(spec.read_only),
    }
}

impl Invocation<'_> {
    /// Loads the component (once per runtime) and runs the action.
    pub async fn run(self) -> Outcome {
        let started = std::time::Instant::now();
        let prepared = match self.runtime.prepare(self.file) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("cannot load {}: {e:#}", self.file.path.display());
                return Outcome {
                    result: ActionResult::failed(self.spec.redact(&self.params), FailureKind::Internal, None, msg),
                    calls: Vec::new(),
                    duration: started.elapsed(),
                    written: Vec::new(),
                };
            }
        };
        tracing::debug!(component = %self.file.path.display(), source = ?prepared.source, contract = %prepared.pre.contract(), "component loaded");
        self.runtime.invoke_with(&prepared, self.ctx, self.spec, self.params, self.artifacts, self.limits, self.policy).await
    }
}

/// Where a fan-out's runs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOut {
    /// On the caller's runtime, concurrently (`berth serve`: its workers already run requests
    /// in parallel, and each keeps its engine connections on its own runtime).
    Here,
    /// A thread and a runtime per engine (the CLI: the guests' CPU work and each engine's
    /// answers are handled in parallel instead of taking turns on one thread).
    Threads,
}

/// Fan-out: one action on several engines (a tenant's assets, or the CLI's `--asset`s), each
/// in its own sandbox, at most `bound` at once, each within `timeout`. One engine failing or
/// timing out does not fail the others: the result merges every asset's rows, each tagged
/// with an `asset` field, and gives a status per asset. `where_` says where the runs go.
pub async fn fan_out(runs: Vec<(String, Invocation<'_>)>, timeout: std::time::Duration, bound: usize, where_: FanOut) -> (ActionResult, Vec<Outcome>) {
    let echo = runs.first().map(|(_, i)| i.spec.redact(&i.params)).unwrap_or_default();
    if where_ == FanOut::Here {
        return fan_out_here(echo, runs, timeout, bound).await;
    }
    // Each engine gets a thread and an async runtime of its own, `bound` at a time: the
    // guests' CPU work and the host's handling of each engine's answers run in parallel
    // instead of taking turns on the caller's thread.
    let mut done: Vec<(String, Option<Outcome>)> = Vec::new();
    let mut runs = runs.into_iter().peekable();
    while runs.peek().is_some() {
        let batch: Vec<(String, Invocation<'_>)> = runs.by_ref().take(bound.max(1)).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .into_iter()
                .map(|(asset, inv)| {
                    s.spawn(move || {
                        let outcome = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(rt) => rt.block_on(async { tokio::time::timeout(timeout, inv.run()).await.ok() }),
                            Err(_) => None,
                        };
                        (asset, outcome)
                    })
                })
                .collect();
            for h in handles {
                done.push(h.join().expect("a fan-out thread panicked"));
            }
        });
    }
    collect(echo, done, timeout)
}

/// The runs on the caller's runtime, `bound` at a time.
async fn fan_out_here(
    echo: Map<String, Value>,
    runs: Vec<(String, Invocation<'_>)>,
    timeout: std::time::Duration,
    bound: usize,
) -> (ActionResult, Vec<Outcome>) {
    let gate = tokio::sync::Semaphore::new(bound.max(1));
    let tasks = runs.into_iter().map(|(asset, inv)| {
        let gate = &gate;
        async move {
            let _permit = gate.acquire().await.expect("semaphore open");
            (asset, tokio::time::timeout(timeout, inv.run()).await.ok())
        }
    });
    let done = futures_util::future::join_all(tasks).await;
    collect(echo, done, timeout)
}

fn collect(echo: Map<String, Value>, done: Vec<(String, Option<Outcome>)>, timeout: std::time::Duration) -> (ActionResult, Vec<Outcome>) {
    let mut per_asset: Vec<(String, Result<ActionResult, String>)> = Vec::new();
    let mut outcomes = Vec::new();
    for (asset, outcome) in done {
        match outcome {
            Some(o) => {
                per_asset.push((asset, Ok(o.result.clone())));
                outcomes.push(o);
            }
            None => per_asset.push((asset, Err(format!("no answer within {timeout:?}")))),
        }
    }
    (merge(echo, per_asset), outcomes)
}

/// Merges per-asset results: rows tagged with `asset`, a `summary.assets` status per asset,
/// success when any asset succeeded.
pub fn merge(echo: Map<String, Value>, per_asset: Vec<(String, Result<ActionResult, String>)>) -> ActionResult {
    let mut data = Vec::new();
    let mut assets = Map::new();
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for (asset, r) in per_asset {
        let status = match r {
            Ok(r) if r.error.is_none() => {
                for row in r.data {
                    data.push(match row {
                        Value::Object(mut m) => {
                            m.insert("asset".into(), Value::String(asset.clone()));
                            Value::Object(m)
                        }
                        other => serde_json::json!({"asset": asset, "value": other}),
                    });
                }
                ok.push(asset.clone());
                serde_json::json!({"status": "success", "message": r.message, "summary": r.summary})
            }
            Ok(r) => {
                failed.push(format!("{asset}: {}", r.message));
                serde_json::json!({"status": "failed", "message": r.message, "error": r.error})
            }
            Err(why) => {
                failed.push(format!("{asset}: {why}"));
                serde_json::json!({"status": "timeout", "message": why})
            }
        };
        assets.insert(asset, status);
    }
    let n = ok.len() + failed.len();
    let mut message = format!("{n} assets: {} succeeded, {} failed", ok.len(), failed.len());
    if !failed.is_empty() {
        message.push_str(&format!(" ({})", failed.join("; ")));
    }
    let mut summary = Map::new();
    summary.insert("total_objects".into(), data.len().into());
    summary.insert("assets_succeeded".into(), ok.len().into());
    summary.insert("assets_failed".into(), failed.len().into());
    summary.insert("assets".into(), Value::Object(assets));
    if ok.is_empty() {
        let mut r = ActionResult::failed(echo, FailureKind::Engine, None, message);
        r.summary = summary;
        return r;
    }
    ActionResult::success(echo, message, data, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merged_rows_carry_their_asset_and_one_failure_fails_no_other() {
        let ok = |rows: Vec<Value>| {
            let Value::Object(s) = json!({"total_objects": rows.len()}) else { unreachable!() };
            ActionResult::success(Map::new(), "fine".into(), rows, s)
        };
        let down = ActionResult::failed(Map::new(), FailureKind::Engine, None, "cannot connect".into());
        let r = merge(
            Map::new(),
            vec![("a".into(), Ok(ok(vec![json!({"Id": 1}), json!(7)]))), ("b".into(), Ok(down)), ("c".into(), Err("no answer within 2s".into()))],
        );
        assert!(r.error.is_none(), "{r:?}");
        assert_eq!(r.data, vec![json!({"Id": 1, "asset": "a"}), json!({"asset": "a", "value": 7})]);
        assert_eq!(r.summary["assets"]["a"]["status"], "success");
        assert_eq!(r.summary["assets"]["b"]["status"], "failed");
        assert_eq!(r.summary["assets"]["c"]["status"], "timeout");
        assert_eq!((r.summary["assets_succeeded"].clone(), r.summary["assets_failed"].clone()), (json!(1), json!(2)));
        assert!(r.message.contains("b: cannot connect") && r.message.contains("c: no answer"), "{}", r.message);
        // All failed: the merged result fails, still with every asset's status.
        let r = merge(Map::new(), vec![("c".into(), Err("no answer".into()))]);
        assert!(r.error.is_some());
        assert_eq!(r.summary["assets"]["c"]["status"], "timeout");
    }
}
