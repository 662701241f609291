//! `kubectl wsaffinity logs` against the lab (a local TEST DOUBLE of the
//! Kubernetes API whose pods are real `websocket-server` processes; a pod's
//! stdout is its log). The plugin binary runs as a subprocess with
//! `--kubeconfig`. Needs `cargo build -p websocket-server`.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, RUN_LIMIT, codes};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
const SVC: &str = "svc/dev-websocket-server";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

type Run = support::Run<i32>;

async fn lab() -> Lab {
    support::start_lab(Scenario::DevOverlay, false, true).await
}

fn command(lab: &Lab, args: &[&str]) -> Command {
    support::command(lab.kubeconfig_path(), &[&["logs"], args].concat())
}

async fn run(lab: &Lab, args: &[&str]) -> Run {
    let started = Instant::now();
    let child = command(lab, args).spawn().expect("spawn the plugin");
    support::wait(child, started).await
}

/// Opens `n` WebSocket connections straight to the pod's real server.
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

fn pod_logs(report: &Value) -> Vec<Value> {
    report["observations"]["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn active_of(report: &Value, pod: &str) -> Option<u64> {
    pod_logs(report)
        .iter()
        .find(|l| l["pod"] == pod)
        .and_then(|l| l["active"].as_u64())
}

/// Runs `logs -o json` until `done` holds (the server logs a change within
/// milliseconds; this only absorbs scheduling), at most 10 s.
async fn json_until(lab: &Lab, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = run(lab, args).await;
        assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
        let report = r.json();
        if done(&report) || Instant::now() > deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The namespace and the Service `dev-websocket-server` (selecting
/// `app: websocket-server`), then `deployments`: a scenario for the lab.
fn behind_the_service(deployments: &str) -> Scenario {
    Scenario::Yaml(format!(
        r#"
apiVersion: lab.wsaffinity.dev/v1
kind: LabConfig
namespace: websocket-app-dev
---
apiVersion: v1
kind: Namespace
metadata: {{name: websocket-app-dev}}
---
apiVersion: v1
kind: Service
metadata: {{name: dev-websocket-server, namespace: websocket-app-dev}}
spec:
  selector: {{app: websocket-server}}
  ports:
  - {{name: ws, port: 8080, targetPort: ws, protocol: TCP}}
---
{deployments}"#
    ))
}

/// One pod with a server, one whose container logs nothing, behind the Service.
const QUIET_POD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: dev-websocket-server, namespace: websocket-app-dev}
spec:
  replicas: 1
  selector: {matchLabels: {app: websocket-server}}
  template:
    metadata: {labels: {app: websocket-server}}
    spec:
      containers:
      - name: websocket-server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: quiet-websocket-server
  namespace: websocket-app-dev
  annotations: {lab.wsaffinity.dev/processes: "false"}
spec:
  replicas: 1
  selector: {matchLabels: {app: websocket-server, variant: quiet}}
  template:
    metadata: {labels: {app: websocket-server, variant: quiet}}
    spec:
      containers:
      - name: websocket-server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
"#;

fn two_pods(lab: &Lab) -> (String, String, SocketAddr, SocketAddr) {
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    let a = pods[0].clone();
    let b = pods[1].clone();
    let addr_a = lab.pod_backend(NS, &a).expect("pod a has a server");
    let addr_b = lab.pod_backend(NS, &b).expect("pod b has a server");
    (a, b, addr_a, addr_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_the_connections_opened_to_each_pod() {
    let lab = lab().await;
    let (a, b, addr_a, addr_b) = two_pods(&lab);
    let _ca = open(addr_a, 5).await;
    let _cb = open(addr_b, 1).await;

    let report = json_until(&lab, &[SVC, "-o", "json"], |r| {
        active_of(r, &a) == Some(5) && active_of(r, &b) == Some(1)
    })
    .await;
    assert_eq!(active_of(&report, &a), Some(5), "{report:#}");
    assert_eq!(active_of(&report, &b), Some(1), "{report:#}");
    for l in pod_logs(&report) {
        assert!(l["node"].as_str().is_some_and(|n| !n.is_empty()), "{l}");
        assert!(
            l["loggedAt"]
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
            "{l}"
        );
        assert!(l["started"].as_str().is_some(), "{l}");
    }
    assert_eq!(
        report["service"]["name"], "dev-websocket-server",
        "{report:#}"
    );
    assert_eq!(
        report["endpoints"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    // 5 and 1: max/mean 1.67 over the threshold -> WSA064 from the engine.
    assert_eq!(codes(&report), ["WSA064"], "{report:#}");
    // The verdict leads with what the logs measured.
    let verdict = report["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with("Open connections per pod are uneven (busiest 5, emptiest 1, mean 3.0"),
        "{report:#}"
    );
    assert!(!verdict.contains("clients spread"), "{report:#}");

    let text = run(&lab, &[SVC]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.starts_with("POD"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("2 of 2 pods logged a count: total 6, mean 3.0, max 5, max/mean 1.67"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("WSA064"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("Verdict\n  Open connections per pod are uneven"),
        "{}",
        text.stdout
    );
    let row_a = text
        .stdout
        .lines()
        .find(|l| l.starts_with(&a))
        .unwrap_or_default()
        .to_string();
    assert!(
        row_a.split_whitespace().nth(2) == Some("5") && row_a.contains(" ago"),
        "{row_a}"
    );

    // Each pod's share of the 6 Active connections as a bar: plain ASCII
    // because stdout is a pipe, even without NO_COLOR. 5 of 6 of 20
    // columns = 16.67 -> 17; 1 of 6 = 3.33 -> 3.
    let started = Instant::now();
    let child = command(&lab, &[SVC])
        .env_remove("NO_COLOR")
        .spawn()
        .expect("spawn the plugin");
    let piped: Run = support::wait(child, started).await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    let block_or_escape = |c: char| ('\u{2580}'..='\u{259f}').contains(&c) || c == '\x1b';
    assert!(!piped.stdout.contains(block_or_escape), "{}", piped.stdout);
    let row = |pod: &str| {
        piped
            .stdout
            .lines()
            .find(|l| l.starts_with(pod))
            .unwrap_or_default()
            .to_string()
    };
    let share = |pod: &str| {
        row(pod)
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        share(&a),
        format!("{}{} 83%", "#".repeat(17), ".".repeat(3)),
        "{}",
        piped.stdout
    );
    assert_eq!(
        share(&b),
        format!("{}{} 17%", "#".repeat(3), ".".repeat(17)),
        "{}",
        piped.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_without_an_active_line_is_wsa063() {
    // The companion server logs `Active connections: 0` at start, so the
    // silent pod is one whose container logs nothing (no lab process).
    let lab = support::start_lab(behind_the_service(QUIET_POD), false, true).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    let (a, b): (Vec<String>, Vec<String>) = pods
        .into_iter()
        .partition(|p| lab.pod_backend(NS, p).is_some());
    let (a, b) = (a[0].clone(), b[0].clone());
    let addr_a = lab.pod_backend(NS, &a).expect("pod a has a server");
    let _ca = open(addr_a, 2).await;

    let report = json_until(&lab, &[SVC, "-o", "json"], |r| active_of(r, &a) == Some(2)).await;
    assert_eq!(active_of(&report, &a), Some(2), "{report:#}");
    assert_eq!(active_of(&report, &b), None, "{report:#}");
    let wsa063: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "WSA063")
        .collect();
    assert_eq!(wsa063.len(), 1, "{report:#}");
    assert!(
        wsa063[0]["detail"].as_str().is_some_and(|d| d.contains(&b)),
        "{report:#}"
    );
    assert_eq!(wsa063[0]["severity"], "info");

    let text = run(&lab, &[SVC]).await;
    assert_eq!(text.code, 0, "WSA063 is a note: {}", text.stderr);
    let row_b = text
        .stdout
        .lines()
        .find(|l| l.starts_with(&b))
        .unwrap_or_default()
        .to_string();
    assert!(
        row_b.ends_with("no match in the last 500 lines"),
        "{}",
        text.stdout
    );
}

/// 100,000 lines, the count on the last one: the read is bounded by
/// tailLines/limitBytes, measured with the lab's count of log bytes sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_line_log_is_read_with_bounded_bytes() {
    let lab = lab().await;
    let (a, b, _, _) = two_pods(&lab);
    let mut big = String::with_capacity(100_000 * 64);
    for i in 0..99_999 {
        big.push_str(&format!(
            "2026-11-26T23:40:01.123Z INFO request {i:06} handled in 3 ms\n"
        ));
    }
    big.push_str("2026-11-26T23:40:02.000Z INFO Active connections: 7\n");
    lab.append_log(NS, &a, &big);
    lab.append_log(
        NS,
        &b,
        "2026-11-26T23:40:02.000Z INFO Active connections: 1\n",
    );
    let full = big.len() as u64;

    lab.reset_counts();
    let r = run(&lab, &[SVC, "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_eq!(active_of(&report, &a), Some(7), "{report:#}");
    let counts = lab.counts();
    let sent = counts.log_bytes_sent();
    eprintln!("default limits: {sent} log bytes sent for 2 pods (pod log is {full} bytes)");
    assert_eq!(counts.get("get pods/log"), 2, "{counts:?}");
    // One pod's tail (500 lines of ~80 bytes with timestamps) + a tiny one.
    assert!(sent <= 65_536 + 4_096, "{sent} bytes sent");

    // A limit smaller than 500 lines: the newest lines are cut off by the
    // server, so the reader asks again for fewer lines (at most 3 GETs).
    lab.reset_counts();
    let r = run(&lab, &[SVC, "-o", "json", "--limit-bytes", "4096"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(active_of(&r.json(), &a), Some(7), "{}", r.stdout);
    let counts = lab.counts();
    let sent = counts.log_bytes_sent();
    eprintln!(
        "--limit-bytes 4096: {sent} log bytes sent in {} requests",
        counts.get("get pods/log")
    );
    assert!(counts.get("get pods/log") <= 4, "{counts:?}");
    assert!(sent <= 3 * 4_096 + 2 * 512 + 1_024, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_pattern_and_a_label_selector_work() {
    let lab = lab().await;
    let (a, b, _, _) = two_pods(&lab);
    lab.append_log(NS, &a, "ws clients=12 rooms=3\nws clients=9 rooms=3\n");
    lab.append_log(NS, &b, "{\"msg\":\"ws\",\"clients=4\"}\n");
    let r = run(
        &lab,
        &[
            "-l",
            "app=websocket-server",
            "--pattern",
            "clients=(\\d+)",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_eq!(
        active_of(&report, &a),
        Some(9),
        "latest line wins: {report:#}"
    );
    assert_eq!(active_of(&report, &b), Some(4), "{report:#}");
    assert!(report["target"].is_null(), "{report:#}");
    assert!(report["service"].is_null(), "{report:#}");
    // No Service: no paths, and a verdict about the counts alone.
    assert_eq!(report["paths"], serde_json::json!([]), "{report:#}");
    assert_eq!(
        report["verdict"],
        "The 2 pods that logged a count hold 13 open connections in all, evenly spread (busiest 9, max/mean at most 1.5).",
        "{report:#}"
    );
}

/// Without a target the namespace's only Service is used: `-o json` names
/// it, and carries its paths and the verdict `check` gives (no log finding
/// changes it here); the text output has the same verdict after the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_report_has_the_verdict_the_paths_and_the_resolved_service() {
    let lab = lab().await;
    let r = run(&lab, &["-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_eq!(report["target"]["kind"], "service", "{report:#}");
    assert_eq!(
        report["target"]["name"], "dev-websocket-server",
        "{report:#}"
    );

    let check = support::run::<i32>(lab.kubeconfig_path(), &["check", SVC, "-o", "json"]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let check = check.json();
    let verdict = report["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with("Your setup is correct for production."),
        "{report:#}"
    );
    assert_eq!(report["verdict"], check["verdict"], "{report:#}");
    assert!(
        report["paths"].as_array().is_some_and(|p| !p.is_empty()),
        "{report:#}"
    );
    assert_eq!(report["paths"], check["paths"], "{report:#}");

    let text = run(&lab, &[]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.starts_with("POD"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("\n\nVerdict\n  Your setup is correct for production."),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("Findings  0 errors, 0 warnings, 0 notes"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_service_is_wsa001() {
    let lab = lab().await;
    let r = run(&lab, &["svc/nope", "-o", "json"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(codes(&r.json()), ["WSA001"]);
}

/// `--follow` piped: plain lines; a change shows within a second; a killed
/// pod is reported; SIGINT (Ctrl-C) ends it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reports_changes_within_a_second_and_a_pod_that_goes_away() {
    let lab = lab().await;
    let (a, b, addr_a, _) = two_pods(&lab);
    let mut child = command(
        &lab,
        &[
            SVC,
            "--follow",
            "--follow-duration",
            "60s",
            "--poll-interval",
            "300ms",
        ],
    )
    .spawn()
    .expect("spawn the plugin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_line = async |want: &dyn Fn(&str) -> bool,
                               within: Duration,
                               seen: &mut Vec<String>|
           -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => {
                    let hit = want(&line);
                    seen.push(line);
                    if hit {
                        return Some(Instant::now());
                    }
                }
                _ => return None,
            }
        }
    };

    for pod in [&a, &b] {
        let want = format!("{pod} following");
        assert!(
            wait_line(&|l| l == want, Duration::from_secs(10), &mut seen)
                .await
                .is_some(),
            "{seen:#?}"
        );
    }
    // Let both streams open (the lines above come when the pods are picked up).
    tokio::time::sleep(Duration::from_millis(800)).await;

    let opened = Instant::now();
    let _conns = open(addr_a, 3).await;
    let want = format!("{a} active=3");
    let at = wait_line(&|l| l == want, Duration::from_secs(5), &mut seen).await;
    let at = at.unwrap_or_else(|| panic!("no `{want}` line: {seen:#?}"));
    let delay = at.duration_since(opened);
    eprintln!("--follow showed the change {delay:?} after the connections opened");
    assert!(delay < Duration::from_secs(1), "{delay:?}: {seen:#?}");

    lab.kill_pod(NS, &b).await;
    let prefix = format!("{b} ");
    let gone = wait_line(
        &|l| l.starts_with(&prefix) && (l.contains("ended") || l.ends_with(" gone")),
        Duration::from_secs(10),
        &mut seen,
    )
    .await;
    assert!(gone.is_some(), "the killed pod is reported: {seen:#?}");

    // Ctrl-C: every stream closed, exit 0, promptly.
    let pid = child.id().expect("the plugin runs");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{seen:#?}");
    let _ = reader.await;
    // No line for pod a other than its values and the pickup.
    assert!(
        seen.iter()
            .filter(|l| l.starts_with(&format!("{a} ")))
            .all(|l| l.contains("active=") || l.ends_with("following")),
        "{seen:#?}"
    );
}

/// `--follow-duration` ends a follow by itself, having picked up both pods.
/// (A pod that appears later: `follow_picks_up_a_pod_added_while_following`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_duration_ends_the_follow_and_json_is_refused() {
    let lab = lab().await;
    let started = Instant::now();
    let r = run(&lab, &[SVC, "--follow", "--follow-duration", "1500ms"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.ends_with(" following"))
            .count(),
        2,
        "{}",
        r.stdout
    );

    let r = run(&lab, &[SVC, "--follow", "-o", "json"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--follow"), "{}", r.stderr);
}

/// A `logs --follow` run with piped stdout, read line by line as it comes.
struct FollowRun {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    reader: tokio::task::JoinHandle<()>,
    /// Every line read so far, for assertion messages.
    seen: Vec<String>,
}

impl FollowRun {
    fn spawn(lab: &Lab, args: &[&str]) -> Self {
        let mut child = command(lab, args).spawn().expect("spawn the plugin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        FollowRun {
            child,
            lines,
            reader,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one equals `want`, at most `within`; panics with
    /// every line seen when none does.
    async fn expect_line(&mut self, want: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let hit = line == want;
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Ok(None) => panic!("the follow ended before `{want}`: {:#?}", self.seen),
                Err(_) => panic!("no `{want}` within {within:?}: {:#?}", self.seen),
            }
        }
    }

    /// Ends the follow (SIGKILL) and reaps it, so nothing is left running.
    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .expect("the plugin exits after SIGKILL");
        let _ = self.reader.await;
    }
}

/// `--follow` picks up a pod that appears while it runs: the lab scales the
/// Deployment up by one (a new pod with its own server, in the pod LIST and the
/// Service's EndpointSlice); the follow names it, then shows the connections
/// opened to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_picks_up_a_pod_added_while_following() {
    let lab = lab().await;
    let (a, b, _, _) = two_pods(&lab);
    let mut follow = FollowRun::spawn(
        &lab,
        &[
            SVC,
            "--follow",
            // A backstop: the test stops it sooner.
            "--follow-duration",
            "30s",
            "--poll-interval",
            "300ms",
        ],
    );
    for pod in [&a, &b] {
        follow
            .expect_line(&format!("{pod} following"), Duration::from_secs(10))
            .await;
    }

    let added = Instant::now();
    let c = lab
        .add_pod(NS, "dev-websocket-server")
        .await
        .expect("scale the Deployment up by one");
    assert!(![&a, &b].contains(&&c), "{c} is a new pod");
    // Picked up by the next pod LIST (every 300 ms).
    follow
        .expect_line(&format!("{c} following"), Duration::from_secs(5))
        .await;
    eprintln!(
        "--follow picked up the new pod {:?} after it was added",
        added.elapsed()
    );

    let addr_c = lab.pod_backend(NS, &c).expect("the new pod has a server");
    let _conns = open(addr_c, 3).await;
    follow
        .expect_line(&format!("{c} active=3"), Duration::from_secs(5))
        .await;
    let seen = std::mem::take(&mut follow.seen);
    follow.stop().await;
    // The other pods saw no change.
    for pod in [&a, &b] {
        assert!(
            seen.iter()
                .filter(|l| l.starts_with(&format!("{pod} ")))
                .all(|l| l.ends_with(" following") || l.ends_with(" active=0")),
            "{seen:#?}"
        );
    }
}

/// Runs `logs --follow` on a pty (util-linux `script`) for 2.5 s, with
/// `NO_COLOR=1` or without it; returns what the terminal received, `\r`s
/// dropped.
async fn follow_on_a_pty(lab: &Lab, no_color: bool) -> String {
    let cmdline = format!(
        "{BIN} logs {SVC} --kubeconfig {} --follow --follow-duration 2500ms --poll-interval 500ms",
        lab.kubeconfig_path().display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &cmdline, "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .expect("finishes")
        .expect("run script");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// `--follow` on a terminal (util-linux `script` gives it a pty): a table
/// redrawn in place with ANSI cursor moves, the counts and the share bars
/// in its last frame (ASCII with NO_COLOR, Unicode blocks without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_on_a_terminal_redraws_a_table_in_place() {
    if support::script_missing() {
        return;
    }
    let lab = lab().await;
    let (a, b, addr_a, _) = two_pods(&lab);
    let _conns = open(addr_a, 2).await;
    let screen = follow_on_a_pty(&lab, true).await;
    assert!(
        screen.contains("A\u{1b}[J"),
        "no in-place redraw: {screen:?}"
    );
    let last = screen.rsplit("\u{1b}[J").next().unwrap_or_default();
    assert!(last.starts_with("POD"), "{last}");
    assert!(last.contains("(Ctrl-C to stop)"), "{last}");
    let row = |pod: &str| {
        last.lines()
            .find(|l| l.starts_with(pod))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(row(&a).split_whitespace().nth(2), Some("2"), "{last}");
    assert!(row(&a).ends_with("following"), "{last}");
    // The untouched pod shows the server's start-up baseline.
    assert_eq!(row(&b).split_whitespace().nth(2), Some("0"), "{last}");
    // Both connections are on a: its bar is full, b's empty.
    assert!(
        row(&a).contains(&format!("{} 100%", "#".repeat(20))),
        "{last}"
    );
    assert!(
        row(&b).contains(&format!("{}   0%", ".".repeat(20))),
        "{last}"
    );

    let screen = follow_on_a_pty(&lab, false).await;
    let last = screen.rsplit("\u{1b}[J").next().unwrap_or_default();
    assert!(
        last.contains(&format!("{} 100%", "█".repeat(20))),
        "no Unicode bar on a terminal: {last}"
    );
    assert!(!last.contains('#'), "{last}");
}

/// A pod with a sidecar listed first: without `-c` the container that
/// declares the Service's targetPort (`ws`) is read; a `-c` that no pod has
/// is a usage error (exit 2) naming the pods' containers and `-c`, once and
/// follow alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_serving_the_port_is_read_and_a_wrong_one_is_a_usage_error() {
    let dev = include_str!("../lab/scenarios/dev.yaml");
    // A sidecar listed first: the reader must still pick the container that
    // declares the Service's targetPort.
    let anchor = "      containers:\n";
    assert!(dev.contains(anchor), "the dev scenario changed shape");
    let with_sidecar = dev.replacen(
        anchor,
        "      containers:\n      - name: log-shipper\n        image: busybox\n",
        1,
    );
    let lab = support::start_lab(Scenario::Yaml(with_sidecar), false, true).await;
    let (a, b, addr_a, _) = two_pods(&lab);
    let _conns = open(addr_a, 4).await;
    let report = json_until(&lab, &[SVC, "-o", "json"], |r| active_of(r, &a) == Some(4)).await;
    assert_eq!(active_of(&report, &a), Some(4), "{report:#}");
    assert!(
        pod_logs(&report).iter().all(|l| l["error"].is_null()),
        "{report:#}"
    );

    let _ = b;
    lab.reset_counts();
    for args in [
        &[SVC, "-c", "nope"][..],
        &[SVC, "-c", "nope", "-o", "json"],
        &[SVC, "-c", "nope", "--follow", "--follow-duration", "30s"],
    ] {
        let r = run(&lab, args).await;
        assert_eq!(r.code, 2, "{args:?}\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.contains(
                "container `nope` is in none of the pods of svc/dev-websocket-server: all 2 have `log-shipper`, `websocket-server`. Pass one of them with -c/--container"
            ),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Decided from the pod LIST: no log was asked for.
    assert_eq!(lab.counts().get("get pods/log"), 0, "{:?}", lab.counts());
}

/// Two Deployments behind the Service, only one with a `log-shipper` sidecar.
const ONE_WITH_SIDECAR: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: dev-websocket-server, namespace: websocket-app-dev}
spec:
  replicas: 1
  selector: {matchLabels: {app: websocket-server, variant: sidecar}}
  template:
    metadata: {labels: {app: websocket-server, variant: sidecar}}
    spec:
      containers:
      - name: log-shipper
        image: busybox
      - name: websocket-server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain-websocket-server, namespace: websocket-app-dev}
spec:
  replicas: 1
  selector: {matchLabels: {app: websocket-server, variant: plain}}
  template:
    metadata: {labels: {app: websocket-server, variant: plain}}
    spec:
      containers:
      - name: websocket-server
        image: websocket-server
        ports: [{name: ws, containerPort: 8080}]
"#;

/// `-c` naming a container only some pods have: each other pod's read error
/// is shown (its row, its WSA063 note with the API's text), the others are
/// read, and the exit code follows the findings (0: no error finding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_whose_log_cannot_be_read_is_a_note_and_exits_0() {
    let lab = support::start_lab(behind_the_service(ONE_WITH_SIDECAR), false, true).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    let plain = pods
        .iter()
        .find(|p| p.starts_with("plain-"))
        .cloned()
        .expect("the plain pod");
    let r = run(&lab, &[SVC, "-c", "log-shipper", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    let unread: Vec<Value> = pod_logs(&report)
        .into_iter()
        .filter(|l| !l["error"].is_null())
        .collect();
    assert_eq!(unread.len(), 1, "{report:#}");
    assert_eq!(unread[0]["pod"], plain.as_str(), "{report:#}");
    let wsa063: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "WSA063")
        .collect();
    assert_eq!(wsa063.len(), 1, "{report:#}");
    assert!(
        wsa063[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!(
                "reading the log failed: container log-shipper is not valid for pod {plain}"
            ))),
        "{report:#}"
    );

    let text = run(&lab, &[SVC, "-c", "log-shipper"]).await;
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    let row = text
        .stdout
        .lines()
        .find(|l| l.starts_with(plain.as_str()))
        .unwrap_or_default();
    assert!(
        row.contains("error: container log-shipper is not valid"),
        "{}",
        text.stdout
    );
}

/// Every pod deleted after its log was asked for: no log could be read at
/// all, a connection problem (exit 2) naming the API's error once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_read_at_all_exits_2_naming_the_error() {
    let lab = support::start_lab(Scenario::DevOverlay, false, false).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "{pods:?}");
    // Every answer waits 500 ms, counted on arrival: once both log requests
    // are counted, deleting the pods makes both answer 404.
    lab.set_latency(Duration::from_millis(500));
    let started = Instant::now();
    let child = command(&lab, &[SVC, "-o", "json"])
        .spawn()
        .expect("spawn the plugin");
    support::eventually(
        "the plugin never asked for both logs",
        Duration::from_secs(30),
        || lab.counts().get("get pods/log") >= 2,
    )
    .await;
    for pod in &pods {
        lab.delete_pod(NS, pod).await;
    }
    let r: Run = support::wait(child, started).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("no pod's log could be read ("),
        "{}",
        r.stderr
    );
    for pod in &pods {
        assert!(r.stderr.contains(&format!("`{pod}`")), "{}", r.stderr);
    }
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

/// `--since` keeps only newer lines (sinceSeconds): an older count is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_skips_older_lines() {
    let lab = lab().await;
    let (a, _, _, _) = two_pods(&lab);
    lab.append_log(NS, &a, "INFO Active connections: 3\n");
    let report = run(&lab, &[SVC, "-o", "json"]).await.json();
    assert_eq!(active_of(&report, &a), Some(3), "{report:#}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let report = run(&lab, &[SVC, "-o", "json", "--since", "1s"])
        .await
        .json();
    assert_eq!(active_of(&report, &a), None, "{report:#}");
    assert!(codes(&report).iter().all(|c| c == "WSA063"), "{report:#}");
}
