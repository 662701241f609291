//! The paths table: each way into the pods, how many pods it can reach,
//! what picks the pod, and what one client sees.

use super::ctx::Ctx;
use super::route::{Affinity, Controller, Route};
use crate::report::PathRow;

pub fn rows(ctx: &Ctx) -> Vec<PathRow> {
    let ready = ctx.ready_count();
    let mut out = vec![port_forward(ctx, ready), cluster_ip(ctx, ready)];
    out.extend(external(ctx, ready));
    for r in &ctx.routes {
        if r.entry {
            out.push(route_row(ctx, r, ready));
        } else if r.kind == "DestinationRule" {
            out.push(mesh_row(r, ready));
        }
    }
    out
}

fn no_pods() -> String {
    "no ready pod: connections fail".into()
}

fn first_port(ctx: &Ctx) -> Option<i32> {
    ctx.spec()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.port)
}

fn port_forward(ctx: &Ctx, ready: usize) -> PathRow {
    PathRow {
        path: format!("kubectl port-forward svc/{}", ctx.name),
        pods_reachable: ready.min(1),
        decided_by: "kubectl: the first ready pod, chosen once when the forward starts".into(),
        one_client_sees: if ready == 0 {
            no_pods()
        } else {
            "every connection on that one pod".into()
        },
    }
}

fn cluster_ip(ctx: &Ctx, ready: usize) -> PathRow {
    let ip = ctx
        .spec()
        .and_then(|s| s.cluster_ip.clone())
        .unwrap_or_default();
    let port = first_port(ctx).map(|p| format!(":{p}")).unwrap_or_default();
    if ip == "None" {
        return PathRow {
            path: format!("headless service {} (DNS)", ctx.name),
            pods_reachable: ready,
            decided_by: "the client's DNS lookup: it gets every ready pod IP and picks one".into(),
            one_client_sees: "whatever its resolver picks; no kube-proxy balancing or affinity"
                .into(),
        };
    }
    let mut decided = "kube-proxy, per connection".to_owned();
    let internal_local = ctx
        .spec()
        .and_then(|s| s.internal_traffic_policy.as_deref())
        == Some("Local");
    if internal_local {
        decided.push_str(", only pods on the client's node");
    }
    if ctx
        .spec()
        .and_then(|s| s.traffic_distribution.as_deref())
        .is_some()
        || ctx
            .service_annotations()
            .get("service.kubernetes.io/topology-mode")
            .is_some_and(|v| v == "Auto")
    {
        decided.push_str(", preferring the client's zone");
    }
    let sees = match ctx.client_ip_timeout() {
        _ if ready == 0 => no_pods(),
        Some(t) => {
            decided.push_str(&format!(", ClientIP affinity for {t} s"));
            format!("all its connections on one pod for {t} s after its last one")
        }
        None => "each new connection on any ready pod; an open WebSocket stays put".into(),
    };
    PathRow {
        path: format!(
            "ClusterIP {}{port}",
            if ip.is_empty() {
                "(unassigned)".to_owned()
            } else {
                ip
            }
        ),
        pods_reachable: ready,
        decided_by: decided,
        one_client_sees: sees,
    }
}

