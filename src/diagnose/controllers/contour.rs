//! Contour: `HTTPProxy` load-balancing strategy and timeouts.

use kube::api::DynamicObject;
use serde_json::Value;

use super::{arr, cookie, obj_name, spec, str_at, text_at};
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Controller, Route};

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
