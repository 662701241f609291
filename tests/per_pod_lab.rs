//! `kubectl wsaffinity per-pod` against the lab (a local TEST DOUBLE of the
//! Kubernetes API with the real WebSocket port-forward protocol and pods
//! backed by real `websocket-server` processes). The plugin binary runs as a
//! subprocess with `--kubeconfig`. Needs `cargo build -p websocket-server`.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, RUN_LIMIT};
use tokio::process::Command;
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
type Run = support::Run<i32>;

async fn lab(scenario: Scenario) -> Lab {
    support::start_lab(scenario, false, true).await
}

fn command(lab: &Lab, args: &[&str]) -> Command {
    support::command(lab.kubeconfig_path(), &[&["per-pod"], args].concat())
}

async fn wait(child: tokio::process::Child, started: Instant) -> Run {
    support::wait(child, started).await
}

async fn run(lab: &Lab, args: &[&str]) -> Run {
    let started = Instant::now();
    let child = command(lab, args).spawn().expect("spawn the plugin");
    wait(child, started).await
}

fn per_pod(report: &Value) -> Vec<Value> {
    report["observations"]["perPod"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn probe<'a>(probes: &'a [Value], pod: &str) -> &'a Value {
    probes
        .iter()
        .find(|p| p["pod"] == pod)
        .unwrap_or_else(|| panic!("no probe for {pod} in {probes:#?}"))
}

