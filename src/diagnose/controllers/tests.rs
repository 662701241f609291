//! Tests of the controller files and the general route rules, through `Ctx::new` and the rules.

use super::traefik::{
    generated_cookie_name, hosts_in_match, ingress_service_name, sanitized_cookie_name,
};
use super::*;
use crate::diagnose::fixtures::*;
use crate::snapshot::RouteKind;
use crate::snapshot::{Observations, Snapshot};
use serde_json::json;

fn ctx_routes(snap: &Snapshot) -> Vec<Route> {
    Ctx::new(snap, &Observations::default()).routes
}

fn run(rule: Rule, snap: &Snapshot) -> Vec<Finding> {
    rule(&Ctx::new(snap, &Observations::default()))
}

fn all(snap: &Snapshot) -> Vec<&'static str> {
    codes(&crate::diagnose::findings(&Ctx::new(
        snap,
        &Observations::default(),
    )))
}

/// `svc` with two ready pods: where most fixtures here start.
fn ready(svc: SvcB) -> SnapB {
    snapshot(svc.build()).ready_pods(2)
}

/// `svc` with two ready pods, behind `ing`.
fn behind(svc: SvcB, ing: IngB) -> Snapshot {
    ready(svc).ingress(ing.build()).build()
}

/// Service `web` with two ready pods, behind `ing`.
fn web_behind(ing: IngB) -> Snapshot {
    behind(service("web"), ing)
}

/// Service `web` with two ready pods and one route object `name` of `kind`.
fn web_routed(kind: RouteKind, name: &str, data: Value) -> Snapshot {
    ready(service("web"))
        .custom(kind, dynamic(kind, name, data))
        .build()
}

/// Service `web` with no pods and one route object `name` of `kind`.
fn web_routed_no_pods(kind: RouteKind, name: &str, data: Value) -> Snapshot {
    snapshot(service("web").build())
        .custom(kind, dynamic(kind, name, data))
        .build()
}

/// Asserts that the findings for `snap` hold every code in `has` and none in `lacks`.
fn assert_codes(snap: &Snapshot, has: &[&'static str], lacks: &[&'static str]) {
    let codes = all(snap);
    for c in has {
        assert!(codes.contains(c), "{c} missing: {codes:?}");
    }
    for c in lacks {
        assert!(!codes.contains(c), "{c} unexpected: {codes:?}");
    }
}

/// The cookie affinity a route reads, with no mode.
fn cookie(name: &str, max_age: Option<u64>) -> Affinity {
    Affinity::Cookie {
        name: Some(name.into()),
        max_age,
        mode: None,
    }
}

#[test]
fn traefik_sticky_cookie_on_the_service() {
    let svc = service("web")
        .annotation(
            "traefik.ingress.kubernetes.io/service.sticky.cookie",
            "true",
        )
        .annotation(
            "traefik.ingress.kubernetes.io/service.sticky.cookie.name",
            "ws",
        );
    let snap = behind(svc, ingress("web", "web").class("traefik"));
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.controller, Controller::Traefik);
    assert_eq!(r.affinity, cookie("ws", None));
    let f = run(wsa036_other_controller, &snap);
    assert_eq!(codes(&f), vec!["WSA036"]);
    assert_eq!(f[0].title, "affinity defined by another controller");
    assert!(
        f[0].detail.contains("traefik") && f[0].detail.contains("`ws`"),
        "{}",
        f[0].detail
    );
}

#[test]
fn traefik_nativelb_is_wsa033() {
    let svc = service("web")
        .client_ip(10800)
        .annotation("traefik.ingress.kubernetes.io/service.nativelb", "true");
    let snap = behind(svc, ingress("web", "web").class("traefik"));
    assert_codes(&snap, &["WSA033"], &["WSA013"]);
}

