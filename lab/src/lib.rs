//! wsaffinity-lab holds three things and the code they share:
//!
//! - [`fake_api`]: a TEST DOUBLE of the parts of the Kubernetes API that
//!   kubectl-wsaffinity uses (`wsaffinity-lab up`, `demo`): not a cluster.
//! - [`cluster`]: the launcher of a REAL control plane (`cluster up`): etcd,
//!   kube-apiserver, kube-controller-manager and kube-scheduler built from
//!   their Go modules, in a network namespace of their own.
//! - [`node`]: the node agent, a STAND-IN for kubelets and a container
//!   runtime that the real control plane schedules pods onto.
//!
//! Shared by them: pod processes ([`process`]) and their logs (`logs`,
//! `log_stream`), the kubelet's WebSocket port-forward protocol
//! (`portforward`), URL queries, HTTP responses and Status errors.
//! Layers point down: `cluster` may use `node` and the shared modules,
//! `node` and `fake_api` only the shared ones, and the shared ones nothing above.

pub mod cluster;
pub mod fake_api;
pub mod node;

mod log_stream;
mod logs;
mod names;
mod portforward;
pub mod process;
mod query;
mod respond;
mod status;

pub use fake_api::{Counts, Lab, LabConfig, LabOptions, LabelSelector, Scenario};
/// The port-forward wire format (frame codec, subprotocol choice, `ports`
/// parsing), public for the property tests.
pub use portforward::{Codec, V4_BASE64, V4_BINARY, negotiate, parse_ports};
pub use process::find_server_binary;
