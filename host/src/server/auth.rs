//! Who is asking: bearer tokens compared as hashes in constant time, the per-tenant token
//! bucket, and the metrics token.

use http::HeaderMap;

use super::{config, Server, TenantState};

/// Constant-time comparison of two hashes.
pub(super) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
}

impl Server {
    pub(super) fn tenant(&self, headers: &HeaderMap) -> Option<&TenantState> {
        let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        let h = config::hash_token(token);
        // Compare against every tenant so timing reveals nothing.
        let mut found = None;
        for t in &self.tenants {
            if ct_eq(&t.tenant.token_sha256, &h) {
                found = Some(t);
            }
        }
        found
    }

    /// The tenant's token bucket (`requests_per_minute`, bursts up to a minute's worth). With
    /// a shared job store the count is the store's, across replicas (a fixed minute window);
    /// when that store cannot answer, this replica's own bucket decides. Over the rate: why.
    pub(super) async fn take_rate(&self, t: &TenantState) -> Result<(), String> {
        let local = t.rate.check().is_ok();
        let ok = if !self.store.shared() {
            local
        } else {
            match self.store.take_rate(&t.tenant.name, t.tenant.requests_per_minute).await {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::warn!("{e}; counting the request rate on this replica alone");
                    local
                }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("tenant {} is over {} requests per minute", t.tenant.name, t.tenant.requests_per_minute))
        }
    }

    /// Whether a request carries the metrics token (`server.metrics_token_sha256`).
    pub(super) fn metrics_authorized(&self, headers: &HeaderMap) -> Option<bool> {
        let want = self.metrics_token.as_ref()?;
        let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(|t| config::hash_token(t.trim()));
        Some(given.is_some_and(|g| ct_eq(want, &g)))
    }
}
