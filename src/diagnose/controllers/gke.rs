//! GKE Ingress: the Service's `BackendConfig` (session affinity and
//! backend timeout).

use super::{annotation, cookie, spec, str_at, text_at};
use crate::diagnose::annotations::{backend_config_name, parse_seconds};
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::{Affinity, Controller, Route};
use crate::snapshot::RouteKind;

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
pub fn ingress(ctx: &Ctx, r: &mut Route) {
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
pub fn backend_config_route(ctx: &Ctx) -> Option<Route> {
    backend_config_annotation(ctx)?;
    let mut r = Route::new("BackendConfig", &ctx.name, Controller::Gke);
    r.entry = false;
    ingress(ctx, &mut r);
    // Without a GKE Ingress there is no backend service yet: only report what is configured.
    r.timeouts.retain(|t| !t.defaulted);
    Some(r)
}
