//! The findings catalog (DESIGN.md): code, severity, title and the long
//! explanation `check --explain CODE` prints. Codes are stable: never renumber.

use crate::report::Severity;

/// One rule of the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// What it means.
    pub what: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// Example (usually a manifest fragment).
    pub example: &'static str,
    /// Fix.
    pub fix: &'static str,
}

use Severity::{Error, Info, Warning};

/// Every rule, in code order.
pub static CATALOG: &[RuleInfo] = &[
    RuleInfo {
        code: "WSA001",
        severity: Error,
        title: "target not found",
        what: "The Service (or Ingress/Deployment) named on the command line does not exist in the namespace that was searched.",
        why: "Nothing else can be checked without the Service: its selector, endpoints and the routes in front of it all hang off it. A typo, the wrong namespace or the wrong kubeconfig context are the usual causes.",
        example: "kubectl wsaffinity check svc/dev-websocket-sever\n# error[WSA001]: `svc/dev-websocket-sever` was not found in namespace `default`;\n#   did you mean `dev-websocket-server`?",
        fix: "Use one of the suggested names, or pass the namespace and context:\n  kubectl wsaffinity check -n NAMESPACE --context CONTEXT svc/NAME\nList the candidates with `kubectl get svc -n NAMESPACE`.",
    },
    RuleInfo {
        code: "WSA002",
        severity: Error,
        title: "Service selector matches no pod",
        what: "No pod in the namespace carries all the labels of the Service's `spec.selector` (or the Service has no selector and no EndpointSlices).",
        why: "A Service sends only to pods its selector matches. With none, every connection through the Service, the Ingress or port-forward fails: there is nothing to balance.",
        example: "spec:\n  selector:\n    app: websocket-server      # the Deployment's pods are labelled app: dev-websocket-server",
        fix: "Make `spec.selector` equal to the pod template labels (`kubectl get pods --show-labels`), e.g.\n  kubectl patch svc NAME -p '{\"spec\":{\"selector\":{\"app\":\"dev-websocket-server\"}}}'",
    },
    RuleInfo {
        code: "WSA003",
        severity: Error,
        title: "no ready pod: the Service has no endpoints",
        what: "Pods match the selector, but none of them is ready, so every EndpointSlice entry is `ready: false`.",
        why: "kube-proxy and Ingress controllers only send to ready endpoints. Until a pod passes its readiness probe, connections are refused or time out.",
        example: "kubectl get pods -l app=dev-websocket-server\n# dev-websocket-server-7c9f-abcde   0/1   Running   0   2m   (readiness probe failing)",
        fix: "Find out why the readiness probe fails: `kubectl describe pod POD` (Events) and `kubectl logs POD`. Check the probe's path and port against what the server serves (e.g. `/readyz` on the container port).",
    },
    RuleInfo {
        code: "WSA004",
        severity: Warning,
        title: "only one ready endpoint: nothing to spread across",
        what: "Exactly one pod is ready behind the Service.",
        why: "Every connection, from every path in, lands on that pod; affinity settings make no difference. If more replicas were expected, they are either not ready or not scheduled.",
        example: "spec:\n  replicas: 1",
        fix: "Scale out (`kubectl scale deploy/NAME --replicas=3`) or make the other pods ready (see WSA005). If one replica is intended, none needed.",
    },
    RuleInfo {
        code: "WSA005",
        severity: Warning,
        title: "some matching pods are not ready or are terminating",
        what: "Some pods behind the Service are not ready, or are terminating, so they receive no new connections.",
        why: "Traffic goes only to the ready pods, so fewer pods carry the load than the replica count suggests. Terminating pods still hold their open WebSockets until they close them.",
        example: "endpoints: 3 pods, 1 ready; dev-websocket-server-b (not ready), dev-websocket-server-c (terminating)",
        fix: "Inspect the not-ready pods: `kubectl describe pod POD`, `kubectl logs POD`. For terminating pods, wait for the rollout to finish (`kubectl rollout status deploy/NAME`).",
    },
    RuleInfo {
        code: "WSA010",
        severity: Info,
        title: "ClientIP session affinity: one client IP goes to one pod",
        what: "`spec.sessionAffinity: ClientIP` makes kube-proxy send every new connection from one source IP to the same pod for `sessionAffinityConfig.clientIP.timeoutSeconds` (default 10800 s, at most 86400 s) after its last connection.",
        why: "A single laptop is one IP, so every connection it opens through the Service lands on one pod. That is expected and correct for production, where many clients have many IPs. It does not move or break open WebSockets; it only decides where new connections go.",
        example: "spec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 10800",
        fix: "None needed if clients should stick to a pod. To have new connections from one IP spread, set `sessionAffinity: None`; open WebSockets stay where they are.",
    },
    RuleInfo {
        code: "WSA011",
        severity: Info,
        title: "no Service session affinity: each new connection is balanced",
        what: "`spec.sessionAffinity: None` (the default): kube-proxy picks a pod for every new connection.",
        why: "Balancing is per connection. A WebSocket is one TCP connection and stays on the pod that accepted it for its whole life; only new connections (a reconnect, a second tab) may land elsewhere.",
        example: "spec:\n  sessionAffinity: None",
        fix: "None needed.",
    },
    RuleInfo {
        code: "WSA012",
        severity: Warning,
        title: "ClientIP affinity behind SNAT groups clients by node",
        what: "The Service is NodePort or LoadBalancer with `externalTrafficPolicy: Cluster` (the default) and `sessionAffinity: ClientIP`.",
        why: "Under the Cluster policy a node forwards external traffic with its own IP as the source, so kube-proxy sees node IPs, not client IPs. ClientIP affinity then pins everyone who entered through one node to one pod.",
        example: "spec:\n  type: LoadBalancer\n  externalTrafficPolicy: Cluster\n  sessionAffinity: ClientIP",
        fix: "Either set `externalTrafficPolicy: Local` (keeps client IPs; traffic then follows pods per node, see WSA014), or drop ClientIP affinity (`sessionAffinity: None`) and keep stickiness in an Ingress cookie if needed.",
    },
    RuleInfo {
        code: "WSA013",
        severity: Info,
        title: "Service affinity is bypassed by the Ingress controller",
        what: "An Ingress controller in front of the Service (e.g. ingress-nginx) sends to the EndpointSlice addresses itself. The Service's `sessionAffinity` is a kube-proxy setting and does not apply to that traffic.",
        why: "Changing `sessionAffinity` changes nothing for Ingress traffic; the controller's own balancer and affinity (cookie, hash) decide. It still applies to in-cluster clients using the ClusterIP.",
        example: "Service: sessionAffinity: ClientIP\nIngress (ingress-nginx): nginx.ingress.kubernetes.io/affinity: cookie",
        fix: "None needed. Configure stickiness for Ingress traffic on the Ingress (e.g. `nginx.ingress.kubernetes.io/affinity: cookie`).",
    },
    RuleInfo {
        code: "WSA014",
        severity: Warning,
        title: "externalTrafficPolicy Local with pods unevenly spread over nodes",
        what: "`externalTrafficPolicy: Local` sends external traffic only to pods on the node that received it. Load balancers spread over nodes, and each node over its own pods.",
        why: "A node with one pod gives that pod as much traffic as a node with three pods gives all three together, so per-pod load follows the number of pods on each node.",
        example: "node-a: 1 ready pod, node-b: 3 ready pods → the pod on node-a gets about 3× the connections of each pod on node-b",
        fix: "Spread pods evenly with `topologySpreadConstraints` (maxSkew: 1, topologyKey: kubernetes.io/hostname), or use `externalTrafficPolicy: Cluster` if client IPs are not needed.",
    },
    RuleInfo {
        code: "WSA015",
        severity: Info,
        title: "topology-aware routing keeps clients in their zone",
        what: "`spec.trafficDistribution: PreferClose` or the annotation `service.kubernetes.io/topology-mode: Auto` makes kube-proxy prefer pods in the client's zone.",
        why: "Clients in a zone with few pods load those pods more; a zone's clients may never reach pods elsewhere while local ones are ready.",
        example: "spec:\n  trafficDistribution: PreferClose",
        fix: "None needed if intended. Otherwise remove `trafficDistribution` / the topology-mode annotation, or spread pods evenly across zones.",
    },
    RuleInfo {
        code: "WSA016",
        severity: Info,
        title: "internalTrafficPolicy Local: in-cluster clients only reach pods on their own node",
        what: "`spec.internalTrafficPolicy: Local` restricts in-cluster traffic to pods on the client's node.",
        why: "A client pod on a node without a ready server pod gets no endpoint at all; a client on a node with one server pod always lands on it.",
        example: "spec:\n  internalTrafficPolicy: Local",
        fix: "Remove the field (default `Cluster`) unless node-local routing is intended.",
    },
    RuleInfo {
        code: "WSA020",
        severity: Info,
        title: "kubectl port-forward svc/... reaches a single pod",
        what: "`kubectl port-forward svc/NAME` resolves the Service to one pod (the first active one) once, then tunnels every connection to that pod over the API server. It never goes through kube-proxy or an Ingress.",
        why: "Testing through port-forward always shows every connection on one pod. That proves the pod works; it says nothing about balancing.",
        example: "kubectl port-forward svc/dev-websocket-server 8080:8080\n# every connection lands on dev-websocket-server-...-abcde",
        fix: "None needed. To test each pod use `kubectl wsaffinity per-pod`; to test balancing, connect through the Ingress or a ClusterIP client from several source IPs.",
    },
    RuleInfo {
        code: "WSA030",
        severity: Info,
        title: "Ingress cookie affinity: one cookie jar goes to one pod",
        what: "The Ingress controller sets a cookie on the first response and sends every later request carrying it to the same pod (ingress-nginx: `nginx.ingress.kubernetes.io/affinity: cookie`, cookie `INGRESSCOOKIE` unless `session-cookie-name` says otherwise).",
        why: "One client process that reuses its cookies (a browser) stays on one pod; different clients get different cookies and spread. A client that keeps no cookies is balanced per connection.",
        example: "metadata:\n  annotations:\n    nginx.ingress.kubernetes.io/affinity: cookie\n    nginx.ingress.kubernetes.io/session-cookie-name: INGRESSCOOKIE\n    nginx.ingress.kubernetes.io/session-cookie-max-age: \"172800\"",
        fix: "None needed. Test spread with separate clients (separate cookie jars), e.g. `kubectl wsaffinity spread URL`.",
    },
    RuleInfo {
        code: "WSA031",
        severity: Warning,
        title: "affinity-mode persistent: no rebalancing after scale-up",
        what: "`nginx.ingress.kubernetes.io/affinity-mode: persistent` keeps every existing cookie on its pod forever; `balanced` (the default) lets ingress-nginx move some cookies to new pods after a scale-up.",
        why: "With persistent mode, pods added later receive only clients without a cookie. Neither mode moves open WebSockets; balanced only reassigns cookies for new connections.",
        example: "nginx.ingress.kubernetes.io/affinity-mode: persistent",
        fix: "Use `nginx.ingress.kubernetes.io/affinity-mode: balanced` (or remove the annotation) unless strict stickiness is required.",
    },
    RuleInfo {
        code: "WSA032",
        severity: Warning,
        title: "hashing on the client address: clients behind one NAT share a pod",
        what: "The balancer hashes on the client address (ingress-nginx `upstream-hash-by: $remote_addr`, `$binary_remote_addr`, `$http_x_forwarded_for`; HAProxy `balance source`; Contour `hashSourceIP`; Istio `useSourceIp`), or on a constant key.",
        why: "Everyone behind one office NAT, VPN or proxy has the same address and lands on the same pod. A constant key sends every client to one pod.",
        example: "nginx.ingress.kubernetes.io/upstream-hash-by: \"$remote_addr\"",
        fix: "Remove `upstream-hash-by` and use cookie affinity (`nginx.ingress.kubernetes.io/affinity: cookie`), or hash on a per-user key such as `$cookie_session` or `$arg_user`.",
    },
    RuleInfo {
        code: "WSA033",
        severity: Warning,
        title: "the Ingress sends to the ClusterIP: cookie affinity is ineffective",
        what: "The controller proxies to the Service's ClusterIP instead of the pods (ingress-nginx `service-upstream: \"true\"`, Traefik `service.nativelb` / `nativeLB: true`), so kube-proxy picks the pod.",
        why: "The controller cannot pin a cookie to a pod it does not choose. With Service `sessionAffinity: ClientIP`, kube-proxy sees the controller pod's IP for every client, so everyone through one controller pod lands on one pod.",
        example: "nginx.ingress.kubernetes.io/service-upstream: \"true\"\n# Service: sessionAffinity: ClientIP",
        fix: "Remove `nginx.ingress.kubernetes.io/service-upstream` (or set it to \"false\") so the controller balances to the endpoints itself; if it must stay, set the Service's `sessionAffinity: None`.",
    },
    RuleInfo {
        code: "WSA034",
        severity: Warning,
        title: "proxy or load-balancer timeout cuts idle WebSockets",
        what: "A proxy in front of the pods closes connections that stay idle longer than its timeout: ingress-nginx `proxy-read-timeout`/`proxy-send-timeout` (60 s by default), AWS ALB `idle_timeout.timeout_seconds` (60 s), GKE BackendConfig `timeoutSec` (30 s), or an explicit Contour, HAProxy, Istio or Gateway API timeout below 3600 s. A malformed timeout value is reported here too; ingress-nginx wants whole seconds (`\"3600\"`) and ignores `\"3600s\"`, falling back to 60 s.",
        why: "A WebSocket that sends nothing for longer than the timeout is closed by the proxy; clients then reconnect, often in bursts. Server pings shorter than the timeout keep it open, but the usual fix is a longer timeout.",
        example: "nginx.ingress.kubernetes.io/proxy-read-timeout: \"3600\"\nnginx.ingress.kubernetes.io/proxy-send-timeout: \"3600\"",
        fix: "Raise the timeout to at least 3600 s on the Ingress or route (annotations above; ALB: `alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=3600`; GKE: BackendConfig `spec.timeoutSec: 3600`), and/or send pings more often than the timeout.",
    },
    RuleInfo {
        code: "WSA035",
        severity: Info,
        title: "no Ingress or route points at this Service",
        what: "No Ingress rule or default backend, HTTPRoute, HTTPProxy or Traefik IngressRoute that could be read names this Service.",
        why: "External clients then reach it only through a NodePort/LoadBalancer Service, a route in another namespace, or not at all. The Service's own settings (sessionAffinity, traffic policies) decide where connections land.",
        example: "kubectl get ingress -n NAMESPACE   # none references svc/dev-websocket-server",
        fix: "None needed if clients are in-cluster. Otherwise add an Ingress or HTTPRoute whose backend is this Service.",
    },
    RuleInfo {
        code: "WSA036",
        severity: Info,
        title: "affinity defined by another controller",
        what: "Stickiness is configured for a controller other than ingress-nginx: Traefik (Service annotations `traefik.ingress.kubernetes.io/service.sticky.cookie*`), HAProxy (`haproxy.org/cookie-persistence`, `haproxy-ingress.github.io/affinity`), AWS ALB (`target-group-attributes` stickiness.*), GKE (BackendConfig `sessionAffinity`), Contour (HTTPProxy `loadBalancerPolicy`), Istio (DestinationRule `consistentHash`) or Gateway API (HTTPRoute `sessionPersistence`). An annotation value the tool could not read is reported here too.",
        why: "That controller, not the Service, decides where each new connection through it lands. Cookie-based stickiness pins one cookie jar to one pod; hashing pins one key to one pod.",
        example: "metadata:\n  annotations:\n    traefik.ingress.kubernetes.io/service.sticky.cookie: \"true\"\n    traefik.ingress.kubernetes.io/service.sticky.cookie.name: ws",
        fix: "None needed if intended. To spread one client's new connections, remove the stickiness setting named in the evidence; open WebSockets stay where they are.",
    },
    RuleInfo {
        code: "WSA037",
        severity: Info,
        title: "a routing kind could not be read (forbidden)",
        what: "Listing a routing kind (Ingresses or an optional custom resource) returned 403 Forbidden, so routes of that kind were not checked. A kind whose CRD is not installed (404) is skipped quietly instead.",
        why: "A route of that kind may point at the Service and change where traffic lands; the report cannot see it.",
        example: "httproutes.gateway.networking.k8s.io is forbidden: User \"dev\" cannot list resource \"httproutes\"",
        fix: "Check with `kubectl auth can-i list RESOURCE -n NAMESPACE` and ask for a Role that grants `list` on it, or run with a context that has it.",
    },
    RuleInfo {
        code: "WSA040",
        severity: Info,
        title: "ClientIP and Ingress cookie affinity both on: the Ingress decides for its traffic",
        what: "The Service has `sessionAffinity: ClientIP` and an Ingress/route in front of it has cookie affinity.",
        why: "For traffic through the Ingress the cookie decides (the controller sends to pods directly); ClientIP applies only to clients using the ClusterIP or NodePort. Both together are harmless but easy to misread.",
        example: "Service: sessionAffinity: ClientIP\nIngress: nginx.ingress.kubernetes.io/affinity: cookie",
        fix: "None needed. Drop one of them if only one path needs stickiness.",
    },
    RuleInfo {
        code: "WSA060",
        severity: Error,
        title: "pod unreachable through port-forward",
        what: "Opening a port-forward or a WebSocket to the pod failed: either the forward itself (the text is the API server's or kubelet's own error), or the pod answered but refused the WebSocket upgrade (its HTTP status, e.g. 404 on a wrong path).",
        why: "If the pod cannot be reached directly, connections sent to it through the Service or Ingress fail too (or it is not listening on the resolved port, or not upgrading on that path).",
        example: "error forwarding port 8080 to pod 1f2e…, uid : failed to execute portforward in network namespace: connection refused; or: the server refused the WebSocket upgrade on /nope with HTTP 404 Not Found",
        fix: "Check that the container listens on the port (`kubectl logs POD`, `kubectl describe pod POD`) and that the Service's targetPort resolves to it; check RBAC for `create pods/portforward`. For a refused upgrade, pass the path the server upgrades on (`--path /ws`) and its port (`--port`).",
    },
    RuleInfo {
        code: "WSA061",
        severity: Warning,
        title: "a pod answered with another pod's identity",
        what: "The hello message received through a port-forward to one pod named a different pod.",
        why: "The pod proxies to others, its POD_NAME environment is wrong (e.g. hard-coded instead of the downward API), or something else answers on the port. Per-pod counts are then misattributed.",
        example: "env:\n- name: POD_NAME\n  valueFrom:\n    fieldRef:\n      fieldPath: metadata.name",
        fix: "Set POD_NAME from the downward API (`fieldRef: metadata.name`) and check that nothing else listens on the port.",
    },
    RuleInfo {
        code: "WSA062",
        severity: Warning,
        title: "logged Active connections did not rise by the connections held open",
        what: "While the test held N connections open to a pod, the pod's latest `Active connections` log line rose by less than N.",
        why: "The log line is stale, the server counts connections differently, or the connections landed elsewhere; the log is then not a reliable measure of load.",
        example: "held 5 open; logged before 12, during 13",
        fix: "Check that the server logs `Active connections: N` on every change, and read the pod's log with `kubectl logs POD --timestamps`.",
    },
    RuleInfo {
        code: "WSA063",
        severity: Info,
        title: "no Active connections line in the pod's recent logs",
        what: "The pod's recent log has no `Active connections: N` line.",
        why: "Per-pod connection counts cannot be read from the log for this pod: it has not logged one yet, logs elsewhere, or runs a different server.",
        example: "kubectl logs POD --tail=200 | grep 'Active connections'   # nothing",
        fix: "None needed for the companion server until a connection opens. For other servers, log `Active connections: N` on every change.",
    },
    RuleInfo {
        code: "WSA064",
        severity: Warning,
        title: "connections unevenly spread across pods",
        what: "The busiest pod holds much more than the average number of open connections (max/mean above 1.5).",
        why: "Only new connections are balanced and WebSockets live for hours, so pods started later (a scale-up, a restart) hold fewer until clients reconnect; nothing moves open connections. Affinity, hashing or traffic policies can also concentrate load.",
        example: "dev-websocket-server-a (started 3 d ago): 180 open\ndev-websocket-server-b (started 10 min ago): 4 open",
        fix: "Let clients reconnect over time, or have the server ask them to: close with code 1012/1013, or enforce a maximum connection age. Check the likely cause named in the detail.",
    },
    RuleInfo {
        code: "WSA065",
        severity: Warning,
        title: "one client's connections landed on several pods although affinity is on",
        what: "In the URL test, one simulated client (one cookie jar and one IP) saw its connections land on more than one pod while the Service or route has affinity configured.",
        why: "The affinity does not apply on that path: the cookie is not kept or not sent on the WebSocket upgrade, the route bypasses the Service, or the affinity is set on a different object than the one serving the URL.",
        example: "client 1: pod-a, pod-b, pod-a",
        fix: "Check which object serves the URL (host/path), that the client keeps and sends cookies (run with cookies enabled), and that affinity is on that route.",
    },
    RuleInfo {
        code: "WSA066",
        severity: Info,
        title: "URL test: all clients landed on one pod",
        what: "Every simulated client's connections landed on the same pod.",
        why: "The clients share something the balancer keys on (one source IP with ClientIP affinity or an address hash), only one pod is ready, or the path goes through a single pod (port-forward).",
        example: "4 clients × 3 connections → all on dev-websocket-server-...-abcde",
        fix: "See the likely cause in the detail; test from separate source IPs or with separate cookie jars.",
    },
    RuleInfo {
        code: "WSA067",
        severity: Info,
        title: "URL test: the proxy pinned a client again: the pod its cookie named is gone",
        what: "A simulated client sent its affinity cookie and the proxy answered with a new value for it, and the connection landed on another pod. Seen through Traefik on a real cluster after the cookie's pod was deleted.",
        why: "Cookie affinity names one pod (a server hash or address). When that pod is deleted, scaled away or not ready, the proxy picks another and sets a new cookie: the client moves once and then stays. This is recovery, not a failure of the affinity or of the test.",
        example: "client 1: cookie _49ac9 17ebd1d5c2ef67ac → e7d579bb1f6d0408, connection 1 on dev-websocket-server-...-tn659",
        fix: "None needed: that is how cookie affinity recovers. Expect it after rollouts and scale-downs, when the WebSockets open on the removed pods reconnect too; spread their reconnects (client backoff with jitter) so the new pods are not hit at once.",
    },
];

