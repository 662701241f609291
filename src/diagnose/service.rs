//! Service-level rules: session affinity and traffic policies (WSA010–WSA016, WSA020).

use std::collections::BTreeMap;

use super::ctx::{Ctx, DEFAULT_CLIENT_IP_TIMEOUT, Rule, finding, plural};
use crate::report::Finding;

pub const RULES: &[Rule] = &[
    wsa010_client_ip,
    wsa011_no_affinity,
    wsa012_client_ip_behind_snat,
    wsa014_local_uneven_nodes,
    wsa015_topology_aware,
    wsa016_internal_local,
    wsa020_port_forward_single_pod,
];

/// WSA010: ClientIP affinity, with its timeout.
pub fn wsa010_client_ip(ctx: &Ctx) -> Vec<Finding> {
    let Some(t) = ctx.client_ip_timeout() else {
        return vec![];
    };
    let explicit = t != DEFAULT_CLIENT_IP_TIMEOUT
        || ctx
            .spec()
            .and_then(|s| s.session_affinity_config.as_ref())
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .is_some();
    let t_text = if explicit {
        format!("{t} s")
    } else {
        format!("{t} s (the default)")
    };
    vec![finding(
        "WSA010",
        format!(
            "service `{}` has sessionAffinity ClientIP: kube-proxy sends every new connection from one source IP to the same pod for {t_text} after its last connection (the maximum is 86400 s). One laptop is one IP, so all its connections through the ClusterIP land on one pod; many clients with many IPs spread. {}; it does not move open WebSockets",
            ctx.name,
            if snat_groups_by_node(ctx) {
                "That is fine for in-cluster clients, but external clients of this Service are SNATed to node IPs (see WSA012)"
            } else {
                "This is correct for production"
            }
        ),
        vec![
            format!("{} spec.sessionAffinity=ClientIP", ctx.svc_ref()),
            format!(
                "{} spec.sessionAffinityConfig.clientIP.timeoutSeconds={t}",
                ctx.svc_ref()
            ),
        ],
        "none needed; to let one IP's new connections spread, set `spec.sessionAffinity: None` (open WebSockets stay where they are)",
    )]
}

/// WSA011: no Service affinity.
pub fn wsa011_no_affinity(ctx: &Ctx) -> Vec<Finding> {
    if ctx.session_affinity() != "None" || ctx.service_type() == "ExternalName" {
        return vec![];
    }
    vec![finding(
        "WSA011",
        format!(
            "service `{}` has sessionAffinity None: kube-proxy picks a pod for each new connection; an open WebSocket stays on the pod that accepted it, and only reconnects or new tabs may land elsewhere",
            ctx.name
        ),
        vec![format!("{} spec.sessionAffinity=None", ctx.svc_ref())],
        "none needed",
    )]
}

/// External type, Cluster policy and ClientIP: kube-proxy sees node IPs.
fn snat_groups_by_node(ctx: &Ctx) -> bool {
    ctx.is_external_type()
        && ctx.external_traffic_policy() == "Cluster"
        && ctx.client_ip_timeout().is_some()
}

/// WSA012: NodePort/LoadBalancer + externalTrafficPolicy Cluster + ClientIP.
pub fn wsa012_client_ip_behind_snat(ctx: &Ctx) -> Vec<Finding> {
    if !snat_groups_by_node(ctx) {
        return vec![];
    }
    let set = ctx
        .spec()
        .and_then(|s| s.external_traffic_policy.as_deref())
        .is_some();
    vec![finding(
        "WSA012",
        format!(
            "service `{}` is {} with externalTrafficPolicy Cluster{}: nodes SNAT external clients to their own IP, so ClientIP affinity pins everyone who enters through one node to one pod",
            ctx.name,
            ctx.service_type(),
            if set { "" } else { " (the default)" }
        ),
        vec![
            format!("{} spec.type={}", ctx.svc_ref(), ctx.service_type()),
            format!("{} spec.externalTrafficPolicy=Cluster", ctx.svc_ref()),
            format!("{} spec.sessionAffinity=ClientIP", ctx.svc_ref()),
        ],
        format!(
            "keep client IPs with `kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}'`, or drop ClientIP affinity (`\"sessionAffinity\":\"None\"`)",
            ctx.name,
            ctx.ns()
        ),
    )]
}

/// Ready pods per node (from EndpointSlice nodeName).
pub fn ready_per_node(ctx: &Ctx) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in ctx.ready_endpoints() {
        if let Some(n) = &e.node {
            *m.entry(n.clone()).or_insert(0) += 1;
        }
    }
    m
}

