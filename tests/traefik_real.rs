//! `spread`, `check` and `logs` through a REAL Ingress controller: Traefik
//! v3.6 built from its Go module (`cluster/traefik`), run by
//! `wsaffinity-lab cluster up --ingress traefik` in front of the real control
//! plane's pods, reading real Ingresses, Gateways, HTTPRoutes and
//! TraefikServices. What the plugin explains is held against what the
//! controller does. Skips like the other real-cluster tests, never in CI.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha1::{Digest, Sha1};
use support::real_cluster::{REPO, RealCluster, cluster, plugin, wait_until};

/// Traefik's name for an unnamed sticky cookie, computed here as its source
/// does (pkg/server/cookie), independently of the plugin's own code.
fn traefik_cookie(service: &str) -> String {
    let d = Sha1::digest(format!("_TRAEFIK_BACKEND_{service}").as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("_{}", &hex[..5])
}

fn ingress_addr(c: &RealCluster) -> SocketAddr {
    c.ingress
        .expect("the launcher printed export WSAFFINITY_INGRESS= (cluster up --ingress traefik)")
}

fn resolve(c: &RealCluster, host: &str) -> String {
    format!("{host}:{}:127.0.0.1", ingress_addr(c).port())
}

/// `spread -o json` through Traefik to the base Service; the report.
fn spread(c: &RealCluster, ns: &str, host: &str, args: &[&str]) -> Value {
    spread_to(c, ns, "svc/websocket-server", host, args)
}

/// `spread -o json` for `svc` through Traefik at `host`; the report.
fn spread_to(c: &RealCluster, ns: &str, svc: &str, host: &str, args: &[&str]) -> Value {
    let url = format!("ws://{host}:{}/", ingress_addr(c).port());
    let r = resolve(c, host);
    let mut a = vec![
        "spread",
        "-n",
        ns,
        svc,
        "--url",
        &url,
        "--resolve",
        &r,
        "-o",
        "json",
    ];
    a.extend_from_slice(args);
    let run = plugin(&c.kubeconfig, &a);
    assert!(
        run.code == 0 || run.code == 1,
        "spread failed: {}",
        run.all()
    );
    run.json()
}

/// Each client's list of pods.
fn clients(report: &Value) -> Vec<Vec<String>> {
    report["observations"]["url"]["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c["pods"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .collect()
}

fn distinct(pods: &[String]) -> usize {
    pods.iter().collect::<BTreeSet<_>>().len()
}

fn check(c: &RealCluster, ns: &str, svc: &str) -> Value {
    let run = plugin(&c.kubeconfig, &["check", "-n", ns, svc, "-o", "json"]);
    assert!(run.code <= 1, "check failed: {}", run.all());
    run.json()
}

fn finding<'a>(report: &'a Value, code: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["code"] == code)
}

/// Waits (bounded) until Traefik routes `host` to a pod: a WebSocket
/// handshake through the entrypoint answers 101.
fn wait_routed(c: &RealCluster, host: &str) {
    let addr = ingress_addr(c);
    wait_until(
        &format!("Traefik routes {host}"),
        Duration::from_secs(30),
        || upgrade_status(addr, host).is_some_and(|s| s.starts_with("HTTP/1.1 101")),
    );
}

/// Waits until Traefik balances new clients over `pods` servers: cookie-less
/// upgrades get that many distinct sticky cookies. Pods Ready and a route in
/// place are not enough: Traefik may not have read every endpoint yet.
fn wait_balanced(c: &RealCluster, host: &str, pods: usize) {
    let addr = ingress_addr(c);
    wait_until(
        &format!("Traefik balances {host} over {pods} pods"),
        Duration::from_secs(30),
        || {
            let cookies: BTreeSet<String> = (0..pods * 2)
                .filter_map(|_| upgrade_status(addr, host))
                .filter_map(|head| {
                    head.lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
                        .and_then(|l| l.split(';').next())
                        .map(str::to_string)
                })
                .collect();
            cookies.len() >= pods
        },
    );
}

