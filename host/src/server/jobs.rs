//! Async jobs: recorded in the job store before they start, their results stored when they
//! finish, cancellable by their own tenant only, from any replica. This process keeps only
//! the handles of the jobs it runs, to abort them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::store::{Interrupted, NewJob};
use super::{error, json_response, Resp, Server, TenantState};
use crate::spec::{ActionResult, FailureKind};

/// How often a replica renews a lease of `lease` and looks for its jobs cancelled elsewhere:
/// every 2 s, and at least three times a lease, so one late renewal does not look like a
/// dead replica.
pub(super) fn heartbeat(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(2))
}

fn job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The answer when the store cannot be reached: the job's fate is unknown to this request.
fn store_down(e: String) -> Resp {
    tracing::error!("{e}");
    error(StatusCode::SERVICE_UNAVAILABLE, &e)
}

impl Server {
    /// Records `work` as a running job of tenant `t`, then starts it; its result goes through
    /// `finish` (audit, metrics) into the store. Nothing runs when the store cannot record it.
    pub(super) async fn start_job<W, F>(self: &Arc<Self>, t: &TenantState, action: String, params: &Map<String, Value>, work: W, finish: F) -> Resp
    where
        W: Future + Send + 'static,
        F: FnOnce(W::Output) -> ActionResult + Send + 'static,
    {
        let id = job_id();
        let params = super::audit::redact_secretish(&Value::Object(params.clone()));
        let job = NewJob { id: &id, tenant: &t.tenant.name, action: &action, params: &params, keep_results: t.tenant.max_job_results as usize };
        if let Err(e) = self.store.start(job).await {
            return store_down(e);
        }
        self.audit.job(&t.tenant.name, &action, &id, "started", None);
        let (tenant, action2) = (t.tenant.name.clone(), action.clone());
        let me = self.clone();
        let jid = id.clone();
        // The handle is registered before the task can end: the task removes it under the same lock.
        let mut local = self.local_jobs.lock().unwrap();
        let handle = tokio::spawn(async move {
            let result = finish(work.await);
            let value = serde_json::to_value(&result).expect("action_result is JSON");
            match me.store.finish(&jid, &value).await {
                Ok(()) => me.audit.job(&tenant, &action2, &jid, "done", value["status"].as_str()),
                Err(e) => tracing::error!(job = %jid, "the job's result was not stored: {e}"),
            }
            me.local_jobs.lock().unwrap().remove(&jid);
        });
        local.insert(id.clone(), handle.abort_handle());
        drop(local);
        json_response(StatusCode::ACCEPTED, &json!({"job": id, "status": "running"}))
    }

    pub(super) async fn job(&self, t: &TenantState, id: &str, cancel: bool) -> Resp {
        let tenant = &t.tenant.name;
        let found = if cancel {
            match self.store.cancel(tenant, id).await {
                Ok(Some((view, cancelled))) => {
                    if cancelled {
                        // Here, or on the replica that runs it at its next heartbeat.
                        if let Some(h) = self.local_jobs.lock().unwrap().remove(id) {
                            h.abort();
                        }
                        self.audit.record(
                            tenant,
                            &view.action,
                            &Map::new(),
                            &ActionResult::failed(Map::new(), FailureKind::Denied, None, "cancelled".into()),
                            Duration::ZERO,
                            &[],
                            Some("cancelled by the tenant"),
                        );
                        self.audit.job(tenant, &view.action, id, "cancelled", None);
                    }
                    Some(view)
                }
                Ok(None) => None,
                Err(e) => return store_down(e),
            }
        } else {
            match self.store.get(tenant, id).await {
                Ok(v) => v,
                Err(e) => return store_down(e),
            }
        };
        match found {
            None => error(StatusCode::NOT_FOUND, "no such job"),
            Some(v) => json_response(StatusCode::OK, &v.to_json()),
        }
    }

    /// Renews this replica's lease, aborts its jobs cancelled or interrupted through another
    /// replica, and interrupts the jobs of replicas whose lease ran out. Runs until the
    /// server stops.
    pub(super) async fn keep_lease(self: Arc<Self>) {
        let mut tick = tokio::time::interval(heartbeat(self.lease));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Jobs still running in the grace period of a stop keep the lease.
            if self.stopping.load(std::sync::atomic::Ordering::Relaxed) && self.local_job_count() == 0 {
                return;
            }
            let mine: Vec<String> = self.local_jobs.lock().unwrap().keys().cloned().collect();
            match self.store.heartbeat(&mine).await {
                Ok(gone) => {
                    let mut local = self.local_jobs.lock().unwrap();
                    for id in gone {
                        if let Some(h) = local.remove(&id) {
                            h.abort();
                        }
                    }
                }
                Err(e) => tracing::warn!("job store heartbeat: {e}"),
            }
            self.sweep().await;
        }
    }

    /// At a graceful stop, after the grace period: this replica's jobs still running are
    /// aborted and recorded interrupted.
    pub(super) async fn interrupt_local_jobs(&self, why: &str) -> usize {
        let handles: Vec<_> = self.local_jobs.lock().unwrap().drain().collect();
        for (_, h) in &handles {
            h.abort();
        }
        match self.store.interrupt_mine(why).await {
            Ok(gone) => {
                self.audit_interrupted(&gone);
                gone.len()
            }
            Err(e) => {
                tracing::error!("{e}");
                handles.len()
            }
        }
    }

    /// Marks the jobs dead replicas left running interrupted, and audits each.
    pub(super) async fn sweep(&self) {
        match self.store.sweep(self.lease).await {
            Ok(gone) if gone.is_empty() => {}
            Ok(gone) => {
                tracing::warn!("{} jobs of stopped replicas were marked interrupted", gone.len());
                self.audit_interrupted(&gone);
            }
            Err(e) => tracing::warn!("job store sweep: {e}"),
        }
    }

    fn audit_interrupted(&self, gone: &[Interrupted]) {
        for j in gone {
            self.audit.job(&j.tenant, &j.action, &j.id, "interrupted", Some(&j.message));
        }
    }

    pub(super) fn local_job_count(&self) -> usize {
        self.local_jobs.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_at_least_three_times_before_it_runs_out() {
        assert_eq!(heartbeat(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(heartbeat(Duration::from_secs(10)), Duration::from_secs(2));
        assert_eq!(heartbeat(Duration::from_secs(3600)), Duration::from_secs(2));
    }
}