/// WSA014: externalTrafficPolicy Local with ready pods unevenly spread over nodes.
pub fn wsa014_local_uneven_nodes(ctx: &Ctx) -> Vec<Finding> {
    if !ctx.is_external_type() || ctx.external_traffic_policy() != "Local" {
        return vec![];
    }
    let per = ready_per_node(ctx);
    let (Some(min), Some(max)) = (per.values().min(), per.values().max()) else {
        return vec![];
    };
    if per.len() < 2 || min == max {
        return vec![];
    }
    let spread: Vec<String> = per
        .iter()
        .map(|(n, c)| format!("{n}: {}", plural(*c, "pod")))
        .collect();
    vec![finding(
        "WSA014",
        format!(
            "service `{}` has externalTrafficPolicy Local: the load balancer spreads over nodes and each node over its own pods, so each pod on a node with {} gets about {:.1}× the connections of each pod on a node with {} ({})",
            ctx.name,
            plural(*min, "pod"),
            *max as f64 / *min as f64,
            plural(*max, "pod"),
            spread.join(", ")
        ),
        vec![
            format!("{} spec.externalTrafficPolicy=Local", ctx.svc_ref()),
            format!("ready endpoints per node: {}", spread.join(", ")),
        ],
        "spread the pods evenly with `topologySpreadConstraints` (maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway), or use `externalTrafficPolicy: Cluster` if client IPs are not needed",
    )]
}

/// WSA015: topology-aware routing.
pub fn wsa015_topology_aware(ctx: &Ctx) -> Vec<Finding> {
    let mut ev = Vec::new();
    if let Some(td) = ctx.spec().and_then(|s| s.traffic_distribution.as_deref())
        && matches!(td, "PreferClose" | "PreferSameZone" | "PreferSameNode")
    {
        ev.push(format!("{} spec.trafficDistribution={td}", ctx.svc_ref()));
    }
    for key in [
        "service.kubernetes.io/topology-mode",
        "service.kubernetes.io/topology-aware-hints",
    ] {
        if let Some(v) = ctx.service_annotations().get(key)
            && v.trim().eq_ignore_ascii_case("auto")
        {
            ev.push(format!("{} metadata.annotations[{key}]={v}", ctx.svc_ref()));
        }
    }
    if ev.is_empty() {
        return vec![];
    }
    let zones: std::collections::BTreeSet<&str> = ctx
        .ready_endpoints()
        .iter()
        .filter_map(|e| e.zone.as_deref())
        .collect();
    vec![finding(
        "WSA015",
        format!(
            "service `{}` uses topology-aware routing: in-cluster clients prefer pods in their own zone ({} with ready pods), so a zone with few pods loads them more",
            ctx.name,
            plural(zones.len(), "zone")
        ),
        ev,
        "none needed if intended; otherwise remove `spec.trafficDistribution` / the topology-mode annotation, or spread pods evenly across zones",
    )]
}

/// WSA016: internalTrafficPolicy Local.
pub fn wsa016_internal_local(ctx: &Ctx) -> Vec<Finding> {
    if ctx
        .spec()
        .and_then(|s| s.internal_traffic_policy.as_deref())
        != Some("Local")
    {
        return vec![];
    }
    let per = ready_per_node(ctx);
    vec![finding(
        "WSA016",
        format!(
            "service `{}` has internalTrafficPolicy Local: in-cluster clients only reach ready pods on their own node ({} with ready pods); clients on other nodes get no endpoint",
            ctx.name,
            plural(per.len(), "node")
        ),
        vec![format!(
            "{} spec.internalTrafficPolicy=Local",
            ctx.svc_ref()
        )],
        format!(
            "remove it unless intended: `kubectl patch svc {} -n {} -p '{{\"spec\":{{\"internalTrafficPolicy\":\"Cluster\"}}}}'`",
            ctx.name,
            ctx.ns()
        ),
    )]
}

