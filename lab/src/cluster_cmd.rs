//! `wsaffinity-lab cluster …`: the real control plane from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use wsaffinity_lab::cluster::{self, Cluster, ClusterOptions, IngressController};
use wsaffinity_lab::node;

use crate::{StopSignals, run_demo_commands};

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
    /// node agent in a network namespace of their own, apply k8s/overlays/dev
    /// (k8s/overlays/traefik with --ingress traefik), print `export KUBECONFIG=PATH`
    /// (and `export WSAFFINITY_INGRESS=127.0.0.1:PORT`), and run until Ctrl-C or
    /// SIGTERM. SIGUSR1 restarts kube-apiserver (a fault for tests).
    #[command(
        after_help = "Examples:\n  wsaffinity-lab cluster up\n  wsaffinity-lab cluster up --nodes 4 --empty\n  wsaffinity-lab cluster up --ingress traefik\n  kubectl wsaffinity spread -n websocket-app-dev svc/dev-websocket-server \\\n    --resolve websocket-dev.example.com:${WSAFFINITY_INGRESS#*:}:127.0.0.1 --clients 6 --connect 4\n\nNeeds root (a network namespace) and the programs scripts/cluster-build.sh builds."
    )]
    Up {
        /// How many nodes the node agent registers.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=20))]
        nodes: u8,
        /// Where kube-apiserver, etcd and the rest are.
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// Do not apply k8s/overlays/dev.
        #[arg(long)]
        empty: bool,
        /// kube-controller-manager --node-monitor-grace-period, in seconds (tests shorten it).
        #[arg(long, value_name = "SECS")]
        node_monitor_grace: Option<u32>,
        /// Run this Ingress controller in front of the pods (Ingress, its CRDs
        /// and the Gateway API), reachable on the printed WSAFFINITY_INGRESS.
        #[arg(long, value_name = "CONTROLLER")]
        ingress: Option<IngressController>,
    },
    /// With a running cluster's admin KUBECONFIG in the environment: write a
    /// kubeconfig for USER (a client certificate signed by the cluster CA) with
    /// no permissions of its own, and print its path as the last line.
    #[command(
        after_help = "Example:\n  kubectl create rolebinding r --role=wsaffinity --user=alice -n ns\n  KUBECONFIG=$(wsaffinity-lab cluster kubeconfig --user alice | tail -1) kubectl get pods -n ns"
    )]
    Kubeconfig {
        #[arg(long)]
        user: String,
        #[arg(long)]
        group: Option<String>,
    },
    /// The node agent (started by `cluster up` inside the namespace; not for direct use).
    #[command(hide = true)]
    NodeAgent {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        nodes: usize,
    },
}

pub fn print_banner(c: &Cluster) {
    println!(
        "wsaffinity-lab cluster: a REAL kube-apiserver, etcd, kube-controller-manager and kube-scheduler"
    );
    println!(
        "(built from their Go modules); pods are processes run by the lab's node agent, a STAND-IN for"
    );
    println!(
        "kubelets and a container runtime; there is no kube-proxy, so ClusterIPs are not routed."
    );
    println!("API server: https://{}", c.api_addr());
    if let Some(addr) = c.ingress_addr() {
        println!("Ingress:    http://{addr} (Traefik; send Host: websocket-dev.example.com)");
    }
    println!("logs:       {}", c.dir().join("logs").display());
    println!();
    if let Some(addr) = c.ingress_addr() {
        println!("export WSAFFINITY_INGRESS={addr}");
    }
    println!("export KUBECONFIG={}", c.kubeconfig_path().display());
}

fn options(
    nodes: u8,
    bin_dir: Option<PathBuf>,
    empty: bool,
    grace: Option<u32>,
    ingress: Option<IngressController>,
) -> ClusterOptions {
    ClusterOptions {
        nodes: usize::from(nodes),
        bin_dir: bin_dir.unwrap_or_else(cluster::default_bin_dir),
        empty,
        overlay: cluster::default_overlay(ingress),
        node_monitor_grace: grace,
        ingress,
    }
}

