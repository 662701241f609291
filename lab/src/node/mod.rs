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
    // HTTP/1.1 only: the port-forward WebSocket upgrade needs it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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
