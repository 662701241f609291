//! kubectl-wsaffinity: why WebSocket connections are not spread across pods.
//!
//! Pipeline (DESIGN.md): target → gather (kube API, read-only) → [`snapshot::Snapshot`]
//! → diagnose (pure) → [`report::Report`] → render. Probes add [`snapshot::Observations`].

pub mod cli;
pub mod client;
pub mod commands;
pub mod completion;
pub mod config;
pub mod diagnose;
pub mod emit;
pub mod gather;
pub mod ports;
pub mod probe;
pub mod render;
pub mod report;
pub mod snapshot;
pub mod target;
