//! `spread` against real peers: companion servers behind a real HAProxy on
//! loopback. Needs Debian's `haproxy` (.ci/run installs it).

mod spread_support;

use std::collections::BTreeSet;
use std::time::Duration;

use kubectl_wsaffinity::probe::url::summary::summarize;
use kubectl_wsaffinity::probe::url::{UrlOptions, WsUrl, parse_resolve, run_clients};
use kubectl_wsaffinity::snapshot::{Attribution, UrlRun};
use spread_support::{Balance, backend, backends, haproxy};

fn options(url: &str, clients: u32, connect: u32) -> UrlOptions {
    let mut o = UrlOptions::new(WsUrl::parse(url).expect("test URL"));
    o.settings.clients = clients;
    o.settings.connect = connect;
    o.settings.timeout = Duration::from_secs(5);
    o.hello_wait = Duration::from_secs(2);
    o
}

fn distinct(pods: &[String]) -> BTreeSet<&str> {
    pods.iter().map(String::as_str).collect()
}

fn no_failures(run: &UrlRun) {
    for c in &run.clients {
        assert_eq!(c.failed, 0, "client {} failed: {:?}", c.client, c.error);
    }
}

/// Bounds a whole test: a hang is a failure, not a stuck CI job.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took more than 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_cookie_insert_keeps_each_client_on_one_pod() {
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 4, 5);
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    assert_eq!(run.clients.len(), 4);
    let mut reached = BTreeSet::new();
    for c in &run.clients {
        assert_eq!(c.pods.len(), 5);
        let pods = distinct(&c.pods);
        assert_eq!(pods.len(), 1, "client {} moved: {:?}", c.client, c.pods);
        assert!(c.attributed_by.iter().all(|a| *a == Attribution::Hello));
        reached.extend(pods);
    }
    assert!(reached.len() >= 2, "clients did not spread: {reached:?}");
    assert!(reached.iter().all(|p| p.starts_with("ws-")));
    assert_eq!(run.affinity_cookie.as_deref(), Some("SERVERID"));

    let s = summarize(&run, &[]);
    assert_eq!(s.clients_on_one_pod, 4);
    assert_eq!(s.connections, 20);
    assert!(s.pods_reached >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_no_cookies_spreads_one_client() {
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let mut opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 1, 6);
    opts.settings.cookies = false;
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    assert!(!run.cookies);
    let pods = distinct(&run.clients[0].pods);
    assert!(
        pods.len() >= 2,
        "one client without cookies stayed: {pods:?}"
    );
    assert!(!summarize(&run, &[]).clients[0].one_pod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_round_robin_without_affinity_spreads_one_client() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::RoundRobin, &servers);
    let opts = options(&format!("ws://127.0.0.1:{}/ws", proxy.port), 1, 4);
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    assert_eq!(
        distinct(&run.clients[0].pods).len(),
        2,
        "{:?}",
        run.clients[0].pods
    );
    assert_eq!(run.affinity_cookie, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_balance_source_puts_every_client_on_one_pod() {
    let servers = backends(3).await;
    let mut proxy = haproxy(Balance::Source, &servers);
    let opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 4, 3);
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    let all: Vec<String> = run.clients.iter().flat_map(|c| c.pods.clone()).collect();
    assert_eq!(all.len(), 12);
    assert_eq!(
        distinct(&all).len(),
        1,
        "balance source from 127.0.0.1: {all:?}"
    );
    let s = summarize(&run, &[]);
    assert_eq!(s.pods_reached, 1);
    assert_eq!(s.clients_on_one_pod, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_resolve_reaches_loopback_haproxy_by_name() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let mut opts = options(
        &format!("ws://websocket-dev.example.com:{}/", proxy.port),
        2,
        2,
    );
    opts.settings.resolve.push(
        parse_resolve(&format!(
            "websocket-dev.example.com:{}:127.0.0.1",
            proxy.port
        ))
        .expect("resolve syntax"),
    );
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    assert_eq!(
        run.url,
        format!("ws://websocket-dev.example.com:{}/", proxy.port)
    );
    assert_eq!(
        run.resolve,
        vec![format!(
            "websocket-dev.example.com:{}:127.0.0.1",
            proxy.port
        )]
    );
    for c in &run.clients {
        assert_eq!(c.pods.len(), 2);
        assert!(c.pods.iter().all(|p| p.starts_with("ws-")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_without_hello_falls_back_to_the_cookie() {
    let servers = vec![
        backend("quiet-a", false).await,
        backend("quiet-b", false).await,
    ];
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let mut opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 3, 3);
    opts.hello_wait = Duration::from_millis(300);
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    let mut reached = BTreeSet::new();
    for c in &run.clients {
        assert!(
            c.attributed_by.iter().all(|a| *a == Attribution::Cookie),
            "{c:?}"
        );
        // HAProxy's cookie values for the two servers.
        assert!(
            c.pods.iter().all(|p| p == "s1" || p == "s2"),
            "{:?}",
            c.pods
        );
        assert_eq!(distinct(&c.pods).len(), 1, "{:?}", c.pods);
        reached.extend(distinct(&c.pods));
    }
    assert_eq!(reached.len(), 2, "{reached:?}");
    assert_eq!(run.affinity_cookie.as_deref(), Some("SERVERID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_source_ip_binds_each_client() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let mut opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 3, 1);
    opts.settings.source_ips = vec![
        "127.0.0.2".parse().expect("ip"),
        "127.0.0.3".parse().expect("ip"),
    ];
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    let sources: Vec<Option<&str>> = run.clients.iter().map(|c| c.source_ip.as_deref()).collect();
    assert_eq!(
        sources,
        vec![Some("127.0.0.2"), Some("127.0.0.3"), Some("127.0.0.2")]
    );
}

#[tokio::test]
async fn spread_unreachable_url_is_an_error_per_connection() {
    // A port that is bound but never listens: connections are refused.
    let (_reserved, port) = spread_support::refusing_port();
    let opts = options(&format!("ws://127.0.0.1:{port}/"), 2, 2);
    let run = bounded(run_clients(&opts)).await;
    for c in &run.clients {
        assert_eq!(c.failed, 2);
        assert!(c.pods.is_empty());
        let e = c.error.as_deref().unwrap_or("");
        assert!(e.contains("cannot connect to 127.0.0.1"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_hold_keeps_connections_open_then_closes() {
    let servers = backends(2).await;
    let mut proxy = haproxy(Balance::RoundRobinCookie, &servers);
    let mut opts = options(&format!("ws://127.0.0.1:{}/", proxy.port), 2, 2);
    opts.settings.hold = Duration::from_millis(700);
    let started = std::time::Instant::now();
    let run = bounded(run_clients(&opts)).await;
    proxy.kill();

    no_failures(&run);
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(run.clients.iter().map(|c| c.pods.len()).sum::<usize>(), 4);
}
