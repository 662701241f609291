//! AWS Load Balancer Controller (ALB): target-group stickiness, target
//! type and the load balancer's idle timeout.

use std::collections::BTreeMap;

use super::{annotation, cookie, seconds_or_problem};
use crate::diagnose::annotations::{parse_bool, parse_kv_list};
use crate::diagnose::ctx::Ctx;
use crate::diagnose::route::Route;

const ALB: &str = "alb.ingress.kubernetes.io/";
/// The ALB's default idle timeout.
pub const ALB_DEFAULT_IDLE: u64 = 60;

pub fn ingress(ctx: &Ctx, r: &mut Route, ing: &BTreeMap<String, String>) {
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