fn upgrade_status(addr: SocketAddr, host: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// The base Deployment (`replicas` pods) and Service in `ns`, behind an
/// Ingress of class `traefik` for `host`; `sticky` puts Traefik's sticky
/// cookie on the Service, as k8s/overlays/traefik does.
fn traefik_namespace(c: &RealCluster, ns: &str, host: &str, replicas: u32, sticky: bool) {
    c.namespace_with_base(ns, replicas);
    // Sticky before the Ingress exists, so Traefik's first route has it.
    if sticky {
        c.kubectl(&[
            "annotate",
            "-n",
            ns,
            "svc/websocket-server",
            "traefik.ingress.kubernetes.io/service.sticky.cookie=true",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // The base Ingress is ingress-nginx's; Traefik ignores class nginx.
    c.apply(&format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: traefik
  namespace: {ns}
spec:
  ingressClassName: traefik
  rules:
    - host: {host}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: websocket-server
                port:
                  name: ws
"
    ));
    c.wait_ready(ns, replicas as usize, Duration::from_secs(90));
    wait_routed(c, host);
    if sticky {
        wait_until(
            &format!("Traefik sets its sticky cookie for {host}"),
            Duration::from_secs(30),
            || upgrade_status(ingress_addr(c), host).is_some_and(|s| s.contains("Set-Cookie")),
        );
    }
}

#[test]
fn sticky_cookie_pins_each_client_and_check_predicts_the_cookie_traefik_sets() {
    let Some((c, _turn)) = cluster() else { return };
    // The overlay users read, applied as they would.
    c.kubectl(&["apply", "-k", &format!("{REPO}/k8s/overlays/traefik")])
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = "websocket-app-dev";
    c.wait_ready(ns, 3, Duration::from_secs(90));
    wait_routed(c, "websocket-dev.example.com");
    wait_balanced(c, "websocket-dev.example.com", 3);

    // The command, as a user types it (URL from the Ingress).
    let r = resolve(c, "websocket-dev.example.com");
    let run = plugin(
        &c.kubeconfig,
        &[
            "spread",
            "-n",
            ns,
            "svc/dev-websocket-server",
            "--resolve",
            &r,
            "--clients",
            "6",
            "--connect",
            "4",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let report = run.json();
    let per_client = clients(&report);
    assert_eq!(per_client.len(), 6);
    for (i, pods) in per_client.iter().enumerate() {
        assert_eq!(pods.len(), 4, "client {}: {pods:?}", i + 1);
        assert_eq!(distinct(pods), 1, "client {} moved: {pods:?}", i + 1);
    }
    let reached: BTreeSet<&String> = per_client.iter().flatten().collect();
    assert!(reached.len() >= 2, "6 clients reached {reached:?}");

    // The cookie Traefik set is the one check predicts, by Traefik's rule.
    let want = traefik_cookie("websocket-app-dev-dev-websocket-server-ws@kubernetes");
    assert_eq!(
        report["observations"]["url"]["affinityCookie"],
        want.as_str()
    );
    let checked = check(c, ns, "svc/dev-websocket-server");
    let route = &checked["routes"][0];
    assert_eq!(route["controller"], "traefik");
    assert_eq!(route["affinity"], format!("cookie {want}").as_str());
    let f = finding(&checked, "WSA036").expect("WSA036 for the Traefik route");
    assert!(f["detail"].as_str().unwrap_or("").contains(&want), "{f}");
    let f = finding(&checked, "WSA013").expect("WSA013: Traefik skips the Service");
    assert!(
        f["fix"]
            .as_str()
            .unwrap_or("")
            .contains("traefik.ingress.kubernetes.io/service.sticky.cookie"),
        "{f}"
    );
    assert!(finding(&report, "WSA065").is_none(), "{report}");
}

#[test]
fn without_sticky_one_clients_connections_spread_and_check_says_per_connection() {
    let Some((c, _turn)) = cluster() else { return };
    let ns = "traefik-plain";
    let host = "plain.example.com";
    traefik_namespace(c, ns, host, 3, false);
    // One client's connections in turn: round robin moves each to the next pod.
    let report = spread(c, ns, host, &["--clients", "1", "--connect", "6"]);
    let per_client = clients(&report);
    assert!(
        per_client.iter().all(|pods| distinct(pods) > 1),
        "round robin should move each client: {per_client:?}"
    );
    assert!(report["observations"]["url"]["affinityCookie"].is_null());
    // ClientIP on the Service does not apply through Traefik: no WSA065.
    assert!(finding(&report, "WSA065").is_none(), "{report}");
    let checked = check(c, ns, "svc/websocket-server");
    let path = checked["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["path"]
                .as_str()
                .unwrap_or("")
                .contains("plain.example.com")
        })
        .unwrap_or_else(|| panic!("a path through the Ingress: {checked}"));
    assert_eq!(
        path["decidedBy"],
        "traefik weighted round robin, per connection"
    );
    assert!(
        path["oneClientSees"]
            .as_str()
            .unwrap_or("")
            .starts_with("each new connection balanced"),
        "{path}"
    );
}

#[test]
fn httproute_session_persistence_does_nothing_on_traefik_and_a_traefikservice_pins() {
    let Some((c, _turn)) = cluster() else { return };
    c.kubectl(&[
        "apply",
        "-k",
        &format!("{REPO}/k8s/overlays/traefik-gateway"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let ns = "websocket-app-gateway";
    c.wait_ready(ns, 3, Duration::from_secs(90));
    // Traefik's own way: a TraefikService whose entry for the Service is sticky.
    c.apply(&format!(
        "apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata:
  name: sticky
  namespace: {ns}
spec:
  weighted:
    services:
      - name: dev-websocket-server
        port: 8080
        sticky:
          cookie:
            httpOnly: true
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: sticky
  namespace: {ns}
spec:
  parentRefs:
    - name: dev-websocket
  hostnames:
    - sticky-gw.example.com
  rules:
    - backendRefs:
        - group: traefik.io
          kind: TraefikService
          name: sticky
"
    ));
    wait_routed(c, "websocket-gw.example.com");
    wait_routed(c, "sticky-gw.example.com");

    // sessionPersistence asked for, not honoured: each connection balanced.
    let gw = |host: &str, clients: &str| {
        spread_to(
            c,
            ns,
            "svc/dev-websocket-server",
            host,
            &["--clients", clients, "--connect", "6"],
        )
    };
    let report = gw("websocket-gw.example.com", "1");
    assert!(
        clients(&report).iter().all(|p| distinct(p) > 1),
        "{:?}",
        clients(&report)
    );
    assert!(report["observations"]["url"]["affinityCookie"].is_null());
    let checked = check(c, ns, "svc/dev-websocket-server");
    let ignored = checked["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| {
            f["code"] == "WSA036"
                && f["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("sessionPersistence")
        })
        .unwrap_or_else(|| panic!("WSA036 on the ignored sessionPersistence: {checked}"));
    assert!(
        ignored["detail"]
            .as_str()
            .unwrap_or("")
            .contains("weighted round robin"),
        "{ignored}"
    );
    assert!(
        ignored["fix"]
            .as_str()
            .unwrap_or("")
            .contains("TraefikService")
    );

    // Through the TraefikService: pinned, with the cookie check predicts.
    let report = gw("sticky-gw.example.com", "3");
    for pods in clients(&report) {
        assert_eq!(distinct(&pods), 1, "{pods:?}");
    }
    let want = traefik_cookie("websocket-app-gateway-dev-websocket-server-8080@kubernetescrd");
    assert_eq!(
        report["observations"]["url"]["affinityCookie"],
        want.as_str()
    );
    let route = checked["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "sticky")
        .unwrap_or_else(|| panic!("the sticky HTTPRoute: {checked}"));
    assert_eq!(route["controller"], "traefik");
    assert_eq!(route["affinity"], format!("cookie {want}").as_str());
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `n` WebSocket connections through Traefik to `host`, held open and read
/// (so the server's pings get their pongs) until the handles are dropped.
async fn hold(addr: SocketAddr, host: &str, n: usize) -> Vec<Held> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut held = Vec::new();
    for _ in 0..n {
        let mut req = format!("ws://{addr}/")
            .into_client_request()
            .expect("a request");
        req.headers_mut()
            .insert("host", host.parse().expect("a host header"));
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("a connection through Traefik");
        held.push(Held(tokio::spawn(read_until_closed(ws))));
    }
    held
}

async fn read_until_closed(mut ws: Ws) {
    use futures::StreamExt;
    while let Some(Ok(_)) = ws.next().await {}
}

/// A held connection; dropping it closes the connection.
struct Held(tokio::task::JoinHandle<()>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `logs -o json`: (pod, Active connections) sorted by pod.
fn active(c: &RealCluster, ns: &str) -> (Value, Vec<(String, u64)>) {
    let run = plugin(
        &c.kubeconfig,
        &["logs", "-n", ns, "svc/websocket-server", "-o", "json"],
    );
    assert!(run.code <= 1, "{}", run.all());
    let report = run.json();
    let mut v: Vec<(String, u64)> = report["observations"]["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["pod"].as_str()?.to_string(), l["active"].as_u64()?)))
        .collect();
    v.sort();
    (report, v)
}

#[test]
fn scale_up_leaves_held_connections_in_place_and_new_clients_reach_the_new_pod() {
    let Some((c, _turn)) = cluster() else { return };
    // Blocking test: the turn guard is a std Mutex, never held across an await.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ns = "traefik-scale";
    let host = "scale.example.com";
    traefik_namespace(c, ns, host, 3, false);
    let before: BTreeSet<String> = c.ready_pods(ns).into_iter().collect();
    // Round robin: 12 connections, 4 on each pod, held open.
    let _held = rt.block_on(hold(ingress_addr(c), host, 12));
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let (_, counts) = active(c, ns);
        if counts.iter().map(|(_, a)| a).sum::<u64>() == 12 || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(counts.iter().map(|(_, a)| a).sum::<u64>(), 12, "{counts:?}");
    let held_counts = counts;

    c.kubectl(&[
        "scale",
        "-n",
        ns,
        "deployment/websocket-server",
        "--replicas=4",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let after = c.wait_ready(ns, 4, Duration::from_secs(90));
    let new_pod = after
        .iter()
        .find(|p| !before.contains(*p))
        .expect("a new pod")
        .clone();

    // The held connections stayed where they were; the new pod holds none,
    // and logs says why.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (report, counts) = loop {
        let (report, counts) = active(c, ns);
        if counts.len() == 4 || Instant::now() > deadline {
            break (report, counts);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let on_new = counts.iter().find(|(p, _)| *p == new_pod).map(|(_, a)| *a);
    assert_eq!(on_new, Some(0), "{counts:?}");
    let old_after: Vec<(String, u64)> = counts
        .iter()
        .filter(|(p, _)| *p != new_pod)
        .cloned()
        .collect();
    assert_eq!(old_after, held_counts, "the held connections moved");
    let f = finding(&report, "WSA064").unwrap_or_else(|| panic!("WSA064: {report}"));
    let detail = f["detail"].as_str().unwrap_or("");
    assert!(detail.contains(&format!("{new_pod}: 0")), "{detail}");
    // Round robin puts 4 on each old pod unless an endpoint update reset it
    // on the way (a busy machine); the cause names the young pod when every
    // old pod is at or above the mean (3) and the new pod's start time (whole
    // seconds, as the API has it) is later than theirs: on a fast machine
    // the scale-up can land in the same second.
    let started = |pod: &str| {
        report["observations"]["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["pod"] == pod)
            .and_then(|l| l["started"].as_str())
            .map(str::to_string)
    };
    let new_started = started(&new_pod);
    let younger = held_counts
        .iter()
        .all(|(p, _)| started(p).is_some_and(|s| new_started.as_ref().is_some_and(|n| *n > s)));
    if held_counts.iter().all(|(_, a)| *a >= 3) && younger {
        assert!(
            detail.contains("started after") && detail.contains(&new_pod),
            "{detail}"
        );
    }

    // New clients: Traefik's round robin now includes the new pod.
    wait_until(
        "Traefik balances to the new pod",
        Duration::from_secs(30),
        || {
            let report = spread(c, ns, host, &["--clients", "4", "--connect", "4"]);
            clients(&report).iter().flatten().any(|p| *p == new_pod)
        },
    );
}

#[test]
fn a_pod_deleted_under_a_sticky_client_re_pins_it_and_spread_says_so() {
    let Some((c, _turn)) = cluster() else { return };
    let ns = "traefik-repin";
    let host = "repin.example.com";
    traefik_namespace(c, ns, host, 3, true);
    let first = spread(c, ns, host, &["--clients", "1", "--connect", "2"]);
    let url = &first["observations"]["url"];
    let cookie = url["affinityCookie"]
        .as_str()
        .expect("a sticky cookie")
        .to_string();
    let value = url["clients"][0]["affinityCookieValue"]
        .as_str()
        .expect("the client's cookie value")
        .to_string();
    let pinned = clients(&first)[0][0].clone();

    c.kubectl(&["delete", "pod", "-n", ns, &pinned, "--wait=true"])
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(
        "the deleted pod leaves the EndpointSlice",
        Duration::from_secs(60),
        || !c.ready_pods(ns).contains(&pinned),
    );

    // The browser still holds the old cookie.
    let seed = format!("{cookie}={value}");
    let report = spread(
        c,
        ns,
        host,
        &["--clients", "1", "--connect", "3", "--cookie", &seed],
    );
    let pods = &clients(&report)[0];
    assert!(!pods.contains(&pinned), "{pods:?}");
    assert_eq!(distinct(pods), 1, "re-pinned once, then stays: {pods:?}");
    let repins = &report["observations"]["url"]["clients"][0]["repins"];
    assert_eq!(repins[0]["connection"], 1, "{report}");
    assert_eq!(repins[0]["from"], value.as_str());
    assert!(finding(&report, "WSA067").is_some(), "{report}");
    assert!(finding(&report, "WSA065").is_none(), "{report}");
    assert_eq!(
        report["findings"]
            .as_array()
            .map(|f| f.iter().any(|f| f["severity"] == "error")),
        Some(false)
    );
}

#[test]
fn ingressroute_sticky_cookie_is_the_one_check_predicts() {
    let Some((c, _turn)) = cluster() else { return };
    let ns = "traefik-ingressroute";
    let host = "ir.example.com";
    c.namespace_with_base(ns, 3);
    c.apply(&format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: ws
  namespace: {ns}
spec:
  entryPoints: [web]
  routes:
    - match: Host(`{host}`)
      kind: Rule
      services:
        - name: websocket-server
          port: 8080
          sticky:
            cookie:
              httpOnly: true
"
    ));
    c.wait_ready(ns, 3, Duration::from_secs(90));
    wait_routed(c, host);
    let report = spread(c, ns, host, &["--clients", "3", "--connect", "3"]);
    for pods in clients(&report) {
        assert_eq!(distinct(&pods), 1, "{pods:?}");
    }
    let seen = report["observations"]["url"]["affinityCookie"]
        .as_str()
        .expect("Traefik set its sticky cookie")
        .to_string();
    let checked = check(c, ns, "svc/websocket-server");
    let route = checked["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["kind"] == "IngressRoute")
        .unwrap_or_else(|| panic!("the IngressRoute: {checked}"));
    assert_eq!(route["affinity"], format!("cookie {seen}").as_str());
}
