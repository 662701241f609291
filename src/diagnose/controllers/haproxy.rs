//! HAProxy: HAProxy Technologies (`haproxy.org/`) and haproxy-ingress
//! (`haproxy-ingress.github.io/`) annotations.

use std::collections::BTreeMap;

use super::{annotation, cookie};
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Route};

/// HAProxy Technologies (`haproxy.org/`) and haproxy-ingress (`haproxy-ingress.github.io/`)
/// annotations, on the Ingress or else on the Service.
pub fn ingress(ctx: &Ctx, r: &mut Route, ing: &BTreeMap<String, String>) {
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