async fn up(opts: ClusterOptions) -> anyhow::Result<()> {
    // Registered before anything starts, so a signal during start-up cleans up too.
    let stop = StopSignals::install()?;
    let mut restart =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let start = Cluster::up(opts);
    tokio::pin!(start);
    let stop_wait = stop.wait();
    tokio::pin!(stop_wait);
    let mut c = tokio::select! {
        c = &mut start => c?,
        _ = &mut stop_wait => {
            println!("stopped before the cluster was up");
            return Ok(());
        }
    };
    c.write_pids()?;
    print_banner(&c);
    println!(
        "\nRunning; Ctrl-C stops every component and removes {}.",
        c.dir().display()
    );
    let mut watchdog = tokio::time::interval(std::time::Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            _ = &mut stop_wait => break Ok(()),
            _ = restart.recv() => {
                eprintln!("SIGUSR1: restarting kube-apiserver");
                if let Err(e) = c.restart_apiserver().await {
                    break Err(e);
                }
                c.write_pids()?;
                eprintln!("kube-apiserver is back");
            }
            _ = watchdog.tick() => {
                if let Err(e) = c.check_alive() {
                    break Err(e);
                }
            }
        }
    };
    c.shutdown().await;
    // Whoever read our stdout may be gone by now (a test binary that exited).
    let _ = writeln!(std::io::stdout(), "stopped");
    result
}

async fn kubeconfig(user: &str, group: Option<&str>) -> anyhow::Result<()> {
    let admin = std::env::var_os("KUBECONFIG").context(
        "KUBECONFIG is not set: run this with the admin kubeconfig `wsaffinity-lab cluster up` printed",
    )?;
    let admin = PathBuf::from(admin);
    let dir = admin
        .parent()
        .filter(|d| d.join("ca.key").is_file())
        .with_context(|| {
            format!(
                "{} is not the kubeconfig of a running `wsaffinity-lab cluster up` (no ca.key next to it)",
                admin.display()
            )
        })?;
    let ca = cluster::pki::Ca::load(dir)?;
    let server = cluster::kubeconfig::server_of(&admin)?;
    let safe: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = cluster::kubeconfig::write(
        &dir.join(format!("user-{safe}.kubeconfig")),
        &server,
        &ca.cert_pem,
        user,
        &ca.client(user, group)?,
        Some(cluster::DEV_NAMESPACE),
    )?;
    println!("{}", path.display());
    Ok(())
}

pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Up {
            nodes,
            bin_dir,
            empty,
            node_monitor_grace,
            ingress,
        } => up(options(nodes, bin_dir, empty, node_monitor_grace, ingress)).await,
        ClusterCommand::Kubeconfig { user, group } => kubeconfig(&user, group.as_deref()).await,
        ClusterCommand::NodeAgent { dir, nodes } => {
            let server_bin = wsaffinity_lab::find_server_binary()?;
            node::run(node::AgentOptions {
                dir,
                nodes,
                server_bin,
            })
            .await
        }
    }
}

/// `demo --cluster`: the three commands against the real control plane, then
/// `spread` through Traefik in front of it.
pub async fn demo(keep: bool) -> anyhow::Result<()> {
    let c = Cluster::up(options(
        3,
        None,
        false,
        None,
        Some(IngressController::Traefik),
    ))
    .await?;
    print_banner(&c);
    run_demo_commands(c.kubeconfig_path()).await;
    if let (Some(plugin), Some(addr)) = (crate::plugin_next_to_me(), c.ingress_addr()) {
        let resolve = format!("websocket-dev.example.com:{}:127.0.0.1", addr.port());
        crate::run_plugin(
            &plugin,
            c.kubeconfig_path(),
            &[
                "spread",
                "svc/dev-websocket-server",
                "--resolve",
                &resolve,
                "--clients",
                "6",
                "--connect",
                "4",
            ],
        )
        .await;
    }
    if keep {
        let stop = StopSignals::install()?;
        println!("\nThe cluster keeps running; Ctrl-C stops it.");
        stop.wait().await;
    }
    c.shutdown().await;
    Ok(())
}
