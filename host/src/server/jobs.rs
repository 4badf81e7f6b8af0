//! Async jobs: started on request, kept until fetched or an hour old, bounded per tenant,
//! cancellable by their own tenant only.

use std::future::Future;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Map};

use super::{error, json_response, Resp, Server, TenantState};
use crate::spec::{ActionResult, FailureKind};

pub(super) enum JobState {
    Running(tokio::task::AbortHandle),
    Done(Box<ActionResult>),
    Cancelled,
}

pub(super) struct Job {
    pub(super) tenant: String,
    pub(super) action: String,
    pub(super) state: JobState,
    pub(super) created: Instant,
}

/// Finished jobs are kept this long for their results to be fetched.
const JOB_RETENTION: Duration = Duration::from_secs(3600);

fn job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Server {
    /// Starts `work` as a job of tenant `t`; its result goes through `finish` (audit, metrics).
    /// The job is registered before its task can finish: the task's completion takes the same
    /// lock. Results nobody fetched are bounded per tenant: the oldest finished ones go first.
    pub(super) fn start_job<W, F>(self: &std::sync::Arc<Self>, t: &TenantState, tenant: &str, action: String, work: W, finish: F) -> String
    where
        W: Future + Send + 'static,
        F: FnOnce(W::Output) -> ActionResult + Send + 'static,
    {
        let id = job_id();
        let me = self.clone();
        let jid = id.clone();
        let mut jobs = self.jobs.lock().unwrap();
        jobs.retain(|_, j| matches!(j.state, JobState::Running(_)) || j.created.elapsed() < JOB_RETENTION);
        let mut finished: Vec<(Instant, String)> =
            jobs.iter().filter(|(_, j)| j.tenant == tenant && !matches!(j.state, JobState::Running(_))).map(|(id, j)| (j.created, id.clone())).collect();
        if finished.len() >= t.tenant.max_job_results as usize {
            finished.sort();
            let excess = finished.len() + 1 - (t.tenant.max_job_results as usize).max(1);
            for (_, id) in finished.into_iter().take(excess) {
                jobs.remove(&id);
            }
        }
        let handle = tokio::spawn(async move {
            let result = finish(work.await);
            if let Some(job) = me.jobs.lock().unwrap().get_mut(&jid) {
                if !matches!(job.state, JobState::Cancelled) {
                    job.state = JobState::Done(Box::new(result));
                }
            }
        });
        jobs.insert(id.clone(), Job { tenant: tenant.to_string(), action, state: JobState::Running(handle.abort_handle()), created: Instant::now() });
        id
    }

    /// Async jobs of `tenant` still running.
    pub(super) fn running_jobs(&self, tenant: &str) -> usize {
        self.jobs.lock().unwrap().values().filter(|j| j.tenant == tenant && matches!(j.state, JobState::Running(_))).count()
    }

    pub(super) fn job(&self, t: &TenantState, id: &str, cancel: bool) -> Resp {
        let mut jobs = self.jobs.lock().unwrap();
        let Some(job) = jobs.get_mut(id).filter(|j| j.tenant == t.tenant.name) else {
            return error(StatusCode::NOT_FOUND, "no such job");
        };
        if cancel {
            if let JobState::Running(h) = &job.state {
                h.abort();
                self.audit.record(
                    &job.tenant,
                    &job.action,
                    &Map::new(),
                    &ActionResult::failed(Map::new(), FailureKind::Denied, None, "cancelled".into()),
                    Duration::ZERO,
                    &[],
                    Some("cancelled by the tenant"),
                );
                job.state = JobState::Cancelled;
            }
        }
        match &job.state {
            JobState::Running(_) => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "running"})),
            JobState::Cancelled => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "cancelled"})),
            JobState::Done(r) => json_response(StatusCode::OK, &json!({"job": id, "action": job.action, "status": "done", "result": r})),
        }
    }
}