#[test]
fn traefik_service_annotations_without_route_still_reported() {
    let svc = service("web").annotation(
        "traefik.ingress.kubernetes.io/service.sticky.cookie",
        "yes!",
    );
    let snap = ready(svc).build();
    let f = run(wsa036_other_controller, &snap);
    assert_eq!(codes(&f), vec!["WSA036"]);
    assert!(f[0].detail.contains("could not be read"));
    assert!(all(&snap).contains(&"WSA035"));
}

#[test]
fn traefik_ingressroute_sticky() {
    let snap = web_routed(
        RouteKind::IngressRoute,
        "web",
        json!({"spec": {"routes": [{"match": "Host(`ws.example.com`) && PathPrefix(`/`)", "services": [{"name": "web", "port": 8080, "sticky": {"cookie": {"name": "tr", "maxAge": 600}}}]}]}}),
    );
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.hosts, vec!["ws.example.com"]);
    assert_eq!(r.affinity, cookie("tr", Some(600)));
    assert_eq!(codes(&run(wsa036_other_controller, &snap)), vec!["WSA036"]);
}

#[test]
fn haproxy_both_families() {
    let snap = web_behind(
        ingress("web", "web")
            .class("haproxy")
            .annotation("haproxy.org/cookie-persistence", "srv"),
    );
    assert_eq!(ctx_routes(&snap)[0].affinity, cookie("srv", None));
    assert_eq!(codes(&run(wsa036_other_controller, &snap)), vec!["WSA036"]);

    let snap = web_behind(
        ingress("web", "web")
            .no_class()
            .annotation("haproxy-ingress.github.io/affinity", "cookie")
            .annotation("haproxy-ingress.github.io/timeout-tunnel", "30s"),
    );
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.controller, Controller::Haproxy);
    assert_eq!(r.affinity, cookie("INGRESSCOOKIE", None));
    assert!(all(&snap).contains(&"WSA034"));
}

#[test]
fn haproxy_without_affinity_is_silent() {
    let snap = web_behind(
        ingress("web", "web")
            .class("haproxy")
            .annotation("haproxy.org/timeout-tunnel", "1h"),
    );
    assert!(run(wsa036_other_controller, &snap).is_empty());
    assert!(!all(&snap).contains(&"WSA034"));
}

#[test]
fn alb_stickiness_and_default_idle_timeout() {
    let snap = web_behind(ingress("web", "web").class("alb").annotation(
        "alb.ingress.kubernetes.io/target-group-attributes",
        "stickiness.enabled=true,stickiness.type=lb_cookie,stickiness.lb_cookie.duration_seconds=86400",
    ));
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.affinity, cookie("AWSALB", Some(86400)));
    assert_codes(&snap, &["WSA036", "WSA034"], &[]);
}

#[test]
fn alb_instance_targets_pin_a_node_not_a_pod() {
    let snap = web_behind(ingress("web", "web").class("alb").annotation(
        "alb.ingress.kubernetes.io/target-group-attributes",
        "stickiness.enabled=true",
    ));
    let f = run(wsa036_other_controller, &snap);
    assert!(f[0].detail.contains("pins a node"), "{}", f[0].detail);
    let snap = web_behind(
        ingress("web", "web")
            .class("alb")
            .annotation("alb.ingress.kubernetes.io/target-type", "ip")
            .annotation(
                "alb.ingress.kubernetes.io/target-group-attributes",
                "stickiness.enabled=true",
            ),
    );
    let f = run(wsa036_other_controller, &snap);
    assert!(!f[0].detail.contains("pins a node"), "{}", f[0].detail);
}

#[test]
fn alb_with_long_idle_timeout_and_no_stickiness_is_silent() {
    let snap = web_behind(ingress("web", "web").class("alb").annotation(
        "alb.ingress.kubernetes.io/load-balancer-attributes",
        "idle_timeout.timeout_seconds=4000",
    ));
    assert_codes(&snap, &[], &["WSA036", "WSA034"]);
    let snap = web_behind(ingress("web", "web").class("alb").annotation(
        "alb.ingress.kubernetes.io/target-group-attributes",
        "stickiness",
    ));
    assert!(all(&snap).contains(&"WSA036"));
}