/// Look up a code (case-insensitive).
pub fn rule(code: &str) -> Option<&'static RuleInfo> {
    CATALOG
        .iter()
        .find(|r| r.code.eq_ignore_ascii_case(code.trim()))
}

/// The long explanation for `--explain CODE`, as `rustc --explain` prints it.
pub fn explain(code: &str) -> Option<String> {
    let r = rule(code)?;
    let sev = match r.severity {
        Error => "error",
        Warning => "warning",
        Info => "info",
    };
    Some(format!(
        "{code} ({sev}): {title}\n\nWhat it means\n\n{what}\n\nWhy it matters\n\n{why}\n\nExample\n\n{example}\n\nFix\n\n{fix}\n",
        code = r.code,
        title = r.title,
        what = r.what,
        why = r.why,
        example = indent(r.example),
        fix = r.fix,
    ))
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of DESIGN.md's findings catalog.
    const ALL_CODES: [&str; 30] = [
        "WSA001", "WSA002", "WSA003", "WSA004", "WSA005", "WSA010", "WSA011", "WSA012", "WSA013",
        "WSA014", "WSA015", "WSA016", "WSA020", "WSA030", "WSA031", "WSA032", "WSA033", "WSA034",
        "WSA035", "WSA036", "WSA037", "WSA040", "WSA060", "WSA061", "WSA062", "WSA063", "WSA064",
        "WSA065", "WSA066", "WSA067",
    ];

    #[test]
    fn every_design_code_has_an_explanation_with_all_sections() {
        for code in ALL_CODES {
            let text = explain(code).unwrap_or_else(|| panic!("{code} has no explanation"));
            for section in ["What it means", "Why it matters", "Example", "Fix"] {
                assert!(
                    text.contains(&format!("\n{section}\n")),
                    "{code} lacks {section}"
                );
            }
        }
        assert_eq!(CATALOG.len(), ALL_CODES.len());
    }

    #[test]
    fn catalog_is_sorted_and_complete() {
        for w in CATALOG.windows(2) {
            assert!(w[0].code < w[1].code, "{} then {}", w[0].code, w[1].code);
        }
        for r in CATALOG {
            assert!(
                !r.what.is_empty()
                    && !r.why.is_empty()
                    && !r.example.is_empty()
                    && !r.fix.is_empty()
            );
        }
    }

    #[test]
    fn explain_is_case_insensitive_and_rejects_unknown_codes() {
        assert!(explain("wsa030").is_some_and(|t| t.starts_with("WSA030 (info)")));
        assert!(explain("WSA999").is_none());
        assert!(explain("").is_none());
    }

    #[test]
    fn no_text_contradicts_the_facts() {
        for r in CATALOG {
            let all =
                format!("{} {} {} {} {}", r.title, r.what, r.why, r.example, r.fix).to_lowercase();
            assert!(!all.contains("messages are balanced"), "{}", r.code);
            assert!(!all.contains("breaks websocket"), "{}", r.code);
            assert!(!all.contains("break websocket"), "{}", r.code);
        }
    }
}