fn external(ctx: &Ctx, ready: usize) -> Option<PathRow> {
    if !ctx.is_external_type() {
        return None;
    }
    let svc_type = ctx.service_type();
    let node_port = ctx
        .spec()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port);
    let path = if svc_type == "LoadBalancer" {
        let lb = ctx
            .service
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .unwrap_or_else(|| "(pending)".into());
        format!(
            "LoadBalancer {lb}{}",
            first_port(ctx).map(|p| format!(":{p}")).unwrap_or_default()
        )
    } else {
        format!(
            "NodePort {}",
            node_port
                .map(|p| format!(":{p}"))
                .unwrap_or_else(|| "(unassigned)".into())
        )
    };
    let local = ctx.external_traffic_policy() == "Local";
    let affinity = ctx.client_ip_timeout();
    let (decided, sees) = match (local, affinity) {
        _ if ready == 0 => ("kube-proxy".to_owned(), no_pods()),
        (false, Some(t)) => (
            format!(
                "kube-proxy on the receiving node; clients SNATed to the node IP; ClientIP affinity for {t} s"
            ),
            "one pod, shared with every client entering through the same node".to_owned(),
        ),
        (false, None) => (
            "kube-proxy on the receiving node, per connection; clients SNATed to the node IP"
                .to_owned(),
            "each new connection on any ready pod".to_owned(),
        ),
        (true, Some(t)) => (
            format!(
                "the load balancer picks a node, kube-proxy a pod on that node; ClientIP affinity for {t} s"
            ),
            "all its connections on one pod (its own IP is kept)".to_owned(),
        ),
        (true, None) => (
            "the load balancer picks a node, kube-proxy a pod on that node".to_owned(),
            "each new connection on a pod of the node it reached".to_owned(),
        ),
    };
    Some(PathRow {
        path,
        pods_reachable: ready,
        decided_by: decided,
        one_client_sees: sees,
    })
}

fn route_row(ctx: &Ctx, r: &Route, ready: usize) -> PathRow {
    let ctl = r.controller.label();
    let via_cluster_ip = r.to_cluster_ip.is_some();
    if r.via_node_port && !via_cluster_ip {
        return node_port_route_row(ctx, r, ready);
    }
    let decided = if via_cluster_ip {
        match ctx.client_ip_timeout() {
            Some(t) => format!(
                "{ctl} → ClusterIP → kube-proxy with ClientIP affinity ({t} s) on the controller's IP"
            ),
            None => format!("{ctl} → ClusterIP → kube-proxy, per connection"),
        }
    } else {
        match &r.affinity {
            Affinity::Cookie { name, .. } => {
                format!("{ctl} cookie {}", name.as_deref().unwrap_or("(generated)"))
            }
            Affinity::Hash { key, .. } => format!("{ctl} hash on {key}"),
            Affinity::Header { name } => format!("{ctl} header {name}"),
            Affinity::ClientIp { .. } => format!("{ctl} client IP affinity"),
            Affinity::None => match (&r.balancer, &r.controller) {
                (Some(b), _) => format!("{ctl} balancer ({b})"),
                (None, Controller::Unknown | Controller::GatewayApi) => {
                    format!("{ctl} (the implementation's balancer)")
                }
                // Traefik's default (seen real): smooth weighted round robin.
                (None, Controller::Traefik) => {
                    format!("{ctl} weighted round robin, per connection")
                }
                (None, _) => format!("{ctl} balancer, per connection"),
            },
        }
    };
    let sees = if ready == 0 {
        no_pods()
    } else if via_cluster_ip {
        if ctx.client_ip_timeout().is_some() {
            "one pod for every client that goes through the same controller pod".into()
        } else {
            "each new connection on any ready pod".into()
        }
    } else {
        match &r.affinity {
            Affinity::Cookie { .. } => "one cookie jar on one pod; separate clients spread".into(),
            Affinity::Hash {
                client_address: true,
                ..
            } => "all its connections on one pod, shared with everyone behind the same address"
                .into(),
            Affinity::Hash { .. } => "one key value on one pod".into(),
            Affinity::Header { .. } => "one header value on one pod".into(),
            Affinity::ClientIp { .. } => "all its connections on one pod".into(),
            Affinity::None => "each new connection balanced; an open WebSocket stays put".into(),
        }
    };
    PathRow {
        path: r.display(),
        pods_reachable: ready,
        decided_by: decided,
        one_client_sees: sees,
    }
}

