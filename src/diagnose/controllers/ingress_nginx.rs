//! ingress-nginx annotations, and the route rules they drive:
//! WSA013, WSA030–WSA034, WSA040 (WSA032–WSA034 also cover other controllers'
//! routes, parsed in the other files of `controllers/`).

use std::collections::BTreeMap;

use crate::diagnose::annotations::{
    client_address_variables, hash_key_variables, parse_bool, parse_seconds,
};
use crate::diagnose::ctx::{Ctx, MIN_WS_TIMEOUT_SECS, Rule, finding, names};
use crate::diagnose::route::{Affinity, Controller, Problem, Route};
use crate::report::Finding;

pub const RULES: &[Rule] = &[
    wsa013_service_affinity_bypassed,
    wsa030_cookie_affinity,
    wsa031_persistent_mode,
    wsa032_client_address_hash,
    wsa033_sends_to_cluster_ip,
    wsa034_timeouts,
    wsa040_client_ip_and_cookie,
];

const PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// ingress-nginx's default cookie name.
pub const DEFAULT_COOKIE: &str = "INGRESSCOOKIE";
/// ingress-nginx's default proxy-read/send timeout.
pub const DEFAULT_PROXY_TIMEOUT: u64 = 60;

/// Fill `r` from an ingress-nginx Ingress's annotations.
pub fn parse(r: &mut Route, ann: &BTreeMap<String, String>) {
    let get = |k: &str| ann.get(&format!("{PREFIX}{k}")).map(String::as_str);
    let ing_ref = format!("ingress/{}", r.name);
    let ev = |k: &str| format!("{ing_ref} metadata.annotations[{PREFIX}{k}]");

    let upstream = match get("service-upstream") {
        Some(v) => parse_bool(v).unwrap_or_else(|reason| {
            r.problems.push(Problem {
                code: "WSA036",
                evidence: format!("{}={v}", ev("service-upstream")),
                reason,
            });
            false
        }),
        None => false,
    };
    if upstream {
        r.to_cluster_ip = Some(format!("{}=true", ev("service-upstream")));
    } else {
        r.bypasses_service = true;
    }

    match get("affinity").map(str::trim) {
        Some("cookie") => {
            let name = get("session-cookie-name")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_COOKIE);
            let mut max_age = None;
            for key in ["session-cookie-max-age", "session-cookie-expires"] {
                if let (None, Some(v)) = (max_age, get(key)) {
                    match parse_seconds(v) {
                        Ok(s) => max_age = Some(s),
                        Err(reason) => r.problem("WSA036", format!("{}={v}", ev(key)), reason),
                    }
                }
            }
            let mode = match get("affinity-mode").map(str::trim) {
                None | Some("") => "balanced".to_owned(),
                Some(m @ ("balanced" | "persistent")) => m.to_owned(),
                Some(other) => {
                    r.problem(
                        "WSA036",
                        format!("{}={other}", ev("affinity-mode")),
                        "expected `balanced` or `persistent`; ingress-nginx then uses `balanced`"
                            .into(),
                    );
                    "balanced".to_owned()
                }
            };
            let evidence = format!("{}=cookie", ev("affinity"));
            r.set_affinity(
                Affinity::Cookie {
                    name: Some(name.to_owned()),
                    max_age,
                    mode: Some(mode),
                },
                evidence,
            );
        }
        Some(other) => r.problem(
            "WSA036",
            format!("{}={other}", ev("affinity")),
            "ingress-nginx only supports `cookie`; no affinity applies".into(),
        ),
        None => {}
    }
    if let Some(key) = get("upstream-hash-by") {
        // Cookie affinity takes precedence in ingress-nginx's balancer.
        if r.affinity.is_none() {
            let client_address = !client_address_variables(key).is_empty();
            r.set_affinity(
                Affinity::Hash {
                    key: key.trim().to_owned(),
                    client_address,
                },
                format!("{}={key}", ev("upstream-hash-by")),
            );
        }
    }
    if let Some(lb) = get("load-balance") {
        r.balancer = Some(lb.trim().to_owned());
    }
    for key in ["proxy-read-timeout", "proxy-send-timeout"] {
        match get(key) {
            // ingress-nginx reads these as a whole number of seconds.
            Some(v) if is_whole_seconds(v) => r.timeout_value(key, v, ev(key)),
            Some(v) => {
                r.problem(
                    "WSA034",
                    format!("{}={v}", ev(key)),
                    format!(
                        "ingress-nginx expects a whole number of seconds such as \"3600\" and ignores `{v}`, so the default applies"
                    ),
                );
                r.default_timeout(key, DEFAULT_PROXY_TIMEOUT, ev(key));
            }
            None => r.default_timeout(key, DEFAULT_PROXY_TIMEOUT, ev(key)),
        }
    }
}