/// WSA020: port-forward reaches one pod; stated whenever more than one is ready.
pub fn wsa020_port_forward_single_pod(ctx: &Ctx) -> Vec<Finding> {
    let ready = ctx.ready_count();
    if ready < 2 {
        return vec![];
    }
    vec![finding(
        "WSA020",
        format!(
            "`kubectl port-forward svc/{}` picks one of the {ready} ready pods once and tunnels every connection to it, bypassing kube-proxy and any Ingress: it shows all connections on one pod and says nothing about balancing",
            ctx.name
        ),
        vec![format!("{} ready endpoints: {ready}", ctx.svc_ref())],
        format!(
            "none needed; test every pod with `kubectl wsaffinity per-pod -n {} svc/{}` and spread through the Ingress with separate clients",
            ctx.ns(),
            ctx.name
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::{Observations, Snapshot};

    fn run(rule: Rule, snap: &Snapshot) -> Vec<Finding> {
        rule(&Ctx::new(snap, &Observations::default()))
    }

    #[test]
    fn wsa010_fires_with_timeout() {
        let f = run(
            wsa010_client_ip,
            &snapshot(service("web").client_ip(3600).build()).build(),
        );
        assert_eq!(codes(&f), vec!["WSA010"]);
        assert!(f[0].detail.contains("3600 s") && f[0].detail.contains("86400"));
        let f = run(
            wsa010_client_ip,
            &snapshot(service("web").client_ip_default().build()).build(),
        );
        assert!(
            f[0].detail.contains("10800 s (the default)"),
            "{}",
            f[0].detail
        );
        assert!(run(wsa010_client_ip, &snapshot(service("web").build()).build()).is_empty());
    }

    #[test]
    fn wsa011_fires_only_without_affinity() {
        assert_eq!(
            codes(&run(
                wsa011_no_affinity,
                &snapshot(service("web").build()).build()
            )),
            vec!["WSA011"]
        );
        assert_eq!(
            codes(&run(
                wsa011_no_affinity,
                &snapshot(service("web").affinity_none().build()).build()
            )),
            vec!["WSA011"]
        );
        assert!(
            run(
                wsa011_no_affinity,
                &snapshot(service("web").client_ip(60).build()).build()
            )
            .is_empty()
        );
    }

    #[test]
    fn wsa010_does_not_call_snat_grouping_correct() {
        let s = snapshot(service("web").client_ip(10800).load_balancer().build()).build();
        let f = run(wsa010_client_ip, &s);
        assert!(
            !f[0].detail.contains("correct for production"),
            "{}",
            f[0].detail
        );
        assert!(f[0].detail.contains("WSA012"));
        let s = snapshot(service("web").client_ip(10800).build()).build();
        assert!(
            run(wsa010_client_ip, &s)[0]
                .detail
                .contains("correct for production")
        );
    }

    #[test]
    fn wsa012_fires_for_external_cluster_policy_with_client_ip() {
        let s = snapshot(service("web").client_ip(10800).load_balancer().build()).build();
        assert_eq!(
            codes(&run(wsa012_client_ip_behind_snat, &s)),
            vec!["WSA012"]
        );
        let s = snapshot(
            service("web")
                .client_ip(10800)
                .type_("NodePort")
                .etp("Cluster")
                .build(),
        )
        .build();
        assert_eq!(
            codes(&run(wsa012_client_ip_behind_snat, &s)),
            vec!["WSA012"]
        );
    }

    #[test]
    fn wsa012_silent_for_local_clusterip_or_no_affinity() {
        for s in [
            service("web")
                .client_ip(10800)
                .load_balancer()
                .etp("Local")
                .build(),
            service("web").client_ip(10800).build(),
            service("web").load_balancer().build(),
        ] {
            assert!(run(wsa012_client_ip_behind_snat, &snapshot(s).build()).is_empty());
        }
    }

    #[test]
    fn wsa014_fires_for_uneven_pods_per_node() {
        let s = snapshot(service("web").load_balancer().etp("Local").build())
            .endpoints(vec![
                ep("a", "10.0.0.1", "n1").build(),
                ep("b", "10.0.0.2", "n2").build(),
                ep("c", "10.0.0.3", "n2").build(),
                ep("d", "10.0.0.4", "n2").build(),
            ])
            .build();
        let f = run(wsa014_local_uneven_nodes, &s);
        assert_eq!(codes(&f), vec!["WSA014"]);
        assert!(
            f[0].detail.contains("n1: 1 pod")
                && f[0].detail.contains("n2: 3 pods")
                && f[0].detail.contains("about 3.0× the connections"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa014_silent_when_even_or_cluster() {
        let even = snapshot(service("web").load_balancer().etp("Local").build())
            .ready_pods(4)
            .build();
        assert!(run(wsa014_local_uneven_nodes, &even).is_empty());
        let cluster = snapshot(service("web").load_balancer().build())
            .endpoints(vec![
                ep("a", "10.0.0.1", "n1").build(),
                ep("b", "10.0.0.2", "n2").build(),
                ep("c", "10.0.0.3", "n2").build(),
            ])
            .build();
        assert!(run(wsa014_local_uneven_nodes, &cluster).is_empty());
    }

    #[test]
    fn wsa015_fires_for_prefer_close_or_annotation() {
        let s = snapshot(service("web").traffic_distribution("PreferClose").build())
            .ready_pods(2)
            .build();
        assert_eq!(codes(&run(wsa015_topology_aware, &s)), vec!["WSA015"]);
        let s = snapshot(
            service("web")
                .annotation("service.kubernetes.io/topology-mode", "Auto")
                .build(),
        )
        .build();
        assert_eq!(codes(&run(wsa015_topology_aware, &s)), vec!["WSA015"]);
        let s = snapshot(
            service("web")
                .annotation("service.kubernetes.io/topology-mode", "Disabled")
                .build(),
        )
        .build();
        assert!(run(wsa015_topology_aware, &s).is_empty());
        assert!(
            run(
                wsa015_topology_aware,
                &snapshot(service("web").build()).build()
            )
            .is_empty()
        );
    }

    #[test]
    fn wsa016_fires_for_internal_local() {
        let s = snapshot(service("web").itp("Local").build())
            .ready_pods(2)
            .build();
        assert_eq!(codes(&run(wsa016_internal_local, &s)), vec!["WSA016"]);
        let s = snapshot(service("web").itp("Cluster").build())
            .ready_pods(2)
            .build();
        assert!(run(wsa016_internal_local, &s).is_empty());
    }

    #[test]
    fn wsa020_fires_with_more_than_one_ready() {
        let s = snapshot(service("web").build()).ready_pods(2).build();
        assert_eq!(
            codes(&run(wsa020_port_forward_single_pod, &s)),
            vec!["WSA020"]
        );
        let s = snapshot(service("web").build()).ready_pods(1).build();
        assert!(run(wsa020_port_forward_single_pod, &s).is_empty());
    }
}
