//! Routes in front of the Service: every Ingress and routing custom object that
//! names it, parsed once into a [`Route`] (controller, hosts, affinity, timeouts,
//! malformed values) so that rules, the routes table and the paths table agree.
//!
//! This file is the dispatch: it finds the routes and hands each to its
//! controller's file under `controllers/`; the model lives in `route.rs`.

use std::collections::BTreeMap;

use super::controllers::{alb, contour, gateway_api, gke, haproxy, ingress_nginx, istio, traefik};
use super::ctx::Ctx;
use super::route::{Controller, Route};
use crate::snapshot::RouteKind;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// Every route that points at the Service, Ingresses first, in snapshot order.
pub fn collect(ctx: &Ctx) -> Vec<Route> {
    let mut out = Vec::new();
    for ing in &ctx.snap.ingresses {
        if ingress_points_at(ing, &ctx.name) {
            out.push(ingress_route(ctx, ing));
        }
    }
    for group in &ctx.snap.custom {
        for obj in &group.objects {
            let route = match group.kind {
                RouteKind::HTTPRoute => gateway_api::httproute(ctx, obj),
                RouteKind::HTTPProxy => contour::httpproxy(ctx, obj),
                RouteKind::DestinationRule => istio::destination_rule(ctx, obj),
                RouteKind::IngressRoute => traefik::ingressroute(ctx, obj),
                // Read through the Service annotation, below.
                RouteKind::BackendConfig => None,
                // Read through the routes that name them.
                RouteKind::Gateway | RouteKind::GatewayClass | RouteKind::TraefikService => None,
            };
            out.extend(route);
        }
    }
    // Controller settings kept on the Service itself, when no route of that controller uses them.
    if !out.iter().any(|r| r.controller == Controller::Gke) {
        out.extend(gke::backend_config_route(ctx));
    }
    if !out.iter().any(|r| r.controller == Controller::Traefik) {
        out.extend(traefik::service_route(ctx));
    }
    out
}

fn backend_names(b: &IngressBackend, svc: &str) -> bool {
    b.service.as_ref().is_some_and(|s| s.name == svc)
}

/// True when any rule path backend or the default backend names the Service.
pub fn ingress_points_at(ing: &Ingress, svc: &str) -> bool {
    let Some(spec) = &ing.spec else { return false };
    if spec
        .default_backend
        .as_ref()
        .is_some_and(|b| backend_names(b, svc))
    {
        return true;
    }
    spec.rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .any(|p| backend_names(&p.backend, svc))
}

fn ingress_hosts(ing: &Ingress) -> Vec<String> {
    let mut hosts: Vec<String> = ing
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.host.clone())
        .collect();
    hosts.dedup();
    hosts
}

/// The controller of an Ingress: class name, the legacy class annotation, then annotation prefixes.
pub fn ingress_controller(ing: &Ingress) -> Controller {
    let ann = ing.metadata.annotations.clone().unwrap_or_default();
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| ann.get("kubernetes.io/ingress.class").cloned());
    if let Some(c) = class {
        let c = c.to_lowercase();
        let by_class = [
            ("nginx", Controller::Nginx),
            ("traefik", Controller::Traefik),
            ("haproxy", Controller::Haproxy),
            ("alb", Controller::Alb),
            ("gce", Controller::Gke),
            ("contour", Controller::Contour),
            ("istio", Controller::Istio),
        ];
        if let Some((_, ctl)) = by_class.into_iter().find(|(k, _)| c.contains(k)) {
            return ctl;
        }
    }
    controller_from_annotations(&ann)
}

fn controller_from_annotations(ann: &BTreeMap<String, String>) -> Controller {
    let prefixes = [
        ("nginx.ingress.kubernetes.io/", Controller::Nginx),
        ("traefik.ingress.kubernetes.io/", Controller::Traefik),
        ("haproxy.org/", Controller::Haproxy),
        ("haproxy-ingress.github.io/", Controller::Haproxy),
        ("ingress.kubernetes.io/", Controller::Haproxy),
        ("alb.ingress.kubernetes.io/", Controller::Alb),
        ("cloud.google.com/", Controller::Gke),
        (
            "kubernetes.io/ingress.global-static-ip-name",
            Controller::Gke,
        ),
        ("projectcontour.io/", Controller::Contour),
    ];
    for (p, c) in prefixes {
        if ann.keys().any(|k| k.starts_with(p)) {
            return c;
        }
    }
    Controller::Unknown
}

