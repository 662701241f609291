//! Endpoint rows and WSA002–WSA005: does the Service have pods to spread over?

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::ctx::{Ctx, Rule, finding, names, plural};
use crate::report::{EndpointRow, Finding};
use crate::snapshot::Snapshot;

pub const RULES: &[Rule] = &[
    wsa002_no_matching_pods,
    wsa003_none_ready,
    wsa004_one_ready,
    wsa005_some_not_ready,
];

/// One row per endpoint address across the Service's EndpointSlices,
/// de-duplicated (slices may overlap during updates).
pub fn rows(snap: &Snapshot) -> Vec<EndpointRow> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in &snap.endpoint_slices {
        for e in &s.endpoints {
            let pod = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
                .and_then(|r| r.name.clone());
            let ip = e.addresses.first().cloned().unwrap_or_default();
            if !seen.insert((pod.clone(), ip.clone())) {
                continue;
            }
            let c = e.conditions.as_ref();
            // API semantics: a nil `ready` or `serving` means true; nil `terminating` false.
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            let serving = c.and_then(|c| c.serving).unwrap_or(ready);
            out.push(EndpointRow {
                pod,
                ip,
                node: e.node_name.clone(),
                zone: e.zone.clone(),
                ready: ready && !terminating,
                serving,
                terminating,
            });
        }
    }
    out.sort_by(|a, b| (&a.pod, &a.ip).cmp(&(&b.pod, &b.ip)));
    out
}

fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn has_selector(ctx: &Ctx) -> bool {
    ctx.spec()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

fn is_external_name(ctx: &Ctx) -> bool {
    ctx.service_type() == "ExternalName"
}

fn selector_text(ctx: &Ctx) -> String {
    ctx.spec()
        .and_then(|s| s.selector.as_ref())
        .map(|s| {
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// WSA002: nothing matches the selector (or no selector and no slices).
pub fn wsa002_no_matching_pods(ctx: &Ctx) -> Vec<Finding> {
    if is_external_name(ctx) {
        return vec![];
    }
    let sel = selector_text(ctx);
    if has_selector(ctx) {
        // Ready endpoints mean pods do match (the pod list may lag behind).
        if !ctx.snap.pods.is_empty() || ctx.ready_count() > 0 {
            return vec![];
        }
        return vec![finding(
            "WSA002",
            format!(
                "no pod in namespace `{}` has the labels `{sel}` that service `{}` selects, so it has no endpoints and every connection to it fails",
                ctx.ns(),
                ctx.name
            ),
            vec![
                format!("{} spec.selector={sel}", ctx.svc_ref()),
                format!("pods matching `{sel}`: 0"),
            ],
            format!(
                "compare the selector with the pod labels (`kubectl get pods -n {} --show-labels`) and make them equal, e.g. `kubectl patch svc {} -n {} -p '{{\"spec\":{{\"selector\":{{...}}}}}}'` or fix the Deployment's pod template labels",
                ctx.ns(),
                ctx.name,
                ctx.ns()
            ),
        )];
    }
    if ctx
        .snap
        .endpoint_slices
        .iter()
        .any(|s| !s.endpoints.is_empty())
    {
        return vec![];
    }
    vec![finding(
        "WSA002",
        format!(
            "service `{}` has no selector and no EndpointSlice lists an address for it, so nothing receives its traffic",
            ctx.name
        ),
        vec![
            format!("{} spec.selector=(none)", ctx.svc_ref()),
            "endpointslices: 0 addresses".into(),
        ],
        format!(
            "add `spec.selector` matching the pod labels (`kubectl get pods -n {} --show-labels`)",
            ctx.ns()
        ),
    )]
}

/// WSA003: pods (or endpoints) exist but none is ready.
pub fn wsa003_none_ready(ctx: &Ctx) -> Vec<Finding> {
    if is_external_name(ctx) || ctx.ready_count() > 0 {
        return vec![];
    }
    let mut pods: Vec<String> = ctx.snap.pods.iter().map(pod_name).collect();
    if pods.is_empty() {
        pods = ctx.endpoints.iter().filter_map(|e| e.pod.clone()).collect();
    }
    if pods.is_empty() && ctx.endpoints.is_empty() {
        return vec![]; // WSA002's case
    }
    let total = pods.len().max(ctx.endpoints.len());
    vec![finding(
        "WSA003",
        format!(
            "{} behind service `{}`, none ready ({}): kube-proxy and Ingress controllers have no endpoint to send to",
            plural(total, "pod"),
            ctx.name,
            names(&pods)
        ),
        vec![format!(
            "endpointslices for {}: 0 ready of {}",
            ctx.svc_ref(),
            ctx.endpoints.len()
        )],
        format!(
            "see why readiness fails: `kubectl describe pod {} -n {}` (Events) and `kubectl logs {} -n {}`",
            pods.first().map(String::as_str).unwrap_or("POD"),
            ctx.ns(),
            pods.first().map(String::as_str).unwrap_or("POD"),
            ctx.ns()
        ),
    )]
}

/// WSA004: exactly one ready endpoint.
pub fn wsa004_one_ready(ctx: &Ctx) -> Vec<Finding> {
    let ready = ctx.ready_endpoints();
    let [e] = ready.as_slice() else {
        return vec![];
    };
    let who = e.pod.clone().unwrap_or_else(|| e.ip.clone());
    vec![finding(
        "WSA004",
        format!(
            "only `{who}` is ready behind service `{}`: every connection, from every path in, lands on it whatever the affinity settings",
            ctx.name
        ),
        vec![format!(
            "endpointslices for {}: 1 ready ({who} {})",
            ctx.svc_ref(),
            e.ip
        )],
        "scale out (`kubectl scale deploy/NAME --replicas=3`) or make the other pods ready; none needed if one replica is intended",
    )]
}

/// WSA005: some matching pods are not ready or are terminating.
pub fn wsa005_some_not_ready(ctx: &Ctx) -> Vec<Finding> {
    let mut not_ready: BTreeSet<String> = BTreeSet::new();
    let mut terminating: BTreeSet<String> = BTreeSet::new();
    for e in &ctx.endpoints {
        let who = e.pod.clone().unwrap_or_else(|| e.ip.clone());
        if e.terminating {
            terminating.insert(who);
        } else if !e.ready {
            not_ready.insert(who);
        }
    }
    let listed: BTreeSet<String> = ctx.endpoints.iter().filter_map(|e| e.pod.clone()).collect();
    for p in &ctx.snap.pods {
        let name = pod_name(p);
        if p.metadata.deletion_timestamp.is_some() {
            not_ready.remove(&name);
            terminating.insert(name);
        } else if !listed.contains(&name) && !pod_ready(p) {
            not_ready.insert(name);
        }
    }
    if not_ready.is_empty() && terminating.is_empty() {
        return vec![];
    }
    let ready = ctx.ready_count();
    let total = ready + not_ready.len() + terminating.len();
    let nr: Vec<String> = not_ready.into_iter().collect();
    let tm: Vec<String> = terminating.into_iter().collect();
    let mut parts = Vec::new();
    if !nr.is_empty() {
        parts.push(format!("{} not ready ({})", nr.len(), names(&nr)));
    }
    if !tm.is_empty() {
        parts.push(format!("{} terminating ({})", tm.len(), names(&tm)));
    }
    let mut fix = String::new();
    if let Some(p) = nr.first() {
        fix.push_str(&format!(
            "inspect `kubectl describe pod {p} -n {}` and `kubectl logs {p} -n {}`",
            ctx.ns(),
            ctx.ns()
        ));
    }
    if !tm.is_empty() {
        if !fix.is_empty() {
            fix.push_str("; ");
        }
        fix.push_str("terminating pods leave once their connections close; wait for `kubectl rollout status`");
    }
    vec![finding(
        "WSA005",
        format!(
            "{ready} of {total} pods behind service `{}` are ready; {}: new connections go only to the ready ones",
            ctx.name,
            parts.join(", ")
        ),
        vec![format!(
            "endpointslices for {}: {ready} ready of {total}",
            ctx.svc_ref()
        )],
        fix,
    )]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::Observations;

    fn run(rule: Rule, snap: &Snapshot) -> Vec<&'static str> {
        codes(&rule(&Ctx::new(snap, &Observations::default())))
    }

    #[test]
    fn rows_follow_endpoint_conditions() {
        let snap = snapshot(service("web").build())
            .endpoints(vec![
                ep("web-0", "10.0.0.1", "n1").build(),
                ep("web-1", "10.0.0.2", "n2").not_ready().build(),
                ep("web-2", "10.0.0.3", "n2").terminating().build(),
                ep("web-0", "10.0.0.1", "n1").build(),
            ])
            .build();
        let r = rows(&snap);
        assert_eq!(r.len(), 3);
        assert!(r[0].ready && !r[1].ready && !r[2].ready && r[2].terminating && r[2].serving);
        assert_eq!(r[0].node.as_deref(), Some("n1"));
    }

    #[test]
    fn wsa002_fires_when_selector_matches_nothing() {
        let snap = snapshot(service("web").build()).build();
        assert_eq!(run(wsa002_no_matching_pods, &snap), vec!["WSA002"]);
        let f = wsa002_no_matching_pods(&Ctx::new(&snap, &Observations::default()));
        assert!(f[0].detail.contains("app=web"));
    }

    #[test]
    fn wsa002_fires_without_selector_and_slices() {
        let snap = snapshot(service("web").no_selector().build()).build();
        assert_eq!(run(wsa002_no_matching_pods, &snap), vec!["WSA002"]);
    }

    #[test]
    fn wsa002_silent_when_pods_match_or_manual_endpoints() {
        let snap = snapshot(service("web").build()).ready_pods(2).build();
        assert!(run(wsa002_no_matching_pods, &snap).is_empty());
        let snap = snapshot(service("web").no_selector().build())
            .endpoints(vec![ep("x", "10.0.0.1", "n").build()])
            .build();
        assert!(run(wsa002_no_matching_pods, &snap).is_empty());
    }

    #[test]
    fn wsa002_silent_when_ready_endpoints_exist_but_pod_list_lags() {
        let snap = snapshot(service("web").build())
            .endpoints(vec![ep("web-0", "10.0.0.1", "n1").build()])
            .build();
        assert!(run(wsa002_no_matching_pods, &snap).is_empty());
    }

    #[test]
    fn wsa003_fires_when_pods_match_but_none_ready() {
        let snap = snapshot(service("web").build())
            .pod(pod("web-0").ready(false).build())
            .endpoints(vec![ep("web-0", "10.0.0.1", "n1").not_ready().build()])
            .build();
        assert_eq!(run(wsa003_none_ready, &snap), vec!["WSA003"]);
        let snap = snapshot(service("web").build())
            .pod(pod("web-0").ready(false).build())
            .build();
        assert_eq!(run(wsa003_none_ready, &snap), vec!["WSA003"]);
    }

    #[test]
    fn wsa003_silent_with_a_ready_pod_or_no_pods() {
        assert!(
            run(
                wsa003_none_ready,
                &snapshot(service("web").build()).ready_pods(1).build()
            )
            .is_empty()
        );
        assert!(run(wsa003_none_ready, &snapshot(service("web").build()).build()).is_empty());
    }

    #[test]
    fn wsa004_fires_with_exactly_one_ready() {
        let snap = snapshot(service("web").build()).ready_pods(1).build();
        assert_eq!(run(wsa004_one_ready, &snap), vec!["WSA004"]);
        assert!(
            run(
                wsa004_one_ready,
                &snapshot(service("web").build()).ready_pods(2).build()
            )
            .is_empty()
        );
        assert!(run(wsa004_one_ready, &snapshot(service("web").build()).build()).is_empty());
    }

    #[test]
    fn wsa005_counts_not_ready_and_terminating_with_names() {
        let snap = snapshot(service("web").build())
            .pod(pod("web-0").ready(true).build())
            .pod(pod("web-1").ready(false).build())
            .pod(pod("web-2").ready(false).deleting().build())
            .endpoints(vec![
                ep("web-0", "10.0.0.1", "n1").build(),
                ep("web-1", "10.0.0.2", "n1").not_ready().build(),
                ep("web-2", "10.0.0.3", "n2").terminating().build(),
            ])
            .build();
        let f = wsa005_some_not_ready(&Ctx::new(&snap, &Observations::default()));
        assert_eq!(codes(&f), vec!["WSA005"]);
        assert!(f[0].detail.contains("1 of 3"), "{}", f[0].detail);
        assert!(f[0].detail.contains("`web-1`") && f[0].detail.contains("`web-2`"));
    }

    #[test]
    fn wsa005_sees_unready_pods_missing_from_slices() {
        let snap = snapshot(service("web").build())
            .ready_pods(2)
            .pod(pod("web-9").ready(false).build())
            .build();
        assert_eq!(run(wsa005_some_not_ready, &snap), vec!["WSA005"]);
    }

    #[test]
    fn wsa005_silent_when_all_ready() {
        assert!(
            run(
                wsa005_some_not_ready,
                &snapshot(service("web").build()).ready_pods(3).build()
            )
            .is_empty()
        );
    }

    #[test]
    fn one_ready_of_three_gives_wsa004_and_wsa005() {
        let snap = snapshot(service("web").build())
            .endpoints(vec![
                ep("web-0", "10.0.0.1", "n1").build(),
                ep("web-1", "10.0.0.2", "n1").not_ready().build(),
                ep("web-2", "10.0.0.3", "n2").not_ready().build(),
            ])
            .pod(pod("web-0").ready(true).build())
            .pod(pod("web-1").ready(false).build())
            .pod(pod("web-2").ready(false).build())
            .build();
        let obs = Observations::default();
        let ctx = Ctx::new(&snap, &obs);
        let all: Vec<_> = RULES.iter().flat_map(|r| r(&ctx)).map(|f| f.code).collect();
        assert_eq!(all, vec!["WSA004", "WSA005"]);
    }
}
