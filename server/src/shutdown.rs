//! Shutdown: the signal the binary waits for, and the notice every task sees.

use tokio::sync::watch;
use tracing::{info, warn};

/// A task's view of the server-wide shutdown notice (mini-redis style).
#[derive(Debug, Clone)]
pub struct Shutdown {
    notice: watch::Receiver<bool>,
}

impl Shutdown {
    pub(crate) fn new(notice: watch::Receiver<bool>) -> Self {
        Shutdown { notice }
    }

    /// True once shutdown has begun.
    pub fn is_shutdown(&self) -> bool {
        *self.notice.borrow()
    }

    /// Resolves when shutdown begins (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which only happens when the
        // server itself has finished: treat that as shutdown too.
        let _ = self.notice.wait_for(|down| *down).await;
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C), logging which.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("received SIGTERM: shutting down"),
                    _ = ctrl_c() => info!("received SIGINT: shutting down"),
                }
                return;
            }
            Err(e) => warn!("cannot listen for SIGTERM ({e}); only SIGINT stops the server"),
        }
    }
    ctrl_c().await;
    info!("received SIGINT: shutting down");
}

async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        warn!("cannot listen for SIGINT ({e})");
        std::future::pending::<()>().await;
    }
}