#[test]
fn gke_backend_config_affinity_and_timeout() {
    let svc = service("web").annotation(
        "cloud.google.com/backend-config",
        r#"{"ports":{"8080":"ws-bc"}}"#,
    );
    let bc = dynamic(
        RouteKind::BackendConfig,
        "ws-bc",
        json!({"spec": {"timeoutSec": 600, "sessionAffinity": {"affinityType": "GENERATED_COOKIE", "affinityCookieTtlSec": 3600}}}),
    );
    let snap = ready(svc)
        .ingress(ingress("web", "web").class("gce").build())
        .custom(RouteKind::BackendConfig, bc)
        .build();
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.affinity, cookie("GCLB", Some(3600)));
    assert_eq!(r.row().timeouts, vec!["timeoutSec=600s"]);
    assert_codes(&snap, &["WSA036", "WSA034"], &[]);
}

#[test]
fn gke_without_backend_config_has_30s_default() {
    let snap = web_behind(ingress("web", "web").class("gce"));
    let f = super::ingress_nginx::wsa034_timeouts(&Ctx::new(&snap, &Observations::default()));
    assert!(f[0].detail.contains("default of 30 s"), "{}", f[0].detail);
    assert!(run(wsa036_other_controller, &snap).is_empty());
}

#[test]
fn gke_missing_backend_config_is_reported() {
    let svc = service("web").annotation("cloud.google.com/backend-config", r#"{"default":"nope"}"#);
    let snap = ready(svc)
        .ingress(ingress("web", "web").class("gce").build())
        .custom(
            RouteKind::BackendConfig,
            dynamic(RouteKind::BackendConfig, "other", json!({"spec": {}})),
        )
        .build();
    let f = run(wsa036_other_controller, &snap);
    assert!(f[0].detail.contains("does not exist"), "{}", f[0].detail);
}

#[test]
fn contour_cookie_and_idle_timeout() {
    let snap = web_routed(
        RouteKind::HTTPProxy,
        "web",
        json!({"spec": {"virtualhost": {"fqdn": "ws.example.com"}, "routes": [{"services": [{"name": "web", "port": 8080}], "loadBalancerPolicy": {"strategy": "Cookie"}, "timeoutPolicy": {"idle": "5m", "response": "infinity"}}]}}),
    );
    let r = &ctx_routes(&snap)[0];
    assert!(matches!(r.affinity, Affinity::Cookie { .. }));
    assert_eq!(r.row().timeouts, vec!["timeoutPolicy.idle=300s"]);
    assert_codes(&snap, &["WSA036", "WSA034"], &["WSA035"]);
}

#[test]
fn contour_source_ip_hash_is_wsa032_and_other_services_ignored() {
    let snap = web_routed(
        RouteKind::HTTPProxy,
        "web",
        json!({"spec": {"routes": [{"services": [{"name": "web"}], "loadBalancerPolicy": {"strategy": "RequestHash", "requestHashPolicies": [{"hashSourceIP": true}]}}]}}),
    );
    assert!(all(&snap).contains(&"WSA032"));
    let snap = web_routed(
        RouteKind::HTTPProxy,
        "x",
        json!({"spec": {"routes": [{"services": [{"name": "api"}]}]}}),
    );
    assert!(ctx_routes(&snap).is_empty());
}

#[test]
fn istio_destination_rule_consistent_hash() {
    for host in ["web", "web.default.svc.cluster.local"] {
        let snap = web_routed(
            RouteKind::DestinationRule,
            "web",
            json!({"spec": {"host": host, "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpCookie": {"name": "user", "ttl": "0s"}}}}}}),
        );
        let r = &ctx_routes(&snap)[0];
        assert_eq!(r.affinity, cookie("user", Some(0)));
        assert!(!r.entry);
        assert_eq!(codes(&run(wsa036_other_controller, &snap)), vec!["WSA036"]);
    }
    let snap = web_routed_no_pods(
        RouteKind::DestinationRule,
        "x",
        json!({"spec": {"host": "api.default.svc.cluster.local"}}),
    );
    assert!(ctx_routes(&snap).is_empty());
}

