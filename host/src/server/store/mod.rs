//! The job store: async jobs, their results and their owners, in a database that outlives the
//! process. SQLite in the server's state directory by default (one server); PostgreSQL for
//! several replicas sharing one state (`[server] database_url`).
//!
//! A job is `running` on one replica until it is `done`, `cancelled` or `interrupted`. Each
//! replica renews its lease with a heartbeat; any replica marks the running jobs of a replica
//! whose lease ran out `interrupted`. A job is never re-run: an action may not be idempotent.

mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The schema this binary writes. A database of a newer one is refused, never downgraded.
pub const SCHEMA_VERSION: i64 = 1;

/// Where the store lives and how long a replica's lease lasts.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub state_dir: PathBuf,
    /// `postgres://…`: shared by replicas. None: SQLite at `state_dir/berth.sqlite3`.
    pub database_url: Option<String>,
    /// A replica that has not renewed its lease for this long is dead to the others.
    pub lease: Duration,
    /// Digest of the tenants config: replicas sharing a database must agree on it.
    pub config_sha256: String,
}

/// This process as a replica: the name its jobs carry.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into());
    format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The default state directory: `$STATE_DIRECTORY` (systemd), `$XDG_STATE_HOME/berth`, or
/// `~/.local/state/berth`.
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(Path::new(&d).join("berth"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| Path::new(&h).join(".local/state/berth"))
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Done,
    Cancelled,
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
            Status::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "done" => Status::Done,
            "cancelled" => Status::Cancelled,
            _ => Status::Interrupted,
        }
    }
}

/// A job as a poll sees it.
#[derive(Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub action: String,
    pub status: Status,
    pub result: Option<Value>,
    pub message: Option<String>,
    pub replica: String,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

impl JobView {
    /// The body of `GET /v1/jobs/{id}`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"job": self.id, "action": self.action, "status": self.status.as_str(), "created": rfc3339(self.created_ms)});
        if let Some(f) = self.finished_ms {
            v["finished"] = json!(rfc3339(f));
        }
        if let Some(r) = &self.result {
            v["result"] = r.clone();
        }
        if let Some(m) = &self.message {
            v["message"] = json!(m);
        }
        v
    }
}

/// A job marked interrupted, for the audit log.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub id: String,
    pub tenant: String,
    pub action: String,
    pub message: String,
}

/// A job being started.
pub struct NewJob<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub action: &'a str,
    /// Redacted params (what the audit log holds).
    pub params: &'a Value,
    /// Finished results this tenant keeps; the oldest beyond it go.
    pub keep_results: usize,
}

/// Finished jobs are kept this long for their results to be fetched.
pub const RETENTION: Duration = Duration::from_secs(3600);

/// What a replica that dies leaves behind, as the jobs say it.
fn interrupted_message(replica: &str, why: &str) -> String {
    format!("interrupted: {why} (replica {replica}); the job was not re-run, start it again if it is safe to")
}

/// The store: one database behind one API.
pub enum Store {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// A database error, said plainly with what it was doing.
pub type Result<T> = std::result::Result<T, String>;

impl Store {
    /// Opens (creates, migrates) the store. The caller sweeps (and audits) what dead replicas
    /// left running.
    pub async fn open(cfg: &StoreConfig, replica: &str) -> Result<Store> {
        let store = match &cfg.database_url {
            Some(url) => Store::Postgres(postgres::Postgres::open(url, replica, cfg).await?),
            None => Store::Sqlite(sqlite::Sqlite::open(&cfg.state_dir, replica, cfg)?),
        };
        Ok(store)
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => format!("jobs in SQLite at {}", s.path.display()),
            Store::Postgres(p) => format!("jobs in PostgreSQL at {}", p.shown),
        }
    }

    /// Records a running job of this replica, dropping the tenant's oldest finished results
    /// beyond `keep_results` and any older than [`RETENTION`].
    pub async fn start(&self, job: NewJob<'_>) -> Result<()> {
        let now = now_ms();
        match self {
            Store::Sqlite(s) => s.start(&job, now),
            Store::Postgres(p) => p.start(&job, now).await,
        }
    }

