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
