//! `logs --metric`: where connections are, from each pod's own Prometheus
//! gauge instead of a log line. [`exposition`] parses (pure), [`port`] picks
//! the endpoint, [`scrape`] reads it through port-forward.

pub mod exposition;
pub mod follow;
pub mod port;
pub mod read;
pub mod scrape;

pub use exposition::{MetricQuery, Selection};

/// `--metric`, `--metrics-port`, `--metrics-path`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSource {
    pub query: MetricQuery,
    /// `None`: each pod's named `metrics` port or scrape annotation.
    pub port: Option<u16>,
    /// `None`: the scrape annotation's path, else `/metrics`.
    pub path: Option<String>,
    /// `--interval`: with `logs --follow`, how often the gauges are read.
    pub interval: std::time::Duration,
}

impl MetricSource {
    /// What the report says about where the counts came from
    /// (`observations.activeSource`).
    pub fn active_source(&self) -> crate::snapshot::ActiveSource {
        crate::snapshot::ActiveSource {
            kind: "metric".to_string(),
            metric: self.query.to_string(),
            port: self.port,
            path: self.path.clone(),
        }
    }
}

/// `--interval`'s default (also what `per-pod`, which never follows, carries).
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
