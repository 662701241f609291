//! Istio: `DestinationRule` consistent hashing and connection timeouts.

use kube::api::DynamicObject;
use serde_json::Value;

use super::{cookie, obj_name, seconds_or_problem, spec, str_at, text_at};
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Controller, Route};

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
