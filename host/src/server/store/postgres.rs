//! The shared store: PostgreSQL, for several replicas of `berth serve`. Any replica answers
//! any poll or cancel; leases with a heartbeat say which replicas are alive; per-tenant
//! request rates are counted here so they hold across replicas.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use super::{interrupted_message, newer_schema, Interrupted, JobView, NewJob, Result, Status, StoreConfig, RETENTION, SCHEMA_VERSION};

/// Each version's migration, in order: `MIGRATIONS[n]` takes the schema from n to n + 1.
const MIGRATIONS: &[&str] = &["CREATE TABLE berth_jobs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        action TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        replica TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        result TEXT,
        message TEXT
    );
    CREATE INDEX berth_jobs_tenant_status ON berth_jobs (tenant, status, finished_ms);
    CREATE INDEX berth_jobs_replica ON berth_jobs (replica) WHERE status = 'running';
    CREATE TABLE berth_replicas (
        id TEXT PRIMARY KEY,
        config_sha256 TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        heartbeat_ms BIGINT NOT NULL
    );
    CREATE TABLE berth_rates (
        tenant TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, window_start)
    );"];

/// The advisory lock migrations run under, so replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6265_7274_6801;

pub struct Postgres {
    /// The URL without its password, for messages.
    pub shown: String,
    url: String,
    client: Mutex<Arc<Client>>,
    replica: String,
}

