//! The verdict: one or two sentences a person reads first, built from the findings.
//!
//! What a probe measured leads: a URL test that put every client on one pod
//! (WSA066), one client on several pods (WSA065), an uneven spread (WSA064),
//! or logs without any count (WSA063) come before what the configuration
//! alone would predict, and the verdict never claims a spread the test did
//! not see.

use super::ctx::{Ctx, names, plural};
use super::probe::{IMBALANCE_THRESHOLD, MIN_CONNECTIONS_FOR_IMBALANCE};
use super::route::Affinity;
use crate::report::{Finding, Severity};

/// Findings about what was measured, in the order they lead the verdict.
const MEASURED: [&str; 3] = ["WSA066", "WSA065", "WSA064"];

fn has(findings: &[Finding], code: &str) -> bool {
    findings.iter().any(|f| f.code == code)
}

fn first<'f>(findings: &'f [Finding], code: &str) -> Option<&'f Finding> {
    findings.iter().find(|f| f.code == code)
}

/// Capitalise the first letter of a finding's lowercase detail.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn verdict(ctx: &Ctx, findings: &[Finding]) -> String {
    if ctx.spec().is_none() && !has(findings, "WSA001") {
        return observed_only(ctx, findings);
    }
    if let Some(f) = first(findings, "WSA001") {
        return format!("Nothing to check: {} (WSA001).", f.detail);
    }
    if has(findings, "WSA002") {
        return format!(
            "No pod matches service `{}`'s selector, so nothing receives its traffic; make the selector and the pod labels agree (WSA002).",
            ctx.name
        );
    }
    if has(findings, "WSA003") {
        return format!(
            "Pods match service `{}`, but none is ready, so there is no endpoint to send to; fix the readiness probe first (WSA003).",
            ctx.name
        );
    }
    let (refused, unreachable): (Vec<&Finding>, Vec<&Finding>) = findings
        .iter()
        .filter(|f| f.code == "WSA060")
        .partition(|f| f.title == super::probe::WSA060_REFUSED_TITLE);
    if !unreachable.is_empty() {
        return format!(
            "{} could not be reached through port-forward, so connections sent to {} fail; see the error text (WSA060).",
            plural(unreachable.len(), "pod"),
            if unreachable.len() == 1 { "it" } else { "them" }
        );
    }
    if !refused.is_empty() {
        // The pods answered: the test asked for the wrong path or port far
        // more often than the Service is broken.
        return format!(
            "{} reached over port-forward refused the WebSocket upgrade; check the path and port the test used (`--path`, `--port`) before the Service (WSA060).",
            plural(refused.len(), "pod"),
        );
    }
    if let Some(f) = findings.iter().find(|f| f.severity == Severity::Error) {
        return format!("{} ({}).", sentence(&f.detail), f.code);
    }
    let ready = ctx.ready_count();
    if ctx.service_type() == "ExternalName" {
        let target = ctx
            .spec()
            .and_then(|s| s.external_name.clone())
            .unwrap_or_default();
        return format!(
            "Service `{}` is an ExternalName alias for `{target}`: DNS answers with that name, so no pods or kube-proxy balancing are involved.",
            ctx.name
        );
    }
    if let Some(lead) = measured(findings) {
        return format!("{lead} {}", after_measured(ctx, findings));
    }
    let configured = configured(ctx, findings, ready);
    match no_count_logged(ctx) {
        Some(lead) => format!("{lead} {configured}"),
        None => configured,
    }
}

/// What the configuration predicts when nothing measured says otherwise.
fn configured(ctx: &Ctx, findings: &[Finding], ready: usize) -> String {
    if has(findings, "WSA004") {
        return "Only one pod is ready, so every connection lands on it whatever the affinity settings; scale out or make the other pods ready (WSA004).".into();
    }
    let warnings = warnings(findings, &[]);
    if !warnings.is_empty() {
        return format!(
            "New connections can reach {} behind service `{}`, but {}.",
            plural(ready, "pod"),
            ctx.name,
            attention(&warnings)
        );
    }
    correct(ctx, ready)
}

