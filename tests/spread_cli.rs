//! The `spread` subcommand as a user runs it: the real binary against
//! companion servers behind a real HAProxy on loopback, with no cluster
//! (KUBECONFIG points nowhere), so only the URL test runs.

mod spread_support;
mod support;

use std::process::Output;
use std::time::Duration;

use spread_support::{Balance, backends, haproxy};
use support::text;
use tokio::process::Command;

/// Runs the plugin with a bounded wait; the child is killed if it overruns.
async fn plugin(args: &[&str]) -> Output {
    plugin_with(args, true).await
}

/// [`plugin`], with `NO_COLOR=1` or without it (stdout is a pipe either way).
async fn plugin_with(args: &[&str], no_color: bool) -> Output {
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"));
    cmd.args(args)
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env("HOME", home.path())
        .kill_on_drop(true);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let child = cmd.output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("kubectl-wsaffinity took more than 60 s")
        .expect("run kubectl-wsaffinity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_cli_prints_the_client_pod_matrix() {
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let url = format!("ws://websocket-dev.example.com:{}/", proxy.port);
    let resolve = format!("websocket-dev.example.com:{}:127.0.0.1", proxy.port);
    // Without NO_COLOR: the pipe alone makes the bars plain ASCII.
    let out = plugin_with(
        &[
            "spread",
            "--url",
            &url,
            "--resolve",
            &resolve,
            "--clients",
            "4",
            "--connect",
            "5",
        ],
        false,
    )
    .await;
    proxy.kill();

    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Spread"), "{stdout}");
    assert!(stdout.contains(&url), "{stdout}");
    assert!(stdout.contains("CLIENT"), "{stdout}");
    assert!(stdout.contains("ONE POD"), "{stdout}");
    assert!(stdout.contains("TOTAL"), "{stdout}");
    assert!(
        stdout.contains("4 of 4 clients stayed on one pod"),
        "{stdout}"
    );
    assert!(stdout.contains("Imbalance"), "{stdout}");
    assert!(stdout.contains("Cluster not read"), "{stdout}");

    // One bar per pod: 20 connections in all, so a pod's bar has one `#`
    // per connection it received and each connection is 5%.
    let block_or_escape = |c: char| ('\u{2580}'..='\u{259f}').contains(&c) || c == '\x1b';
    assert!(
        !stdout.contains(block_or_escape),
        "not plain through a pipe: {stdout}"
    );
    let shares: Vec<&str> = stdout
        .lines()
        .skip_while(|l| l.split_whitespace().collect::<Vec<_>>() != ["POD", "CONNECTIONS", "SHARE"])
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(shares.len(), 3, "{stdout}");
    let mut sum = 0;
    for line in shares {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let n: usize = cols[1].parse().expect("a count");
        sum += n;
        let bar = format!("{}{}", "#".repeat(n), ".".repeat(20 - n));
        assert_eq!(cols[2], bar, "{line}");
        assert_eq!(cols[3], format!("{}%", n * 5), "{line}");
    }
    assert_eq!(sum, 20, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_cli_json_carries_observations_url() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let url = format!("ws://127.0.0.1:{}/", proxy.port);
    let out = plugin(&[
        "spread",
        &url,
        "--clients",
        "3",
        "--connect",
        "2",
        "--no-cookies",
        "-o",
        "json",
    ])
    .await;
    proxy.kill();

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let u = &v["observations"]["url"];
    assert_eq!(u["url"], url);
    assert_eq!(u["cookies"], false);
    assert_eq!(u["connect"], 2);
    assert_eq!(u["identityHeader"], "x-pod-name");
    let clients = u["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 3);
    for c in clients {
        assert_eq!(c["pods"].as_array().map(Vec::len), Some(2));
        assert_eq!(c["failed"], 0);
        assert_eq!(c["attributedBy"][0], "hello");
    }
}

/// No cluster to read: the findings still say what the test showed (all
/// clients on one pod, WSA066), without inventing a cluster cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_cli_without_a_cluster_still_explains_what_it_saw() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::Source, &servers);
    let url = format!("ws://websocket-dev.example.com:{}/", proxy.port);
    let resolve = format!("websocket-dev.example.com:{}:127.0.0.1", proxy.port);
    let args = [
        "spread",
        &url,
        "--resolve",
        &resolve,
        "--clients",
        "3",
        "--connect",
        "2",
    ];
    let text_out = plugin(&args).await;
    let json_out = plugin(&[&args[..], &["-o", "json"]].concat()).await;
    proxy.kill();

    let stdout = text(&text_out.stdout);
    assert_eq!(
        text_out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&text_out.stderr)
    );
    assert!(stdout.contains("Cluster not read"), "{stdout}");
    assert!(stdout.contains("Verdict"), "{stdout}");
    assert!(stdout.contains("WSA066"), "{stdout}");
    assert!(stdout.contains("the cluster was not read"), "{stdout}");
    assert!(!stdout.contains("only one pod is ready"), "{stdout}");

    assert_eq!(
        json_out.status.code(),
        Some(0),
        "{}",
        text(&json_out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("one JSON object");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert_eq!(codes, vec!["WSA066"], "{v}");
    let verdict = v["verdict"].as_str().unwrap_or_default();
    assert!(verdict.starts_with("All 3 clients"), "{verdict}");
}

#[tokio::test]
async fn spread_cli_unreachable_url_exits_2_with_the_cause() {
    let (_reserved, port) = spread_support::refusing_port();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = plugin(&[
        "spread",
        "--url",
        &url,
        "--clients",
        "2",
        "--connect",
        "1",
        "--timeout",
        "3s",
    ])
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no connection through"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn spread_cli_usage_errors_exit_2() {
    for (args, expect) in [
        (
            vec!["spread", "--url", "ws://h/", "--resolve", "h:80"],
            "HOST:PORT:ADDR",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--resolve", "h:80:not-an-ip"],
            "not an IP address",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--header", "NoColon"],
            "Name: value",
        ),
        (vec!["spread", "--url", "http://h/"], "ws or wss"),
        (
            vec!["spread", "--url", "ws://h/", "--clients", "0"],
            "--clients",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--timeout", "0"],
            "more than 0",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--cookie", "novalue"],
            "NAME=VALUE",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--cookie", "a b=1"],
            "not a cookie name",
        ),
        (
            vec!["spread", "--url", "ws://h/", "--cookie", "a=1;b"],
            "holds a space",
        ),
        (
            vec![
                "spread",
                "--url",
                "ws://h/",
                "--cookie",
                "a=1",
                "--no-cookies",
            ],
            "cannot be used with",
        ),
    ] {
        let out = plugin(&args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn spread_cli_without_url_needs_the_cluster() {
    let out = plugin(&["spread", "svc/dev-websocket-server"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--url"), "{stderr}");
}
