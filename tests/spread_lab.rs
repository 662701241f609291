//! `spread` with a cluster to explain the result: the lab (the local stand-in
//! for the Kubernetes API, dev scenario: ClientIP Service behind an
//! ingress-nginx Ingress with cookie affinity, host ws.dev.example.com) gives
//! the snapshot; a real HAProxy on loopback plays the Ingress controller.

mod spread_support;
mod support;

use std::path::Path;

use spread_support::{Balance, backends, haproxy};
use support::Run;
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
const SVC: &str = "svc/dev-websocket-server";
const HOST: &str = "websocket-dev.example.com";

async fn lab() -> Lab {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/scenarios/dev.yaml");
    support::start_lab(Scenario::File(scenario), false, false).await
}

async fn plugin(lab: &Lab, args: &[&str]) -> Run {
    support::run(lab.kubeconfig_path(), args).await
}

/// `spread` of our Service through `url`, the Ingress host resolved to the
/// proxy on loopback `port`, with `more` flags.
async fn spread_via(lab: &Lab, url: &str, port: u16, more: &[&str]) -> Run {
    let resolve = format!("{HOST}:{port}:127.0.0.1");
    let args = [
        &["spread", SVC, "-n", NS, "--url", url, "--resolve", &resolve],
        more,
    ]
    .concat();
    plugin(lab, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_lab_all_clients_on_one_pod_is_wsa066() {
    let lab = lab().await;
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::Source, &servers);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let r = spread_via(
        &lab,
        &url,
        proxy.port,
        &["--clients", "4", "--connect", "2", "-o", "json"],
    )
    .await;
    proxy.kill();

    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let codes = r.codes();
    assert!(codes.iter().any(|c| c == "WSA066"), "{codes:?}");
    assert!(!codes.iter().any(|c| c == "WSA065"), "{codes:?}");
    let report = r.json();
    assert_eq!(report["observations"]["url"]["url"], url);
    assert_eq!(report["service"]["sessionAffinity"], "ClientIP");
}

/// The verdict leads with what the clients saw: all on one pod, although the
/// dev scenario's cookie affinity alone would predict that separate clients
/// spread. Text and JSON say the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_lab_verdict_leads_with_all_clients_on_one_pod() {
    let lab = lab().await;
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::Source, &servers);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let args = ["--clients", "2", "--connect", "1"];
    let text = spread_via(&lab, &url, proxy.port, &args).await;
    let json = spread_via(
        &lab,
        &url,
        proxy.port,
        &[&args[..], &["-o", "json"]].concat(),
    )
    .await;
    proxy.kill();

    assert_eq!(text.code, Some(0), "{}", text.all());
    let verdict = text
        .stdout
        .split("Verdict\n")
        .nth(1)
        .and_then(|v| v.split("\n\n").next())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        verdict.starts_with(&format!("All 2 clients through {url} landed on pod `ws-")),
        "{}",
        text.stdout
    );
    assert!(verdict.contains("(WSA066)"), "{verdict}");
    assert!(!verdict.contains("clients spread"), "{verdict}");
    assert!(!verdict.contains("correct for production"), "{verdict}");

    assert_eq!(json.code, Some(0), "{}", json.all());
    let report = json.json();
    let v = report["verdict"].as_str().unwrap_or_default();
    assert!(v.starts_with("All 2 clients through"), "{report:#}");
    assert!(!v.contains("clients spread"), "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_lab_client_moving_under_cookie_affinity_is_wsa065() {
    let lab = lab().await;
    let servers = backends(2).await;
    // The "Ingress" here ignores cookies: each connection is balanced anew.
    // One client, so no other client's connections interleave with its own.
    let mut proxy = haproxy(Balance::RoundRobin, &servers);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let r = spread_via(
        &lab,
        &url,
        proxy.port,
        &["--clients", "1", "--connect", "4", "-o", "json"],
    )
    .await;
    proxy.kill();

    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let codes = r.codes();
    assert!(codes.iter().any(|c| c == "WSA065"), "{codes:?}");
    assert!(!codes.iter().any(|c| c == "WSA066"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_lab_cookie_affinity_text_report_explains() {
    let lab = lab().await;
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let r = spread_via(
        &lab,
        &url,
        proxy.port,
        &["--clients", "4", "--connect", "3"],
    )
    .await;
    proxy.kill();

    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("4 of 4 clients stayed on one pod"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Verdict"), "{}", r.stdout);
    assert!(!r.stdout.contains("WSA065"), "{}", r.stdout);
    assert!(!r.stdout.contains("WSA066"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_lab_derives_the_url_from_the_ingress() {
    let lab = lab().await;
    // Nothing listens on 127.0.0.254:80: the run fails, naming the derived URL.
    let resolve = format!("{HOST}:80:127.0.0.254");
    let r = plugin(
        &lab,
        &[
            "spread",
            SVC,
            "-n",
            NS,
            "--resolve",
            &resolve,
            "--clients",
            "1",
            "--connect",
            "1",
            "--timeout",
            "3s",
        ],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("no connection through ws://{HOST}/ succeeded")),
        "{}",
        r.stderr
    );
}
