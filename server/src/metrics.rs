//! Counters, the `Active connections: N` log line, and the Prometheus text.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tracing::info;

/// Why a connection attempt was refused before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// `--max-connections` reached.
    Limit,
    /// The server is draining.
    Shutdown,
    /// A malformed or unsupported upgrade request.
    BadRequest,
    /// The client did not send a complete first request within
    /// `--handshake-timeout`. Idle keep-alive connections that were served
    /// are closed after the same time without counting.
    HandshakeTimeout,
}

impl RejectReason {
    const ALL: [RejectReason; 4] = [
        RejectReason::Limit,
        RejectReason::Shutdown,
        RejectReason::BadRequest,
        RejectReason::HandshakeTimeout,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Limit => "limit",
            RejectReason::Shutdown => "shutdown",
            RejectReason::BadRequest => "bad_request",
            RejectReason::HandshakeTimeout => "handshake_timeout",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Server-wide counters. Cheap to update from every connection.
#[derive(Debug, Default)]
pub struct Metrics {
    active: AtomicUsize,
    connections_total: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    rejected: [AtomicU64; 4],
    /// Serialises count changes with their log lines, so the logged counts
    /// appear in the order they happened.
    order: Mutex<()>,
}

impl Metrics {
    /// Open WebSocket connections right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a new WebSocket connection and logs the new count. The count
    /// drops again (and is logged) when the returned guard is dropped.
    pub fn open(&self) -> ActiveGuard<'_> {
        let now = self.change(|n| n + 1);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        ActiveGuard {
            metrics: self,
            active_after_open: now,
        }
    }

    fn change(&self, f: impl FnOnce(usize) -> usize) -> usize {
        let _order = self
            .order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = f(self.active.load(Ordering::Relaxed));
        self.active.store(now, Ordering::Relaxed);
        info!("Active connections: {now}");
        now
    }

    /// Adds data messages received from clients.
    pub fn received(&self, n: u64) {
        if n > 0 {
            self.messages_in.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds data messages sent to clients (hello and echoes).
    pub fn sent(&self, n: u64) {
        if n > 0 {
            self.messages_out.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts a refused connection attempt.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP websocket_active_connections Open WebSocket connections.\n\
             # TYPE websocket_active_connections gauge\n\
             websocket_active_connections {}\n\
             # HELP websocket_connections_total WebSocket connections accepted since start.\n\
             # TYPE websocket_connections_total counter\n\
             websocket_connections_total {}\n\
             # HELP websocket_messages_total Data messages received from (in) and sent to (out) clients.\n\
             # TYPE websocket_messages_total counter\n\
             websocket_messages_total{{direction=\"in\"}} {}\n\
             websocket_messages_total{{direction=\"out\"}} {}\n\
             # HELP websocket_rejected_total Connection attempts refused before the upgrade, by reason.\n\
             # TYPE websocket_rejected_total counter\n",
            self.active(),
            load(&self.connections_total),
            load(&self.messages_in),
            load(&self.messages_out),
        );
        for reason in RejectReason::ALL {
            let _ = writeln!(
                out,
                "websocket_rejected_total{{reason=\"{}\"}} {}",
                reason.label(),
                load(&self.rejected[reason.index()])
            );
        }
        out
    }
}

/// One open WebSocket connection in the count; dropping it closes it there.
#[derive(Debug)]
pub struct ActiveGuard<'a> {
    metrics: &'a Metrics,
    active_after_open: usize,
}

impl ActiveGuard<'_> {
    /// The count right after this connection was added (for the hello message).
    pub fn active_after_open(&self) -> usize {
        self.active_after_open
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.metrics.change(|n| n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_series_with_its_value() {
        let m = Metrics::default();
        let guard = m.open();
        assert_eq!(guard.active_after_open(), 1);
        m.received(3);
        m.sent(4);
        m.rejected(RejectReason::Limit);
        let text = m.render();
        assert!(text.contains("websocket_active_connections 1\n"));
        assert!(text.contains("websocket_connections_total 1\n"));
        assert!(text.contains("websocket_messages_total{direction=\"in\"} 3\n"));
        assert!(text.contains("websocket_messages_total{direction=\"out\"} 4\n"));
        assert!(text.contains("websocket_rejected_total{reason=\"limit\"} 1\n"));
        assert!(text.contains("websocket_rejected_total{reason=\"shutdown\"} 0\n"));
        drop(guard);
        assert_eq!(m.active(), 0);
        assert!(m.render().contains("websocket_connections_total 1\n"));
    }
}
