//! The diagnosis as data: findings, paths, verdict. `render` prints it;
//! `-o json`/`-o yaml` serialise it as the output contract in DESIGN.md.

use serde::Serialize;

use crate::snapshot::{Observations, Skipped, TargetRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One finding of the catalog (DESIGN.md). Codes are stable: never renumber.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `WSA010`
    pub code: &'static str,
    pub severity: Severity,
    pub title: String,
    /// The explanation, with real numbers and names.
    pub detail: String,
    /// Object names and fields, e.g. `service/dev-websocket-server spec.sessionAffinity=ClientIP`.
    pub evidence: Vec<String>,
    /// A concrete command or manifest change, or "none needed".
    pub fix: String,
}

/// The whole output of a command.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub target: Option<TargetRef>,
    pub namespace: String,
    pub service: Option<ServiceSummary>,
    pub endpoints: Vec<EndpointRow>,
    pub routes: Vec<RouteRow>,
    #[serde(skip_serializing_if = "is_empty_observations")]
    pub observations: Observations,
    pub findings: Vec<Finding>,
    pub paths: Vec<PathRow>,
    pub verdict: String,
    pub skipped: Vec<Skipped>,
}

fn is_empty_observations(o: &Observations) -> bool {
    o.per_pod.is_none() && o.logs.is_none() && o.url.is_none()
}

impl Report {
    /// Exit code per DESIGN.md: 1 when any finding is an error, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.findings.iter().any(|f| f.severity == Severity::Error) {
            1
        } else {
            0
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub session_affinity: String,
    pub timeout_seconds: Option<i32>,
    pub external_traffic_policy: Option<String>,
    pub internal_traffic_policy: Option<String>,
    pub traffic_distribution: Option<String>,
    pub cluster_ip: Option<String>,
    pub ports: Vec<PortRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRow {
    pub name: Option<String>,
    pub port: i32,
    /// As written in the Service (`ws` or `8080`).
    pub target_port: String,
    /// The container port it resolves to, when known.
    pub container_port: Option<i32>,
    pub node_port: Option<i32>,
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    pub pod: Option<String>,
    pub ip: String,
    pub node: Option<String>,
    pub zone: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// One Ingress or route in front of the Service, as parsed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRow {
    /// `Ingress`, `HTTPRoute`, `HTTPProxy`, ...
    pub kind: String,
    pub name: String,
    /// `ingress-nginx`, `traefik`, `haproxy`, `aws-alb`, `gke`, `contour`, `istio`, `gateway-api`, or `unknown`.
    pub controller: String,
    pub hosts: Vec<String>,
    /// Human summary, e.g. `cookie INGRESSCOOKIE max-age=172800 mode=balanced`, or `none`.
    pub affinity: String,
    /// e.g. `proxy-read-timeout=3600s`.
    pub timeouts: Vec<String>,
}

/// One way into the pods, and what decides where a connection lands.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathRow {
    /// `kubectl port-forward svc/...`, `ClusterIP 10.0.0.1:8080`, `Ingress dev-websocket-server (websocket-dev.example.com)`.
    pub path: String,
    pub pods_reachable: usize,
    /// What picks the pod, e.g. `ingress-nginx cookie INGRESSCOOKIE`.
    pub decided_by: String,
    /// What one client sees, e.g. `all its connections on one pod for 10800 s`.
    pub one_client_sees: String,
}