#[test]
fn istio_use_source_ip() {
    let snap = web_routed(
        RouteKind::DestinationRule,
        "web",
        json!({"spec": {"host": "web", "trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": true}}}}}),
    );
    assert!(all(&snap).contains(&"WSA032"));
}

#[test]
fn gateway_httproute_session_persistence_and_timeouts() {
    let snap = web_routed(
        RouteKind::HTTPRoute,
        "web",
        json!({"spec": {"hostnames": ["ws.example.com"], "rules": [
            {"backendRefs": [{"name": "api", "port": 80}]},
            {"backendRefs": [{"name": "web", "port": 8080}],
             "sessionPersistence": {"sessionName": "gw", "type": "Cookie", "absoluteTimeout": "1h"},
             "timeouts": {"request": "10s"}}]}}),
    );
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.affinity, cookie("gw", Some(3600)));
    assert_eq!(r.row().timeouts, vec!["timeouts.request=10s"]);
    assert_codes(&snap, &["WSA036", "WSA034"], &["WSA035"]);
}

#[test]
fn gateway_httproute_for_other_service_or_namespace_is_ignored() {
    let snap = web_routed_no_pods(
        RouteKind::HTTPRoute,
        "web",
        json!({"spec": {"rules": [{"backendRefs": [{"name": "web", "namespace": "prod"}, {"name": "web", "kind": "ServiceImport", "group": "multicluster.x-k8s.io"}]}]}}),
    );
    assert!(ctx_routes(&snap).is_empty());
}

#[test]
fn wsa035_fires_without_routes() {
    let snap = ready(service("web")).build();
    assert_eq!(codes(&run(wsa035_no_route, &snap)), vec!["WSA035"]);
    let snap = ready(service("web"))
        .skipped("ingresses.networking.k8s.io", SkipReason::Forbidden)
        .build();
    assert!(run(wsa035_no_route, &snap)[0].detail.contains("forbidden"));
}

#[test]
fn wsa035_silent_with_a_route() {
    assert!(run(wsa035_no_route, &dev_overlay()).is_empty());
}

#[test]
fn wsa036_silent_for_nginx_and_plain_routes() {
    assert!(run(wsa036_other_controller, &dev_overlay()).is_empty());
    let snap = web_behind(ingress("web", "web").class("traefik"));
    assert!(run(wsa036_other_controller, &snap).is_empty());
}

#[test]
fn wsa036_unreadable_nginx_value_is_not_called_another_controller() {
    let snap = web_behind(
        ingress("web", "web")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/affinity", "cookie")
            .annotation("nginx.ingress.kubernetes.io/session-cookie-max-age", "ten"),
    );
    let f = run(wsa036_other_controller, &snap);
    assert_eq!(codes(&f), vec!["WSA036"]);
    assert_eq!(f[0].title, WSA036_UNREADABLE_TITLE);
    assert!(f[0].detail.contains("could not be read"), "{}", f[0].detail);
}

#[test]
fn wsa037_fires_for_forbidden_only() {
    let snap = ready(service("web"))
        .skipped("ingresses.networking.k8s.io", SkipReason::Forbidden)
        .skipped(
            "httproutes.gateway.networking.k8s.io",
            SkipReason::NotInstalled,
        )
        .build();
    let f = skipped_forbidden(&Ctx::new(&snap, &Observations::default()));
    assert_eq!(codes(&f), vec!["WSA037"]);
    assert!(f[0].fix.contains("list ingresses.networking.k8s.io"));
    let report = crate::diagnose::diagnose(&snap, &Observations::default(), None);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.skipped.len(), 2);
}

#[test]
fn wsa037_silent_when_nothing_forbidden() {
    let snap = snapshot(service("web").build())
        .skipped(
            "httproutes.gateway.networking.k8s.io",
            SkipReason::NotInstalled,
        )
        .build();
    assert!(skipped_forbidden(&Ctx::new(&snap, &Observations::default())).is_empty());
}

