//! `logs`: each pod's own `Active connections: N` log lines.
//!
//! Split as stern is: [`pattern`] (pure line parsing), [`tail`] (one bounded
//! read of one pod), and the follow coordinator for `--follow`.

pub mod pattern;
pub mod tail;

pub use pattern::{ActiveMatch, ActivePattern, DEFAULT_PATTERN, PatternError};
pub use tail::{TailLimits, TailRead, read_latest_active, read_tail};
