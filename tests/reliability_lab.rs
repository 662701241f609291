//! Faults around the plugin: an unreachable or slow API, 403 on each read, a
//! pod deleted between listing and forwarding, port-forwards cut mid-hold,
//! Ctrl-C during `logs --follow` and `spread`, and `-v` over TLS with a
//! bearer token. The API is the lab (a
//! local TEST DOUBLE of the Kubernetes API, pods backed by real
//! `websocket-server` processes); the plugin runs as a subprocess.
//!
//! Covered elsewhere: `check` unreachable/timeout/403 on pods and `-v`
//! (check_cli.rs, check_lab.rs); a pod killed mid-test, a hung port-forward,
//! an injected port-forward error and Ctrl-C during `per-pod`
//! (per_pod_lab.rs).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Run, command, eventually};
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
const SVC: &str = "svc/dev-websocket-server";

async fn lab(tls: bool, processes: bool) -> Lab {
    support::start_lab(Scenario::DevOverlay, tls, processes).await
}

async fn wait(child: tokio::process::Child, started: Instant) -> Run {
    support::wait(child, started).await
}

async fn run(kubeconfig: &Path, args: &[&str]) -> Run {
    support::run(kubeconfig, args).await
}

fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("the plugin is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT {pid}");
}

/// Established TCP connections (either end) on a loopback port, from
/// /proc/net/tcp: the test's own view of what is still open.
fn established_on(port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local, remote, state (01 = ESTABLISHED)
            cols.len() > 3
                && cols[3] == "01"
                && (cols[1].ends_with(&port) || cols[2].ends_with(&port))
        })
        .count()
}

fn lab_port(lab: &Lab) -> u16 {
    lab.server_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", lab.server_url()))
}

// ---------------------------------------------------------------------------
// An unreachable or slow API
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_exits_2_naming_the_server_for_per_pod_logs_and_spread() {
    // A port bound but never listened on: connections are refused at once.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("local addr");
    let server = format!("http://{addr}");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        support::token_kubeconfig(&server, "s3cr3t-t0ken"),
    )
    .expect("write kubeconfig");

    for args in [
        &["per-pod", "svc/web"][..],
        &["logs", "svc/web"],
        &["logs", "svc/web", "--follow"],
        &["spread", "svc/web"],
    ] {
        let r = run(&kubeconfig, args).await;
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.all());
        assert!(r.stderr.contains(&server), "{args:?}: {}", r.all());
        assert!(!r.all().contains("s3cr3t-t0ken"), "{args:?}: {}", r.all());
        assert!(
            r.took < Duration::from_secs(20),
            "{args:?} took {:?}",
            r.took
        );
    }
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_honoured_by_per_pod_logs_and_spread() {
    let lab = lab(false, false).await;
    lab.set_latency(Duration::from_secs(5));
    for command in ["per-pod", "logs", "spread"] {
        let r = run(
            lab.kubeconfig_path(),
            &[command, SVC, "-n", NS, "--request-timeout", "300ms"],
        )
        .await;
        assert_eq!(r.code, Some(2), "{command}: {}", r.all());
        assert!(
            r.stderr.contains("--request-timeout"),
            "{command}: {}",
            r.all()
        );
        assert!(
            r.took < Duration::from_secs(4),
            "{command} took {:?}: {}",
            r.took,
            r.all()
        );
    }
}

// ---------------------------------------------------------------------------
// 403 on each read
// ---------------------------------------------------------------------------

