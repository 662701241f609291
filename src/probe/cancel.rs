//! A shared "stop now" signal for probes: Ctrl-C in the binary, a test in tests.

use tokio::sync::watch;

/// A shared "stop now" signal: Ctrl-C in the binary, a test in tests.
#[derive(Clone, Debug)]
pub struct Cancel(watch::Receiver<bool>);

/// The sending side of [`Cancel`].
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<bool>);

impl Cancel {
    pub fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle(tx), Cancel(rx))
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once cancelled; never when the handle is dropped uncancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}