/// A load balancer that targets node ports (ALB instance mode): its stickiness
/// pins a node; kube-proxy on that node picks the pod.
fn node_port_route_row(ctx: &Ctx, r: &Route, ready: usize) -> PathRow {
    let ctl = r.controller.label();
    let sticky = if r.affinity.is_none() {
        String::new()
    } else {
        format!(" ({} pins a node)", r.affinity.summary())
    };
    let decided = match ctx.client_ip_timeout() {
        Some(t) => format!("{ctl} → node port{sticky} → kube-proxy with ClientIP affinity ({t} s)"),
        None => format!("{ctl} → node port{sticky} → kube-proxy, per connection"),
    };
    let sees = if ready == 0 {
        no_pods()
    } else if ctx.client_ip_timeout().is_some() && ctx.external_traffic_policy() == "Cluster" {
        "one pod for everyone the load balancer sends through the same node (SNAT)".into()
    } else {
        "each new connection on any ready pod; an open WebSocket stays put".into()
    };
    PathRow {
        path: r.display(),
        pods_reachable: ready,
        decided_by: decided,
        one_client_sees: sees,
    }
}

fn mesh_row(r: &Route, ready: usize) -> PathRow {
    PathRow {
        path: format!("mesh clients ({} {})", r.kind, r.name),
        pods_reachable: ready,
        decided_by: format!("the client's sidecar: {}", r.affinity.summary()),
        one_client_sees: match &r.affinity {
            Affinity::None => "each new connection balanced by the sidecar".into(),
            _ => "one affinity key (cookie, header or source IP) on one pod".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::Observations;

    #[test]
    fn dev_overlay_paths() {
        let snap = dev_overlay();
        let obs = Observations::default();
        let ctx = Ctx::new(&snap, &obs);
        let p = rows(&ctx);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].path, "kubectl port-forward svc/dev-websocket-server");
        assert_eq!(p[0].pods_reachable, 1);
        assert_eq!(p[1].path, "ClusterIP 10.96.0.10:8080");
        assert!(p[1].decided_by.contains("ClientIP affinity for 10800 s"));
        assert_eq!(p[2].pods_reachable, 2);
        assert_eq!(p[2].decided_by, "ingress-nginx cookie INGRESSCOOKIE");
        assert!(p[2].one_client_sees.contains("separate clients spread"));
    }

    #[test]
    fn load_balancer_cluster_policy_with_client_ip() {
        let snap = snapshot(service("web").client_ip(600).load_balancer().build())
            .ready_pods(3)
            .build();
        let p = rows(&Ctx::new(&snap, &Observations::default()));
        assert_eq!(p.len(), 3);
        assert!(p[2].path.starts_with("LoadBalancer (pending):8080"));
        assert!(p[2].decided_by.contains("SNAT"));
        assert!(p[2].one_client_sees.contains("same node"));
    }

    #[test]
    fn node_port_local_and_service_upstream() {
        let snap = snapshot(
            service("web")
                .client_ip(600)
                .type_("NodePort")
                .etp("Local")
                .build(),
        )
        .ready_pods(2)
        .ingress(
            ingress_nginx("web", "web")
                .annotation("nginx.ingress.kubernetes.io/service-upstream", "true")
                .build(),
        )
        .build();
        let p = rows(&Ctx::new(&snap, &Observations::default()));
        assert_eq!(p[2].path, "NodePort :30080");
        assert!(p[2].decided_by.contains("pod on that node"));
        assert!(p[3].decided_by.contains("ClusterIP"));
        assert!(p[3].one_client_sees.contains("same controller pod"));
    }

    #[test]
    fn alb_instance_targets_go_through_kube_proxy() {
        let ing = ingress("web", "web").class("alb").annotation(
            "alb.ingress.kubernetes.io/target-group-attributes",
            "stickiness.enabled=true",
        );
        let snap = snapshot(service("web").type_("NodePort").build())
            .ready_pods(2)
            .ingress(ing.build())
            .build();
        let obs = Observations::default();
        let p = rows(&Ctx::new(&snap, &obs));
        let alb = p
            .iter()
            .find(|p| p.path.starts_with("Ingress web"))
            .unwrap();
        assert!(
            alb.decided_by.contains("node port") && alb.decided_by.contains("pins a node"),
            "{alb:?}"
        );
    }

    #[test]
    fn no_ready_pods_say_so() {
        let snap = snapshot(service("web").build()).build();
        let p = rows(&Ctx::new(&snap, &Observations::default()));
        assert_eq!(p[0].pods_reachable, 0);
        assert!(p[1].one_client_sees.contains("no ready pod"));
    }
}