    /// Stores a finished job's result, unless it was cancelled or interrupted meanwhile.
    pub async fn finish(&self, id: &str, result: &Value) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.finish(id, result, now_ms()),
            Store::Postgres(p) => p.finish(id, result, now_ms()).await,
        }
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<JobView>> {
        match self {
            Store::Sqlite(s) => s.get(tenant, id),
            Store::Postgres(p) => p.get(tenant, id).await,
        }
    }

    /// Marks a running job cancelled; answers the job as it is now and whether this call
    /// cancelled it.
    pub async fn cancel(&self, tenant: &str, id: &str) -> Result<Option<(JobView, bool)>> {
        let now = now_ms();
        match self {
            Store::Sqlite(s) => s.cancel(tenant, id, now),
            Store::Postgres(p) => p.cancel(tenant, id, now).await,
        }
    }

    /// Jobs of `tenant` running on any replica.
    pub async fn running(&self, tenant: &str) -> Result<usize> {
        match self {
            Store::Sqlite(s) => s.running(tenant),
            Store::Postgres(p) => p.running(tenant).await,
        }
    }

    /// Renews this replica's lease; answers its jobs that are no longer running in the store
    /// (cancelled through another replica, or interrupted by one that took it for dead).
    pub async fn heartbeat(&self, mine: &[String]) -> Result<Vec<String>> {
        let now = now_ms();
        match self {
            Store::Sqlite(s) => s.heartbeat(mine, now),
            Store::Postgres(p) => p.heartbeat(mine, now).await,
        }
    }

    /// Marks the running jobs of replicas whose lease ran out interrupted (with SQLite: of
    /// every other process, as one server holds the directory).
    pub async fn sweep(&self, lease: Duration) -> Result<Vec<Interrupted>> {
        let now = now_ms();
        let cutoff = now - lease.as_millis() as i64;
        match self {
            Store::Sqlite(s) => s.sweep(cutoff, now),
            Store::Postgres(p) => p.sweep(cutoff, now).await,
        }
    }

    /// At a graceful stop: this replica's jobs still running are interrupted, with `why`; its
    /// lease is given up.
    pub async fn interrupt_mine(&self, why: &str) -> Result<Vec<Interrupted>> {
        let now = now_ms();
        match self {
            Store::Sqlite(s) => s.interrupt_mine(why, now),
            Store::Postgres(p) => p.interrupt_mine(why, now).await,
        }
    }

    /// Takes one request of `tenant`'s per-minute rate, counted across replicas; false when
    /// the tenant is over `per_minute`. Only a shared store counts (one server counts in
    /// memory).
    pub async fn take_rate(&self, tenant: &str, per_minute: u32) -> Result<bool> {
        match self {
            Store::Sqlite(_) => Ok(true),
            Store::Postgres(p) => p.take_rate(tenant, per_minute, now_ms()).await,
        }
    }

    pub fn shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The error for a database whose schema is newer than this binary.
fn newer_schema(found: i64, what: &str) -> String {
    format!("the job store {what} has schema version {found}, newer than this berth's {SCHEMA_VERSION}: run the newer berth, or point [server] state_dir/database_url elsewhere")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> StoreConfig {
        StoreConfig { state_dir: dir.to_path_buf(), database_url: None, lease: Duration::from_secs(10), config_sha256: "c".into() }
    }

    fn job<'a>(id: &'a str, params: &'a Value) -> NewJob<'a> {
        NewJob { id, tenant: "t", action: "system.ping", params, keep_results: 2 }
    }

    #[tokio::test]
    async fn a_restart_interrupts_running_jobs_and_keeps_results() {
        let dir = tempfile::tempdir().unwrap();
        let p = json!({"x": 1});
        {
            let s = Store::open(&cfg(dir.path()), "r1").await.unwrap();
            s.start(job("a", &p)).await.unwrap();
            s.start(job("b", &p)).await.unwrap();
            s.finish("b", &json!({"status": "success"})).await.unwrap();
            assert_eq!(s.running("t").await.unwrap(), 1);
            // Dropped without a graceful stop: as after kill -9.
        }
        let s = Store::open(&cfg(dir.path()), "r2").await.unwrap();
        let swept = s.sweep(Duration::from_secs(10)).await.unwrap();
        assert_eq!(swept.iter().map(|i| (i.id.as_str(), i.tenant.as_str())).collect::<Vec<_>>(), [("a", "t")]);
        let a = s.get("t", "a").await.unwrap().unwrap();
        assert_eq!(a.status, Status::Interrupted);
        assert!(a.message.unwrap().contains("replica r1"));
        let b = s.get("t", "b").await.unwrap().unwrap();
        assert_eq!((b.status, b.result), (Status::Done, Some(json!({"status": "success"}))));
        assert!(s.get("other", "b").await.unwrap().is_none(), "jobs are per tenant");
        assert_eq!(s.running("t").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn cancel_wins_over_a_late_finish_and_results_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = json!({});
        let s = Store::open(&cfg(dir.path()), "r1").await.unwrap();
        s.start(job("a", &p)).await.unwrap();
        let (v, did) = s.cancel("t", "a").await.unwrap().unwrap();
        assert!(did);
        assert_eq!(v.status, Status::Cancelled);
        s.finish("a", &json!({"late": true})).await.unwrap();
        assert_eq!(s.get("t", "a").await.unwrap().unwrap().status, Status::Cancelled);
        assert!(!s.cancel("t", "a").await.unwrap().unwrap().1);
        // keep_results = 2: a fourth job drops the oldest finished.
        for id in ["b", "c", "d"] {
            s.start(job(id, &p)).await.unwrap();
            s.finish(id, &json!({})).await.unwrap();
        }
        assert!(s.get("t", "a").await.unwrap().is_none());
        assert!(s.get("t", "d").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(&cfg(dir.path()), "r1").await.unwrap());
        let c = rusqlite::Connection::open(dir.path().join(sqlite::FILE)).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(c);
        let e = Store::open(&cfg(dir.path()), "r2").await.err().unwrap();
        assert!(e.contains("schema version 2, newer"), "{e}");
    }

    #[tokio::test]
    async fn one_server_per_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(&cfg(dir.path()), "r1").await.unwrap();
        let e = Store::open(&cfg(dir.path()), "r2").await.err().unwrap();
        assert!(e.contains("in use by another berth serve"), "{e}");
    }
}
