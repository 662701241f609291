//! `spread` over `wss://`: HAProxy terminates TLS with a self-signed
//! certificate; `--insecure` accepts it, without it the error names the flag.

mod spread_support;

use std::time::Duration;

use kubectl_wsaffinity::probe::url::{UrlOptions, WsUrl, parse_resolve, run_clients};
use kubectl_wsaffinity::snapshot::Attribution;
use spread_support::{Balance, backends, haproxy_with, self_signed_pem};

const HOST: &str = "websocket-dev.example.com";

fn options(port: u16, clients: u32, connect: u32) -> UrlOptions {
    let mut o = UrlOptions::new(WsUrl::parse(&format!("wss://{HOST}:{port}/")).expect("URL"));
    o.settings.clients = clients;
    o.settings.connect = connect;
    o.settings.timeout = Duration::from_secs(5);
    o.hello_wait = Duration::from_secs(2);
    o.settings
        .resolve
        .push(parse_resolve(&format!("{HOST}:{port}:127.0.0.1")).expect("resolve"));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_tls_insecure_accepts_self_signed_and_keeps_secure_cookies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = self_signed_pem(HOST, dir.path());
    let servers = backends(2).await;
    let mut proxy = haproxy_with(Balance::RoundRobinCookie, &servers, Some(&pem));

    let mut opts = options(proxy.port, 3, 3);
    opts.settings.insecure = true;
    let run = tokio::time::timeout(Duration::from_secs(60), run_clients(&opts))
        .await
        .expect("bounded");

    // Without --insecure the self-signed certificate is refused.
    let strict = options(proxy.port, 1, 1);
    let refused = tokio::time::timeout(Duration::from_secs(60), run_clients(&strict))
        .await
        .expect("bounded");
    proxy.kill();

    for c in &run.clients {
        assert_eq!(c.failed, 0, "client {}: {:?}", c.client, c.error);
        assert!(c.attributed_by.iter().all(|a| *a == Attribution::Hello));
        let first = &c.pods[0];
        assert!(
            c.pods.iter().all(|p| p == first),
            "Secure cookie not sent back on wss://: {:?}",
            c.pods
        );
    }
    assert_eq!(run.affinity_cookie.as_deref(), Some("SERVERID"));

    let c = &refused.clients[0];
    assert_eq!(c.failed, 1);
    let e = c.error.as_deref().unwrap_or("");
    assert!(e.contains("--insecure"), "{e}");
}
