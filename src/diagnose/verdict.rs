//! The verdict: one or two sentences a person reads first, built from the findings.

use super::routes::Affinity;
use super::{Ctx, plural};
use crate::report::{Finding, Severity};

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
    let unreachable: Vec<&Finding> = findings.iter().filter(|f| f.code == "WSA060").collect();
    if !unreachable.is_empty() {
        return format!(
            "{} could not be reached through port-forward, so connections sent to {} fail; see the error text (WSA060).",
            plural(unreachable.len(), "pod"),
            if unreachable.len() == 1 { "it" } else { "them" }
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
    if has(findings, "WSA004") {
        return "Only one pod is ready, so every connection lands on it whatever the affinity settings; scale out or make the other pods ready (WSA004).".into();
    }
    let mut warnings: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    warnings.dedup_by_key(|f| f.code);
    if !warnings.is_empty() {
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
        return format!(
            "New connections can reach {} behind service `{}`, but {} {} attention: {}{more}.",
            plural(ready, "pod"),
            ctx.name,
            plural(warnings.len(), "thing"),
            if warnings.len() == 1 { "needs" } else { "need" },
            items.join("; ")
        );
    }
    correct(ctx, ready)
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
    use crate::snapshot::Observations;

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
}