/// `"3600"`: digits only (surrounding blanks tolerated).
fn is_whole_seconds(v: &str) -> bool {
    let v = v.trim();
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

fn route_list(routes: &[&Route]) -> String {
    names(&routes.iter().map(|r| r.reference()).collect::<Vec<_>>())
}

/// WSA013: Service affinity does not apply to traffic through a controller
/// that balances to the endpoints itself.
pub fn wsa013_service_affinity_bypassed(ctx: &Ctx) -> Vec<Finding> {
    if ctx.client_ip_timeout().is_none() {
        return vec![];
    }
    let bypass: Vec<&Route> = ctx
        .entry_routes()
        .filter(|r| r.bypasses_service && r.to_cluster_ip.is_none())
        .collect();
    if bypass.is_empty() {
        return vec![];
    }
    let controllers: Vec<String> = {
        let mut c: Vec<String> = bypass
            .iter()
            .map(|r| r.controller.label().to_owned())
            .collect();
        c.dedup();
        c
    };
    vec![finding(
        "WSA013",
        format!(
            "{} ({}) {} to the pod addresses from the EndpointSlices {}, so service `{}`'s sessionAffinity ClientIP does not apply to that traffic; it applies only to clients of the ClusterIP{}",
            route_list(&bypass),
            controllers.join(", "),
            if bypass.len() == 1 { "sends" } else { "send" },
            if bypass.len() == 1 {
                "itself"
            } else {
                "themselves"
            },
            ctx.name,
            if ctx.is_external_type() {
                " and node ports"
            } else {
                ""
            }
        ),
        bypass
            .iter()
            .map(|r| format!("{} controller={}", r.reference(), r.controller.label()))
            .chain([format!("{} spec.sessionAffinity=ClientIP", ctx.svc_ref())])
            .collect(),
        wsa013_fix(&bypass),
    )]
}

/// Where stickiness for traffic through these controllers is set, by the
/// first controller's own spelling.
fn wsa013_fix(bypass: &[&Route]) -> String {
    let example = match bypass.first().map(|r| &r.controller) {
        Some(Controller::Traefik) => {
            "Traefik reads it on the Service: `traefik.ingress.kubernetes.io/service.sticky.cookie: \"true\"`"
        }
        Some(Controller::Haproxy) => "`haproxy.org/cookie-persistence: NAME` on the Ingress",
        Some(Controller::Contour) => "HTTPProxy `loadBalancerPolicy.strategy: Cookie`",
        Some(Controller::Istio) => "DestinationRule `consistentHash.httpCookie`",
        _ => "e.g. `nginx.ingress.kubernetes.io/affinity: cookie` on the Ingress",
    };
    format!(
        "none needed; configure stickiness for that traffic on the route's controller ({example})"
    )
}

/// WSA030: ingress-nginx cookie affinity.
pub fn wsa030_cookie_affinity(ctx: &Ctx) -> Vec<Finding> {
    ctx.entry_routes()
        .filter(|r| r.controller == Controller::Nginx && r.to_cluster_ip.is_none())
        .filter_map(|r| {
            let Affinity::Cookie { name, max_age, mode } = &r.affinity else { return None };
            let name = name.as_deref().unwrap_or(DEFAULT_COOKIE);
            let lifetime = match max_age {
                Some(s) => format!("for {s} s"),
                None => "for the browser session (no max-age)".to_owned(),
            };
            Some(finding(
                "WSA030",
                format!(
                    "{} pins each cookie jar to one pod with cookie `{name}` {lifetime}, mode {}: one client reusing its cookie stays on one pod, separate clients spread over the {} ready pods",
                    r.tick(),
                    mode.as_deref().unwrap_or("balanced"),
                    ctx.ready_count()
                ),
                r.affinity_evidence.clone(),
                // The Service target, not a URL: spread derives ws:// or wss://
                // from the Ingress's `tls` itself and explains with a snapshot.
                format!(
                    "none needed; check the spread with separate clients: `kubectl wsaffinity spread -n {} svc/{}`",
                    ctx.ns(),
                    ctx.name
                ),
            ))
        })
        .collect()
}

/// WSA031: `affinity-mode: persistent`.
pub fn wsa031_persistent_mode(ctx: &Ctx) -> Vec<Finding> {
    ctx.entry_routes()
        .filter(|r| r.controller == Controller::Nginx)
        .filter(|r| matches!(&r.affinity, Affinity::Cookie { mode: Some(m), .. } if m == "persistent"))
        .map(|r| {
            finding(
                "WSA031",
                format!(
                    "{} has affinity-mode persistent: existing cookies never move, so pods added by a scale-up only receive clients without a cookie (open WebSockets never move in either mode)",
                    r.tick()
                ),
                vec![format!("ingress/{} metadata.annotations[{PREFIX}affinity-mode]=persistent", r.name)],
                format!(
                    "kubectl annotate ingress {} -n {} {PREFIX}affinity-mode=balanced --overwrite",
                    r.name,
                    ctx.ns()
                ),
            )
        })
        .collect()
}

/// WSA032: hashing on the client address (or a constant).
pub fn wsa032_client_address_hash(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in ctx
        .entry_routes()
        .chain(ctx.routes.iter().filter(|r| !r.entry))
    {
        let Affinity::Hash {
            key,
            client_address,
        } = &r.affinity
        else {
            continue;
        };
        let constant = r.controller == Controller::Nginx && hash_key_variables(key).is_empty();
        if !client_address && !constant {
            continue;
        }
        let mut detail = if constant {
            format!(
                "{} hashes on the constant key `{key}`: every client lands on the same pod",
                r.tick()
            )
        } else {
            format!(
                "{} hashes on the client address (`{key}`): everyone behind one NAT, VPN or proxy lands on the same pod, and with few client networks the pods fill unevenly",
                r.tick()
            )
        };
        if r.to_cluster_ip.is_some() {
            detail.push_str(
                " (while the route sends to the ClusterIP the hash only chooses among that one upstream; it decides once the route balances to the pods again)",
            );
        }
        let fix = if r.controller == Controller::Nginx {
            format!(
                "remove `{PREFIX}upstream-hash-by` and use `{PREFIX}affinity: cookie`, or hash on a per-user key such as `$cookie_session`: `kubectl annotate ingress {} -n {} {PREFIX}upstream-hash-by- {PREFIX}affinity=cookie`",
                r.name,
                ctx.ns()
            )
        } else {
            format!(
                "hash on a per-user key (a cookie or header) instead of the source IP in {}",
                r.tick()
            )
        };
        out.push(finding("WSA032", detail, r.affinity_evidence.clone(), fix));
    }
    out
}

/// WSA033: the controller sends to the ClusterIP.
pub fn wsa033_sends_to_cluster_ip(ctx: &Ctx) -> Vec<Finding> {
    ctx.routes
        .iter()
        .filter_map(|r| {
            let ev = r.to_cluster_ip.clone()?;
            let mut detail = format!(
                "{} sends to service `{}`'s ClusterIP instead of the pods, so kube-proxy picks the pod per connection",
                r.tick(),
                ctx.name
            );
            if matches!(r.affinity, Affinity::Cookie { .. }) {
                detail.push_str("; its cookie affinity is ineffective because the controller no longer chooses the pod");
            }
            if let Some(t) = ctx.client_ip_timeout() {
                detail.push_str(&format!(
                    "; with sessionAffinity ClientIP kube-proxy sees the controller pod's IP for every client, so every client through one controller pod lands on one pod for {t} s"
                ));
            }
            let mut evidence = vec![ev];
            if ctx.client_ip_timeout().is_some() {
                evidence.push(format!("{} spec.sessionAffinity=ClientIP", ctx.svc_ref()));
            }
            let fix = match r.controller {
                Controller::Nginx => format!(
                    "kubectl annotate ingress {} -n {} {PREFIX}service-upstream- (let ingress-nginx balance to the endpoints); if it must stay, set the Service's `sessionAffinity: None`",
                    r.name,
                    ctx.ns()
                ),
                _ => format!(
                    "turn off native load balancing (`nativeLB`/`service.nativelb`) on {} so the controller balances to the pods, or set the Service's `sessionAffinity: None`",
                    r.tick()
                ),
            };
            Some(finding("WSA033", detail, evidence, fix))
        })
        .collect()
}

fn timeout_fix(ctx: &Ctx, r: &Route) -> String {
    match r.controller {
        Controller::Nginx => format!(
            "kubectl annotate ingress {} -n {} {PREFIX}proxy-read-timeout=3600 {PREFIX}proxy-send-timeout=3600 --overwrite",
            r.name,
            ctx.ns()
        ),
        Controller::Alb => format!(
            "kubectl annotate ingress {} -n {} alb.ingress.kubernetes.io/load-balancer-attributes=idle_timeout.timeout_seconds=3600 --overwrite",
            r.name,
            ctx.ns()
        ),
        Controller::Gke => "set `spec.timeoutSec: 3600` in the BackendConfig named by the Service's `cloud.google.com/backend-config` annotation".into(),
        Controller::Contour => format!("set `timeoutPolicy.idle: 1h` (and `response: infinity`) on the route in {}", r.tick()),
        Controller::Haproxy => format!("set the tunnel timeout to `1h` on {}", r.tick()),
        Controller::GatewayApi => format!("raise `rules[].timeouts` to at least `1h` (or remove them) in {}", r.tick()),
        Controller::Istio => format!("raise `connectionPool.http.idleTimeout` to at least `1h` in {}", r.tick()),
        _ => format!("raise the timeout to at least 3600 s on {}", r.tick()),
    }
}

/// WSA034: timeouts below 3600 s, defaults of 60 s, and malformed timeout values.
pub fn wsa034_timeouts(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &ctx.routes {
        let short: Vec<_> = r
            .timeouts
            .iter()
            .filter(|t| t.seconds < MIN_WS_TIMEOUT_SECS)
            .collect();
        let bad: Vec<_> = r.problems.iter().filter(|p| p.code == "WSA034").collect();
        if short.is_empty() && bad.is_empty() {
            continue;
        }
        let mut parts: Vec<String> = short
            .iter()
            .map(|t| {
                // A defaulted timeout is either unset or set to a value the
                // proxy ignores; the latter must not read "is not set".
                let unreadable = bad
                    .iter()
                    .any(|p| p.evidence.starts_with(&format!("{}=", t.evidence)));
                if t.defaulted && unreadable {
                    format!(
                        "{} is set to a value that cannot be read, so the default of {} s applies",
                        t.name, t.seconds
                    )
                } else if t.defaulted {
                    format!(
                        "{} is not set, so the default of {} s applies",
                        t.name, t.seconds
                    )
                } else {
                    format!("{} is {} s", t.name, t.seconds)
                }
            })
            .collect();
        parts.extend(
            bad.iter()
                .map(|p| format!("`{}` could not be read: {}", p.evidence, p.reason)),
        );
        let idle_min = short
            .iter()
            .filter(|t| !t.is_total())
            .map(|t| t.seconds)
            .min();
        let total_min = short
            .iter()
            .filter(|t| t.is_total())
            .map(|t| t.seconds)
            .min();
        let mut detail = format!("{}: {}", r.tick(), parts.join("; "));
        if let Some(m) = idle_min {
            detail.push_str(&format!(
                "; a WebSocket idle for more than {m} s is closed by the proxy and the client has to reconnect"
            ));
        }
        if let Some(m) = total_min {
            detail.push_str(&format!(
                "; a request timeout also limits how long an upgraded connection may stay open, so a WebSocket may be cut after {m} s"
            ));
        }
        let evidence = short
            .iter()
            .map(|t| {
                if t.defaulted {
                    format!("{} (not set)", t.evidence)
                } else {
                    format!("{}={}s", t.evidence, t.seconds)
                }
            })
            .chain(bad.iter().map(|p| p.evidence.clone()))
            .collect();
        out.push(finding("WSA034", detail, evidence, timeout_fix(ctx, r)));
    }
    out
}

/// WSA040: Service ClientIP and route cookie affinity both on.
pub fn wsa040_client_ip_and_cookie(ctx: &Ctx) -> Vec<Finding> {
    if ctx.client_ip_timeout().is_none() {
        return vec![];
    }
    let cookie: Vec<&Route> = ctx
        .entry_routes()
        .filter(|r| r.to_cluster_ip.is_none() && matches!(r.affinity, Affinity::Cookie { .. }))
        .collect();
    if cookie.is_empty() {
        return vec![];
    }
    vec![finding(
        "WSA040",
        format!(
            "service `{}` has ClientIP affinity and {} has cookie affinity: for traffic through the route the cookie decides; ClientIP applies only to clients of the ClusterIP or node ports",
            ctx.name,
            route_list(&cookie)
        ),
        cookie
            .iter()
            .flat_map(|r| r.affinity_evidence.clone())
            .chain([format!("{} spec.sessionAffinity=ClientIP", ctx.svc_ref())])
            .collect(),
        "none needed; drop one of them if only one path needs stickiness",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::fixtures::*;
    use crate::snapshot::{Observations, Snapshot};

    const P: &str = "nginx.ingress.kubernetes.io/";

    fn run(rule: Rule, snap: &Snapshot) -> Vec<Finding> {
        rule(&Ctx::new(snap, &Observations::default()))
    }

    fn with_ingress(svc: crate::diagnose::fixtures::SvcB, ing: IngB) -> Snapshot {
        snapshot(svc.build())
            .ready_pods(2)
            .ingress(ing.build())
            .build()
    }

    fn nginx() -> IngB {
        ingress_nginx("web", "web")
    }

    #[test]
    fn parse_reads_every_annotation() {
        let ann: BTreeMap<String, String> = [
            ("affinity", "cookie"),
            ("session-cookie-name", "WS"),
            ("session-cookie-expires", "1h"),
            ("affinity-mode", "persistent"),
            ("load-balance", "ewma"),
            ("proxy-read-timeout", "3600"),
        ]
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), v.to_string()))
        .collect();
        let mut r = Route::new("Ingress", "web", Controller::Nginx);
        parse(&mut r, &ann);
        assert_eq!(
            r.affinity,
            Affinity::Cookie {
                name: Some("WS".into()),
                max_age: Some(3600),
                mode: Some("persistent".into())
            }
        );
        assert_eq!(r.balancer.as_deref(), Some("ewma"));
        assert_eq!(
            r.row().timeouts,
            vec![
                "proxy-read-timeout=3600s",
                "proxy-send-timeout=60s (default)"
            ]
        );
        assert!(r.bypasses_service && r.to_cluster_ip.is_none());
    }

    #[test]
    fn wsa034_says_set_but_unreadable_not_unset() {
        let s = with_ingress(
            service("web"),
            nginx()
                .annotation(&format!("{P}proxy-read-timeout"), "1h")
                .annotation(&format!("{P}proxy-send-timeout"), "3600"),
        );
        let f = run(wsa034_timeouts, &s);
        assert_eq!(codes(&f), vec!["WSA034"]);
        let d = &f[0].detail;
        assert!(
            d.contains("proxy-read-timeout is set to a value that cannot be read, so the default of 60 s applies"),
            "{d}"
        );
        assert!(!d.contains("proxy-read-timeout is not set"), "{d}");
        assert!(d.contains("could not be read"), "{d}");
    }

    #[test]
    fn malformed_values_become_problems_not_panics() {
        let ann: BTreeMap<String, String> = [
            ("affinity", "sticky"),
            ("service-upstream", "maybe"),
            ("proxy-read-timeout", "forever"),
            ("session-cookie-max-age", "x"),
        ]
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), v.to_string()))
        .collect();
        let mut r = Route::new("Ingress", "web", Controller::Nginx);
        parse(&mut r, &ann);
        let mut codes: Vec<_> = r.problems.iter().map(|p| p.code).collect();
        codes.sort();
        assert_eq!(codes, vec!["WSA034", "WSA036", "WSA036"]);
    }

    #[test]
    fn wsa013_fires_for_client_ip_behind_nginx() {
        let s = with_ingress(service("web").client_ip(10800), nginx());
        assert_eq!(
            codes(&run(wsa013_service_affinity_bypassed, &s)),
            vec!["WSA013"]
        );
    }

    #[test]
    fn wsa013_silent_without_client_ip_or_with_service_upstream() {
        assert!(
            run(
                wsa013_service_affinity_bypassed,
                &with_ingress(service("web"), nginx())
            )
            .is_empty()
        );
        let s = with_ingress(
            service("web").client_ip(10800),
            nginx().annotation(&format!("{P}service-upstream"), "true"),
        );
        assert!(run(wsa013_service_affinity_bypassed, &s).is_empty());
        let s = with_ingress(service("web").client_ip(10800), ingress("web", "web"));
        assert!(run(wsa013_service_affinity_bypassed, &s).is_empty());
    }

    #[test]
    fn wsa030_fires_for_cookie_affinity_with_default_name() {
        let s = with_ingress(
            service("web"),
            nginx().annotation(&format!("{P}affinity"), "cookie"),
        );
        let f = run(wsa030_cookie_affinity, &s);
        assert_eq!(codes(&f), vec!["WSA030"]);
        assert!(
            f[0].detail.contains("`INGRESSCOOKIE`") && f[0].detail.contains("mode balanced"),
            "{}",
            f[0].detail
        );
        // A command that runs as printed: the Service target, whose Ingress
        // gives spread the URL with the right scheme (this one has no TLS).
        assert!(
            f[0].fix.contains("`kubectl wsaffinity spread -n ")
                && f[0].fix.contains(" svc/web`")
                && !f[0].fix.contains("wss://"),
            "{}",
            f[0].fix
        );
    }

    #[test]
    fn wsa030_silent_without_cookie_or_with_service_upstream() {
        assert!(
            run(
                wsa030_cookie_affinity,
                &with_ingress(service("web"), nginx())
            )
            .is_empty()
        );
        let s = with_ingress(
            service("web"),
            nginx()
                .annotation(&format!("{P}affinity"), "cookie")
                .annotation(&format!("{P}service-upstream"), "true"),
        );
        assert!(run(wsa030_cookie_affinity, &s).is_empty());
    }

    #[test]
    fn wsa031_fires_for_persistent_mode_only() {
        let ing = nginx().annotation(&format!("{P}affinity"), "cookie");
        let s = with_ingress(
            service("web"),
            ing.annotation(&format!("{P}affinity-mode"), "persistent"),
        );
        assert_eq!(codes(&run(wsa031_persistent_mode, &s)), vec!["WSA031"]);
        let ing = nginx().annotation(&format!("{P}affinity"), "cookie");
        let s = with_ingress(
            service("web"),
            ing.annotation(&format!("{P}affinity-mode"), "balanced"),
        );
        assert!(run(wsa031_persistent_mode, &s).is_empty());
    }

    #[test]
    fn wsa032_fires_for_client_address_keys_and_constants() {
        for key in [
            "$remote_addr",
            "$binary_remote_addr",
            "${http_x_forwarded_for}",
            "static",
        ] {
            let s = with_ingress(
                service("web"),
                nginx().annotation(&format!("{P}upstream-hash-by"), key),
            );
            assert_eq!(
                codes(&run(wsa032_client_address_hash, &s)),
                vec!["WSA032"],
                "{key}"
            );
        }
    }

    #[test]
    fn wsa032_silent_for_per_user_keys() {
        let s = with_ingress(
            service("web"),
            nginx().annotation(&format!("{P}upstream-hash-by"), "$cookie_session"),
        );
        assert!(run(wsa032_client_address_hash, &s).is_empty());
        assert!(
            run(
                wsa032_client_address_hash,
                &with_ingress(service("web"), nginx())
            )
            .is_empty()
        );
    }

    #[test]
    fn wsa033_fires_for_service_upstream_and_mentions_client_ip() {
        let s = with_ingress(
            service("web").client_ip(10800),
            nginx()
                .annotation(&format!("{P}service-upstream"), "true")
                .annotation(&format!("{P}affinity"), "cookie"),
        );
        let f = run(wsa033_sends_to_cluster_ip, &s);
        assert_eq!(codes(&f), vec!["WSA033"]);
        assert!(
            f[0].detail.contains("ineffective") && f[0].detail.contains("controller pod's IP"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa033_silent_without_service_upstream() {
        let s = with_ingress(
            service("web").client_ip(10800),
            nginx().annotation(&format!("{P}service-upstream"), "false"),
        );
        assert!(run(wsa033_sends_to_cluster_ip, &s).is_empty());
    }

    #[test]
    fn wsa034_fires_for_missing_or_short_timeouts() {
        let f = run(wsa034_timeouts, &with_ingress(service("web"), nginx()));
        assert_eq!(codes(&f), vec!["WSA034"]);
        assert!(f[0].detail.contains("default of 60 s"), "{}", f[0].detail);
        let s = with_ingress(
            service("web"),
            nginx()
                .timeouts_ok()
                .annotation(&format!("{P}proxy-read-timeout"), "600"),
        );
        let f = run(wsa034_timeouts, &s);
        assert!(
            f[0].detail.contains("proxy-read-timeout is 600 s"),
            "{}",
            f[0].detail
        );
        let s = with_ingress(
            service("web"),
            nginx()
                .timeouts_ok()
                .annotation(&format!("{P}proxy-send-timeout"), "1 hour"),
        );
        assert_eq!(codes(&run(wsa034_timeouts, &s)), vec!["WSA034"]);
    }

    #[test]
    fn wsa034_fires_for_unit_suffixed_nginx_timeouts() {
        // ingress-nginx ignores "3600s" and falls back to 60 s (kubernetes/ingress-nginx#11726).
        let s = with_ingress(
            service("web"),
            nginx()
                .annotation(&format!("{P}proxy-read-timeout"), "3600s")
                .annotation(&format!("{P}proxy-send-timeout"), "3600"),
        );
        let f = run(wsa034_timeouts, &s);
        assert_eq!(codes(&f), vec!["WSA034"]);
        assert!(
            f[0].detail.contains("default of 60 s")
                && f[0].detail.contains("whole number of seconds"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa034_silent_with_long_timeouts() {
        let s = with_ingress(
            service("web"),
            nginx()
                .annotation(&format!("{P}proxy-read-timeout"), " 3600 ")
                .annotation(&format!("{P}proxy-send-timeout"), "7200"),
        );
        assert!(run(wsa034_timeouts, &s).is_empty());
    }

    #[test]
    fn wsa040_fires_for_client_ip_plus_cookie() {
        let s = with_ingress(service("web").client_ip(10800), nginx().nginx_cookie_ok());
        assert_eq!(codes(&run(wsa040_client_ip_and_cookie, &s)), vec!["WSA040"]);
    }

    #[test]
    fn wsa040_silent_without_either() {
        assert!(
            run(
                wsa040_client_ip_and_cookie,
                &with_ingress(service("web"), nginx().nginx_cookie_ok())
            )
            .is_empty()
        );
        assert!(
            run(
                wsa040_client_ip_and_cookie,
                &with_ingress(service("web").client_ip(60), nginx())
            )
            .is_empty()
        );
    }

    #[test]
    fn issue_scenario_service_upstream_hash_lb_cluster_no_timeouts() {
        let s = with_ingress(
            service("web").client_ip(10800).load_balancer(),
            nginx()
                .annotation(&format!("{P}service-upstream"), "true")
                .annotation(&format!("{P}upstream-hash-by"), "$remote_addr"),
        );
        let all = codes(&crate::diagnose::findings(&Ctx::new(
            &s,
            &Observations::default(),
        )));
        for c in ["WSA033", "WSA032", "WSA012", "WSA034"] {
            assert!(all.contains(&c), "{c} missing from {all:?}");
        }
    }
}
