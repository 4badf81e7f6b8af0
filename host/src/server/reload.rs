//! Hot drop-in: the actions directory is rescanned every 2 s and on SIGHUP; invocations
//! already running finish on the version they started with.

use std::sync::Arc;
use std::time::Duration;

use super::Server;

impl Server {
    /// Re-reads the actions directory; invocations already running keep their version.
    pub async fn rescan(&self) {
        match self.runtime.discover(&self.actions_dir).await {
            Ok(c) => {
                let changed = {
                    let old = self.catalog.read().unwrap();
                    old.components.iter().map(|c| &c.sha256).ne(c.components.iter().map(|c| &c.sha256))
                };
                if changed {
                    tracing::info!(components = c.components.len(), "actions directory changed; catalog reloaded");
                    *self.catalog.write().unwrap() = Arc::new(c);
                }
            }
            Err(e) => tracing::error!("rescan failed, keeping the current catalog: {e:#}"),
        }
    }
}

/// Rescans until the process ends.
pub(super) fn spawn_rescans(s: Arc<Server>) {
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            match hup.as_mut() {
                Some(h) => {
                    tokio::select! {
                        _ = h.recv() => tracing::info!("SIGHUP: rescanning the actions directory"),
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
                None => tokio::time::sleep(Duration::from_secs(2)).await,
            }
            s.rescan().await;
        }
    });
}
