//! `wsaffinity-lab`: run the local Kubernetes API test double from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsaffinity_lab::{Lab, LabOptions, Scenario};

mod cluster_cmd;

/// A local TEST DOUBLE of the parts of the Kubernetes API that kubectl-wsaffinity
/// uses (discovery, GET/LIST, pod logs, WebSocket port-forward), with real
/// websocket-server processes as pods. It is not a Kubernetes cluster.
#[derive(Parser)]
#[command(name = "wsaffinity-lab", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the lab, print the kubeconfig path, run until Ctrl-C or SIGTERM.
    Up {
        /// Scenario file (multi-document YAML of raw objects); default: the dev overlay.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Serve HTTPS with a generated CA.
        #[arg(long)]
        tls: bool,
    },
    /// Start the dev overlay, show the commands to try, and run them if the plugin is built.
    Demo {
        /// Keep the lab running after the demo (until Ctrl-C).
        #[arg(long)]
        keep: bool,
        /// Run the demo against a real control plane (`cluster up`) instead of the fake API.
        #[arg(long)]
        cluster: bool,
    },
    /// A REAL Kubernetes control plane on this machine (etcd, kube-apiserver,
    /// controllers, scheduler built from their Go modules) with the node agent as kubelets.
    #[command(subcommand)]
    Cluster(cluster_cmd::ClusterCommand),
}

/// Ctrl-C and SIGTERM, registered before the lab says it is running, so a signal
/// sent right after that line is handled (not the default: die without cleanup).
pub(crate) struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    pub(crate) async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn print_banner(lab: &Lab) {
    println!("wsaffinity-lab: a local TEST DOUBLE of the Kubernetes API (not a cluster)");
    println!("scenario:   {}", lab.scenario_source());
    println!("API server: {}", lab.server_url());
    println!("kubeconfig: {}", lab.kubeconfig_path().display());
    println!();
    println!("export KUBECONFIG={}", lab.kubeconfig_path().display());
}

pub(crate) fn plugin_next_to_me() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let name = format!("kubectl-wsaffinity{}", std::env::consts::EXE_SUFFIX);
    let p = exe.parent()?.join(name);
    p.is_file().then_some(p)
}

/// The demo's three commands, when the plugin is built next to this binary.
pub(crate) async fn run_demo_commands(kubeconfig: &Path) {
    match plugin_next_to_me() {
        Some(plugin) => {
            run_plugin(&plugin, kubeconfig, &["check", "svc/dev-websocket-server"]).await;
            run_plugin(&plugin, kubeconfig, &["per-pod", "--connect", "10"]).await;
            run_plugin(&plugin, kubeconfig, &["logs"]).await;
        }
        None => println!(
            "\n(kubectl-wsaffinity is not built next to this binary; `cargo build` builds it, then run the demo again)"
        ),
    }
}

pub(crate) async fn run_plugin(plugin: &Path, kubeconfig: &Path, args: &[&str]) {
    println!("\n$ kubectl wsaffinity {}", args.join(" "));
    let out = tokio::process::Command::new(plugin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match out {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            if !out.status.success() {
                println!("(exit status {})", out.status.code().unwrap_or(-1));
            }
        }
        Err(e) => println!("could not run {}: {e}", plugin.display()),
    }
}

async fn demo(keep: bool) -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::new(Scenario::DevOverlay)).await?;
    print_banner(&lab);
    let ns = lab.namespace().to_string();
    println!("\nnamespace {ns}: pods {}", lab.pods(&ns).join(", "));
    if keep {
        println!("\nTry (in another terminal, after the export above):");
    } else {
        println!(
            "\nTo try (the demo runs the three `kubectl wsaffinity` ones, then stops the lab; `wsaffinity-lab demo --keep` keeps it up):"
        );
    }
    println!("  kubectl get svc,pods,endpointslices,ingress");
    println!("  kubectl wsaffinity check svc/dev-websocket-server");
    println!("  kubectl wsaffinity per-pod --connect 10");
    println!("  kubectl wsaffinity logs");
    run_demo_commands(lab.kubeconfig_path()).await;
    if keep {
        let stop = StopSignals::install()?;
        println!("\nThe lab keeps running; Ctrl-C stops it and every pod process.");
        stop.wait().await;
    }
    lab.shutdown().await;
    if !keep {
        // The kubeconfig printed above is gone now; say so rather than let
        // a copied `export KUBECONFIG=...` fail later.
        println!(
            "\nThe lab has stopped and its kubeconfig is removed. To try the commands yourself: wsaffinity-lab demo --keep"
        );
    }
    Ok(())
}

async fn up(scenario: Option<PathBuf>, tls: bool) -> anyhow::Result<()> {
    let scenario = scenario.map(Scenario::File).unwrap_or(Scenario::DevOverlay);
    let lab = Lab::start(LabOptions {
        scenario,
        tls,
        processes: true,
    })
    .await?;
    let stop = StopSignals::install()?;
    print_banner(&lab);
    println!("\nRunning; Ctrl-C stops the lab and every pod process.");
    stop.wait().await;
    lab.shutdown().await;
    println!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up { scenario, tls } => up(scenario, tls).await,
        Command::Demo {
            keep,
            cluster: false,
        } => demo(keep).await,
        Command::Demo {
            keep,
            cluster: true,
        } => cluster_cmd::demo(keep).await,
        Command::Cluster(c) => cluster_cmd::run(c).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsaffinity-lab: {e:#}");
            ExitCode::from(2)
        }
    }
}
