//! The controller family: one file per controller that parses its own
//! routes and annotations into the shared [`Route`] model (`route.rs`), as
//! clippy keeps one lint per file inside a family folder. `routes.rs`
//! dispatches to them; they take nothing back from it.
//!
//! This file holds what the controllers share (cookie affinity, durations,
//! annotation and JSON helpers) and the rules about routes in general:
//! WSA035 (no route), WSA036 (affinity defined elsewhere), WSA037 (forbidden
//! kinds). ingress-nginx's own rules (WSA013, WSA030–WSA034, WSA040) are in
//! `ingress_nginx.rs`.

pub mod alb;
pub mod contour;
pub mod gateway_api;
pub mod gke;
pub mod haproxy;
pub mod ingress_nginx;
pub mod istio;
pub mod traefik;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use crate::diagnose::annotations::parse_seconds;
use crate::diagnose::ctx::{Ctx, Rule, finding, names};
use crate::diagnose::route::{Affinity, Controller, Route};
use crate::report::Finding;
use crate::snapshot::SkipReason;

pub const RULES: &[Rule] = &[wsa035_no_route, wsa036_other_controller];

/// Cookie affinity (`mode` is ingress-nginx's alone).
pub fn cookie(name: Option<String>, max_age: Option<u64>) -> Affinity {
    Affinity::Cookie {
        name,
        max_age,
        mode: None,
    }
}

/// `raw` in seconds, or `None` with a WSA036 problem naming `evidence`.
pub fn seconds_or_problem(r: &mut Route, raw: &str, evidence: String) -> Option<u64> {
    match parse_seconds(raw) {
        Ok(s) => Some(s),
        Err(reason) => {
            r.problem("WSA036", evidence, reason);
            None
        }
    }
}

/// An annotation's value and its evidence, `OBJ metadata.annotations[KEY]`.
pub fn annotation(
    ann: &BTreeMap<String, String>,
    obj_ref: &str,
    key: &str,
) -> Option<(String, String)> {
    ann.get(key)
        .map(|v| (v.clone(), format!("{obj_ref} metadata.annotations[{key}]")))
}

/// A backendRef / service reference names our Service (kind Service, core group, our namespace).
pub fn backend_is_ours(ctx: &Ctx, obj: &DynamicObject, b: &Value) -> bool {
    let name_ok = str_at(b, "name") == Some(ctx.name.as_str());
    let kind_ok = str_at(b, "kind").is_none_or(|k| k == "Service");
    let group_ok = str_at(b, "group").is_none_or(str::is_empty);
    let ns = str_at(b, "namespace").or(obj_namespace(obj));
    let ns_ok = ns.is_none_or(|n| n == ctx.ns());
    name_ok && kind_ok && group_ok && ns_ok
}

// ------------------------------------------------------------------ JSON helpers for custom objects

/// `obj.spec` or Null.
pub fn spec(obj: &DynamicObject) -> &Value {
    obj.data.get("spec").unwrap_or(&Value::Null)
}

pub fn obj_name(obj: &DynamicObject) -> String {
    obj.metadata.name.clone().unwrap_or_default()
}

pub fn obj_namespace(obj: &DynamicObject) -> Option<&str> {
    obj.metadata.namespace.as_deref()
}

/// Array at `v[key]`, or empty.
pub fn arr<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A string or number field, as text (durations and TTLs come both ways).
pub fn text_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

// ------------------------------------------------------------------ rules about routes in general

/// WSA035: nothing routes to the Service.
pub fn wsa035_no_route(ctx: &Ctx) -> Vec<Finding> {
    if ctx.entry_routes().next().is_some() {
        return vec![];
    }
    let forbidden: Vec<String> = ctx
        .snap
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::Forbidden)
        .map(|s| s.resource.clone())
        .collect();
    let mut detail = format!(
        "no Ingress, HTTPRoute, HTTPProxy or IngressRoute in namespace `{}` names service `{}`{}: clients reach it through the ClusterIP{}",
        ctx.ns(),
        ctx.name,
        if forbidden.is_empty() {
            String::new()
        } else {
            format!(
                " (of those that could be read; {} forbidden)",
                names(&forbidden)
            )
        },
        if ctx.is_external_type() {
            format!(" or its {} ports", ctx.service_type())
        } else {
            String::new()
        }
    );
    detail.push_str(", so the Service's own settings decide where connections land");
    vec![finding(
        "WSA035",
        detail,
        vec![format!(
            "ingresses in {}: {}, none with backend {}",
            ctx.ns(),
            ctx.snap.ingresses.len(),
            ctx.name
        )],
        "none needed for in-cluster clients; otherwise add an Ingress or HTTPRoute whose backend is this Service",
    )]
}