/// Runs `args` against a fresh lab where `resource` answers 403.
async fn forbidden(resource: &str, args: &[&str]) -> Run {
    let lab = lab(false, true).await;
    lab.forbid(resource);
    run(lab.kubeconfig_path(), args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_each_read_names_the_missing_permission() {
    // (resource forbidden, command, the permission the message must name)
    let cases: [(&str, &[&str], &str); 7] = [
        ("services", &["check", SVC, "-n", NS], "`get` on `services`"),
        (
            "endpointslices.discovery.k8s.io",
            &["check", SVC, "-n", NS],
            "`list` on `endpointslices.discovery.k8s.io`",
        ),
        (
            "services",
            &["per-pod", SVC, "-n", NS],
            "`get` on `services`",
        ),
        ("pods", &["per-pod", SVC, "-n", NS], "`list` on `pods`"),
        (
            "pods/portforward",
            &["per-pod", SVC, "-n", NS],
            "`create` on `pods/portforward`",
        ),
        ("pods", &["logs", SVC, "-n", NS], "`list` on `pods`"),
        ("pods/log", &["logs", SVC, "-n", NS], "`get` on `pods/log`"),
    ];
    for (resource, args, permission) in cases {
        let r = forbidden(resource, args).await;
        let all = r.all();
        assert_eq!(r.code, Some(2), "{resource} {args:?}: {all}");
        assert!(
            r.stderr.contains(&format!("Ask for {permission}")),
            "{resource} {args:?}: {all}"
        );
        assert!(!all.contains("panicked"), "{resource} {args:?}: {all}");
    }
}

// ---------------------------------------------------------------------------
// A pod deleted between listing and forwarding
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_between_listing_and_forwarding_is_reported_and_the_other_is_tested() {
    let lab = lab(false, true).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    let gone = pods[0].clone();
    // Every API answer waits 300 ms, counted on arrival: once the first
    // port-forward request is counted, the pod list has been answered and no
    // forward has been served yet.
    lab.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    let child = command(
        lab.kubeconfig_path(),
        &["per-pod", SVC, "-n", NS, "--connect", "2", "-o", "json"],
    )
    .spawn()
    .expect("spawn the plugin");
    eventually(
        "the plugin never asked for a port-forward",
        Duration::from_secs(20),
        || lab.counts().get("create pods/portforward") > 0,
    )
    .await;
    assert!(lab.counts().get("list pods") > 0, "listed first");
    lab.delete_pod(NS, &gone).await;
    let r = wait(child, started).await;

    assert_eq!(r.code, Some(1), "{}", r.all());
    let report = r.json();
    let probes = report["observations"]["perPod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let probe = |pod: &str| {
        probes
            .iter()
            .find(|p| p["pod"] == pod)
            .cloned()
            .unwrap_or_else(|| panic!("no probe for {pod}: {}", r.all()))
    };
    let deleted = probe(&gone);
    assert_eq!(deleted["ok"], 0, "{deleted:#}");
    let error = deleted["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("pods \"{gone}\" not found")),
        "the API's NotFound text: {deleted:#}"
    );
    let other = probe(&pods[1]);
    assert_eq!(other["ok"], 2, "{other:#}");
    let wsa060 = report["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["code"] == "WSA060").count())
        .unwrap_or(0);
    assert_eq!(wsa060, 1, "{}", r.all());
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------
// Ctrl-C
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_logs_follow_exits_and_leaves_no_stream_open() {
    let lab = lab(false, true).await;
    let pods = lab.pods(NS).len() as u64;
    let port = lab_port(&lab);
    let idle = established_on(port);
    let started = Instant::now();
    let child = command(lab.kubeconfig_path(), &["logs", SVC, "-n", NS, "--follow"])
        .spawn()
        .expect("spawn the plugin");
    // Both pods' logs are being followed: the lab streams one follow per pod.
    eventually(
        "the plugin never followed both logs",
        Duration::from_secs(20),
        || lab.counts().open_log_follows >= pods,
    )
    .await;
    eventually(
        "the follow streams never showed up as connections",
        Duration::from_secs(10),
        || established_on(port) > idle,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let interrupted = Instant::now();
    interrupt(&child);
    let r = wait(child, started).await;
    assert!(
        interrupted.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        interrupted.elapsed()
    );
    assert!(matches!(r.code, Some(0) | Some(130)), "{}", r.all());
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    // The plugin's sockets are gone, and the lab has ended every follow
    // stream and closed every connection on its side.
    eventually(
        "connections to the API stayed open after the plugin exited",
        Duration::from_secs(5),
        || established_on(port) <= idle,
    )
    .await;
    support::lab_holds_nothing_open(&lab).await;
    lab.shutdown().await;
}

/// `websocket_active_connections` from a `websocket-server`'s `/metrics`.
async fn active(addr: SocketAddr) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write request");
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut body))
        .await
        .expect("metrics in time")
        .expect("read metrics");
    body.lines()
        .find_map(|l| {
            l.strip_prefix("websocket_active_connections ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no websocket_active_connections in {body}"))
}

/// Ctrl-C mid-hold of `spread` with the lab as the cluster and one lab pod's
/// real server as the URL: exit 130 after closing every connection, and
/// nothing is left open on either side: the lab's gauges (port-forwards, log
/// follows, API connections) and the servers' metrics and logged `Active
/// connections` all come back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_spread_leaves_no_connection_open() {
    let lab = lab(false, true).await;
    let pods = lab.pods(NS);
    let pod = pods.first().expect("a pod").clone();
    let addr = lab.pod_backend(NS, &pod).expect("the pod's server");
    let url = format!("ws://{addr}/");
    let started = Instant::now();
    let child = command(
        lab.kubeconfig_path(),
        &[
            "spread",
            SVC,
            "-n",
            NS,
            "--url",
            &url,
            "--clients",
            "3",
            "--connect",
            "2",
            "--hold",
            "60s",
        ],
    )
    .spawn()
    .expect("spawn the plugin");

    // The server holds all 6, by its metrics and by its log.
    let deadline = Instant::now() + Duration::from_secs(20);
    while active(addr).await < 6 || support::logged_active(&lab, NS, &pod).await != Some(6) {
        assert!(
            Instant::now() < deadline,
            "spread never held 6 connections on {pod}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let interrupted = Instant::now();
    interrupt(&child);
    let r = wait(child, started).await;
    assert!(
        interrupted.elapsed() < Duration::from_secs(5),
        "exit took {:?}: {}",
        interrupted.elapsed(),
        r.all()
    );
    // spread catches Ctrl-C: it closes every connection with a close frame
    // and exits 130, as per-pod does.
    assert_eq!(r.code, Some(130), "{}", r.all());
    assert!(
        r.stderr.contains("interrupted: closed all 6 connections"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());

    // The lab's side first (the log reads below open API connections of their own).
    support::lab_holds_nothing_open(&lab).await;
    // The servers' side: metrics and logged counts back to 0.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = active(addr).await;
        let mut logged = Vec::new();
        for p in &pods {
            logged.push(support::logged_active(&lab, NS, p).await);
        }
        if n == 0 && logged.iter().all(|l| *l == Some(0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after Ctrl-C {pod} still has {n} connections; the pods log {logged:?} ({pods:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------
// -v never shows the token
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_runs_over_tls_never_print_the_bearer_token() {
    let lab = lab(true, true).await;
    let token = lab.token().to_string();
    assert!(!token.is_empty());
    for args in [
        &["check", SVC, "-n", NS, "-vv"][..],
        &["per-pod", SVC, "-n", NS, "--connect", "1", "-vv"],
        &["logs", SVC, "-n", NS, "-vv"],
        &["spread", SVC, "-n", NS, "-vv", "--timeout", "2s"],
    ] {
        let r = run(lab.kubeconfig_path(), args).await;
        let all = r.all();
        assert!(
            r.stderr.contains("GET /api"),
            "{args:?}: -v logs the API calls: {all}"
        );
        assert!(!all.contains(&token), "{args:?}: token leaked: {all}");
        assert!(
            !all.to_lowercase().contains("bearer "),
            "{args:?}: authorization header leaked: {all}"
        );
    }
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------
// A port-forward dropped mid-test (the pod itself stays up)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forwards_cut_mid_hold_are_reported_and_the_pods_count_back_to_0() {
    let lab = lab(false, true).await;
    let pods = lab.pods(NS);
    // The kubelet's streaming idle timeout, far shorter than the plugin's
    // 15 s keepalive: every forward is cut while the test holds it.
    lab.set_portforward_idle_timeout(Some(Duration::from_millis(800)));
    let r = run(
        lab.kubeconfig_path(),
        &[
            "per-pod",
            SVC,
            "-n",
            NS,
            "--connect",
            "2",
            "--hold",
            "4s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
    let report = r.json();
    let probes = report["observations"]["perPod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(probes.len(), pods.len(), "{}", r.all());
    for probe in &probes {
        assert_eq!(probe["failed"], 2, "{probe:#}");
        assert!(
            probe["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{probe:#}"
        );
    }
    // The pods' servers saw every connection go.
    for pod in &pods {
        let backend = lab.pod_backend(NS, pod).expect("pod still running");
        let deadline = Instant::now() + Duration::from_secs(5);
        while active(backend).await != 0 {
            assert!(Instant::now() < deadline, "{pod} still has connections");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    lab.shutdown().await;
}
