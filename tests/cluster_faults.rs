//! Faults against a REAL control plane (see `cluster_real.rs`), in a binary
//! of their own because they disturb the whole cluster: kube-apiserver
//! restarted under `logs --follow`, and the node agent (every kubelet)
//! stopped until the real node lifecycle controller marks the nodes NotReady.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::real_cluster::{RealCluster, cluster};

fn not_ready(c: &RealCluster) -> usize {
    let nodes = c.kubectl_json(&["get", "nodes"]);
    nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["type"] == "Ready" && x["status"] != "True")
        })
        .count()
}

fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Both faults in one test, one after the other, so they never overlap.
#[test]
fn api_server_restart_under_logs_follow_and_a_stopped_node_agent() {
    let Some(c) = cluster() else { return };
    let ns = "t-faults";
    c.namespace_with_base(ns, 2);
    let pods = c.wait_ready(ns, 2, Duration::from_secs(90));

    // 1. kube-apiserver restarts while `logs --follow` runs: the plugin
    // reports it and exits, or resumes; it never hangs.
    let mut child = Command::new(support::BIN)
        .args([
            "logs",
            "svc/websocket-server",
            "-n",
            ns,
            "--follow",
            "--follow-duration",
            "60s",
            "--poll-interval",
            "500ms",
        ])
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logs --follow");
    let (tx, rx) = mpsc::channel::<String>();
    for r in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pods
        .iter()
        .all(|p| seen.iter().any(|l| l.contains(&format!("{p} following"))))
    {
        assert!(Instant::now() < deadline, "follow did not start: {seen:#?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    // SAFETY: signalling the launcher, which restarts kube-apiserver.
    unsafe { libc::kill(c.launcher as i32, libc::SIGUSR1) };
    let restarted = Instant::now();
    // The plugin must end by itself: by its own error, or at --follow-duration.
    let deadline = Instant::now() + Duration::from_secs(80);
    let code = loop {
        while let Ok(l) = rx.try_recv() {
            seen.push(l);
        }
        if let Ok(Some(s)) = child.try_wait() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "logs --follow hung after the API server restart:\n{}",
                seen.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(l);
    }
    eprintln!(
        "logs --follow ended {:?} after the restart with {code:?}:\n{}",
        restarted.elapsed(),
        seen.join("\n")
    );
    if code != Some(0) {
        assert!(
            seen.iter().any(|l| l.contains("error")
                || l.contains("API server")
                || l.contains("connection")),
            "a failed follow says why:\n{}",
            seen.join("\n")
        );
    }
    eventually(
        "the API server answers again",
        Duration::from_secs(60),
        || c.kubectl(&["get", "nodes"]).is_ok(),
    );

    // 2. The node agent stops (SIGSTOP, as a hung kubelet): the real node
    // lifecycle controller marks every node NotReady after the grace period
    // the launcher set (8 s); after SIGCONT they are Ready again.
    let agent = c.pid_of("node-agent").expect("the node agent's pid");
    // SAFETY: signalling the launcher's child.
    unsafe { libc::kill(agent, libc::SIGSTOP) };
    let stopped = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut result = Ok(());
    while not_ready(c) < 3 {
        if Instant::now() > deadline {
            result = Err("the nodes did not go NotReady within 45 s");
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "nodes NotReady {:?} after the node agent stopped",
        stopped.elapsed()
    );
    // SAFETY: as above.
    unsafe { libc::kill(agent, libc::SIGCONT) };
    result.unwrap_or_else(|e| panic!("{e}"));
    eventually("the nodes are Ready again", Duration::from_secs(40), || {
        not_ready(c) == 0
    });
}
