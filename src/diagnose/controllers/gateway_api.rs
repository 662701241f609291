//! Gateway API: `HTTPRoute` session persistence and timeouts, read with the
//! controller that serves the route in mind: the parent Gateway's
//! GatewayClass `controllerName` names it. Traefik does not implement
//! `sessionPersistence` (it is not in its Gateway feature list) and balances
//! each connection by weighted round robin; its own stickiness comes through
//! a backendRef to a `TraefikService` with `sticky.cookie`.

use kube::api::DynamicObject;
use serde_json::Value;

use super::{
    arr, backend_is_ours, cookie, obj_name, obj_namespace, seconds_or_problem, spec, str_at,
    text_at, traefik,
};
use crate::diagnose::annotations::parse_seconds;
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Controller, Problem, Route};
use crate::snapshot::RouteKind;

/// The `controllerName` of the GatewayClass of the first parent Gateway the
/// snapshot holds, if it was read.
pub fn serving_controller(ctx: &Ctx, route: &DynamicObject) -> Option<String> {
    let ns = obj_namespace(route).unwrap_or(ctx.ns());
    let objects = |kind| {
        ctx.snap
            .custom
            .iter()
            .filter(move |c| c.kind == kind)
            .flat_map(|c| c.objects.iter())
    };
    arr(spec(route), "parentRefs").iter().find_map(|p| {
        if str_at(p, "kind").is_some_and(|k| k != "Gateway") {
            return None;
        }
        let name = str_at(p, "name")?;
        let p_ns = str_at(p, "namespace").unwrap_or(ns);
        let gw = objects(RouteKind::Gateway)
            .find(|g| obj_name(g) == name && obj_namespace(g).unwrap_or(ns) == p_ns)?;
        let class = str_at(spec(gw), "gatewayClassName")?;
        let gc = objects(RouteKind::GatewayClass).find(|c| obj_name(c) == class)?;
        str_at(spec(gc), "controllerName").map(str::to_owned)
    })
}

/// Gateway API HTTPRoute rules whose backendRefs name our Service (or a
/// TraefikService leading to it).
pub fn httproute(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
    let name = obj_name(obj);
    let s = spec(obj);
    let mut through: Option<&DynamicObject> = None;
    let rules: Vec<(usize, &Value)> = arr(s, "rules")
        .iter()
        .enumerate()
        .filter(|(_, rule)| {
            arr(rule, "backendRefs").iter().any(|b| {
                if str_at(b, "kind") == Some("TraefikService") {
                    let ts = traefik::leading_to_us(ctx, obj, b);
                    if through.is_none() {
                        through = ts;
                    }
                    ts.is_some()
                } else {
                    backend_is_ours(ctx, obj, b)
                }
            })
        })
        .collect();
    if rules.is_empty() {
        return None;
    }
    let controller_name = serving_controller(ctx, obj);
    let by_traefik = controller_name.as_deref() == Some(traefik::GATEWAY_CONTROLLER);
    let mut r = Route::new(
        "HTTPRoute",
        &name,
        if by_traefik {
            Controller::Traefik
        } else {
            Controller::GatewayApi
        },
    );
    r.hosts = arr(s, "hostnames")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if by_traefik {
        // Traefik's Gateway provider sends to the pods' addresses itself.
        r.bypasses_service = true;
    }
    if let Some(ts) = through {
        traefik::through_traefik_service(&mut r, ctx, ts);
    }
    for (i, rule) in rules {
        let ev = format!("httproute/{name} spec.rules[{i}]");
        if let (Some(_), true) = (rule.get("sessionPersistence"), by_traefik) {
            r.unsupported.push(Problem {
                code: "WSA036",
                evidence: format!("{ev}.sessionPersistence"),
                reason: format!(
                    "Traefik (GatewayClass controllerName {}) does not implement HTTPRoute sessionPersistence: it balances each new connection by weighted round robin, so one client's connections spread over the pods",
                    traefik::GATEWAY_CONTROLLER
                ),
            });
            continue;
        }
        if let (Some(sp), true) = (rule.get("sessionPersistence"), r.affinity.is_none()) {
            let session = str_at(sp, "sessionName").map(str::to_owned);
            let max_age = text_at(sp, "absoluteTimeout").and_then(|t| {
                seconds_or_problem(
                    &mut r,
                    &t,
                    format!("{ev}.sessionPersistence.absoluteTimeout={t}"),
                )
            });
            match str_at(sp, "type").unwrap_or("Cookie") {
                "Header" => r.set_affinity(
                    Affinity::Header {
                        name: session.unwrap_or_else(|| "(generated)".into()),
                    },
                    format!("{ev}.sessionPersistence.type=Header"),
                ),
                "Cookie" => r.set_affinity(
                    cookie(session, max_age),
                    format!("{ev}.sessionPersistence.type=Cookie"),
                ),
                other => r.problem(
                    "WSA036",
                    format!("{ev}.sessionPersistence.type={other}"),
                    "expected Cookie or Header".into(),
                ),
            }
        }
        if let Some(t) = rule.get("timeouts") {
            for key in ["request", "backendRequest"] {
                if let Some(v) = text_at(t, key) {
                    // A zero duration disables the timeout.
                    if parse_seconds(&v).ok() != Some(0) || v.trim().ends_with("ms") {
                        r.timeout_value(
                            &format!("timeouts.{key}"),
                            &v,
                            format!("{ev}.timeouts.{key}"),
                        );
                    }
                }
            }
        }
    }
    Some(r)
}
