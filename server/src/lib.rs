//! The companion WebSocket server of kubectl-wsaffinity.
//!
//! It says hello with its pod identity, echoes every message, logs
//! `Active connections: N` on every change, serves `/healthz`, `/readyz` and
//! `/metrics`, and drains gracefully on shutdown. [`run`] takes the listener
//! and the shutdown trigger, so tests drive it without signals.
//!
//! Layers only point down, as in mini-redis: `server` (the listener, which
//! owns the `shared` state) → `http` (routes, the upgrade) → `connection`
//! (one WebSocket); `shared`, `stall_guard`, [`metrics`], [`shutdown`] and
//! [`config`] sit below them and import none of them.

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
