//! `spread` through a real nginx with `hash $remote_addr consistent` — keyed
//! on the whole client address, as ClientIP affinity is (nginx's `ip_hash`
//! keys on three octets and cannot tell 127.0.0.x apart). Needs Debian's
//! `nginx`.

mod spread_support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use kubectl_wsaffinity::probe::url::summary::summarize;
use kubectl_wsaffinity::probe::url::{UrlOptions, WsUrl, run_clients};
use spread_support::{backends, nginx_hash_remote_addr};

fn options(port: u16, clients: u32, connect: u32) -> UrlOptions {
    let mut o = UrlOptions::new(WsUrl::parse(&format!("ws://127.0.0.1:{port}/")).expect("URL"));
    o.settings.clients = clients;
    o.settings.connect = connect;
    o.settings.timeout = Duration::from_secs(5);
    o.hello_wait = Duration::from_secs(2);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_nginx_hash_remote_addr_one_address_one_pod_many_addresses_spread() {
    let servers = backends(3).await;
    let mut proxy = nginx_hash_remote_addr(&servers);

    // Every client from 127.0.0.1: one pod for all of them.
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        run_clients(&options(proxy.port, 4, 3)),
    )
    .await
    .expect("bounded");
    let all: Vec<&str> = run
        .clients
        .iter()
        .flat_map(|c| c.pods.iter().map(String::as_str))
        .collect();
    assert_eq!(all.len(), 12, "{:?}", run.clients);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 1, "{all:?}");

    // 16 clients from 16 loopback addresses: the hash spreads them.
    let mut opts = options(proxy.port, 16, 2);
    opts.settings.source_ips = (2..18u8).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let run = tokio::time::timeout(Duration::from_secs(60), run_clients(&opts))
        .await
        .expect("bounded");
    proxy.kill();

    for c in &run.clients {
        assert_eq!(c.failed, 0, "client {}: {:?}", c.client, c.error);
    }
    let s = summarize(&run, &[]);
    assert_eq!(
        s.clients_on_one_pod, 16,
        "one address, one pod: {:?}",
        s.clients
    );
    assert!(
        s.pods_reached >= 2,
        "16 addresses stayed on one pod: {:?}",
        s.totals
    );
}
