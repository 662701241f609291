//! Controllers other than ingress-nginx (Traefik, HAProxy, AWS ALB, GKE,
//! Contour, Istio, Gateway API), and the rules about routes in general:
//! WSA035 (no route), WSA036 (affinity defined elsewhere), WSA037 (forbidden kinds).

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use super::annotations::{backend_config_name, parse_bool, parse_kv_list, parse_seconds};
use super::routes::{
    Affinity, Controller, Route, arr, obj_name, obj_namespace, spec, str_at, text_at,
};
use super::{Ctx, Rule, finding, names};
use crate::report::Finding;
use crate::snapshot::{RouteKind, SkipReason};

pub const RULES: &[Rule] = &[wsa035_no_route, wsa036_other_controller];

/// Cookie affinity (`mode` is ingress-nginx's alone).
fn cookie(name: Option<String>, max_age: Option<u64>) -> Affinity {
    Affinity::Cookie {
        name,
        max_age,
        mode: None,
    }
}

/// `raw` in seconds, or `None` with a WSA036 problem naming `evidence`.
fn seconds_or_problem(r: &mut Route, raw: &str, evidence: String) -> Option<u64> {
    match parse_seconds(raw) {
        Ok(s) => Some(s),
        Err(reason) => {
            r.problem("WSA036", evidence, reason);
            None
        }
    }
}

/// An annotation's value and its evidence, `OBJ metadata.annotations[KEY]`.
fn annotation(
    ann: &BTreeMap<String, String>,
    obj_ref: &str,
    key: &str,
) -> Option<(String, String)> {
    ann.get(key)
        .map(|v| (v.clone(), format!("{obj_ref} metadata.annotations[{key}]")))
}

// ------------------------------------------------------------------ Traefik

const TRAEFIK: &str = "traefik.ingress.kubernetes.io/";

