//! `kubectl wsaffinity logs --metric` against the lab (a local TEST DOUBLE of
//! the Kubernetes API whose pods are real `websocket-server` processes): the
//! companion server's own `/metrics` gauge `websocket_active_connections`,
//! read through one port-forward per pod, gives the same counts as its log.

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
