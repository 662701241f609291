//! `logs`: each pod's own `Active connections: N` log lines.
//!
//! Split as stern is: [`pattern`] (pure line parsing), [`pods`] (which pods
//! and containers), [`tail`] (one bounded read of one pod, and all pods with
//! bounded concurrency), [`follow`] (one stream per pod and the coordinator),
//! [`feed`] (one pod's counts as they are logged, for `per-pod`).

pub mod feed;
pub mod follow;
pub mod lines;
pub mod pattern;
pub mod pods;
pub mod tail;

use std::time::Duration;

pub use pattern::{ActiveMatch, ActivePattern, DEFAULT_PATTERN, PatternError};
pub use tail::{TailLimits, TailRead, read_all, read_latest_active, read_tail};

use crate::target::TargetSpec;

/// Everything `logs` runs with, validated (stern's `Config`): compiled
/// pattern, limits, which pods. Nothing past `cli` sees a flag.
#[derive(Clone, Debug)]
pub struct LogsConfig {
    pub pods: PodSelection,
    /// `-c`: the container to read; default the one serving the Service's port.
    pub container: Option<String>,
    /// `--pattern`, compiled (one capture group).
    pub pattern: ActivePattern,
    /// `--tail`, `--limit-bytes`, `--since`.
    pub tail: TailLimits,
    /// `--max-log-requests`: requests (or, with `--follow`, streams) at once.
    pub max_log_requests: usize,
    /// `--follow`; `None` = one-shot.
    pub follow: Option<FollowConfig>,
    /// `--metric`: read a Prometheus gauge from each pod instead of its log.
    pub metric: Option<crate::probe::metrics::MetricSource>,
}

/// Which pods: a target's Service selector, or `-l`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodSelection {
    Target(TargetSpec),
    Selector(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowConfig {
    /// Hidden `--follow-duration`: stop by itself after this long (tests).
    pub duration: Option<Duration>,
    /// Hidden `--poll-interval`: how often the pod LIST is re-read.
    pub poll_interval: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            pods: PodSelection::Target(TargetSpec::OnlyService),
            container: None,
            pattern: ActivePattern::default(),
            tail: TailLimits::default(),
            max_log_requests: 10,
            follow: None,
            metric: None,
        }
    }
}
