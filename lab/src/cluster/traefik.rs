//! REAL: Traefik (built from its Go module by `scripts/cluster-build.sh`) as
//! the cluster's Ingress and Gateway API controller, for
//! `wsaffinity-lab cluster up --ingress traefik`.
//!
//! It runs inside the cluster's network namespace like every other
//! component, outside any pod: it reads the API server with a kubeconfig of
//! its own (user `wsaffinity-lab:traefik`, bound to a ClusterRole with what its
//! informers need, see `traefik.yaml`) and proxies straight to the pods' IPs.
//! Its `web` entrypoint is reached from the host through a forward.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::component::Component;
use super::netns::{CONTROL_PLANE_IP, Dialer};

/// Where Traefik serves HTTP inside the namespace (the `web` entrypoint). A
/// Gateway listener must use this port: Traefik maps listeners to entrypoints
/// by port.
pub const WEB_PORT: u16 = 8000;
/// Traefik's own entrypoint, for `/ping`.
const PING_PORT: u16 = 9000;
/// The user Traefik authenticates as.
pub const USER: &str = "wsaffinity-lab:traefik";
/// RBAC, IngressClass `traefik` and GatewayClass `traefik`.
const MANIFEST: &str = include_str!("traefik.yaml");

pub fn web_addr() -> SocketAddr {
    SocketAddr::from((CONTROL_PLANE_IP, WEB_PORT))
}

/// `target/cluster/share/traefik`, next to the binaries: the Gateway API and
/// Traefik CRDs copied out of the Go module cache by `cluster-build.sh`.
pub fn share_dir(bin_dir: &Path) -> PathBuf {
    bin_dir.join("../share/traefik")
}

/// The Traefik process, its three Kubernetes providers on.
pub fn component(bin_dir: &Path, kubeconfig: &Path, logs: &Path) -> Component {
    let ip = CONTROL_PLANE_IP;
    Component::new(
        "traefik",
        bin_dir.join("traefik"),
        vec![
            // No network here but the cluster's: never phone home.
            "--global.checkNewVersion=false".into(),
            "--global.sendAnonymousUsage=false".into(),
            format!("--entryPoints.web.address={ip}:{WEB_PORT}"),
            format!("--entryPoints.traefik.address={ip}:{PING_PORT}"),
            "--ping=true".into(),
            "--providers.kubernetesIngress=true".into(),
            "--providers.kubernetesCRD=true".into(),
            "--providers.kubernetesGateway=true".into(),
            "--log.level=INFO".into(),
            "--accessLog=true".into(),
            format!(
                "--accessLog.filePath={}",
                logs.join("traefik-access.log").display()
            ),
        ],
        logs,
    )
    // Traefik builds its client from KUBECONFIG when it is not in a pod
    // (Component removes KUBERNETES_SERVICE_HOST/PORT).
    .env("KUBECONFIG", &kubeconfig.display().to_string())
}

/// Install the CRDs (server-side: the HTTPRoute CRD is too big for the
/// last-applied annotation), wait until they are served, then the RBAC and
/// the classes.
pub async fn install(kubectl: &Path, admin: &Path, bin_dir: &Path) -> anyhow::Result<()> {
    let share = share_dir(bin_dir);
    for dir in ["gateway-api", "traefik-crds"] {
        let path = share.join(dir);
        if !path.is_dir() {
            bail!(
                "{} is missing: run scripts/cluster-build.sh (it copies the Gateway API and Traefik CRDs out of cluster/traefik's Go modules)",
                path.display()
            );
        }
        kubectl_ok(
            kubectl,
            admin,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                &path.display().to_string(),
            ],
            None,
        )
        .await?;
    }
    kubectl_ok(
        kubectl,
        admin,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
        None,
    )
    .await?;
    // Discovery can lag the Established condition by a moment.
    let mut last = None;
    for _ in 0..20 {
        match kubectl_ok(kubectl, admin, &["apply", "-f", "-"], Some(MANIFEST)).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("applying Traefik's RBAC and classes")))
}

/// Wait until Traefik answers `/ping` inside the namespace.
pub async fn wait_ready(dialer: &Dialer, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let addr = SocketAddr::from((CONTROL_PLANE_IP, PING_PORT));
    loop {
        if ping(dialer, addr).await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Traefik did not answer /ping on {addr} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ping(dialer: &Dialer, addr: SocketAddr) -> std::io::Result<bool> {
    let mut s = dialer.connect(addr).await?;
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: traefik\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    Ok(buf.starts_with(b"HTTP/1.1 200"))
}

async fn kubectl_ok(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(kubectl);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", kubectl.display()))?;
    if let (Some(text), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
