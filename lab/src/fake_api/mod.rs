//! TEST DOUBLE: the fake API (`wsaffinity-lab up`, `demo`). It is not a
//! cluster: a local stand-in for the parts of the Kubernetes API that
//! kubectl-wsaffinity uses, serving discovery, GET/LIST, pod logs and
//! WebSocket port-forward from a scenario of raw objects, each pod a real
//! `websocket-server` process on loopback, with fault knobs and request counts.
//!
//! Layers: `server` → `api` (the router) → the handlers (`pod_log`,
//! `portforward`, `writes`, `table`, `discovery`), which receive the parsed
//! `request::ResourcePath` and the shared `state`; nothing below imports the router.

mod api;
mod discovery;
mod endpointslice;
mod faults;
mod kubeconfig;
mod lab;
mod pod_log;
mod portforward;
mod request;
mod scenario;
mod selector;
mod server;
mod state;
mod store;
mod table;
mod tls;
mod types;
mod workloads;
mod writes;

pub use faults::Counts;
pub use lab::{Lab, LabOptions};
pub use scenario::{LabConfig, Scenario};
pub use selector::LabelSelector;