fn db_err(shown: &str, what: &str, e: tokio_postgres::Error) -> String {
    // The driver's message never holds the password; the URL is shown without it.
    let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
    format!("job store (PostgreSQL at {shown}): {what}: {e}{cause}")
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`.
fn without_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((cred, host)) => format!("{scheme}://{}@{host}", cred.split(':').next().unwrap_or("")),
            None => url.to_string(),
        },
        None => "(database_url)".into(),
    }
}

async fn connect(url: &str, shown: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.map_err(|e| db_err(shown, "cannot connect", e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!("job store connection ended: {e}");
        }
    });
    Ok(client)
}

const COLUMNS: &str = "id, action, status, result, message, replica, created_ms, finished_ms";

fn interrupted(r: &Row) -> Interrupted {
    Interrupted { id: r.get(0), tenant: r.get(1), action: r.get(2), message: r.get(3) }
}

fn view(r: &Row) -> JobView {
    let result: Option<String> = r.get(3);
    JobView {
        id: r.get(0),
        action: r.get(1),
        status: Status::parse(r.get(2)),
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        message: r.get(4),
        replica: r.get(5),
        created_ms: r.get(6),
        finished_ms: r.get(7),
    }
}

impl Postgres {
    pub async fn open(url: &str, replica: &str, cfg: &StoreConfig) -> Result<Postgres> {
        let shown = without_password(url);
        let client = connect(url, &shown).await?;
        let e = |what: &'static str| {
            let shown = shown.clone();
            move |e| db_err(&shown, what, e)
        };
        client.batch_execute("CREATE TABLE IF NOT EXISTS berth_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)").await.map_err(e("create the schema"))?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(e("lock for migration"))?;
        let migrated = async {
            let version: i64 = client
                .query_opt("SELECT value FROM berth_meta WHERE key = 'schema_version'", &[])
                .await
                .map_err(e("schema version"))?
                .map(|r| r.get(0))
                .unwrap_or(0);
            if version > SCHEMA_VERSION {
                return Err(newer_schema(version, &shown));
            }
            for (n, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                let sql = format!(
                    "BEGIN; {m}; INSERT INTO berth_meta (key, value) VALUES ('schema_version', {v}) ON CONFLICT (key) DO UPDATE SET value = {v}; COMMIT;",
                    v = n + 1
                );
                client.batch_execute(&sql).await.map_err(|err| db_err(&shown, &format!("migration to schema {}", n + 1), err))?;
            }
            Ok(())
        }
        .await;
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
        migrated?;
        let now = super::now_ms();
        let cutoff = now - cfg.lease.as_millis() as i64;
        if let Some(other) = client
            .query_opt("SELECT id FROM berth_replicas WHERE heartbeat_ms >= $1 AND config_sha256 <> $2 LIMIT 1", &[&cutoff, &cfg.config_sha256])
            .await
            .map_err(e("read replicas"))?
        {
            let id: String = other.get(0);
            return Err(format!(
                "replica {id} shares the job store {shown} with a different tenants config; every replica must load the same config (stop it, or give this one its own database_url)"
            ));
        }
        client
            .execute(
                "INSERT INTO berth_replicas (id, config_sha256, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                &[&replica, &cfg.config_sha256, &now],
            )
            .await
            .map_err(e("register the replica"))?;
        Ok(Postgres { shown, url: url.to_string(), client: Mutex::new(Arc::new(client)), replica: replica.to_string() })
    }

    /// The connection, made again when the last one closed (a database restart).
    async fn client(&self) -> Result<Arc<Client>> {
        let mut c = self.client.lock().await;
        if c.is_closed() {
            *c = Arc::new(connect(&self.url, &self.shown).await?);
        }
        Ok(c.clone())
    }

    fn err(&self, what: &str) -> impl Fn(tokio_postgres::Error) -> String + '_ {
        let what = what.to_string();
        move |e| db_err(&self.shown, &what, e)
    }

    /// Three statements, not one transaction: a result bound that two replicas race past by
    /// one is harmless, and the shared client pipelines single statements.
    pub async fn start(&self, job: &NewJob<'_>, now: i64) -> Result<()> {
        let c = self.client().await?;
        let expire = now - RETENTION.as_millis() as i64;
        c.execute("DELETE FROM berth_jobs WHERE status <> 'running' AND finished_ms < $1", &[&expire]).await.map_err(self.err("expire results"))?;
        let keep = job.keep_results.saturating_sub(1) as i64;
        c.execute(
            "DELETE FROM berth_jobs WHERE id IN (SELECT id FROM berth_jobs WHERE tenant = $1 AND status <> 'running'
             ORDER BY finished_ms DESC, created_ms DESC OFFSET $2)",
            &[&job.tenant, &keep],
        )
        .await
        .map_err(self.err("bound results"))?;
        c.execute(
            "INSERT INTO berth_jobs (id, tenant, action, params, status, replica, created_ms) VALUES ($1, $2, $3, $4, 'running', $5, $6)",
            &[&job.id, &job.tenant, &job.action, &job.params.to_string(), &self.replica, &now],
        )
        .await
        .map_err(self.err("start a job"))?;
        Ok(())
    }

    pub async fn finish(&self, id: &str, result: &Value, now: i64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE berth_jobs SET status = 'done', result = $2, finished_ms = $3 WHERE id = $1 AND status = 'running'",
            &[&id, &result.to_string(), &now],
        )
        .await
        .map(drop)
        .map_err(self.err("store a result"))
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<JobView>> {
        let c = self.client().await?;
        let row =
            c.query_opt(&format!("SELECT {COLUMNS} FROM berth_jobs WHERE id = $1 AND tenant = $2"), &[&id, &tenant]).await.map_err(self.err("read a job"))?;
        Ok(row.as_ref().map(view))
    }

    pub async fn cancel(&self, tenant: &str, id: &str, now: i64) -> Result<Option<(JobView, bool)>> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE berth_jobs SET status = 'cancelled', finished_ms = $3, message = 'cancelled by the tenant' WHERE id = $1 AND tenant = $2 AND status = 'running'",
                &[&id, &tenant, &now],
            )
            .await
            .map_err(self.err("cancel a job"))?;
        Ok(self.get(tenant, id).await?.map(|v| (v, n > 0)))
    }

    pub async fn running(&self, tenant: &str) -> Result<usize> {
        let c = self.client().await?;
        let row = c.query_one("SELECT count(*) FROM berth_jobs WHERE tenant = $1 AND status = 'running'", &[&tenant]).await.map_err(self.err("count jobs"))?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    pub async fn heartbeat(&self, mine: &[String], now: i64) -> Result<Vec<String>> {
        let c = self.client().await?;
        let renewed = c.execute("UPDATE berth_replicas SET heartbeat_ms = $2 WHERE id = $1", &[&self.replica, &now]).await.map_err(self.err("heartbeat"))?;
        if renewed == 0 {
            // Taken for dead (a long pause) and removed: register again; its jobs were interrupted.
            tracing::warn!(replica = %self.replica, "this replica's lease had run out; its running jobs were marked interrupted by another replica");
            c.execute(
                "INSERT INTO berth_replicas (id, config_sha256, started_ms, heartbeat_ms) SELECT $1, config_sha256, $2, $2 FROM berth_replicas LIMIT 1 ON CONFLICT DO NOTHING",
                &[&self.replica, &now],
            )
            .await
            .map_err(self.err("heartbeat"))?;
        }
        c.execute("DELETE FROM berth_rates WHERE window_start < $1", &[&(now - 120_000)]).await.map_err(self.err("heartbeat"))?;
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = mine.iter().map(String::as_str).collect();
        let rows = c.query("SELECT id FROM berth_jobs WHERE id = ANY($1) AND status = 'running'", &[&ids]).await.map_err(self.err("heartbeat"))?;
        let still: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(mine.iter().filter(|id| !still.contains(*id)).cloned().collect())
    }

    pub async fn sweep(&self, cutoff: i64, now: i64) -> Result<Vec<Interrupted>> {
        let c = self.client().await?;
        let msg = interrupted_message("{replica}", "the replica stopped renewing its lease while the job ran");
        let rows = c
            .query(
                "UPDATE berth_jobs j SET status = 'interrupted', finished_ms = $2, message = replace($3, '{replica}', j.replica)
                 WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM berth_replicas r WHERE r.id = j.replica AND r.heartbeat_ms >= $1)
                 RETURNING id, tenant, action, message",
                &[&cutoff, &now, &msg],
            )
            .await
            .map_err(self.err("sweep"))?;
        c.execute("DELETE FROM berth_replicas WHERE heartbeat_ms < $1", &[&cutoff]).await.map_err(self.err("sweep"))?;
        Ok(rows.iter().map(interrupted).collect())
    }

    pub async fn interrupt_mine(&self, why: &str, now: i64) -> Result<Vec<Interrupted>> {
        let c = self.client().await?;
        let msg = interrupted_message(&self.replica, why);
        let rows = c
            .query(
                "UPDATE berth_jobs SET status = 'interrupted', finished_ms = $2, message = $3 WHERE replica = $1 AND status = 'running' RETURNING id, tenant, action, message",
                &[&self.replica, &now, &msg],
            )
            .await
            .map_err(self.err("interrupt"))?;
        c.execute("DELETE FROM berth_replicas WHERE id = $1", &[&self.replica]).await.map_err(self.err("interrupt"))?;
        Ok(rows.iter().map(interrupted).collect())
    }

    /// One request counted in the tenant's current minute, across replicas.
    pub async fn take_rate(&self, tenant: &str, per_minute: u32, now: i64) -> Result<bool> {
        let c = self.client().await?;
        let window = now - now.rem_euclid(60_000);
        let row = c
            .query_one(
                "INSERT INTO berth_rates (tenant, window_start, count) VALUES ($1, $2, 1)
                 ON CONFLICT (tenant, window_start) DO UPDATE SET count = berth_rates.count + 1 RETURNING count",
                &[&tenant, &window],
            )
            .await
            .map_err(self.err("count the request rate"))?;
        Ok(row.get::<_, i32>(0) as u32 <= per_minute)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(super::without_password("postgres://berth:s3cret@db:5432/berth"), "postgres://berth@db:5432/berth");
        assert_eq!(super::without_password("postgres://db/berth"), "postgres://db/berth");
        assert_eq!(super::without_password("host=db password=x"), "(database_url)");
    }
}
