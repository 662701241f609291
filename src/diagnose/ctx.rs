//! What every rule reads and writes: [`Ctx`] (the snapshot and what was
//! derived from it once), [`Rule`], [`finding`] and the message helpers.
//! The rule families (and `routes.rs`) take these from here, below the
//! dispatcher in `mod.rs` that runs them; this file takes nothing from a
//! rule family. `Ctx::new`, which runs `routes.rs` and `endpoints.rs`, is in
//! `mod.rs`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use super::catalog;
use super::route::Route;
use crate::report::{EndpointRow, Finding};
use crate::snapshot::{Observations, Snapshot};

/// Timeouts below this many seconds cut idle WebSockets (WSA034).
pub const MIN_WS_TIMEOUT_SECS: u64 = 3600;
/// Default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_CLIENT_IP_TIMEOUT: i32 = 10800;

/// What every rule reads: the snapshot plus what was derived from it once.
pub struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub obs: &'a Observations,
    pub service: Option<&'a Service>,
    /// The Service's name (or, when it is missing, the name the user asked for).
    pub name: String,
    pub endpoints: Vec<EndpointRow>,
    pub routes: Vec<Route>,
}

impl<'a> Ctx<'a> {
    pub fn spec(&self) -> Option<&'a ServiceSpec> {
        self.service.and_then(|s| s.spec.as_ref())
    }

    pub fn ns(&self) -> &str {
        &self.snap.namespace
    }

    /// `service/NAME` for evidence strings.
    pub fn svc_ref(&self) -> String {
        format!("service/{}", self.name)
    }

    pub fn service_annotations(&self) -> &'a BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.service
            .and_then(|s| s.metadata.annotations.as_ref())
            .unwrap_or(&EMPTY)
    }

    /// `ClusterIP` when unset.
    pub fn service_type(&self) -> &'a str {
        self.spec()
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("ClusterIP")
    }

    /// `None` when unset.
    pub fn session_affinity(&self) -> &'a str {
        self.spec()
            .and_then(|s| s.session_affinity.as_deref())
            .unwrap_or("None")
    }

    /// The ClientIP timeout when ClientIP affinity is on.
    pub fn client_ip_timeout(&self) -> Option<i32> {
        if self.session_affinity() != "ClientIP" {
            return None;
        }
        let explicit = self
            .spec()
            .and_then(|s| s.session_affinity_config.as_ref())
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds);
        Some(explicit.unwrap_or(DEFAULT_CLIENT_IP_TIMEOUT))
    }

    /// NodePort or LoadBalancer: reachable from outside the cluster on node ports.
    pub fn is_external_type(&self) -> bool {
        matches!(self.service_type(), "NodePort" | "LoadBalancer")
    }

    /// `Cluster` when unset.
    pub fn external_traffic_policy(&self) -> &'a str {
        self.spec()
            .and_then(|s| s.external_traffic_policy.as_deref())
            .unwrap_or("Cluster")
    }

    pub fn ready_endpoints(&self) -> Vec<&EndpointRow> {
        self.endpoints.iter().filter(|e| e.ready).collect()
    }

    pub fn ready_count(&self) -> usize {
        self.ready_endpoints().len()
    }

    /// Routes that are a way in (Ingress, HTTPRoute, HTTPProxy, IngressRoute).
    pub fn entry_routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(|r| r.entry)
    }
}

/// Build a finding with the catalog's severity and title.
pub fn finding(
    code: &'static str,
    detail: impl Into<String>,
    evidence: Vec<String>,
    fix: impl Into<String>,
) -> Finding {
    let (severity, title) = match catalog::rule(code) {
        Some(r) => (r.severity, r.title.to_owned()),
        // Unreachable for catalog codes; keep rendering rather than panic.
        None => (crate::report::Severity::Info, code.to_owned()),
    };
    Finding {
        code,
        severity,
        title,
        detail: detail.into(),
        evidence,
        fix: fix.into(),
    }
}

/// One rule: a pure function of the context.
pub type Rule = fn(&Ctx) -> Vec<Finding>;

/// Backticked, comma-separated names for messages: `a`, `b`.
pub fn names(items: &[String]) -> String {
    items
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "1 pod" / "2 pods".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
