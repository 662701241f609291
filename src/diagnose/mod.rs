//! The pure diagnose engine: `(Snapshot, Observations) -> Report`.
//!
//! No I/O, no clock, no kube client. [`Ctx`] is built once (service, endpoint
//! rows, parsed routes); each rule family is a file with one small function
//! per code; the verdict and the paths table are built from the result.
//!
//! This file is the dispatcher: it runs the families. What they share
//! ([`Ctx`], [`Rule`], [`finding`]) is in `ctx.rs`, below it, so no family
//! takes anything back from the file that calls it.
//!
//! Routes: `route.rs` is the model every file shares ([`Route`],
//! [`Affinity`], [`Controller`]); `routes.rs` finds the routes in front of the
//! Service and dispatches each to its controller's file in `controllers/`
//! (one per controller family, with the rules about routes in general in
//! `controllers/mod.rs`). The controllers take the model from `route.rs`,
//! never from the dispatcher.

pub mod annotations;
mod catalog;
mod controllers;
mod ctx;
mod endpoints;
mod paths;
mod probe;
mod route;
mod routes;
mod service;
mod target;
mod verdict;

#[cfg(test)]
mod fixtures;

use crate::report::{Finding, PortRow, Report, ServiceSummary};
use crate::snapshot::{Observations, Snapshot, TargetRef};

pub use catalog::{RuleInfo, explain};
pub use ctx::{Ctx, DEFAULT_CLIENT_IP_TIMEOUT, MIN_WS_TIMEOUT_SECS, Rule, finding, names, plural};
pub use route::{Affinity, Controller, Route, Timeout};

/// Every rule of the catalog: code, severity, title (and the long texts).
pub fn catalog() -> &'static [RuleInfo] {
    catalog::CATALOG
}

impl<'a> Ctx<'a> {
    /// Built once per diagnosis: the endpoint rows and the parsed routes.
    pub fn new(snap: &'a Snapshot, obs: &'a Observations) -> Self {
        let service = snap.service.as_ref();
        let name = service
            .and_then(|s| s.metadata.name.clone())
            .unwrap_or_else(|| requested_name(&snap.requested));
        let endpoints = endpoints::rows(snap);
        let mut ctx = Ctx {
            snap,
            obs,
            service,
            name,
            endpoints,
            routes: Vec::new(),
        };
        if service.is_some() {
            ctx.routes = routes::collect(&ctx);
        }
        ctx
    }
}

/// `svc/foo` → `foo`.
fn requested_name(requested: &str) -> String {
    requested.rsplit('/').next().unwrap_or(requested).to_owned()
}

/// Run every static and probe rule, and build the report.
pub fn diagnose(
    snapshot: &Snapshot,
    observations: &Observations,
    target: Option<TargetRef>,
) -> Report {
    let ctx = Ctx::new(snapshot, observations);
    let findings = findings(&ctx);
    let paths = if ctx.service.is_some() {
        paths::rows(&ctx)
    } else {
        Vec::new()
    };
    let verdict = verdict::verdict(&ctx, &findings);
    // No target given: name the Service it resolved to (the namespace's only one).
    let target = target.map(|mut t| {
        if t.name.is_none() {
            t.name = ctx.service.and_then(|s| s.metadata.name.clone());
        }
        t
    });
    Report {
        target,
        namespace: snapshot.namespace.clone(),
        service: service_summary(&ctx),
        endpoints: ctx.endpoints.clone(),
        routes: ctx.routes.iter().map(Route::row).collect(),
        observations: observations.clone(),
        findings,
        paths,
        verdict,
        skipped: snapshot.skipped.clone(),
    }
}

/// A URL test whose cluster could not be read: only what it observed
/// (WSA064–WSA066, no cluster cause), and a verdict from that.
pub fn diagnose_observations(observations: &Observations, target: Option<TargetRef>) -> Report {
    let snapshot = Snapshot::default();
    let ctx = Ctx::new(&snapshot, observations);
    let mut findings: Vec<Finding> = probe::OBSERVATION_RULES
        .iter()
        .flat_map(|rule| rule(&ctx))
        .collect();
    sort_findings(&mut findings);
    let verdict = verdict::verdict(&ctx, &findings);
    Report {
        target,
        observations: observations.clone(),
        findings,
        verdict,
        ..Report::default()
    }
}

