//! kubectl-wsaffinity: why WebSocket connections are not spread across pods.
//!
//! Pipeline (DESIGN.md): target → gather (kube API, read-only) → [`snapshot::Snapshot`]
//! → diagnose (pure) → [`report::Report`] → render. Probes add [`snapshot::Observations`].

pub mod probe;
pub mod report;
pub mod snapshot;
