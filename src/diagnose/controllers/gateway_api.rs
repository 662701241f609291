//! Gateway API: `HTTPRoute` session persistence and timeouts.

use kube::api::DynamicObject;
use serde_json::Value;

use super::{arr, backend_is_ours, cookie, obj_name, seconds_or_problem, spec, str_at, text_at};
use crate::diagnose::annotations::parse_seconds;
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Controller, Route};

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