/// Traefik keeps stickiness and native LB on the Service's annotations.
pub fn traefik_service_annotations(ctx: &Ctx, r: &mut Route) {
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
pub fn traefik_service_route(ctx: &Ctx) -> Option<Route> {
    if !ctx
        .service_annotations()
        .keys()
        .any(|k| k.starts_with(&format!("{TRAEFIK}service.")))
    {
        return None;
    }
    let mut r = Route::new("Service", &ctx.name, Controller::Traefik);
    r.entry = false;
    traefik_service_annotations(ctx, &mut r);
    Some(r)
}

/// Traefik IngressRoute (traefik.io/v1alpha1) whose services name ours.
pub fn traefik_ingressroute(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
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
fn hosts_in_match(m: &str) -> Vec<String> {
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

// ------------------------------------------------------------------ HAProxy

/// HAProxy Technologies (`haproxy.org/`) and haproxy-ingress (`haproxy-ingress.github.io/`)
/// annotations, on the Ingress or else on the Service.
pub fn haproxy(ctx: &Ctx, r: &mut Route, ing: &BTreeMap<String, String>) {
    r.bypasses_service = true;
    let svc = ctx.service_annotations();
    let ing_ref = format!("ingress/{}", r.name);
    let svc_ref = ctx.svc_ref();
    let get = |k: &str| annotation(ing, &ing_ref, k).or_else(|| annotation(svc, &svc_ref, k));
    if let Some((v, ev)) = get("haproxy.org/cookie-persistence") {
        let name = v.trim().to_owned();
        r.set_affinity(
            cookie((!name.is_empty()).then_some(name), None),
            format!("{ev}={v}"),
        );
    }
    for prefix in ["haproxy-ingress.github.io/", "ingress.kubernetes.io/"] {
        if let Some((v, ev)) = get(&format!("{prefix}affinity")) {
            if v.trim() == "cookie" {
                let name =
                    get(&format!("{prefix}session-cookie-name")).map(|(n, _)| n.trim().to_owned());
                let name = name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "INGRESSCOOKIE".into());
                r.set_affinity(cookie(Some(name), None), format!("{ev}=cookie"));
            } else {
                r.problem(
                    "WSA036",
                    format!("{ev}={v}"),
                    "only `cookie` is supported".into(),
                );
            }
        }
    }
    for key in [
        "haproxy.org/load-balance",
        "haproxy-ingress.github.io/balance-algorithm",
    ] {
        if let Some((v, ev)) = get(key) {
            let algo = v.trim().to_owned();
            if algo.split_whitespace().next() == Some("source") && r.affinity.is_none() {
                r.set_affinity(
                    Affinity::Hash {
                        key: "source".into(),
                        client_address: true,
                    },
                    format!("{ev}={v}"),
                );
            }
            r.balancer = Some(algo);
        }
    }
    for key in [
        "haproxy.org/timeout-tunnel",
        "haproxy-ingress.github.io/timeout-tunnel",
    ] {
        if let Some((v, ev)) = get(key) {
            r.timeout_value("timeout-tunnel", &v, ev);
        }
    }
}

// ------------------------------------------------------------------ AWS ALB

const ALB: &str = "alb.ingress.kubernetes.io/";
/// The ALB's default idle timeout.
pub const ALB_DEFAULT_IDLE: u64 = 60;

pub fn alb(ctx: &Ctx, r: &mut Route, ing: &BTreeMap<String, String>) {
    let svc = ctx.service_annotations();
    let ing_ref = format!("ingress/{}", r.name);
    let svc_ref = ctx.svc_ref();
    // target-group-attributes may sit on the Service (per backend) or the Ingress.
    let tga_key = format!("{ALB}target-group-attributes");
    let tga = annotation(svc, &svc_ref, &tga_key).or_else(|| annotation(ing, &ing_ref, &tga_key));
    if let Some((raw, ev)) = tga {
        match parse_kv_list(&raw) {
            Ok(kv) => {
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                let enabled = get("stickiness.enabled").map(parse_bool);
                match enabled {
                    Some(Ok(true)) => {
                        let typ = get("stickiness.type").unwrap_or("lb_cookie");
                        let (name, dur_key) = if typ == "app_cookie" {
                            (
                                get("stickiness.app_cookie.cookie_name").unwrap_or("(app cookie)"),
                                "stickiness.app_cookie.duration_seconds",
                            )
                        } else {
                            ("AWSALB", "stickiness.lb_cookie.duration_seconds")
                        };
                        let max_age = get(dur_key)
                            .and_then(|d| seconds_or_problem(r, d, format!("{ev}: {dur_key}={d}")));
                        r.set_affinity(
                            cookie(Some(name.to_owned()), max_age),
                            format!("{ev}: stickiness.enabled=true,stickiness.type={typ}"),
                        );
                    }
                    Some(Err(reason)) => {
                        r.problem("WSA036", format!("{ev}: stickiness.enabled"), reason)
                    }
                    _ => {}
                }
            }
            Err(reason) => r.problem("WSA036", format!("{ev}={raw}"), reason),
        }
    }
    let target_type = ing
        .get(&format!("{ALB}target-type"))
        .or_else(|| svc.get(&format!("{ALB}target-type")));
    if target_type.map(|t| t.trim()) == Some("ip") {
        r.bypasses_service = true;
    } else {
        r.via_node_port = true;
    }
    let lba_key = format!("{ALB}load-balancer-attributes");
    let lba_ev = format!("{ing_ref} metadata.annotations[{lba_key}]");
    let idle = match ing.get(&lba_key) {
        Some(raw) => match parse_kv_list(raw) {
            Ok(kv) => kv
                .into_iter()
                .find(|(k, _)| k == "idle_timeout.timeout_seconds")
                .map(|(_, v)| v),
            Err(reason) => {
                r.problem("WSA034", format!("{lba_ev}={raw}"), reason);
                None
            }
        },
        None => None,
    };
    match idle {
        Some(v) => r.timeout_value(
            "idle_timeout.timeout_seconds",
            &v,
            format!("{lba_ev} idle_timeout.timeout_seconds"),
        ),
        None => r.default_timeout("idle_timeout.timeout_seconds", ALB_DEFAULT_IDLE, lba_ev),
    }
}

// ------------------------------------------------------------------ GKE

/// GKE backend services' default timeout.
pub const GKE_DEFAULT_TIMEOUT: u64 = 30;

fn backend_config_annotation(ctx: &Ctx) -> Option<(String, String)> {
    [
        "cloud.google.com/backend-config",
        "beta.cloud.google.com/backend-config",
    ]
    .into_iter()
    .find_map(|k| annotation(ctx.service_annotations(), &ctx.svc_ref(), k))
}

/// GKE: the Service's BackendConfig decides affinity and the backend timeout.
pub fn gke(ctx: &Ctx, r: &mut Route) {
    let neg = ctx.service_annotations().get("cloud.google.com/neg");
    r.bypasses_service = neg.is_some_and(|v| v.replace(' ', "").contains("\"ingress\":true"));
    let timeout_ev = "BackendConfig spec.timeoutSec".to_owned();
    let Some((raw, ev)) = backend_config_annotation(ctx) else {
        r.default_timeout(
            "timeoutSec",
            GKE_DEFAULT_TIMEOUT,
            format!("{} (no cloud.google.com/backend-config)", timeout_ev),
        );
        return;
    };
    let port_keys: Vec<String> = ctx
        .spec()
        .and_then(|s| s.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .flat_map(|p| [Some(p.port.to_string()), p.name.clone()])
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    let name = match backend_config_name(&raw, &port_keys) {
        Ok(Some(n)) => n,
        Ok(None) => {
            r.default_timeout(
                "timeoutSec",
                GKE_DEFAULT_TIMEOUT,
                format!("{ev} names no BackendConfig for this port"),
            );
            return;
        }
        Err(reason) => {
            r.problem("WSA036", format!("{ev}={raw}"), reason);
            r.default_timeout("timeoutSec", GKE_DEFAULT_TIMEOUT, timeout_ev);
            return;
        }
    };
    let group = ctx
        .snap
        .custom
        .iter()
        .find(|c| c.kind == RouteKind::BackendConfig);
    let bc = group.and_then(|g| {
        g.objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(name.as_str()))
    });
    let Some(bc) = bc else {
        let why = if group.is_some() {
            format!(
                "BackendConfig `{name}` does not exist in namespace `{}`",
                ctx.ns()
            )
        } else {
            format!(
                "BackendConfig `{name}` could not be read (backendconfigs.cloud.google.com not listed)"
            )
        };
        r.problem("WSA036", format!("{ev}={raw}"), why);
        return;
    };
    let s = spec(bc);
    let bc_ref = format!("backendconfig/{name}");
    if let Some(sa) = s.get("sessionAffinity") {
        let ttl_raw = text_at(sa, "affinityCookieTtlSec");
        let ttl = ttl_raw.as_deref().and_then(|t| parse_seconds(t).ok());
        match str_at(sa, "affinityType").unwrap_or("NONE") {
            "NONE" => {}
            "CLIENT_IP" => r.set_affinity(
                Affinity::ClientIp { ttl: None },
                format!("{bc_ref} spec.sessionAffinity.affinityType=CLIENT_IP"),
            ),
            "GENERATED_COOKIE" => r.set_affinity(
                cookie(Some("GCLB".into()), ttl),
                format!("{bc_ref} spec.sessionAffinity.affinityType=GENERATED_COOKIE"),
            ),
            other => r.problem(
                "WSA036",
                format!("{bc_ref} spec.sessionAffinity.affinityType={other}"),
                "expected NONE, CLIENT_IP or GENERATED_COOKIE".into(),
            ),
        }
    }
    match text_at(s, "timeoutSec") {
        Some(t) => r.timeout_value("timeoutSec", &t, format!("{bc_ref} spec.timeoutSec")),
        None => r.default_timeout(
            "timeoutSec",
            GKE_DEFAULT_TIMEOUT,
            format!("{bc_ref} spec.timeoutSec"),
        ),
    }
}

/// The BackendConfig as its own row when no GKE Ingress fronts the Service.
pub fn gke_backend_config_route(ctx: &Ctx) -> Option<Route> {
    backend_config_annotation(ctx)?;
    let mut r = Route::new("BackendConfig", &ctx.name, Controller::Gke);
    r.entry = false;
    gke(ctx, &mut r);
    // Without a GKE Ingress there is no backend service yet: only report what is configured.
    r.timeouts.retain(|t| !t.defaulted);
    Some(r)
}

// ------------------------------------------------------------------ Contour

/// Contour HTTPProxy routes whose services name ours.
pub fn httpproxy(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
    let name = obj_name(obj);
    let s = spec(obj);
    let route = arr(s, "routes").iter().find(|rt| {
        arr(rt, "services")
            .iter()
            .any(|svc| str_at(svc, "name") == Some(ctx.name.as_str()))
    })?;
    let mut r = Route::new("HTTPProxy", &name, Controller::Contour);
    r.bypasses_service = true;
    if let Some(fqdn) = s.get("virtualhost").and_then(|v| str_at(v, "fqdn")) {
        r.hosts.push(fqdn.to_owned());
    }
    let ev = format!("httpproxy/{name} spec.routes[services={}]", ctx.name);
    if let Some(lb) = route.get("loadBalancerPolicy") {
        let strategy = str_at(lb, "strategy").unwrap_or("RoundRobin");
        match strategy {
            "Cookie" => r.set_affinity(
                cookie(Some("X-Contour-Session-Affinity".into()), None),
                format!("{ev}.loadBalancerPolicy.strategy=Cookie"),
            ),
            "RequestHash" => {
                for p in arr(lb, "requestHashPolicies") {
                    let ev = format!("{ev}.loadBalancerPolicy.requestHashPolicies");
                    if p.get("hashSourceIP").and_then(Value::as_bool) == Some(true) {
                        r.set_affinity(
                            Affinity::Hash {
                                key: "source IP".into(),
                                client_address: true,
                            },
                            format!("{ev}.hashSourceIP=true"),
                        );
                        break;
                    }
                    if let Some(h) = p
                        .get("headerHashOptions")
                        .and_then(|h| str_at(h, "headerName"))
                    {
                        r.set_affinity(
                            Affinity::Header { name: h.to_owned() },
                            format!("{ev}.headerHashOptions.headerName={h}"),
                        );
                        break;
                    }
                    if let Some(q) = p
                        .get("queryParameterHashOptions")
                        .and_then(|h| str_at(h, "parameterName"))
                    {
                        r.set_affinity(
                            Affinity::Hash {
                                key: format!("query {q}"),
                                client_address: false,
                            },
                            format!("{ev}.queryParameterHashOptions.parameterName={q}"),
                        );
                        break;
                    }
                }
                r.balancer = Some("RequestHash".into());
            }
            other => r.balancer = Some(other.to_owned()),
        }
    }
    if let Some(tp) = route.get("timeoutPolicy") {
        for key in ["idle", "response"] {
            if let Some(v) = text_at(tp, key)
                && v.trim() != "infinity"
            {
                r.timeout_value(
                    &format!("timeoutPolicy.{key}"),
                    &v,
                    format!("{ev}.timeoutPolicy.{key}"),
                );
            }
        }
    }
    Some(r)
}

// ------------------------------------------------------------------ Istio

/// Istio DestinationRule whose host is our Service.
pub fn destination_rule(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
    let name = obj_name(obj);
    let s = spec(obj);
    let host = str_at(s, "host")?;
    let ns = ctx.ns();
    let svc = &ctx.name;
    let matches = [
        svc.clone(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.cluster.local"),
    ];
    if !matches.iter().any(|m| m == host) {
        return None;
    }
    let mut r = Route::new("DestinationRule", &name, Controller::Istio);
    r.entry = false;
    r.bypasses_service = true;
    r.hosts.push(host.to_owned());
    let tp = s.get("trafficPolicy").unwrap_or(&Value::Null);
    let ev = format!("destinationrule/{name} spec.trafficPolicy");
    if let Some(lb) = tp.get("loadBalancer") {
        if let Some(ch) = lb.get("consistentHash") {
            let ev = format!("{ev}.loadBalancer.consistentHash");
            if let Some(c) = ch.get("httpCookie") {
                let ttl = text_at(c, "ttl").and_then(|t| {
                    seconds_or_problem(&mut r, &t, format!("{ev}.httpCookie.ttl={t}"))
                });
                let cname = str_at(c, "name").map(str::to_owned);
                r.set_affinity(cookie(cname, ttl), format!("{ev}.httpCookie"));
            } else if let Some(h) = str_at(ch, "httpHeaderName") {
                r.set_affinity(
                    Affinity::Header { name: h.to_owned() },
                    format!("{ev}.httpHeaderName={h}"),
                );
            } else if ch.get("useSourceIp").and_then(Value::as_bool) == Some(true) {
                r.set_affinity(
                    Affinity::Hash {
                        key: "source IP".into(),
                        client_address: true,
                    },
                    format!("{ev}.useSourceIp=true"),
                );
            } else if let Some(q) = str_at(ch, "httpQueryParameterName") {
                r.set_affinity(
                    Affinity::Hash {
                        key: format!("query {q}"),
                        client_address: false,
                    },
                    format!("{ev}.httpQueryParameterName={q}"),
                );
            }
        } else if let Some(simple) = str_at(lb, "simple") {
            r.balancer = Some(simple.to_owned());
        }
    }
    if let Some(t) = tp
        .get("connectionPool")
        .and_then(|c| c.get("http"))
        .and_then(|h| text_at(h, "idleTimeout"))
    {
        r.timeout_value(
            "connectionPool.http.idleTimeout",
            &t,
            format!("{ev}.connectionPool.http.idleTimeout"),
        );
    }
    Some(r)
}

// ------------------------------------------------------------------ Gateway API

/// A backendRef / service reference names our Service (kind Service, core group, our namespace).
fn backend_is_ours(ctx: &Ctx, obj: &DynamicObject, b: &Value) -> bool {
    let name_ok = str_at(b, "name") == Some(ctx.name.as_str());
    let kind_ok = str_at(b, "kind").is_none_or(|k| k == "Service");
    let group_ok = str_at(b, "group").is_none_or(str::is_empty);
    let ns = str_at(b, "namespace").or(obj_namespace(obj));
    let ns_ok = ns.is_none_or(|n| n == ctx.ns());
    name_ok && kind_ok && group_ok && ns_ok
}

/// Gateway API HTTPRoute rules whose backendRefs name our Service.
pub fn httproute(ctx: &Ctx, obj: &DynamicObject) -> Option<Route> {
    let name = obj_name(obj);
    let s = spec(obj);
    let rules: Vec<(usize, &Value)> = arr(s, "rules")
        .iter()
        .enumerate()
        .filter(|(_, rule)| {
            arr(rule, "backendRefs")
                .iter()
                .any(|b| backend_is_ours(ctx, obj, b))
        })
        .collect();
    if rules.is_empty() {
        return None;
    }
    let mut r = Route::new("HTTPRoute", &name, Controller::GatewayApi);
    r.hosts = arr(s, "hostnames")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    for (i, rule) in rules {
        let ev = format!("httproute/{name} spec.rules[{i}]");
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

// ------------------------------------------------------------------ rules

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
        if !other && bad.is_empty() {
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
        let evidence = r
            .affinity_evidence
            .iter()
            .cloned()
            .chain(bad.iter().map(|p| p.evidence.clone()))
            .collect();
        let fix = if bad.is_empty() {
            "none needed if intended; remove the setting named in the evidence to have one client's new connections spread (open WebSockets stay where they are)".to_owned()
        } else {
            "correct the value named in the evidence; until then the controller uses its default"
                .to_owned()
        };
        let mut f = finding("WSA036", parts.join("; "), evidence, fix);
        if !other {
            // Only an unreadable value (on ingress-nginx, say): the catalog
            // title "affinity defined by another controller" would mislead.
            f.title = WSA036_UNREADABLE_TITLE.to_owned();
        }
        out.push(f);
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::{Observations, Snapshot};
    use serde_json::json;

    fn ctx_routes(snap: &Snapshot) -> Vec<Route> {
        Ctx::new(snap, &Observations::default()).routes
    }

    fn run(rule: Rule, snap: &Snapshot) -> Vec<Finding> {
        rule(&Ctx::new(snap, &Observations::default()))
    }

    fn all(snap: &Snapshot) -> Vec<&'static str> {
        codes(&super::super::findings(&Ctx::new(
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
        let f = super::super::ingress_nginx::wsa034_timeouts(&Ctx::new(
            &snap,
            &Observations::default(),
        ));
        assert!(f[0].detail.contains("default of 30 s"), "{}", f[0].detail);
        assert!(run(wsa036_other_controller, &snap).is_empty());
    }

    #[test]
    fn gke_missing_backend_config_is_reported() {
        let svc =
            service("web").annotation("cloud.google.com/backend-config", r#"{"default":"nope"}"#);
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
        let report = super::super::diagnose(&snap, &Observations::default(), None);
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
}