fn findings(report: &Value, code: &str) -> Vec<Value> {
    report["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["code"] == code).cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_ten_connections_each_and_the_log_count_comes_back() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2);
    lab.reset_counts();

    let run = run(&lab, &["--connect", "10", "-o", "json"]).await;
    eprintln!(
        "2 pods x 10 connections (hold 2s, one pod at a time): {:?}",
        run.took
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let probes = per_pod(&report);
    assert_eq!(probes.len(), 2);
    for name in &pods {
        let p = probe(&probes, name);
        assert_eq!(p["ok"], 10, "{p:#}");
        assert_eq!(p["failed"], 0, "{p:#}");
        assert_eq!(
            p["port"], 8080,
            "the named targetPort `ws` resolved per pod"
        );
        assert_eq!(p["identity"]["kind"], "matches", "{p:#}");
        assert!(p["handshakeMs"]["p50"].as_f64().is_some(), "{p:#}");
        assert!(p["echoMs"]["p95"].as_f64().is_some(), "{p:#}");
        let before = p["loggedActiveBefore"].as_u64().unwrap_or(0);
        let during = p["loggedActiveDuring"]
            .as_u64()
            .expect("a count during the hold");
        assert!(
            during >= before + 10,
            "logged {during} while holding 10 (before {before})"
        );
        let after = p["loggedActiveAfter"]
            .as_u64()
            .expect("a count after closing");
        assert_eq!(after, before, "every connection closed again");
    }
    assert!(findings(&report, "WSA060").is_empty());
    assert!(findings(&report, "WSA062").is_empty());

    // One port-forward upgrade per pod carrying its 10 connections (a real
    // API server pays a TLS connection and a proxied upgrade per forward);
    // the pods are listed once, not per pod.
    let counts = lab.counts();
    eprintln!("API requests: {:?}", counts.requests);
    assert_eq!(counts.get("create pods/portforward"), 2, "{counts:?}");
    assert!(counts.get("list pods") <= 1, "{counts:?}");
    assert!(counts.get("list endpointslices") <= 1, "{counts:?}");
    assert!(counts.get("get pods") == 0, "{counts:?}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_has_a_row_per_pod_and_the_summary_line() {
    let lab = lab(Scenario::DevOverlay).await;
    let run = run(
        &lab,
        &["--connect", "3", "--hold", "200ms", "--parallel", "2"],
    )
    .await;
    eprintln!(
        "2 pods x 3 connections in parallel (hold 200ms): {:?}",
        run.took
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for name in lab.pods(NS) {
        assert!(run.stdout.contains(&name), "{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("2/2 pods accepted 3/3 connections: 6 total"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("matches"), "{}", run.stdout);
    // The verdict puts the test in context of the routing in front: the dev
    // overlay's Ingress decides for Ingress traffic, not the Service.
    let verdict = run.stdout.split("Verdict").nth(1).unwrap_or_default();
    let verdict = verdict.split("Findings").next().unwrap_or_default();
    assert!(
        verdict
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("through the Ingress, separate clients spread"),
        "{}",
        run.stdout
    );
    // No progress display when piped.
    assert!(!run.stderr.contains("opening"), "{}", run.stderr);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_portforward_error_is_wsa060_and_the_other_pod_passes() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    lab.inject_portforward_error(NS, &pods[0], "injected by the per-pod test");

    let run = run(&lab, &["--connect", "5", "--hold", "500ms", "-o", "json"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let probes = per_pod(&report);
    let bad = probe(&probes, &pods[0]);
    assert_eq!(bad["ok"], 0, "{bad:#}");
    assert_eq!(bad["failed"], 5, "{bad:#}");
    let error = bad["error"].as_str().unwrap_or_default();
    assert!(error.contains("injected by the per-pod test"), "{error}");
    assert!(
        error.starts_with("error forwarding port 8080 to pod"),
        "{error}"
    );
    let good = probe(&probes, &pods[1]);
    assert_eq!(good["ok"], 5, "{good:#}");

    let wsa060 = findings(&report, "WSA060");
    assert_eq!(wsa060.len(), 1, "{:#}", report["findings"]);
    assert_eq!(wsa060[0]["severity"], "error");
    let detail = wsa060[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&pods[0]) && detail.contains("injected by the per-pod test"),
        "{detail}"
    );
    // The forward itself failed: the pod was not reached.
    assert_eq!(wsa060[0]["title"], "pod unreachable through port-forward");
    let fix = wsa060[0]["fix"].as_str().unwrap_or_default();
    assert!(fix.contains("listens on 8080"), "{fix}");

    // The text form says it too.
    let text = run_text(&lab).await;
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("1/2 pods passed: 5 of 10 connections succeeded (5 failed)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("injected by the per-pod test"),
        "{}",
        text.stdout
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_is_a_refused_upgrade_not_an_unreachable_pod() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    let args = ["--connect", "2", "--hold", "200ms", "--parallel", "2"];

    let json = run(
        &lab,
        &[&args[..], &["--path", "/nope", "-o", "json"]].concat(),
    )
    .await;
    assert_eq!(json.code, 1, "{}\n{}", json.stdout, json.stderr);
    let report = json.json();
    let probes = per_pod(&report);
    for name in &pods {
        let p = probe(&probes, name);
        assert_eq!(p["ok"], 0, "{p:#}");
        let error = p["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("refused the WebSocket upgrade on /nope with HTTP 404"),
            "{error}"
        );
        // The same answer, as data for scripts.
        assert_eq!(p["refused"]["path"], "/nope", "{p:#}");
        assert_eq!(p["refused"]["status"], 404, "{p:#}");
    }
    let wsa060 = findings(&report, "WSA060");
    assert_eq!(wsa060.len(), 2, "{:#}", report["findings"]);
    for f in &wsa060 {
        let title = f["title"].as_str().unwrap_or_default();
        let detail = f["detail"].as_str().unwrap_or_default();
        let fix = f["fix"].as_str().unwrap_or_default();
        assert!(title.contains("refused the WebSocket upgrade"), "{f:#}");
        assert!(!title.contains("unreachable"), "{f:#}");
        assert!(
            detail.contains("reached over port-forward")
                && detail.contains("refused the WebSocket upgrade on /nope with HTTP 404"),
            "{f:#}"
        );
        assert!(
            fix.contains("--path /ws") && fix.contains("--port"),
            "{f:#}"
        );
        assert!(!fix.contains("listens on"), "{f:#}");
    }

    // The text summary does not claim the pods accepted anything.
    let text = run(&lab, &[&args[..], &["--path", "/nope"]].concat()).await;
    assert_eq!(text.code, 1, "{}\n{}", text.stdout, text.stderr);
    assert!(
        text.stdout
            .contains("0/2 pods passed: 0 of 4 connections succeeded (4 failed)"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("accepted"), "{}", text.stdout);
    lab.shutdown().await;
}

async fn run_text(lab: &Lab) -> Run {
    run(
        lab,
        &["--connect", "5", "--hold", "200ms", "--parallel", "2"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_killed_mid_test_is_reported_failed_within_the_timeout() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    let started = Instant::now();
    let child = command(
        &lab,
        &[
            "--connect",
            "5",
            "--parallel",
            "2",
            "--hold",
            "6s",
            "--timeout",
            "3s",
            "-o",
            "json",
        ],
    )
    .spawn()
    .expect("spawn the plugin");
    // Kill the first pod while the test holds its connections open.
    let deadline = Instant::now() + Duration::from_secs(15);
    while support::logged_active(&lab, NS, &pods[0])
        .await
        .unwrap_or(0)
        < 5
    {
        assert!(Instant::now() < deadline, "connections never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab.kill_pod(NS, &pods[0]).await;
    let run = wait(child, started).await;
    eprintln!("killed pod mid-test: plugin took {:?}", run.took);

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Hold (6 s) plus at most one timeout (3 s) per step and log reads: never hung.
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
    let report = run.json();
    let probes = per_pod(&report);
    let killed = probe(&probes, &pods[0]);
    eprintln!("killed pod: {}", killed["error"]);
    assert_eq!(killed["ok"], 0, "{killed:#}");
    assert!(
        killed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{killed:#}"
    );
    let alive = probe(&probes, &pods[1]);
    assert_eq!(alive["ok"], 5, "{alive:#}");
    assert_eq!(
        findings(&report, "WSA060").len(),
        1,
        "{:#}",
        report["findings"]
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_pod_is_skipped_by_default_and_tested_with_all_pods() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    lab.set_ready(NS, &pods[0], false);

    let run1 = run(&lab, &["--connect", "2", "--hold", "200ms", "-o", "json"]).await;
    assert_eq!(run1.code, 0, "{}\n{}", run1.stdout, run1.stderr);
    let probes = per_pod(&run1.json());
    let names: Vec<&str> = probes.iter().filter_map(|p| p["pod"].as_str()).collect();
    assert_eq!(names, [pods[1].as_str()]);

    let run2 = run(
        &lab,
        &[
            "--connect",
            "2",
            "--hold",
            "200ms",
            "--all-pods",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run2.code, 0, "{}\n{}", run2.stdout, run2.stderr);
    let probes = per_pod(&run2.json());
    assert_eq!(probes.len(), 2);
    let not_ready = probe(&probes, &pods[0]);
    assert_eq!(not_ready["ready"], false);
    assert_eq!(not_ready["ok"], 2, "{not_ready:#}");
    assert_eq!(probe(&probes, &pods[1])["ready"], true);
    lab.shutdown().await;
}

/// The dev overlay with the servers started with `--no-hello`.
fn no_hello_scenario() -> String {
    let dev = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lab/scenarios/dev.yaml"
    ))
    .expect("lab/scenarios/dev.yaml");
    let marker = "kind: Deployment\nmetadata:\n";
    assert!(dev.contains(marker), "dev.yaml has a Deployment");
    dev.replacen(
        marker,
        &format!("{marker}  annotations:\n    lab.wsaffinity.dev/server-args: \"--no-hello\"\n"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_hello_gives_identity_none() {
    let lab = lab(Scenario::Yaml(no_hello_scenario())).await;
    let run = run(
        &lab,
        &[
            "--connect",
            "3",
            "--hold",
            "200ms",
            "--parallel",
            "2",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let probes = per_pod(&run.json());
    assert_eq!(probes.len(), 2);
    for p in &probes {
        assert_eq!(p["ok"], 3, "{p:#}");
        assert_eq!(p["identity"]["kind"], "none", "{p:#}");
    }
    lab.shutdown().await;
}

/// Ctrl-C mid-hold: exit 130, and nothing is left open on either side: the
/// lab's gauges (port-forwards, log follows, API connections) and the pods'
/// servers' logged `Active connections` both come back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_closes_every_connection_before_exiting() {
    let lab = lab(Scenario::DevOverlay).await;
    let pods = lab.pods(NS);
    let started = Instant::now();
    let child = command(
        &lab,
        &["--connect", "5", "--parallel", "2", "--hold", "30s"],
    )
    .spawn()
    .expect("spawn the plugin");
    let pid = child.id().expect("a running plugin").to_string();

    // Wait until both pods hold the test's connections.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut held = 0;
        for p in &pods {
            if support::logged_active(&lab, NS, p).await.unwrap_or(0) >= 5 {
                held += 1;
            }
        }
        if held == pods.len() {
            break;
        }
        assert!(Instant::now() < deadline, "connections never opened");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The lab serves them as port-forwards, one per pod.
    let before = lab.counts();
    assert!(
        before.open_port_forwards >= pods.len() as u64,
        "the lab should count the held port-forwards: {before:?}"
    );
    let interrupted = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let run = wait(child, started).await;
    let exit_took = interrupted.elapsed();
    eprintln!("Ctrl-C to exit: {exit_took:?}");
    assert_eq!(run.code, 130, "{}\n{}", run.stdout, run.stderr);
    assert!(exit_took < Duration::from_secs(10), "took {exit_took:?}");
    assert!(run.stdout.contains("interrupted"), "{}", run.stdout);

    // Every connection was closed. The lab's side: no port-forward, log
    // stream or API connection of the plugin's is still open.
    support::lab_holds_nothing_open(&lab).await;
    // The servers' side: they count back down to 0.
    for p in &pods {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = support::logged_active(&lab, NS, p).await;
            if n == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pod {p} still logs {n:?} after the plugin exited"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    lab.shutdown().await;
}

/// Runs `per-pod` under a pseudo-terminal (util-linux `script`); `None`
/// when `script` is not installed.
async fn run_on_tty(lab: &Lab, extra: &str) -> Option<String> {
    if support::script_missing() {
        return None;
    }
    let cmdline = format!(
        "{BIN} per-pod --connect 3 --hold 300ms --kubeconfig {} {extra}",
        lab.kubeconfig_path().display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_on_a_tty_only_with_text_output() {
    let lab = lab(Scenario::DevOverlay).await;
    let Some(text) = run_on_tty(&lab, "").await else {
        return;
    };
    for pod in lab.pods(NS) {
        assert!(text.contains(&pod), "{text}");
    }
    assert!(
        text.contains("ok 3/3"),
        "a finished progress line per pod:\n{text}"
    );
    assert!(
        text.contains("2/2 pods accepted 3/3 connections: 6 total"),
        "{text}"
    );
    let Some(json) = run_on_tty(&lab, "-o json").await else {
        return;
    };
    assert!(
        !json.contains("ok 3/3") && !json.contains("opening"),
        "{json}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_port_forward_gives_up_after_the_timeout() {
    let lab = lab(Scenario::DevOverlay).await;
    // Every API answer (the port-forward upgrade included) takes longer than --timeout.
    lab.set_latency(Duration::from_millis(1500));
    let run = run(
        &lab,
        &[
            "--connect",
            "2",
            "--parallel",
            "2",
            "--timeout",
            "500ms",
            "-o",
            "json",
        ],
    )
    .await;
    eprintln!("hung port-forward: plugin took {:?}", run.took);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let probes = per_pod(&run.json());
    assert_eq!(probes.len(), 2);
    for p in &probes {
        assert_eq!(p["ok"], 0, "{p:#}");
        let error = p["error"].as_str().unwrap_or_default();
        assert!(error.contains("got no answer within 500ms"), "{error}");
    }
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
    lab.shutdown().await;
}