/// The warnings, one per code, without the codes in `except`.
fn warnings<'f>(findings: &'f [Finding], except: &[&str]) -> Vec<&'f Finding> {
    let mut warnings: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning && !except.contains(&f.code))
        .collect();
    warnings.dedup_by_key(|f| f.code);
    warnings
}

/// "2 things need attention: title (WSA012); title (WSA033)".
fn attention(warnings: &[&Finding]) -> String {
    let items: Vec<String> = warnings
        .iter()
        .take(3)
        .map(|f| format!("{} ({})", f.title, f.code))
        .collect();
    let more = if warnings.len() > 3 {
        format!(" and {} more", warnings.len() - 3)
    } else {
        String::new()
    };
    format!(
        "{} {} attention: {}{more}",
        plural(warnings.len(), "thing"),
        if warnings.len() == 1 { "needs" } else { "need" },
        items.join("; ")
    )
}

/// The first measured finding as a sentence: "All 4 clients through … (WSA066)."
fn measured(findings: &[Finding]) -> Option<String> {
    let f = MEASURED.iter().find_map(|code| first(findings, code))?;
    Some(format!("{} ({}).", sentence(&f.detail), f.code))
}

/// After a measured finding: the configuration's part, with no claim that
/// clients spread (the measurement is what the user saw).
fn after_measured(ctx: &Ctx, findings: &[Finding]) -> String {
    if has(findings, "WSA004") {
        return format!(
            "Only one pod is ready behind service `{}`, so every connection lands on it whatever the affinity settings (WSA004).",
            ctx.name
        );
    }
    let lead = MEASURED
        .iter()
        .find(|code| has(findings, code))
        .copied()
        .unwrap_or_default();
    let others = warnings(findings, &[lead]);
    if others.is_empty() {
        format!(
            "Nothing else behind service `{}` needs attention; the fix under {lead} says what to try next.",
            ctx.name
        )
    } else {
        format!(
            "Also behind service `{}`, {}.",
            ctx.name,
            attention(&others)
        )
    }
}

/// `logs` read no count at all: "None of the 2 pods logged … (WSA063)."
/// Only when the logs are the measurement (not `per-pod`'s side reading).
fn no_count_logged(ctx: &Ctx) -> Option<String> {
    if ctx.obs.per_pod.is_some() {
        return None;
    }
    let logs = ctx.obs.logs.as_deref()?;
    if logs.is_empty() || logs.iter().any(|l| l.active.is_some()) {
        return None;
    }
    let who = match logs {
        [only] => format!("Pod `{}` logged no", only.pod),
        _ => format!("None of the {} pods logged an", logs.len()),
    };
    Some(format!(
        "{who} `Active connections: N` line, so open connections per pod cannot be counted from the logs (WSA063)."
    ))
}

/// No Service was read (the cluster was not reachable, or `logs -l` chose
/// the pods by label and the rules ran against a stand-in without a spec):
/// the verdict says what was measured and that the routing was not checked.
fn observed_only(ctx: &Ctx, findings: &[Finding]) -> String {
    const NOT_CHECKED: &str =
        "No Service was read, so the routing in front of these pods was not checked.";
    if let Some(lead) = measured(findings) {
        return format!("{lead} {NOT_CHECKED}");
    }
    if let Some(lead) = no_count_logged(ctx) {
        return lead;
    }
    if let Some(logs) = ctx.obs.logs.as_deref() {
        return logged_counts(logs);
    }
    if let Some(run) = &ctx.obs.url {
        let pods: std::collections::BTreeSet<&str> = run
            .clients
            .iter()
            .flat_map(|c| c.pods.iter().map(String::as_str))
            .filter(|p| *p != "unknown")
            .collect();
        return format!(
            "{} through {} reached {}. {NOT_CHECKED}",
            plural(run.clients.len(), "client"),
            run.url,
            plural(pods.len(), "pod")
        );
    }
    format!("Nothing was measured. {NOT_CHECKED}")
}

