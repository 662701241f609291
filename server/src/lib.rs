//! The companion WebSocket server of kubectl-wsaffinity.
//!
//! It says hello with its pod identity, echoes every message, logs
//! `Active connections: N` on every change, serves `/healthz`, `/readyz` and
//! `/metrics`, and drains gracefully on shutdown. [`run`] takes the listener
//! and the shutdown trigger, so tests drive it without signals.

pub mod config;
mod connection;
mod http;
pub mod logging;
pub mod metrics;
mod server;
mod shared;
pub mod shutdown;
mod stall_guard;

pub use config::{Cli, Config, Identity, LogFormat};
pub use server::run;