#[test]
fn host_match_parsing() {
    assert_eq!(
        hosts_in_match("Host(`a.com`, `b.com`) || Host(`c.com`)"),
        vec!["a.com", "b.com", "c.com"]
    );
    assert!(hosts_in_match("PathPrefix(`/`)").is_empty());
    assert!(hosts_in_match("Host(").is_empty());
}

#[test]
fn traefik_cookie_names_as_traefik_makes_them() {
    // traefik/pkg/server/cookie/cookie_test.go's own cases.
    assert_eq!(generated_cookie_name("/my/BACKEND-v1.0~rc1"), "_5f7bc");
    assert_eq!(
        sanitized_cookie_name("/my/BACKEND-v1.0~rc1"),
        "_my_BACKEND-v1.0~rc1"
    );
    assert_eq!(
        sanitized_cookie_name("!#$%&'()*+-./:<=>?@[]^_`{|}~"),
        "!#$%&'__*+-._________^_`_|_~"
    );
    assert_eq!(
        ingress_service_name("websocket-app-dev", "dev-websocket-server", "ws"),
        "websocket-app-dev-dev-websocket-server-ws@kubernetes"
    );
}

#[test]
fn traefik_ingress_sticky_without_a_name_predicts_the_generated_cookie() {
    let svc = service("web").annotation(
        "traefik.ingress.kubernetes.io/service.sticky.cookie",
        "true",
    );
    let snap = behind(svc, ingress("ws", "web").class("traefik"));
    let r = &ctx_routes(&snap)[0];
    let want = generated_cookie_name(&ingress_service_name("default", "web", "8080"));
    assert_eq!(r.affinity, cookie(&want, None));
    let f = run(wsa036_other_controller, &snap);
    assert!(f[0].detail.contains(&want), "{}", f[0].detail);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("generated by Traefik")),
        "{:?}",
        f[0].evidence
    );
}

fn traefik_gateway(snap: SnapB) -> SnapB {
    snap.custom(
        RouteKind::Gateway,
        dynamic(
            RouteKind::Gateway,
            "gw",
            json!({"spec": {"gatewayClassName": "traefik", "listeners": []}}),
        ),
    )
    .custom(
        RouteKind::GatewayClass,
        dynamic(
            RouteKind::GatewayClass,
            "traefik",
            json!({"spec": {"controllerName": "traefik.io/gateway-controller"}}),
        ),
    )
}

#[test]
fn httproute_session_persistence_through_traefik_does_nothing() {
    let route = json!({"spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"backendRefs": [{"name": "web", "port": 8080}],
         "sessionPersistence": {"sessionName": "gw", "type": "Cookie"}}]}});
    let snap = traefik_gateway(ready(service("web")).custom(
        RouteKind::HTTPRoute,
        dynamic(RouteKind::HTTPRoute, "web", route.clone()),
    ))
    .build();
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.controller, Controller::Traefik);
    assert!(r.affinity.is_none(), "{:?}", r.affinity);
    let f = run(wsa036_other_controller, &snap);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].title, WSA036_IGNORED_TITLE);
    assert!(
        f[0].detail.contains("weighted round robin"),
        "{}",
        f[0].detail
    );
    assert!(f[0].fix.contains("TraefikService"), "{}", f[0].fix);
    // Without the GatewayClass read, the controller is unknown: the route's
    // own words are taken.
    let unknown = web_routed(RouteKind::HTTPRoute, "web", route);
    assert_eq!(ctx_routes(&unknown)[0].affinity, cookie("gw", None));
}

