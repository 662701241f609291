//! Counters, the `Active connections: N` log line, and the Prometheus text
//! (OpenMetrics, rendered by `prometheus-client`).

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::info;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Server-wide counters, kept in `prometheus-client` metrics and rendered
/// by its encoder. Cheap to update from every connection.
#[derive(Debug)]
pub struct Metrics {
    active: Gauge,
    connections_total: Counter,
    /// The series of `websocket_messages_total`, held so that counting
    /// needs no label lookup: `direction="in"` and `direction="out"`.
    messages_in: Counter,
    messages_out: Counter,
    /// `websocket_rejected_total`, one series per [`RejectReason`].
    rejected: [Counter; 4],
    registry: Registry,
    /// Serialises count changes with their log lines, so the logged counts
    /// appear in the order they happened.
    order: Mutex<()>,
}

/// One series' labels, e.g. `direction="in"`.
type Labels = Vec<(&'static str, &'static str)>;

impl Default for Metrics {
    fn default() -> Self {
        let active = Gauge::default();
        let connections_total = Counter::default();
        let messages = Family::<Labels, Counter>::default();
        let rejected = Family::<Labels, Counter>::default();
        // Every series exists from the start, at 0.
        let messages_in = messages.get_or_create(&vec![("direction", "in")]).clone();
        let messages_out = messages.get_or_create(&vec![("direction", "out")]).clone();
        let rejected_series =
            RejectReason::ALL.map(|r| rejected.get_or_create(&vec![("reason", r.label())]).clone());
        // Counters are registered without `_total`: the encoder adds it.
        let mut registry = Registry::default();
        registry.register(
            "websocket_active_connections",
            "Open WebSocket connections",
            active.clone(),
        );
        registry.register(
            "websocket_connections",
            "WebSocket connections accepted since start",
            connections_total.clone(),
        );
        registry.register(
            "websocket_messages",
            "Data messages received from (in) and sent to (out) clients",
            messages,
        );
        registry.register(
            "websocket_rejected",
            "Connection attempts refused before the upgrade, by reason",
            rejected,
        );
        Metrics {
            active,
            connections_total,
            messages_in,
            messages_out,
            rejected: rejected_series,
            registry,
            order: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// The server's own metrics, and the fixed `--extra-gauge` series
    /// (one gauge family per name).
    pub fn with_extra(extra: &[crate::config::ExtraGauge]) -> Self {
        let mut m = Metrics::default();
        let mut names: Vec<&str> = extra.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let family = Family::<Vec<(String, String)>, Gauge>::default();
            for g in extra.iter().filter(|g| g.name == name) {
                family.get_or_create(&g.labels).set(g.value);
            }
            m.registry
                .register(name, "A fixed series from --extra-gauge", family);
        }
        m
    }

    /// Open WebSocket connections right now.
    pub fn active(&self) -> usize {
        usize::try_from(self.active.get()).unwrap_or(0)
    }

    /// Counts a new WebSocket connection and logs the new count. The count
    /// drops again (and is logged) when the returned guard is dropped.
    pub fn open(&self) -> ActiveGuard<'_> {
        let now = self.change(|n| n + 1);
        self.connections_total.inc();
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
        let now = f(self.active());
        self.active.set(i64::try_from(now).unwrap_or(i64::MAX));
        info!("Active connections: {now}");
        now
    }

    /// Adds data messages received from clients.
    pub fn received(&self, n: u64) {
        if n > 0 {
            self.messages_in.inc_by(n);
        }
    }

    /// Adds data messages sent to clients (hello and echoes).
    pub fn sent(&self, n: u64) {
        if n > 0 {
            self.messages_out.inc_by(n);
        }
    }

    /// Counts a refused connection attempt.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].inc();
    }

    /// The OpenMetrics text exposition (which Prometheus reads), served
    /// with [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
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

    #[test]
    fn extra_gauges_are_served_beside_the_servers_own() {
        use crate::config::parse_extra_gauge;
        let extra: Vec<_> = [
            r#"ws_connections{route="/chat"} 3"#,
            r#"ws_connections{route="/feed"}=2"#,
            "up 1",
        ]
        .iter()
        .map(|t| parse_extra_gauge(t).expect("valid"))
        .collect();
        let text = Metrics::with_extra(&extra).render();
        assert!(text.contains("# TYPE ws_connections gauge\n"), "{text}");
        assert!(
            text.contains("ws_connections{route=\"/chat\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ws_connections{route=\"/feed\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("\nup 1\n"), "{text}");
        assert!(text.contains("websocket_active_connections 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_bad_extra_gauge_names_the_expected_form() {
        use crate::config::parse_extra_gauge;
        for bad in [
            "ws_connections",
            "ws_connections x",
            "m{a=\"b\"}",
            "9x 1",
            "m{route} 1",
            "m{a=\"b\" 1",
        ] {
            let e = parse_extra_gauge(bad).expect_err(bad);
            assert!(
                e.contains("e.g. 'ws_connections{route=\"/chat\"} 3'"),
                "{bad}: {e}"
            );
        }
        let own = parse_extra_gauge("websocket_active_connections 1").expect_err("own name");
        assert!(own.contains("server's own"), "{own}");
    }
}