/// The counts `logs` read when no finding is about them.
fn logged_counts(logs: &[crate::snapshot::PodLog]) -> String {
    if logs.is_empty() {
        return "No pod matched, so no log was read.".into();
    }
    let counted: Vec<(&str, u64)> = logs
        .iter()
        .filter_map(|l| l.active.map(|a| (l.pod.as_str(), a)))
        .collect();
    let silent: Vec<String> = logs
        .iter()
        .filter(|l| l.active.is_none())
        .map(|l| l.pod.clone())
        .collect();
    let total: u64 = counted.iter().map(|(_, a)| a).sum();
    let max = counted.iter().map(|(_, a)| *a).max().unwrap_or(0);
    let mut out = match counted.as_slice() {
        [(pod, active)] => format!(
            "Only pod `{pod}` logged a count ({}), so there is no spread to compare",
            plural(*active as usize, "open connection")
        ),
        _ if total < MIN_CONNECTIONS_FOR_IMBALANCE => format!(
            "The {} pods that logged a count hold {} in all, too few to judge the spread",
            counted.len(),
            plural(total as usize, "open connection")
        ),
        _ => format!(
            "The {} pods that logged a count hold {} in all, evenly spread (busiest {max}, max/mean at most {IMBALANCE_THRESHOLD})",
            counted.len(),
            plural(total as usize, "open connection")
        ),
    };
    if !silent.is_empty() {
        out.push_str(&format!("; {} logged none (WSA063)", names(&silent)));
    }
    out.push('.');
    out
}

