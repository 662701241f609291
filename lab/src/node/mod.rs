//! STAND-IN: the node agent, which plays the kubelet and the container runtime
//! for `wsaffinity-lab cluster up`. It registers N Nodes and keeps their
//! Leases fresh, runs the pods the real scheduler binds to them as real
//! `websocket-server` processes on pod IPs inside the cluster's network
//! namespace, runs their probes, writes their status, honours graceful
//! deletion, and serves the kubelet API (`/containerLogs`, `/portForward`,
//! `/healthz`) over TLS that the real API server proxies `pods/log` and
//! `pods/portforward` to. No images, no containers, no kube-proxy.

mod container;
mod kubelet_api;
mod pods;
mod probe;
mod register;
mod registry;
mod spdy;
mod worker;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

pub use register::KUBELET_PORT;
pub use worker::{NO_PROCESS, PORTFORWARD_ERROR};

use crate::cluster::{client_for, netns::node_ip, node_name};

#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The cluster's temp dir: `ca.crt`, `lab-node-N.kubeconfig`, `kubelet.crt/key`.
    pub dir: PathBuf,
    pub nodes: usize,
    /// The `websocket-server` binary the pods run.
    pub server_bin: PathBuf,
}

fn tls_acceptor(dir: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(dir.join("kubelet.crt"))
        .context("reading kubelet.crt")?
        .collect::<Result<Vec<_>, _>>()
        .context("parsing kubelet.crt")?;
    let key =
        PrivateKeyDer::from_pem_file(dir.join("kubelet.key")).context("reading kubelet.key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("kubelet serving certificate")?;
    // As a kubelet (Go's net/http): HTTP/2 for whoever offers it, which the
    // API server does for pods/log, so its log streams share one connection
    // per node; it dials its upgrades (port-forward) with HTTP/1.1 only.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Run every node until the process is stopped.
pub async fn run(opts: AgentOptions) -> anyhow::Result<()> {
    let acceptor = tls_acceptor(&opts.dir)?;
    let mut tasks = Vec::new();
    for n in 1..=opts.nodes {
        let name = node_name(n);
        let ip = node_ip(n);
        let client = client_for(&opts.dir.join(format!("{name}.kubeconfig"))).await?;
        let listener = TcpListener::bind(SocketAddr::from((ip, KUBELET_PORT)))
            .await
            .with_context(|| {
                format!("binding the kubelet port of {name} on {ip}:{KUBELET_PORT}")
            })?;
        let registry = registry::Registry::default();
        let ctx = Arc::new(worker::NodeCtx {
            client: client.clone(),
            node: name.clone(),
            node_index: n,
            node_ip: ip,
            server_bin: opts.server_bin.clone(),
            registry: registry.clone(),
            ips: Mutex::new(vec![false; 256]),
        });
        tasks.push(tokio::spawn(kubelet_api::serve(
            listener,
            acceptor.clone(),
            registry,
        )));
        tasks.push(tokio::spawn(register::heartbeat(
            client,
            register::NodeInfo { name, index: n, ip },
        )));
        tasks.push(tokio::spawn(pods::sync(ctx)));
    }
    tracing::info!("node agent: {} nodes up", opts.nodes);
    futures::future::join_all(tasks).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    /// The node agent's listener with a self-signed serving certificate.
    async fn kubelet_api() -> (SocketAddr, CertificateDer<'static>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        std::fs::write(dir.path().join("kubelet.crt"), cert.cert.pem()).expect("crt");
        std::fs::write(
            dir.path().join("kubelet.key"),
            cert.signing_key.serialize_pem(),
        )
        .expect("key");
        let acceptor = tls_acceptor(dir.path()).expect("acceptor");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(kubelet_api::serve(
            listener,
            acceptor,
            registry::Registry::default(),
        ));
        (addr, cert.cert.der().clone())
    }

    async fn tls_to(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("handshake")
    }

    fn healthz() -> http::Request<Empty<Bytes>> {
        http::Request::get("https://127.0.0.1/healthz")
            .body(Empty::new())
            .expect("request")
    }

    #[tokio::test]
    async fn serves_http2_to_who_offers_it_and_http1_to_the_rest_as_a_kubelet() {
        let (addr, ca) = kubelet_api().await;

        // The API server offers h2 for pods/log: many streams, one connection.
        let tls = tls_to(addr, &ca, &[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        for _ in 0..2 {
            let res = h2.send_request(healthz()).await.expect("over HTTP/2");
            assert_eq!(res.version(), http::Version::HTTP_2);
            let body = res.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&body[..], b"ok");
        }

        // Upgrades (port-forward) are dialed with HTTP/1.1 only.
        let tls = tls_to(addr, &ca, &[b"http/1.1"]).await;
        let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        let res = h1.send_request(healthz()).await.expect("over HTTP/1.1");
        assert_eq!(res.version(), http::Version::HTTP_11);
    }
}
