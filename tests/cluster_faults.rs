//! Faults against a REAL control plane (see `cluster_real.rs`), in a binary
//! of their own because they disturb the whole cluster: kube-apiserver
//! restarted under `logs --follow`, and the node agent (every kubelet)
//! stopped until the real node lifecycle controller marks the nodes NotReady.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::real_cluster::{RealCluster, cluster, wait_until};

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

/// Both faults in one test, one after the other, so they never overlap.
#[test]
fn api_server_restart_under_logs_follow_and_a_stopped_node_agent() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
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
    let mut wait_for =
        |what: &dyn Fn(&[String]) -> bool, within: Duration, seen: &mut Vec<String>| {
            let deadline = Instant::now() + within;
            while !what(seen) {
                if let Ok(Some(s)) = child.try_wait() {
                    panic!(
                        "logs --follow exited ({s}) instead of resuming:\n{}",
                        seen.join("\n")
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "not within {within:?}:\n{}",
                    seen.join("\n")
                );
                if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                    seen.push(l);
                }
            }
        };
    // Every pod's stream comes back by itself once the API server is back.
    wait_for(
        &|seen: &[String]| {
            pods.iter()
                .all(|p| seen.iter().any(|l| l == &format!("{p} following again")))
        },
        Duration::from_secs(60),
        &mut seen,
    );
    eprintln!(
        "logs --follow resumed {:?} after the restart",
        restarted.elapsed()
    );
    // The outage is said once, not once per poll.
    let failures = seen
        .iter()
        .filter(|l| l.starts_with("listing pods failed"))
        .count();
    assert!(
        failures <= 2,
        "one line per distinct failure, not per poll:\n{}",
        seen.join("\n")
    );
    // And the resumed streams show new counts: hold 2 connections on each pod.
    // A per-pod run that fails (a port-forward refused while the restarted API
    // server settles) is run again within the same bound, its output kept.
    let spawn_per_pod = || {
        Command::new(support::BIN)
            .args([
                "per-pod",
                "svc/websocket-server",
                "-n",
                ns,
                "--connect",
                "2",
                "--hold",
                "5s",
            ])
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn per-pod")
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut per_pod = Some(spawn_per_pod());
    let mut runs = Vec::new();
    while !seen.iter().any(|l| l.ends_with(" active=2")) {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("logs --follow exited ({s}):\n{}", seen.join("\n"));
        }
        if let Some(status) = per_pod.as_mut().and_then(|p| p.try_wait().ok().flatten())
            && let Some(done) = per_pod.take()
        {
            let out = done.wait_with_output().expect("per-pod's output");
            let text = format!(
                "per-pod ({status}):\n{}{}",
                support::text(&out.stdout),
                support::text(&out.stderr)
            );
            eprintln!("{text}");
            runs.push(text);
            // Run again after a failure; after a success, wait for the lines.
            if !status.success() {
                per_pod = Some(spawn_per_pod());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no active=2 within 40 s of per-pod:\n{}\n{}",
            seen.join("\n"),
            runs.join("\n")
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    if let Some(mut p) = per_pod {
        let _ = p.wait();
    }
    let _ = child.kill();
    let _ = child.wait();

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
    wait_until("the nodes are Ready again", Duration::from_secs(40), || {
        not_ready(c) == 0
    });
}
