//! What a tenant (or a CLI run under `--policy FILE`) may run: the action allowlist, pins and
//! the read-only flag, checked before an invocation starts. What its engine calls may do is
//! the gate's business ([`super::Policy::admit`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{EnginePolicy, Policy};

/// A tenant's whole policy.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    /// Action globs; `!glob` excludes.
    pub allow: Vec<String>,
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
        TenantPolicy { allow: vec!["*".into()], read_only: false, label_scope: None, pins: BTreeMap::new(), engine: Arc::new(EnginePolicy::unrestricted()) }
    }
}

impl TenantPolicy {
    /// Whether the allowlist admits `action`: some positive glob matches and no `!glob` does.
    pub fn allows(&self, action: &str) -> bool {
        let mut allowed = false;
        for g in &self.allow {
            match g.strip_prefix('!') {
                Some(neg) if glob(neg, action) => return false,
                Some(_) => {}
                None => allowed |= glob(g, action),
            }
        }
        allowed
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

    /// The gate's policy for one invocation of an action.
    pub fn for_invocation(&self, action_read_only: bool, engine_socket: Option<String>) -> Policy {
        Policy {
            read_only: action_read_only || self.read_only,
            label_scope: self.label_scope.clone(),
            rules: self.engine.clone(),
            engine_socket,
        }
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("container.*", "container.stop"));
        assert!(glob("*", "anything"));
        assert!(!glob("container.*", "image.list"));
        assert!(glob("*.list", "image.list"));
        assert!(glob("list *", "list container"));
    }

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