/// All findings, sorted: errors, warnings, infos; then by code.
pub fn findings(ctx: &Ctx) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    out.extend(controllers::skipped_forbidden(ctx));
    if ctx.service.is_none() {
        out.extend(target::wsa001_not_found(ctx));
    } else {
        for rule in endpoints::RULES
            .iter()
            .chain(service::RULES)
            .chain(controllers::ingress_nginx::RULES)
            .chain(controllers::RULES)
            .chain(probe::RULES)
        {
            out.extend(rule(ctx));
        }
    }
    sort_findings(&mut out);
    out
}

/// Errors, warnings, infos; then by code (stable within a code).
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then_with(|| a.code.cmp(b.code)));
}

fn service_summary(ctx: &Ctx) -> Option<ServiceSummary> {
    let svc = ctx.service?;
    let spec = svc.spec.as_ref();
    // Resolve named target ports against a ready pod when there is one.
    let ready: Vec<&str> = ctx
        .endpoints
        .iter()
        .filter(|e| e.ready)
        .filter_map(|e| e.pod.as_deref())
        .collect();
    let pod = ctx
        .snap
        .pods
        .iter()
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| ready.contains(&n))
        })
        .or_else(|| ctx.snap.pods.first());
    let ports = spec
        .and_then(|s| s.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .map(|sp| PortRow {
                    name: sp.name.clone(),
                    port: sp.port,
                    target_port: crate::ports::target_port_text(sp),
                    container_port: match pod {
                        Some(p) => crate::ports::resolve_target_port(sp, p)
                            .ok()
                            .map(|r| r.port),
                        None => crate::ports::numeric_target_port(sp),
                    },
                    node_port: sp.node_port,
                    protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ServiceSummary {
        name: ctx.name.clone(),
        type_: ctx.service_type().to_owned(),
        session_affinity: ctx.session_affinity().to_owned(),
        timeout_seconds: ctx.client_ip_timeout(),
        external_traffic_policy: spec.and_then(|s| s.external_traffic_policy.clone()),
        internal_traffic_policy: spec.and_then(|s| s.internal_traffic_policy.clone()),
        traffic_distribution: spec.and_then(|s| s.traffic_distribution.clone()),
        cluster_ip: spec.and_then(|s| s.cluster_ip.clone()),
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::report::Severity;

    #[test]
    fn dev_overlay_yields_exactly_the_expected_findings() {
        let snap = dev_overlay();
        let report = diagnose(&snap, &Observations::default(), None);
        assert_eq!(
            codes(&report.findings),
            vec!["WSA010", "WSA013", "WSA020", "WSA030", "WSA040"]
        );
        assert!(
            report.verdict.contains("correct for production"),
            "{}",
            report.verdict
        );
        assert_eq!(report.exit_code(), 0);
        let svc = report.service.as_ref().unwrap();
        assert_eq!(svc.session_affinity, "ClientIP");
        assert_eq!(svc.timeout_seconds, Some(10800));
        assert_eq!(svc.ports[0].target_port, "ws");
        assert_eq!(svc.ports[0].container_port, Some(8080));
        assert_eq!(report.endpoints.len(), 2);
        assert_eq!(report.routes.len(), 1);
        assert_eq!(report.routes[0].controller, "ingress-nginx");
        assert!(report.paths.len() >= 3, "{:?}", report.paths);
    }

    #[test]
    fn findings_are_sorted_by_severity_then_code() {
        let snap = snapshot(service("web").client_ip(10800).load_balancer().build())
            .ready_pods(1)
            .ingress(
                ingress_nginx("web", "web")
                    .annotation("nginx.ingress.kubernetes.io/service-upstream", "true")
                    .build(),
            )
            .build();
        let f = findings(&Ctx::new(&snap, &Observations::default()));
        for w in f.windows(2) {
            assert!(
                (w[0].severity, w[0].code) <= (w[1].severity, w[1].code),
                "{:?}",
                codes(&f)
            );
        }
        assert_eq!(f.first().map(|f| f.severity), Some(Severity::Warning));
    }

    #[test]
    fn every_finding_has_catalog_title_evidence_and_fix() {
        let snap = snapshot(service("web").client_ip(10800).load_balancer().build())
            .ready_pods(3)
            .ingress(
                ingress_nginx("web", "web")
                    .annotation("nginx.ingress.kubernetes.io/service-upstream", "true")
                    .annotation(
                        "nginx.ingress.kubernetes.io/upstream-hash-by",
                        "$remote_addr",
                    )
                    .build(),
            )
            .build();
        let f = findings(&Ctx::new(&snap, &Observations::default()));
        assert!(f.len() >= 5);
        for x in &f {
            let r = catalog::rule(x.code).unwrap();
            assert_eq!(x.severity, r.severity);
            assert_eq!(x.title, r.title);
            assert!(
                !x.detail.is_empty() && !x.fix.is_empty() && !x.evidence.is_empty(),
                "{x:?}"
            );
            let text = format!("{} {}", x.detail, x.fix).to_lowercase();
            assert!(!text.contains("messages are balanced") && !text.contains("breaks websocket"));
        }
    }

    #[test]
    fn missing_service_report_is_wsa001_only() {
        let snap = Snapshot {
            namespace: "default".into(),
            requested: "svc/dev-websocket-sever".into(),
            service_names: vec!["dev-websocket-server".into()],
            ..Default::default()
        };
        let report = diagnose(&snap, &Observations::default(), None);
        assert_eq!(codes(&report.findings), vec!["WSA001"]);
        assert_eq!(report.exit_code(), 1);
        assert!(report.service.is_none());
        assert!(report.paths.is_empty());
        assert!(
            report.verdict.contains("dev-websocket-server"),
            "{}",
            report.verdict
        );
    }

    proptest::proptest! {
        /// Any annotation value, on the Ingress or the Service, gives a report, never a panic.
        #[test]
        fn arbitrary_annotation_values_never_panic(
            values in proptest::collection::vec(".{0,40}", 12),
        ) {
            let ing_keys = [
                "nginx.ingress.kubernetes.io/affinity",
                "nginx.ingress.kubernetes.io/affinity-mode",
                "nginx.ingress.kubernetes.io/session-cookie-max-age",
                "nginx.ingress.kubernetes.io/upstream-hash-by",
                "nginx.ingress.kubernetes.io/service-upstream",
                "nginx.ingress.kubernetes.io/proxy-read-timeout",
                "haproxy.org/timeout-tunnel",
                "alb.ingress.kubernetes.io/target-group-attributes",
                "alb.ingress.kubernetes.io/load-balancer-attributes",
            ];
            let svc_keys = [
                "traefik.ingress.kubernetes.io/service.sticky.cookie",
                "traefik.ingress.kubernetes.io/service.nativelb",
                "cloud.google.com/backend-config",
            ];
            for class in ["nginx", "haproxy", "alb", "gce", "traefik"] {
                let mut ing = ingress("web", "web").class(class);
                for (k, v) in ing_keys.iter().zip(&values) {
                    ing = ing.annotation(k, v);
                }
                let mut svc = service("web").client_ip(10800);
                for (k, v) in svc_keys.iter().zip(values.iter().skip(ing_keys.len())) {
                    svc = svc.annotation(k, v);
                }
                let snap = snapshot(svc.build()).ready_pods(2).ingress(ing.build()).build();
                let report = diagnose(&snap, &Observations::default(), None);
                proptest::prop_assert!(!report.verdict.is_empty());
            }
        }
    }

    #[test]
    fn catalog_lists_every_code_once() {
        assert!(catalog().iter().any(|r| r.code == "WSA066"));
        assert_eq!(catalog().iter().filter(|r| r.code == "WSA030").count(), 1);
    }
}