/// No error and no warning: explain why a test may still show one pod.
fn correct(ctx: &Ctx, ready: usize) -> String {
    let client_ip = ctx.client_ip_timeout().is_some();
    let mut why =
        "Everything lands on one pod when you test through port-forward (one pod)".to_owned();
    if client_ip {
        why.push_str(" and ClientIP affinity pins your IP");
    }
    let entry: Vec<_> = ctx.entry_routes().collect();
    let through = if let Some(r) = entry
        .iter()
        .find(|r| r.to_cluster_ip.is_none() && !r.affinity.is_none())
    {
        let what = if r.kind == "Ingress" {
            "the Ingress".to_owned()
        } else {
            format!("the {}", r.kind)
        };
        match r.affinity {
            Affinity::Cookie { .. } => format!("through {what}, separate clients spread"),
            _ => format!("through {what}, clients with different affinity keys spread"),
        }
    } else if let Some(r) = entry.first() {
        let what = if r.kind == "Ingress" {
            "the Ingress".to_owned()
        } else {
            format!("the {}", r.kind)
        };
        format!("through {what}, new connections spread over the {ready} pods")
    } else if client_ip {
        format!("through the Service, separate client IPs spread over the {ready} pods")
    } else {
        format!("through the Service, each new connection is balanced over the {ready} pods")
    };
    format!("Your setup is correct for production. {why}; {through}.")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{diagnose, findings};
    use super::*;
    use crate::snapshot::{Observations, PodLog, Snapshot, UrlClient, UrlRun};

    fn verdict_of(snap: &crate::snapshot::Snapshot) -> String {
        diagnose(snap, &Observations::default(), None).verdict
    }

    #[test]
    fn dev_overlay_is_correct_for_production() {
        let v = verdict_of(&dev_overlay());
        assert_eq!(
            v,
            "Your setup is correct for production. Everything lands on one pod when you test through port-forward (one pod) and ClientIP affinity pins your IP; through the Ingress, separate clients spread."
        );
    }

    #[test]
    fn errors_lead_the_verdict() {
        let snap = snapshot(service("web").build()).build();
        assert!(verdict_of(&snap).contains("WSA002"));
        let snap = snapshot(service("web").build())
            .pod(pod("web-0").ready(false).build())
            .build();
        assert!(verdict_of(&snap).contains("WSA003"));
    }

    #[test]
    fn a_refused_upgrade_points_at_the_test_not_an_unreachable_pod() {
        let snap = snapshot(service("web").build()).ready_pods(2).build();
        let refused = crate::snapshot::UpgradeRefusal {
            path: "/nope".into(),
            status: 404,
            status_text: "404 Not Found".into(),
            body: Some("x".into()),
        };
        let failed = |pod: &str, error: &str| crate::snapshot::PodProbe {
            pod: pod.into(),
            port: 8080,
            ready: true,
            attempted: 2,
            failed: 2,
            error: Some(error.into()),
            refused: (error == refused.to_string()).then(|| Box::new(refused.clone())),
            ..Default::default()
        };
        let refused = &refused.to_string();
        let obs = Observations {
            per_pod: Some(vec![failed("web-0", refused), failed("web-1", refused)]),
            ..Default::default()
        };
        let v = diagnose(&snap, &obs, None).verdict;
        assert!(
            v.starts_with("2 pods reached over port-forward refused the WebSocket upgrade"),
            "{v}"
        );
        assert!(
            v.contains("`--path`") && !v.contains("could not be reached"),
            "{v}"
        );
        // A forward that failed outright still says so, and comes first.
        let obs = Observations {
            per_pod: Some(vec![
                failed("web-0", refused),
                failed(
                    "web-1",
                    "error forwarding port 8080 to pod abc: connection refused",
                ),
            ]),
            ..Default::default()
        };
        let v = diagnose(&snap, &obs, None).verdict;
        assert!(
            v.starts_with("1 pod could not be reached through port-forward"),
            "{v}"
        );
    }

    #[test]
    fn warnings_are_listed() {
        let snap = snapshot(service("web").client_ip(10800).load_balancer().build())
            .ready_pods(2)
            .ingress(
                ingress_nginx("web", "web")
                    .annotation("nginx.ingress.kubernetes.io/service-upstream", "true")
                    .build(),
            )
            .build();
        let v = verdict_of(&snap);
        assert!(v.starts_with("New connections can reach 2 pods"), "{v}");
        assert!(v.contains("WSA012") && v.contains("WSA033"), "{v}");
        let snap = snapshot(service("web").build()).ready_pods(1).build();
        assert!(verdict_of(&snap).contains("Only one pod is ready"));
    }

    #[test]
    fn external_name_is_explained() {
        let mut svc = service("web").build();
        if let Some(s) = svc.spec.as_mut() {
            s.type_ = Some("ExternalName".into());
            s.external_name = Some("ws.example.net".into());
            s.selector = None;
        }
        let v = verdict_of(&snapshot(svc).build());
        assert!(v.contains("ExternalName alias for `ws.example.net`"), "{v}");
    }

    #[test]
    fn no_route_no_affinity() {
        let snap = snapshot(service("web").build()).ready_pods(3).build();
        let obs = Observations::default();
        let ctx = Ctx::new(&snap, &obs);
        let v = verdict(&ctx, &findings(&ctx));
        assert!(
            v.contains("each new connection is balanced over the 3 pods"),
            "{v}"
        );
        assert!(!v.to_lowercase().contains("messages"));
    }

    fn url_run(url: &str, clients: &[&[&str]]) -> Observations {
        Observations {
            url: Some(UrlRun {
                url: url.into(),
                cookies: true,
                clients: clients
                    .iter()
                    .zip(1..)
                    .map(|(pods, client)| UrlClient {
                        client,
                        pods: pods.iter().map(|p| (*p).to_owned()).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn logs(counts: &[(&str, Option<u64>)]) -> Observations {
        Observations {
            logs: Some(
                counts
                    .iter()
                    .map(|(pod, active)| PodLog {
                        pod: (*pod).into(),
                        active: *active,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// The `logs -l` stand-in: a Service object without a spec.
    fn stand_in() -> Snapshot {
        let mut svc = service("pods -l app=web").build();
        svc.spec = None;
        Snapshot {
            namespace: "default".into(),
            requested: "pods -l app=web".into(),
            service: Some(svc),
            ..Default::default()
        }
    }

    #[test]
    fn all_clients_on_one_pod_leads_and_no_spread_is_claimed() {
        let obs = url_run(
            "wss://ws.example.com/",
            &[&["dev-websocket-server-0"], &["dev-websocket-server-0"]],
        );
        let report = diagnose(&dev_overlay(), &obs, None);
        assert!(codes(&report.findings).contains(&"WSA066"));
        let v = report.verdict;
        assert!(
            v.starts_with(
                "All 2 clients through wss://ws.example.com/ landed on pod `dev-websocket-server-0`; likely cause:"
            ),
            "{v}"
        );
        assert!(
            v.contains(
                "(WSA066). Nothing else behind service `dev-websocket-server` needs attention"
            ),
            "{v}"
        );
        assert!(!v.contains("clients spread"), "{v}");
        assert!(!v.contains("correct for production"), "{v}");
    }

    #[test]
    fn one_client_on_several_pods_leads_with_the_other_warnings_after() {
        let snap = snapshot(service("web").client_ip(10800).load_balancer().build())
            .ready_pods(2)
            .build();
        let obs = url_run("wss://ws.example.com/", &[&["web-0", "web-1"]]);
        let v = diagnose(&snap, &obs, None).verdict;
        assert!(
            v.starts_with("Through wss://ws.example.com/ with affinity configured"),
            "{v}"
        );
        assert!(v.contains("client 1: web-0, web-1 (WSA065)."), "{v}");
        // The configuration's own warning follows; WSA065 is not listed twice.
        assert!(
            v.contains("Also behind service `web`, 1 thing needs attention:"),
            "{v}"
        );
        assert!(
            v.contains("(WSA012)") && v.matches("WSA065").count() == 1,
            "{v}"
        );
    }

    #[test]
    fn an_uneven_log_count_leads() {
        let obs = logs(&[
            ("dev-websocket-server-0", Some(40)),
            ("dev-websocket-server-1", Some(2)),
        ]);
        let v = diagnose(&dev_overlay(), &obs, None).verdict;
        assert!(v.starts_with("Open connections per pod are uneven"), "{v}");
        assert!(v.contains("(WSA064). Nothing else behind service"), "{v}");
        assert!(!v.contains("separate clients spread"), "{v}");
    }

    #[test]
    fn logs_without_any_count_say_so_before_the_configuration() {
        let obs = logs(&[
            ("dev-websocket-server-0", None),
            ("dev-websocket-server-1", None),
        ]);
        let v = diagnose(&dev_overlay(), &obs, None).verdict;
        assert!(
            v.starts_with("None of the 2 pods logged an `Active connections: N` line"),
            "{v}"
        );
        assert!(
            v.contains("(WSA063). Your setup is correct for production."),
            "{v}"
        );
        // One pod without a line among counted ones changes nothing.
        let obs = logs(&[
            ("dev-websocket-server-0", Some(1)),
            ("dev-websocket-server-1", None),
        ]);
        assert!(
            diagnose(&dev_overlay(), &obs, None)
                .verdict
                .starts_with("Your setup is correct for production."),
        );
    }

    #[test]
    fn without_a_service_the_verdict_is_what_was_measured() {
        let snap = stand_in();
        let v = diagnose(
            &snap,
            &logs(&[("a", Some(3)), ("b", Some(4)), ("c", None)]),
            None,
        )
        .verdict;
        assert_eq!(
            v,
            "The 2 pods that logged a count hold 7 open connections in all, evenly spread (busiest 4, max/mean at most 1.5); `c` logged none (WSA063)."
        );
        let v = diagnose(&snap, &logs(&[("a", Some(1)), ("b", Some(2))]), None).verdict;
        assert!(v.contains("too few to judge the spread"), "{v}");
        let v = diagnose(&snap, &logs(&[("a", Some(40)), ("b", Some(2))]), None).verdict;
        assert!(v.starts_with("Open connections per pod are uneven"), "{v}");
        assert!(
            v.ends_with("(WSA064). No Service was read, so the routing in front of these pods was not checked."),
            "{v}"
        );
        assert!(!v.contains("WSA002"), "{v}");
        let v = diagnose(&snap, &logs(&[]), None).verdict;
        assert_eq!(v, "No pod matched, so no log was read.");
        let v = diagnose(&snap, &logs(&[("a", None)]), None).verdict;
        assert_eq!(
            v,
            "Pod `a` logged no `Active connections: N` line, so open connections per pod cannot be counted from the logs (WSA063)."
        );
    }

    #[test]
    fn without_a_snapshot_a_url_test_is_summarised() {
        let snap = Snapshot::default();
        let obs = url_run("ws://127.0.0.1:9/", &[&["a"], &["b", "a"]]);
        let ctx = Ctx::new(&snap, &obs);
        assert_eq!(
            verdict(&ctx, &[]),
            "2 clients through ws://127.0.0.1:9/ reached 2 pods. No Service was read, so the routing in front of these pods was not checked."
        );
    }
}