/// The port (name, else number) of the first backend of `ing` naming `svc`.
fn ingress_backend_port(ing: &Ingress, svc: &str) -> Option<String> {
    let spec = ing.spec.as_ref()?;
    let backends = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter().map(|p| &p.backend))
        .chain(spec.default_backend.as_ref());
    let port = backends
        .filter_map(|b| b.service.as_ref())
        .find(|s| s.name == svc)?
        .port
        .as_ref()?;
    port.name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| port.number.map(|n| n.to_string()))
}

fn ingress_route(ctx: &Ctx, ing: &Ingress) -> Route {
    let name = ing.metadata.name.clone().unwrap_or_default();
    let controller = ingress_controller(ing);
    let mut r = Route::new("Ingress", &name, controller.clone());
    r.hosts = ingress_hosts(ing);
    let ann = ing.metadata.annotations.clone().unwrap_or_default();
    match controller {
        Controller::Nginx => ingress_nginx::parse(&mut r, &ann),
        Controller::Traefik => {
            let port = ingress_backend_port(ing, &ctx.name);
            let service = port.map(|p| traefik::ingress_service_name(ctx.ns(), &ctx.name, &p));
            traefik::service_annotations(ctx, &mut r, service.as_deref());
        }
        Controller::Haproxy => haproxy::ingress(ctx, &mut r, &ann),
        Controller::Alb => alb::ingress(ctx, &mut r, &ann),
        Controller::Gke => gke::ingress(ctx, &mut r),
        // Both send to the pods themselves.
        Controller::Contour | Controller::Istio => r.bypasses_service = true,
        Controller::GatewayApi | Controller::Unknown => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::Observations;

    #[test]
    fn ingress_points_at_rule_backend_or_default_backend() {
        assert!(ingress_points_at(&ingress("a", "web").build(), "web"));
        assert!(!ingress_points_at(&ingress("a", "other").build(), "web"));
        assert!(ingress_points_at(
            &ingress("a", "other").default_backend_only("web").build(),
            "web"
        ));
        assert!(!ingress_points_at(
            &k8s_openapi::api::networking::v1::Ingress::default(),
            "web"
        ));
    }

    #[test]
    fn controller_detection() {
        assert_eq!(
            ingress_controller(&ingress("a", "w").class("nginx").build()),
            Controller::Nginx
        );
        assert_eq!(
            ingress_controller(
                &ingress("a", "w")
                    .annotation("kubernetes.io/ingress.class", "traefik")
                    .build()
            ),
            Controller::Traefik
        );
        assert_eq!(
            ingress_controller(
                &ingress("a", "w")
                    .annotation("alb.ingress.kubernetes.io/scheme", "internet-facing")
                    .build()
            ),
            Controller::Alb
        );
        assert_eq!(
            ingress_controller(&ingress("a", "w").class("gce").build()),
            Controller::Gke
        );
        assert_eq!(
            ingress_controller(&ingress("a", "w").build()),
            Controller::Unknown
        );
    }

    #[test]
    fn dev_overlay_route_row() {
        let snap = dev_overlay();
        let obs = Observations::default();
        let ctx = Ctx::new(&snap, &obs);
        assert_eq!(ctx.routes.len(), 1);
        let row = ctx.routes[0].row();
        assert_eq!(row.kind, "Ingress");
        assert_eq!(row.controller, "ingress-nginx");
        assert_eq!(row.hosts, vec!["dev-websocket-server.example.com"]);
        assert_eq!(
            row.affinity,
            "cookie INGRESSCOOKIE max-age=172800 mode=balanced"
        );
        assert_eq!(
            row.timeouts,
            vec!["proxy-read-timeout=3600s", "proxy-send-timeout=3600s"]
        );
    }

    #[test]
    fn ingresses_for_other_services_are_ignored() {
        let snap = snapshot(service("web").build())
            .ingress(ingress_nginx("x", "other").build())
            .build();
        assert!(Ctx::new(&snap, &Observations::default()).routes.is_empty());
    }
}
