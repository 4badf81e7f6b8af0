//! The embedded store: one SQLite database (WAL) in the state directory, held by one server
//! at a time (an exclusive lock beside it). Every job another process left running was cut
//! off by that process's end: it is interrupted when the next one opens the store.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{interrupted_message, newer_schema, Interrupted, JobView, NewJob, Result, Status, StoreConfig, RETENTION, SCHEMA_VERSION};

pub const FILE: &str = "berth.sqlite3";

/// Each version's migration, in order: `MIGRATIONS[n]` takes the schema from n to n + 1.
const MIGRATIONS: &[&str] = &["CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        action TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        replica TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        result TEXT,
        message TEXT
    );
    CREATE INDEX jobs_tenant_status ON jobs (tenant, status, finished_ms);
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        config_sha256 TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    );"];

pub struct Sqlite {
    pub path: PathBuf,
    conn: Mutex<Connection>,
    replica: String,
    /// Held for the store's life: one server per state directory.
    _lock: std::fs::File,
}

fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("job store (SQLite): {what}: {e}")
}

const COLUMNS: &str = "id, action, status, result, message, replica, created_ms, finished_ms";

fn view(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobView> {
    let result: Option<String> = r.get(3)?;
    Ok(JobView {
        id: r.get(0)?,
        action: r.get(1)?,
        status: Status::parse(&r.get::<_, String>(2)?),
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        message: r.get(4)?,
        replica: r.get(5)?,
        created_ms: r.get(6)?,
        finished_ms: r.get(7)?,
    })
}

impl Sqlite {
    pub fn open(dir: &Path, replica: &str, cfg: &StoreConfig) -> Result<Sqlite> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the state directory {} ([server] state_dir): {e}", dir.display()))?;
        let lock_path = dir.join("berth.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {} ([server] state_dir): {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "the state directory {} is in use by another berth serve; give each server its own [server] state_dir, or share jobs between replicas with [server] database_url (PostgreSQL)",
                dir.display()
            ));
        }
        let path = dir.join(FILE);
        let conn = Connection::open(&path).map_err(|e| format!("cannot open the job store {}: {e}", path.display()))?;
        let at = path.display().to_string();
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_err("busy_timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| format!("the job store {at} cannot be written (WAL): {e}"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db_err("synchronous"))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db_err("schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(newer_schema(version, &at));
        }
        for (n, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction().map_err(db_err("migrate"))?;
            tx.execute_batch(m).map_err(|e| format!("the job store {at}: migration to schema {}: {e}", n + 1))?;
            tx.pragma_update(None, "user_version", n as i64 + 1).map_err(db_err("migrate"))?;
            tx.commit().map_err(|e| format!("the job store {at} cannot be written: {e}"))?;
        }
        let now = super::now_ms();
        conn.execute(
            "INSERT INTO replicas (id, config_sha256, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
            params![replica, cfg.config_sha256, now],
        )
        .map_err(|e| format!("the job store {at} cannot be written: {e}"))?;
        Ok(Sqlite { path, conn: Mutex::new(conn), replica: replica.to_string(), _lock: lock })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn start(&self, job: &NewJob<'_>, now: i64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(db_err("start a job"))?;
        tx.execute("DELETE FROM jobs WHERE status <> 'running' AND finished_ms < ?1", params![now - RETENTION.as_millis() as i64])
            .map_err(db_err("expire results"))?;
        tx.execute(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE tenant = ?1 AND status <> 'running'
             ORDER BY finished_ms DESC, created_ms DESC, rowid DESC LIMIT -1 OFFSET ?2)",
            params![job.tenant, job.keep_results.saturating_sub(1) as i64],
        )
        .map_err(db_err("bound results"))?;
        tx.execute(
            "INSERT INTO jobs (id, tenant, action, params, status, replica, created_ms) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)",
            params![job.id, job.tenant, job.action, job.params.to_string(), self.replica, now],
        )
        .map_err(db_err("start a job"))?;
        tx.commit().map_err(db_err("start a job"))
    }

    pub fn finish(&self, id: &str, result: &Value, now: i64) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE jobs SET status = 'done', result = ?2, finished_ms = ?3 WHERE id = ?1 AND status = 'running'",
                params![id, result.to_string(), now],
            )
            .map(drop)
            .map_err(db_err("store a result"))
    }

    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<JobView>> {
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1 AND tenant = ?2"), params![id, tenant], view)
            .optional()
            .map_err(db_err("read a job"))
    }

    pub fn cancel(&self, tenant: &str, id: &str, now: i64) -> Result<Option<(JobView, bool)>> {
        let c = self.conn();
        let n = c
            .execute(
                "UPDATE jobs SET status = 'cancelled', finished_ms = ?3, message = 'cancelled by the tenant' WHERE id = ?1 AND tenant = ?2 AND status = 'running'",
                params![id, tenant, now],
            )
            .map_err(db_err("cancel a job"))?;
        let v = c
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1 AND tenant = ?2"), params![id, tenant], view)
            .optional()
            .map_err(db_err("read a job"))?;
        Ok(v.map(|v| (v, n > 0)))
    }

    pub fn running(&self, tenant: &str) -> Result<usize> {
        self.conn()
            .query_row("SELECT count(*) FROM jobs WHERE tenant = ?1 AND status = 'running'", params![tenant], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err("count jobs"))
    }

    pub fn heartbeat(&self, mine: &[String], now: i64) -> Result<Vec<String>> {
        let c = self.conn();
        c.execute("UPDATE replicas SET heartbeat_ms = ?2 WHERE id = ?1", params![self.replica, now]).map_err(db_err("heartbeat"))?;
        let mut gone = Vec::new();
        let mut q = c.prepare_cached("SELECT status FROM jobs WHERE id = ?1").map_err(db_err("heartbeat"))?;
        for id in mine {
            let status: Option<String> = q.query_row(params![id], |r| r.get(0)).optional().map_err(db_err("heartbeat"))?;
            if status.as_deref() != Some("running") {
                gone.push(id.clone());
            }
        }
        Ok(gone)
    }

    /// One server holds the directory: every job another process left running is interrupted.
    pub fn sweep(&self, _cutoff: i64, now: i64) -> Result<Vec<Interrupted>> {
        let msg = interrupted_message("{replica}", "berth serve stopped while the job ran");
        self.interrupt(
            "UPDATE jobs SET status = 'interrupted', finished_ms = ?2, message = replace(?3, '{replica}', replica)
             WHERE status = 'running' AND replica <> ?1 RETURNING id, tenant, action, message",
            "DELETE FROM replicas WHERE id <> ?1",
            now,
            &msg,
            "sweep",
        )
    }

    pub fn interrupt_mine(&self, why: &str, now: i64) -> Result<Vec<Interrupted>> {
        let msg = interrupted_message(&self.replica, why);
        self.interrupt(
            "UPDATE jobs SET status = 'interrupted', finished_ms = ?2, message = ?3 WHERE replica = ?1 AND status = 'running' RETURNING id, tenant, action, message",
            "DELETE FROM replicas WHERE id = ?1",
            now,
            &msg,
            "interrupt",
        )
    }

    /// Runs `update` (?1 this replica, ?2 now, ?3 the message; it returns the jobs it marked),
    /// then `forget` (?1 this replica) on the replicas table.
    fn interrupt(&self, update: &str, forget: &str, now: i64, msg: &str, what: &str) -> Result<Vec<Interrupted>> {
        let c = self.conn();
        let gone = c
            .prepare(update)
            .and_then(|mut q| q.query_map(params![self.replica, now, msg], interrupted)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db_err(what))?;
        c.execute(forget, params![self.replica]).map_err(db_err(what))?;
        Ok(gone)
    }
}

fn interrupted(r: &rusqlite::Row<'_>) -> rusqlite::Result<Interrupted> {
    Ok(Interrupted { id: r.get(0)?, tenant: r.get(1)?, action: r.get(2)?, message: r.get(3)? })
}
