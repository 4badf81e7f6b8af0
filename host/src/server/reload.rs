//! Hot drop-in: the actions directory is rescanned when it changes (notify: inotify on Linux),
//! on SIGHUP, and by a poll as a fallback (every 2 s when no watcher can be set up, every 30 s
//! otherwise). Invocations already running finish on the version they started with.

use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;

use super::Server;

/// Changes are gathered for this long before one rescan.
const SETTLE: Duration = Duration::from_millis(200);

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
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| w.watch(&s.actions_dir, notify::RecursiveMode::NonRecursive).map(|()| w));
    let poll = match &watcher {
        Ok(_) => Duration::from_secs(30),
        Err(e) => {
            tracing::warn!(dir = %s.actions_dir.display(), "cannot watch the actions directory ({e}); polling every 2 s");
            Duration::from_secs(2)
        }
    };
    tokio::spawn(async move {
        let _watcher = watcher; // kept alive as long as the loop
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: rescanning the actions directory");
                }
                Some(()) = rx.recv() => {
                    // A copy into place is several events: let them settle, then rescan once.
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(poll) => {}
            }
            s.rescan().await;
        }
    });
}
