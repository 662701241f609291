//! kubectl-wsaffinity: why WebSocket connections are not spread across pods.
//!
//! Layers only point down: a file imports from files below it and never from
//! one that imports it back (STYLE.md, point 10). From the top: `main.rs` →
//! [`commands`] (one file per subcommand, the only code that wires the parts
//! together) → [`completion`] → [`cli`] (clap types end there) → [`client`],
//! [`gather`], [`render`] → [`config`] (every subcommand's validated config;
//! nothing below it sees a flag) → [`diagnose`], [`emit`] → [`probe`] →
//! [`target`], [`report`], [`ports`] → [`snapshot`]. Inside a folder the
//! dispatcher sits above the files it calls, and what both need sits in a
//! third, lower file (`diagnose/ctx.rs`, `diagnose/route.rs`,
//! `emit/common.rs`, `probe/url/options.rs`).
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
pub mod http_stack;
pub mod ports;
pub mod probe;
pub mod render;
pub mod report;
pub mod snapshot;
pub mod target;
