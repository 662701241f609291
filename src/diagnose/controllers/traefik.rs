//! Traefik: stickiness and native load balancing on the Service's
//! annotations, and `IngressRoute` objects.

use kube::api::DynamicObject;
use serde_json::Value;

use super::{arr, backend_is_ours, cookie, obj_name, seconds_or_problem, spec, str_at, text_at};
use crate::diagnose::annotations::parse_bool;
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Controller, Route};

const TRAEFIK: &str = "traefik.ingress.kubernetes.io/";

/// Traefik keeps stickiness and native LB on the Service's annotations.
pub fn service_annotations(ctx: &Ctx, r: &mut Route) {
    let ann = ctx.service_annotations();
    let get = |k: &str| ann.get(&format!("{TRAEFIK}{k}")).map(String::as_str);
    let ev = |k: &str| format!("{} metadata.annotations[{TRAEFIK}{k}]", ctx.svc_ref());
    let mut native = false;
    if let Some(v) = get("service.nativelb") {
        match parse_bool(v) {
            Ok(b) => native = b,
            Err(reason) => r.problem("WSA036", format!("{}={v}", ev("service.nativelb")), reason),
        }
    }
    if native {
        r.to_cluster_ip = Some(format!("{}=true", ev("service.nativelb")));
    } else {
        r.bypasses_service = true;
    }
    if let Some(v) = get("service.sticky.cookie") {
        match parse_bool(v) {
            Ok(true) => {
                let max_age = get("service.sticky.cookie.maxage").and_then(|m| {
                    seconds_or_problem(r, m, format!("{}={m}", ev("service.sticky.cookie.maxage")))
                });
                let name = get("service.sticky.cookie.name")
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty());
                r.set_affinity(
                    cookie(name, max_age),
                    format!("{}=true", ev("service.sticky.cookie")),
                );
            }
            Ok(false) => {}
            Err(reason) => r.problem(
                "WSA036",
                format!("{}={v}", ev("service.sticky.cookie")),
                reason,
            ),
        }
    }
}

/// Traefik settings on the Service when no Traefik route was found.
pub fn service_route(ctx: &Ctx) -> Option<Route> {
    if !ctx
        .service_annotations()
        .keys()
        .any(|k| k.starts_with(&format!("{TRAEFIK}service.")))
    {
        return None;
    }
    let mut r = Route::new("Service", &ctx.name, Controller::Traefik);
    r.entry = false;
    service_annotations(ctx, &mut r);
    Some(r)
}

/// Traefik IngressRoute (traefik.io/v1alpha1) whose services name ours.
pub fn ingressroute(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
    let name = obj_name(obj);
    let s = spec(obj);
    let mut hit: Option<&Value> = None;
    let mut hosts = Vec::new();
    for route in arr(s, "routes") {
        let ours = arr(route, "services")
            .iter()
            .find(|svc| backend_is_ours(ctx, obj, svc));
        if let Some(svc) = ours {
            hit.get_or_insert(svc);
            hosts.extend(hosts_in_match(str_at(route, "match").unwrap_or("")));
        }
    }
    let svc = hit?;
    let mut r = Route::new("IngressRoute", &name, Controller::Traefik);
    r.hosts = hosts;
    let ev = format!(
        "ingressroute/{name} spec.routes[].services[name={}]",
        ctx.name
    );
    if svc.get("nativeLB").and_then(Value::as_bool) == Some(true) {
        r.to_cluster_ip = Some(format!("{ev}.nativeLB=true"));
    } else {
        r.bypasses_service = true;
    }
    if let Some(sticky) = svc.get("sticky").and_then(|s| s.get("cookie")) {
        let max_age = text_at(sticky, "maxAge")
            .and_then(|m| seconds_or_problem(&mut r, &m, format!("{ev}.sticky.cookie.maxAge={m}")));
        let cname = str_at(sticky, "name").map(str::to_owned);
        r.set_affinity(cookie(cname, max_age), format!("{ev}.sticky.cookie"));
    }
    Some(r)
}

/// ``Host(`a.example.com`) && PathPrefix(`/ws`)`` → `["a.example.com"]`.
pub(super) fn hosts_in_match(m: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = m;
    while let Some(i) = rest.find("Host(") {
        rest = &rest[i + 5..];
        let end = rest.find(')').unwrap_or(rest.len());
        for h in rest[..end].split(',') {
            let h = h.trim().trim_matches(|c| c == '`' || c == '"' || c == '\'');
            if !h.is_empty() {
                out.push(h.to_owned());
            }
        }
        rest = &rest[end..];
    }
    out
}