#[test]
fn httproute_to_a_sticky_traefikservice_is_sticky() {
    let route = json!({"spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"backendRefs": [{"group": "traefik.io", "kind": "TraefikService", "name": "sticky"}]}]}});
    let with_ts = |ts: Value| {
        traefik_gateway(
            ready(service("web"))
                .custom(
                    RouteKind::HTTPRoute,
                    dynamic(RouteKind::HTTPRoute, "web", route.clone()),
                )
                .custom(
                    RouteKind::TraefikService,
                    dynamic(RouteKind::TraefikService, "sticky", ts),
                ),
        )
        .build()
    };
    // Sticky on the entry naming the Service: pins a pod (seen real).
    let snap = with_ts(json!({"spec": {"weighted": {
        "services": [{"name": "web", "port": 8080, "sticky": {"cookie": {"httpOnly": true}}}]}}}));
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.controller, Controller::Traefik);
    let want = generated_cookie_name("default-web-8080@kubernetescrd");
    assert_eq!(r.affinity, cookie(&want, None));
    assert_codes(&snap, &["WSA036"], &["WSA035"]);
    // weighted.sticky only: pins one of the listed services, not a pod.
    let snap = with_ts(json!({"spec": {"weighted": {
        "services": [{"name": "web", "port": 8080}],
        "sticky": {"cookie": {"httpOnly": true}}}}}));
    let r = &ctx_routes(&snap)[0];
    assert!(r.affinity.is_none(), "{:?}", r.affinity);
    let f = run(wsa036_other_controller, &snap);
    assert_eq!(f[0].title, WSA036_IGNORED_TITLE);
    assert!(f[0].detail.contains("not to a pod"), "{}", f[0].detail);
    // A TraefikService that leads elsewhere is not a route to us.
    let elsewhere = json!({"spec": {"weighted": {"services": [{"name": "api", "port": 80}]}}});
    let snap = ready(service("web"))
        .custom(
            RouteKind::HTTPRoute,
            dynamic(
                RouteKind::HTTPRoute,
                "web",
                json!({"spec": {"rules": [{"backendRefs": [{"kind": "TraefikService", "name": "x"}]}]}}),
            ),
        )
        .custom(RouteKind::TraefikService, dynamic(RouteKind::TraefikService, "x", elsewhere))
        .build();
    assert!(ctx_routes(&snap).is_empty());
}

#[test]
fn ingressroute_sticky_without_a_name_predicts_traefiks_cookie() {
    // Seen on the real Traefik v3.6.12: `_14441` for this route.
    let snap = web_routed(
        RouteKind::IngressRoute,
        "ws",
        json!({"spec": {"routes": [{"match": "Host(`ir.example.com`)",
            "services": [{"name": "web", "port": 8080, "sticky": {"cookie": {"httpOnly": true}}}]}]}}),
    );
    let name = super::traefik::ingressroute_service_name(
        "traefik-ingressroute",
        "ws",
        "Host(`ir.example.com`)",
    );
    assert_eq!(generated_cookie_name(&name), "_14441");
    let r = &ctx_routes(&snap)[0];
    let want = generated_cookie_name(&super::traefik::ingressroute_service_name(
        "default",
        "ws",
        "Host(`ir.example.com`)",
    ));
    assert_eq!(r.affinity, cookie(&want, None));
}

#[test]
fn ingressroute_through_a_traefikservice() {
    let ir = json!({"spec": {"routes": [{"match": "Host(`ws.example.com`)",
        "services": [{"kind": "TraefikService", "name": "sticky"}]}]}});
    let ts = json!({"spec": {"weighted": {
        "services": [{"name": "web", "port": 8080, "sticky": {"cookie": {"name": "pin", "maxAge": 60}}}]}}});
    let snap = ready(service("web"))
        .custom(
            RouteKind::IngressRoute,
            dynamic(RouteKind::IngressRoute, "ir", ir),
        )
        .custom(
            RouteKind::TraefikService,
            dynamic(RouteKind::TraefikService, "sticky", ts),
        )
        .build();
    let r = &ctx_routes(&snap)[0];
    assert_eq!(r.hosts, vec!["ws.example.com"]);
    assert_eq!(r.affinity, cookie("pin", Some(60)));
}