fn affinity_meaning(a: &Affinity) -> String {
    match a {
        Affinity::None => "no affinity".into(),
        Affinity::Cookie { name, max_age, .. } => format!(
            "cookie `{}`{}: one cookie jar stays on one pod, separate clients spread",
            name.as_deref().unwrap_or("(generated name)"),
            max_age.map(|m| format!(" for {m} s")).unwrap_or_default()
        ),
        Affinity::Hash {
            key,
            client_address: true,
        } => {
            format!(
                "hash on {key}: one client address stays on one pod (clients behind one NAT share a pod)"
            )
        }
        Affinity::Hash { key, .. } => format!("hash on {key}: one key value stays on one pod"),
        Affinity::ClientIp { ttl } => format!(
            "client IP{}: one client address stays on one pod",
            ttl.map(|t| format!(" for {t} s")).unwrap_or_default()
        ),
        Affinity::Header { name } => {
            format!("header `{name}`: requests with one header value stay on one pod")
        }
    }
}

/// WSA036: affinity configured for another controller, and unreadable values.
pub fn wsa036_other_controller(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &ctx.routes {
        let other = r.controller != Controller::Nginx && !r.affinity.is_none();
        let bad: Vec<_> = r.problems.iter().filter(|p| p.code == "WSA036").collect();
        let ignored: Vec<_> = r
            .unsupported
            .iter()
            .filter(|p| p.code == "WSA036")
            .collect();
        if !other && bad.is_empty() && ignored.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        if other {
            parts.push(format!(
                "{} ({}) decides where each new connection through it lands: {}",
                r.tick(),
                r.controller.label(),
                affinity_meaning(&r.affinity)
            ));
            if r.via_node_port {
                parts.push(
                    "with instance targets the ALB sends to node ports, so its stickiness pins a node and kube-proxy there picks the pod; `alb.ingress.kubernetes.io/target-type: ip` makes it pin a pod".into(),
                );
            }
        }
        for p in &bad {
            parts.push(format!("`{}` could not be read: {}", p.evidence, p.reason));
        }
        for p in &ignored {
            parts.push(format!(
                "{} asks for `{}`, which has no effect: {}",
                r.tick(),
                p.evidence,
                p.reason
            ));
        }
        let evidence = r
            .affinity_evidence
            .iter()
            .cloned()
            .chain(bad.iter().map(|p| p.evidence.clone()))
            .chain(ignored.iter().map(|p| p.evidence.clone()))
            .collect();
        let fix = if !ignored.is_empty() && r.controller == Controller::Traefik {
            "for sticky clients through Traefik, send the rule to a TraefikService (backendRef group traefik.io, kind TraefikService) whose `weighted` lists this Service and sets `sticky.cookie`; or remove `sessionPersistence` so the route says what it does".to_owned()
        } else if !ignored.is_empty() {
            "use the serving controller's own stickiness setting, or remove the one named in the evidence".to_owned()
        } else if bad.is_empty() {
            "none needed if intended; remove the setting named in the evidence to have one client's new connections spread (open WebSockets stay where they are)".to_owned()
        } else {
            "correct the value named in the evidence; until then the controller uses its default"
                .to_owned()
        };
        let mut f = finding("WSA036", parts.join("; "), evidence, fix);
        if !other && !ignored.is_empty() {
            f.title = WSA036_IGNORED_TITLE.to_owned();
        } else if !other {
            // Only an unreadable value (on ingress-nginx, say): the catalog
            // title "affinity defined by another controller" would mislead.
            f.title = WSA036_UNREADABLE_TITLE.to_owned();
        }
        out.push(f);
    }
    out
}

/// WSA036's title when the route asks for affinity its controller does not implement.
pub const WSA036_IGNORED_TITLE: &str =
    "affinity asked for on a route does not pin a pod with the controller serving it";

/// WSA036's title when the finding is only about values that could not be read.
pub const WSA036_UNREADABLE_TITLE: &str =
    "a routing setting could not be read: the controller uses its default";

/// WSA037: a routing kind could not be listed (403).
pub fn skipped_forbidden(ctx: &Ctx) -> Vec<Finding> {
    ctx.snap
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::Forbidden)
        .map(|s| {
            finding(
                "WSA037",
                format!(
                    "`{}` in namespace `{}` could not be listed (forbidden), so routes of that kind were not checked: {}",
                    s.resource,
                    ctx.ns(),
                    s.message
                ),
                vec![format!("list {} -n {}: 403 Forbidden", s.resource, ctx.ns())],
                format!(
                    "check with `kubectl auth can-i list {} -n {}`; a Role granting `list {}` would let the check read them",
                    s.resource,
                    ctx.ns(),
                    s.resource
                ),
            )
        })
        .collect()
}
