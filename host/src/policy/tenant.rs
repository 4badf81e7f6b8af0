//! What a tenant (or a CLI run under `--policy FILE`) may run: the action allowlist, pins and
//! the read-only flag, checked before an invocation starts. What its engine calls may do is
//! the gate's business ([`super::Policy::admit`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{EnginePolicy, Globs, Policy};

/// A tenant's whole policy.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    /// Action globs; `!glob` excludes.
    pub allow: Vec<String>,
    /// `allow`, compiled: (positive, negative).
    pub(crate) compiled: std::sync::OnceLock<(Globs, Globs)>,
    /// Only read-only actions, and only GET/HEAD engine calls.
    pub read_only: bool,
    /// `key=value`: the tenant sees and touches only objects carrying this label.
    pub label_scope: Option<(String, String)>,
    /// Family name → required component sha256.
    pub pins: BTreeMap<String, String>,
    /// What request bodies may hold.
    pub engine: Arc<EnginePolicy>,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        TenantPolicy {
            allow: vec!["*".into()],
            compiled: Default::default(),
            read_only: false,
            label_scope: None,
            pins: BTreeMap::new(),
            engine: Arc::new(EnginePolicy::unrestricted()),
        }
    }
}

impl TenantPolicy {
    /// Whether the allowlist admits `action`: some positive glob matches and no `!glob` does.
    /// Whether the tenant may run an action (its allowlist, and read-only): what its catalog
    /// and its OpenAPI document list.
    pub fn lists(&self, action: &str, action_read_only: bool) -> bool {
        self.allows(action) && (!self.read_only || action_read_only)
    }

    pub fn allows(&self, action: &str) -> bool {
        let (yes, no) = self.compiled.get_or_init(|| {
            let (neg, pos): (Vec<&str>, Vec<&str>) = self.allow.iter().map(String::as_str).partition(|g| g.starts_with('!'));
            let neg: Vec<&str> = neg.iter().map(|g| &g[1..]).collect();
            // Patterns are checked when the config is read; an invalid one matches nothing.
            (Globs::new(&pos).unwrap_or_default(), Globs::new(&neg).unwrap_or_default())
        });
        yes.is_match(action) && !no.is_match(action)
    }

    /// Checks before running `action` of component `family` (sha256 `sha`): allowlist,
    /// read-only flag, pins. `who` names the tenant in messages.
    pub fn admit_action(&self, who: &str, action: &str, action_read_only: bool, family: &str, sha: &str) -> Result<(), String> {
        if !self.allows(action) {
            return Err(format!("{who} may not run {action}"));
        }
        if self.read_only && !action_read_only {
            return Err(format!("{who} is read-only and {action} is not"));
        }
        if let Some(pin) = self.pins.get(family) {
            if pin != sha {
                return Err(format!("component {family} has sha256 {sha}, but {who} pins {pin}"));
            }
        }
        Ok(())
    }

    /// The gate's policy for one invocation of an action (the engine's socket is filled in
    /// from the invocation's engine).
    pub fn for_invocation(&self, action_read_only: bool) -> Policy {
        Policy {
            read_only: action_read_only || self.read_only,
            label_scope: self.label_scope.clone(),
            rules: self.engine.clone(),
            engine_socket: None,
            operations: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_checks() {
        let mut t = TenantPolicy { allow: vec!["container.*".into(), "!container.remove".into()], ..Default::default() };
        assert!(t.admit_action("red", "container.stop", false, "container", "aa").is_ok());
        assert!(t.admit_action("red", "container.remove", false, "container", "aa").is_err());
        assert!(t.admit_action("red", "system.ping", true, "system", "aa").is_err());
        t.read_only = true;
        assert!(t.admit_action("red", "container.stop", false, "container", "aa").unwrap_err().contains("read-only"));
        assert!(t.admit_action("red", "container.list", true, "container", "aa").is_ok());
        t.pins.insert("container".into(), "bb".into());
        assert!(t.admit_action("red", "container.list", true, "container", "aa").unwrap_err().contains("pins"));
    }
}
