//! `kubectl wsaffinity logs --metric` and `per-pod --metric` against the lab
//! (a local TEST DOUBLE of the Kubernetes API whose pods are real
//! `websocket-server` processes): the companion server's own `/metrics` gauge
//! `websocket_active_connections`, read through one port-forward per pod,
//! gives the same counts as its log; label selection on a multi-series gauge
//! (the server's `--extra-gauge`); the default metrics port from a container
//! port named `metrics` or the `prometheus.io/*` annotations.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
const SVC: &str = "svc/dev-websocket-server";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(addr: SocketAddr, n: usize) -> Vec<Ws> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect to the pod's server");
        conns.push(ws);
    }
    conns
}

async fn logs(lab: &Lab, args: &[&str]) -> support::Run<i32> {
    support::run(lab.kubeconfig_path(), &[&["logs", SVC], args].concat()).await
}

fn actives(report: &Value) -> Vec<(String, Option<u64>)> {
    let mut v: Vec<(String, Option<u64>)> = report["observations"]["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["pod"].as_str().unwrap_or_default().to_string(),
                l["active"].as_u64(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gauge_matches_the_logged_counts_while_connections_are_held() {
    let lab = support::start_lab(Scenario::DevOverlay, false, true).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2);
    let a = lab.pod_backend(NS, &pods[0]).expect("pod a has a server");
    let b = lab.pod_backend(NS, &pods[1]).expect("pod b has a server");
    let _held = (open(a, 3).await, open(b, 1).await);
    let want = {
        let mut w = vec![(pods[0].clone(), Some(3)), (pods[1].clone(), Some(1))];
        w.sort();
        w
    };
    // The server logs the change at once; the gauge is live.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (by_log, log_codes) = loop {
        let r = logs(&lab, &["-o", "json"]).await;
        let got = actives(&r.json());
        if got == want || Instant::now() > deadline {
            break (got, r.codes());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(by_log, want, "the log source");
    let r = logs(
        &lab,
        &[
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(r.code == 0 || r.code == 1, "{}", r.all());
    let report = r.json();
    assert_eq!(
        actives(&report),
        want,
        "the metric source agrees with the log: {report:#}"
    );
    assert_eq!(report["observations"]["activeSource"]["kind"], "metric");
    assert_eq!(
        report["observations"]["activeSource"]["metric"],
        "websocket_active_connections"
    );
    // The same findings as from the log.
    assert_eq!(r.codes(), log_codes);

    // The text output is the same table.
    let r = logs(
        &lab,
        &[
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
        ],
    )
    .await;
    assert!(r.stdout.contains("2 of 2 pods"), "{}", r.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_no_pod_has_a_closed_port_and_no_port_are_usage_errors() {
    let lab = support::start_lab(Scenario::DevOverlay, false, true).await;
    let r = logs(
        &lab,
        &[
            "--metric",
            "websocket_connections",
            "--metrics-port",
            "8080",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("no pod exposes `websocket_connections`"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("websocket_active_connections"),
        "names the closest it found: {}",
        r.all()
    );

    let r = logs(
        &lab,
        &[
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "9999",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("no pod's metrics could be read"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("9999"), "names the port: {}", r.all());

    // The dev pods name no `metrics` port and carry no scrape annotation.
    let r = logs(&lab, &["--metric", "websocket_active_connections"]).await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("--metrics-port"),
        "says which flag to pass: {}",
        r.all()
    );

    let r = logs(&lab, &["--metric", "9bad"]).await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("not a metric name"), "{}", r.all());
    // --follow checks the same before it starts following.
    let r = logs(
        &lab,
        &["--metric", "nope", "--metrics-port", "8080", "--follow"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no pod exposes `nope`"), "{}", r.all());
}

/// `--metric --follow` polls each pod's gauge every `--interval` and prints
/// the changes as the log follow does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_polls_the_gauge_and_prints_changes() {
    use tokio::io::AsyncBufReadExt;
    let lab = support::start_lab(Scenario::DevOverlay, false, true).await;
    let pods = lab.pods(NS);
    let mut child = support::command(
        lab.kubeconfig_path(),
        &[
            "logs",
            SVC,
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "--follow",
            "--interval",
            "300ms",
            "--follow-duration",
            "20s",
        ],
    )
    .spawn()
    .expect("spawn");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let mut expect = async |needle: String, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.iter().any(|l: &String| l.contains(&needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, lines.next_line()).await {
                Ok(Ok(Some(l))) => seen.push(l),
                _ => panic!("no {needle:?} in time: {seen:#?}"),
            }
        }
    };
    expect(format!("{} active=0", pods[0]), &mut seen).await;
    let a = lab.pod_backend(NS, &pods[0]).expect("a server");
    let _held = open(a, 2).await;
    expect(format!("{} active=2", pods[0]), &mut seen).await;
    let _ = child.kill().await;
}

async fn per_pod(lab: &Lab, args: &[&str]) -> support::Run<i32> {
    support::run(lab.kubeconfig_path(), &[&["per-pod"], args].concat()).await
}

fn probes(report: &Value) -> Vec<Value> {
    let mut v = report["observations"]["perPod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    v.sort_by_key(|p| p["pod"].as_str().unwrap_or_default().to_string());
    v
}

/// before → during → after, as `per-pod` read them.
type Counts = (Option<u64>, Option<u64>, Option<u64>);

fn counts(p: &Value) -> Counts {
    (
        p["loggedActiveBefore"].as_u64(),
        p["loggedActiveDuring"].as_u64(),
        p["loggedActiveAfter"].as_u64(),
    )
}

/// `per-pod --metric`: the gauge read through each pod's metrics endpoint
/// rises by exactly the connections the test holds on that pod, on top of
/// the ones already open there, and comes back after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pod_reads_the_gauge_while_its_connections_are_held() {
    let lab = support::start_lab(Scenario::DevOverlay, false, true).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2);
    let a = lab.pod_backend(NS, &pods[0]).expect("pod a has a server");
    let _held = open(a, 2).await;
    let r = per_pod(
        &lab,
        &[
            SVC,
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "--connect",
            "4",
            "--hold",
            "1s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let report = r.json();
    let got: Vec<(String, Counts)> = probes(&report)
        .iter()
        .map(|p| (p["pod"].as_str().unwrap_or_default().to_string(), counts(p)))
        .collect();
    let mut want = vec![
        (pods[0].clone(), (Some(2), Some(6), Some(2))),
        (pods[1].clone(), (Some(0), Some(4), Some(0))),
    ];
    want.sort();
    assert_eq!(got, want, "{report:#}");
    assert_eq!(report["observations"]["activeSource"]["kind"], "metric");
    assert_eq!(
        report["observations"]["activeSource"]["metric"],
        "websocket_active_connections"
    );
    assert_eq!(report["observations"]["activeSource"]["port"], 8080);
    assert!(!r.codes().contains(&"WSA062".to_string()), "{report:#}");

    // The text table says where the counts came from.
    let r = per_pod(
        &lab,
        &[
            SVC,
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "--connect",
            "1",
            "--hold",
            "0s",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("METRIC ACTIVE"), "{}", r.all());
    assert!(r.stdout.contains("2 → 3 → 2"), "{}", r.all());
}

/// `per-pod` spells, validates and refuses `--metric` as `logs` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pod_metric_errors_are_the_logs_ones() {
    let lab = support::start_lab(Scenario::DevOverlay, false, true).await;
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &["--metric", "nope", "--metrics-port", "8080"],
            &["no pod exposes `nope`"],
        ),
        (
            &[
                "--metric",
                "websocket_connections",
                "--metrics-port",
                "8080",
            ],
            &["websocket_active_connections"],
        ),
        (
            &["--metric", "websocket_active_connections"],
            &["names no metrics port", "--metrics-port"],
        ),
        (&["--metric", "9bad"], &["not a metric name"]),
        (&["--metrics-port", "8080"], &["--metric"]),
    ];
    for (args, wants) in cases {
        lab.reset_counts();
        let r = per_pod(&lab, &[&[SVC][..], args].concat()).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        for want in wants {
            assert!(r.stderr.contains(want), "{args:?}: {want:?} in {}", r.all());
        }
        // Refused before any test connection was opened.
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.all());
    }
}

/// Three Services, each over one pod whose server also serves
/// `ws_connections{route="/chat"} 3` and `ws_connections{route="/feed"} 2`:
/// `named` has only a container port named `metrics`; `annotated` a `ws`
/// port and the `prometheus.io/port` and `/path` annotations; `stats` the
/// same annotations with a path the server does not serve.
const MULTI_SERIES: &str = r##"
apiVersion: lab.wsaffinity.dev/v1
kind: LabConfig
namespace: metrics-lab
---
apiVersion: v1
kind: Namespace
metadata: {name: metrics-lab}
---
apiVersion: v1
kind: Service
metadata: {name: named, namespace: metrics-lab}
spec:
  selector: {app: named}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: named
  namespace: metrics-lab
  annotations:
    lab.wsaffinity.dev/server-args: '--extra-gauge=ws_connections{route="/chat"}=3 --extra-gauge=ws_connections{route="/feed"}=2'
spec:
  replicas: 1
  selector: {matchLabels: {app: named}}
  template:
    metadata: {labels: {app: named}}
    spec:
      containers:
      - name: server
        image: websocket-server
        ports: [{name: metrics, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: annotated, namespace: metrics-lab}
spec:
  selector: {app: annotated}
  ports: [{name: ws, port: 8080, targetPort: ws}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: annotated
  namespace: metrics-lab
  annotations:
    lab.wsaffinity.dev/server-args: '--extra-gauge=ws_connections{route="/chat"}=3 --extra-gauge=ws_connections{route="/feed"}=2'
spec:
  replicas: 1
  selector: {matchLabels: {app: annotated}}
  template:
    metadata:
      labels: {app: annotated}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080", prometheus.io/path: /metrics}
    spec:
      containers:
      - name: server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: stats, namespace: metrics-lab}
spec:
  selector: {app: stats}
  ports: [{name: ws, port: 8080, targetPort: ws}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: stats, namespace: metrics-lab}
spec:
  replicas: 1
  selector: {matchLabels: {app: stats}}
  template:
    metadata:
      labels: {app: stats}
      annotations: {prometheus.io/port: "8080", prometheus.io/path: /stats}
    spec:
      containers:
      - name: server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
"##;

/// The plugin with `args` (the subcommand first) against `lab`.
async fn plugin(lab: &Lab, args: &[&str]) -> support::Run<i32> {
    support::run(lab.kubeconfig_path(), args).await
}

fn the_only_log(report: &Value) -> Value {
    let logs = report["observations"]["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(logs.len(), 1, "{report:#}");
    logs[0].clone()
}

/// Label selection on a multi-series gauge, and the default metrics port
/// (a port named `metrics`, else the scrape annotations) with no
/// `--metrics-port` given, for `logs` and `per-pod`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_series_or_the_sum_from_the_default_metrics_port() {
    let lab = support::start_lab(Scenario::Yaml(MULTI_SERIES.into()), false, true).await;
    // For both default-port rules: one series alone, or both summed and noted.
    for svc in ["svc/named", "svc/annotated"] {
        let chat = plugin(
            &lab,
            &[
                "logs",
                svc,
                "--metric",
                r#"ws_connections{route="/chat"}"#,
                "-o",
                "json",
            ],
        )
        .await;
        assert_eq!(chat.code, 0, "{svc}: {}", chat.all());
        let row = the_only_log(&chat.json());
        assert_eq!(row["active"], 3, "{svc}: {row:#}");
        assert!(row["note"].is_null(), "one series, no note: {row:#}");

        let feed = plugin(
            &lab,
            &[
                "logs",
                svc,
                "--metric",
                r#"ws_connections{route="/feed"}"#,
                "-o",
                "json",
            ],
        )
        .await;
        assert_eq!(
            the_only_log(&feed.json())["active"],
            2,
            "{svc}: {}",
            feed.all()
        );

        let sum = plugin(
            &lab,
            &["logs", svc, "--metric", "ws_connections", "-o", "json"],
        )
        .await;
        assert_eq!(sum.code, 0, "{svc}: {}", sum.all());
        let report = sum.json();
        let row = the_only_log(&report);
        assert_eq!(row["active"], 5, "{svc}: {row:#}");
        let note = row["note"].as_str().unwrap_or_default();
        assert!(
            note.starts_with("2 series of `ws_connections` summed")
                && note.contains(r#"{route="/chat"} 3"#)
                && note.contains(r#"{route="/feed"} 2"#),
            "{svc}: {row:#}"
        );
        assert_eq!(report["observations"]["activeSource"]["port"], Value::Null);
    }
    // The text output shows the note under the table.
    let text = plugin(&lab, &["logs", "svc/named", "--metric", "ws_connections"]).await;
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains("note pod/named-")
            && text
                .stdout
                .contains(": 2 series of `ws_connections` summed"),
        "{}",
        text.all()
    );
    // Labels no series has: exit 2, naming what the pods do expose.
    let none = plugin(
        &lab,
        &[
            "logs",
            "svc/named",
            "--metric",
            r#"ws_connections{route="/nope"}"#,
        ],
    )
    .await;
    assert_eq!(none.code, 2, "{}", none.all());
    assert!(
        none.stderr
            .contains(r#"no pod exposes `ws_connections{route="/nope"}`"#),
        "{}",
        none.all()
    );
    // The annotation's path is the one asked for: the server has no /stats.
    let stats = plugin(&lab, &["logs", "svc/stats", "--metric", "ws_connections"]).await;
    assert_eq!(stats.code, 2, "{}", stats.all());
    assert!(
        stats.stderr.contains("/stats") && stats.stderr.contains("404"),
        "{}",
        stats.all()
    );

    // per-pod: the same selection; a fixed gauge does not rise with the
    // test's connections, and WSA062 says so in terms of the gauge.
    let chat = plugin(
        &lab,
        &[
            "per-pod",
            "svc/annotated",
            "--metric",
            r#"ws_connections{route="/chat"}"#,
            "--connect",
            "2",
            "--hold",
            "0s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_ne!(chat.code, 2, "{}", chat.all());
    let report = chat.json();
    let p = probes(&report);
    assert_eq!(p.len(), 1, "{report:#}");
    assert_eq!(p[0]["ok"], 2, "{report:#}");
    assert_eq!(counts(&p[0]), (Some(3), Some(3), Some(3)), "{report:#}");
    let wsa062: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "WSA062")
        .collect();
    assert_eq!(wsa062.len(), 1, "{report:#}");
    assert!(
        wsa062[0]["detail"].as_str().is_some_and(
            |d| d.contains(r#"its gauge `ws_connections{route="/chat"}` went from 3 to 3"#)
        ),
        "{report:#}"
    );
    assert!(the_only_log(&report)["note"].is_null(), "{report:#}");

    let sum = plugin(
        &lab,
        &[
            "per-pod",
            "svc/named",
            "--metric",
            "ws_connections",
            "--connect",
            "1",
            "--hold",
            "0s",
        ],
    )
    .await;
    assert_ne!(sum.code, 2, "{}", sum.all());
    assert!(sum.stdout.contains("METRIC ACTIVE"), "{}", sum.all());
    assert!(sum.stdout.contains("5 → 5 → 5"), "{}", sum.all());
    assert!(
        sum.stdout.contains(": 2 series of `ws_connections` summed"),
        "{}",
        sum.all()
    );
}
