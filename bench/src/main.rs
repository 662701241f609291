//! wsaffinity-bench: the benchmarks of issue 9. Every figure is measured
//! next to its baseline in the same run, with the same client, and reported
//! as the median of `--repeat` runs with the ratio. `bench/run.sh` builds
//! everything in release mode and runs this.

mod cluster;
mod load;
mod plugin;
mod process;
mod report;
mod wsframe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::load::{EchoSpec, Wire};
use crate::process::Server;
use crate::report::{Goal, Report};

#[derive(Parser)]
#[command(about = "Benchmarks of websocket-server and kubectl-wsaffinity against their baselines")]
struct Args {
    /// Which benchmarks to run.
    #[arg(long, value_enum, default_value = "all")]
    only: Only,
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Idle WebSocket connections held by each server.
    #[arg(long, default_value_t = 18_000)]
    idle_conns: usize,
    /// Client source addresses 127.0.0.2, 127.0.0.3, …
    #[arg(long, default_value_t = 12)]
    sources: u8,
    /// Seconds of each echo measurement (after 1 s of warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Messages in flight per connection, 20-byte echo (pipelining depth).
    #[arg(long, default_value_t = 100)]
    window_small: usize,
    /// Messages in flight per connection, 16 KiB echo.
    #[arg(long, default_value_t = 16)]
    window_large: usize,
    /// Directory of websocket-server, kubectl-wsaffinity and the baselines
    /// (default: this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The real Kubernetes programs (default: target/cluster/bin).
    #[arg(long)]
    cluster_bin: Option<PathBuf>,
    /// websocat, for its `mirror:` server as a baseline (skipped when absent).
    #[arg(long)]
    websocat: Option<PathBuf>,
    /// Which rows of the real-control-plane benchmarks to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "check,per-pod,logs"
    )]
    cluster_rows: Vec<ClusterRow>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClusterRow {
    Check,
    PerPod,
    Logs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    All,
    Server,
    Plugin,
    /// The plugin through the real control plane (`wsaffinity-lab cluster up`;
    /// root and scripts/cluster-build.sh's programs).
    Cluster,
}

/// One server under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Stock,
    Websocat,
    Tcp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "websocket-server",
            Kind::Stock => "stock tokio-tungstenite",
            Kind::Websocat => "websocat mirror:",
            Kind::Tcp => "raw tokio TCP echo",
        }
    }
}

struct Bins {
    dir: PathBuf,
    websocat: Option<PathBuf>,
}

impl Bins {
    /// Starts a server; `echo_only` drops websocket-server's hello.
    async fn start(&self, kind: Kind, echo_only: bool) -> anyhow::Result<Server> {
        match kind {
            Kind::Ours => {
                let mut args = vec![
                    "--port",
                    "0",
                    "--bind",
                    "127.0.0.1",
                    "--max-connections",
                    "20000",
                ];
                if echo_only {
                    args.push("--no-hello");
                }
                Server::start(&self.dir.join("websocket-server"), &args).await
            }
            Kind::Stock => Server::start(&self.dir.join("bench-echo-tungstenite"), &[]).await,
            Kind::Tcp => Server::start(&self.dir.join("bench-echo-tcp"), &[]).await,
            Kind::Websocat => {
                let bin = self.websocat.as_deref().context("no websocat")?;
                let addr = process::free_local_addr()?;
                let listen = format!("ws-l:{addr}");
                Server::start_at(bin, &["-b", &listen, "mirror:"], addr).await
            }
        }
    }
}

fn raise_fd_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return lim.rlim_cur;
        }
    }
    0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fd_limit = raise_fd_limit();
    let dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no executable directory")?
            .to_path_buf(),
    };
    let bins = Bins {
        dir,
        websocat: args.websocat.clone(),
    };
    let mut report = Report::new(fd_limit, args.repeat);
    if matches!(args.only, Only::All | Only::Server) {
        server_benches(&args, &bins, &mut report).await?;
    }
    if matches!(args.only, Only::All | Only::Plugin) {
        plugin_benches(&args, &bins.dir, &mut report).await?;
    }
    if matches!(args.only, Only::All | Only::Cluster) {
        let cluster_bin = args
            .cluster_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from("target/cluster/bin"));
        match cluster::missing(&bins.dir, &cluster_bin) {
            Some(why) if args.only == Only::All => {
                report.detail(format!("cluster benchmarks skipped: {why}"));
            }
            Some(why) => anyhow::bail!("cannot run the cluster benchmarks: {why}"),
            None => cluster_benches(&args, &bins.dir, &cluster_bin, &mut report).await?,
        }
    }
    report.print();
    Ok(())
}

async fn server_benches(args: &Args, bins: &Bins, report: &mut Report) -> anyhow::Result<()> {
    let srcs = load::sources(args.sources);
    let repeat = args.repeat.max(1);
    let ws_kinds: Vec<Kind> = [Kind::Ours, Kind::Stock]
        .into_iter()
        .chain(bins.websocat.is_some().then_some(Kind::Websocat))
        .collect();
    let small = EchoSpec {
        wire: Wire::WebSocket,
        conns: 100,
        size: 20,
        window: args.window_small,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs_f64(args.duration),
    };
    let large = EchoSpec {
        conns: 10,
        size: 16 * 1024,
        window: args.window_large,
        ..small
    };
    report.load("server benchmarks start");
    report.detail(format!(
        "client: one process for every server; echo 100 conns x 20 B with up to {} in flight each and \
         10 conns x 16 KiB with up to {} in flight each, written in batches of <= 64 KiB; \
         1 s warm-up, {} s measured; idle: {} handshakes in flight from {} source addresses 127.0.0.2+",
        args.window_small, args.window_large, args.duration, 256, srcs.len()
    ));
    // kind -> runs
    let mut kib: Vec<(Kind, Vec<f64>)> = ws_kinds.iter().map(|k| (*k, vec![])).collect();
    let mut rate: Vec<(Kind, Vec<f64>)> = kib.clone();
    let echo_kinds: Vec<Kind> = ws_kinds.iter().copied().chain([Kind::Tcp]).collect();
    let mut msgs: Vec<(Kind, Vec<f64>)> = echo_kinds.iter().map(|k| (*k, vec![])).collect();
    let mut bytes: Vec<(Kind, Vec<f64>)> = msgs.clone();
    for run in 0..repeat {
        for (i, kind) in ws_kinds.iter().enumerate() {
            let server = bins.start(*kind, false).await?;
            let (idle, streams) =
                load::idle(&server, args.idle_conns, &srcs, 256, Duration::from_secs(2)).await?;
            server.stop().await;
            drop(streams);
            report.detail(format!(
                "run {}: idle {:<24} {} open, {} failed{}, setup {:.0}/s, RSS {} -> {} KiB = {:.2} KiB/conn",
                run + 1,
                kind.name(),
                idle.opened,
                idle.failed,
                idle.first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default(),
                idle.setup_per_sec,
                idle.rss_before_kib,
                idle.rss_after_kib,
                idle.kib_per_conn()
            ));
            kib[i].1.push(idle.kib_per_conn());
            rate[i].1.push(idle.setup_per_sec);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for (i, kind) in echo_kinds.iter().enumerate() {
            let wire = if *kind == Kind::Tcp {
                Wire::Tcp
            } else {
                Wire::WebSocket
            };
            let server = bins.start(*kind, true).await?;
            let s = load::echo(server.addr, EchoSpec { wire, ..small }, &srcs).await;
            let l = load::echo(server.addr, EchoSpec { wire, ..large }, &srcs).await;
            server.stop().await;
            let (s, l) = (s?, l?);
            report.detail(format!(
                "run {}: echo {:<24} 100x20 B {:.0} msg/s; 10x16 KiB {:.1} MB/s",
                run + 1,
                kind.name(),
                s.msgs_per_sec,
                l.bytes_per_sec / 1e6
            ));
            msgs[i].1.push(s.msgs_per_sec);
            bytes[i].1.push(l.bytes_per_sec / 1e6);
        }
    }
    report.load("server benchmarks end");
    let runs = |v: &[(Kind, Vec<f64>)], k: Kind| -> Vec<f64> {
        v.iter()
            .find(|(x, _)| *x == k)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let idle = format!("idle memory, {} WS conns (KiB/conn)", args.idle_conns);
    report.row(
        &idle,
        &runs(&kib, Kind::Ours),
        "stock tungstenite",
        &runs(&kib, Kind::Stock),
        Goal::AtMost(8.0, "<= 8 KiB"),
    );
    report.row(
        &idle,
        &runs(&kib, Kind::Ours),
        "websocat",
        &runs(&kib, Kind::Websocat),
        Goal::Info,
    );
    let setup = "connection setup (conn/s)";
    report.row(
        setup,
        &runs(&rate, Kind::Ours),
        "stock tungstenite",
        &runs(&rate, Kind::Stock),
        Goal::AtLeast(10_000.0, ">= 10,000/s"),
    );
    report.row(
        setup,
        &runs(&rate, Kind::Ours),
        "websocat",
        &runs(&rate, Kind::Websocat),
        Goal::Info,
    );
    let small_name = "echo 100 x 20 B (msg/s)";
    let large_name = "echo 10 x 16 KiB (MB/s)";
    let have_websocat = bins.websocat.is_some();
    for (name, v, ws_goal, tcp_goal) in [
        (
            small_name,
            &msgs,
            Goal::RatioAtLeast(3.0, ">= 3x websocat"),
            Goal::RatioAtLeast(0.30, ">= 0.30x raw TCP"),
        ),
        (
            large_name,
            &bytes,
            Goal::RatioAtLeast(4.0, ">= 4x websocat"),
            Goal::RatioAtLeast(0.50, ">= 0.50x raw TCP"),
        ),
    ] {
        let ours = runs(v, Kind::Ours);
        // Without websocat the stock server is the WebSocket baseline.
        let stock_goal = if have_websocat { Goal::Info } else { ws_goal };
        if have_websocat {
            report.row(name, &ours, "websocat", &runs(v, Kind::Websocat), ws_goal);
        }
        report.row(
            name,
            &ours,
            "stock tungstenite",
            &runs(v, Kind::Stock),
            stock_goal,
        );
        report.row(name, &ours, "raw TCP", &runs(v, Kind::Tcp), tcp_goal);
    }
    Ok(())
}

async fn plugin_benches(args: &Args, dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let plugin = dir.join("kubectl-wsaffinity");
    let repeat = args.repeat.max(1);
    report.load("plugin benchmarks start");

    let c = plugin::check(&plugin, repeat).await?;
    report.detail(format!(
        "check: {:?} s; requests (all) {:?}; requests (no discovery) {:?}",
        c.secs, c.requests, c.api_requests
    ));
    let ms: Vec<f64> = c.secs.iter().map(|x| x * 1000.0).collect();
    report.row(
        "check, 200 svc / 2,000 pods (ms)",
        &ms,
        "-",
        &[],
        Goal::AtMost(300.0, "<= 300 ms"),
    );
    let req: Vec<f64> = c.requests.iter().map(|&x| x as f64).collect();
    report.row(
        "check API requests (all)",
        &req,
        "-",
        &[],
        Goal::AtMost(8.0, "<= 8"),
    );

    let p = plugin::per_pod(&plugin, repeat).await?;
    report.detail(format!(
        "per-pod --connect 10 --parallel 4 --hold 0s: {:?} s; direct: {:?} s; --connect 1: {:?} s; --connect 50 peak RSS {:?} KiB",
        p.plugin_secs, p.direct_secs, p.fixed_secs, p.peak_rss_kib
    ));
    report.row(
        "per-pod 20 pods x 10, --parallel 4 (s)",
        &p.plugin_secs,
        "direct, no port-forward",
        &p.direct_secs,
        Goal::RatioAtMost(2.0, "<= 2x direct"),
    );
    // Not a target: the part of the per-pod time that does not scale with
    // --connect, to read the ratio above against.
    report.row(
        "per-pod 20 pods x 1 (s), fixed cost",
        &p.fixed_secs,
        "direct, no port-forward",
        &p.direct_secs,
        Goal::Info,
    );
    let rss: Vec<f64> = p
        .peak_rss_kib
        .iter()
        .map(|&x| x as f64 * 1024.0 / 1e6)
        .collect();
    report.row(
        "per-pod 20 pods x 50 peak RSS (MB)",
        &rss,
        "-",
        &[],
        Goal::AtMost(60.0, "<= 60 MB"),
    );

    let l = plugin::logs(&plugin, repeat).await?;
    report.detail(format!(
        "logs: {:?} s; bytes per pod {:?}; log requests {:?}",
        l.secs, l.bytes_per_pod, l.log_requests
    ));
    let kib: Vec<f64> = l.bytes_per_pod.iter().map(|x| x / 1024.0).collect();
    report.row(
        "logs 50 pods x 100k lines, read/pod (KiB)",
        &kib,
        "-",
        &[],
        Goal::AtMost(64.0, "<= 64 KiB"),
    );
    let ms: Vec<f64> = l.secs.iter().map(|x| x * 1000.0).collect();
    report.row(
        "logs 50 pods x 100k lines, total (ms)",
        &ms,
        "-",
        &[],
        Goal::AtMost(1000.0, "<= 1000 ms"),
    );
    report.load("plugin benchmarks end");
    Ok(())
}

async fn cluster_benches(
    args: &Args,
    dir: &Path,
    cluster_bin: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let plugin = dir.join("kubectl-wsaffinity");
    let repeat = args.repeat.max(1);
    let up = std::time::Instant::now();
    let c = cluster::RealCluster::up(dir, cluster_bin)?;
    report.detail(format!(
        "cluster: wsaffinity-lab cluster up --empty --nodes 9 ready in {:.1} s (real kube-apiserver, etcd, \
         controllers, scheduler; the lab's node agent as kubelets)",
        up.elapsed().as_secs_f64()
    ));
    report.load("cluster benchmarks start");

    // check's 2,000 pods come last: the node agent and the API server keep
    // them running, which the other rows should not pay for.
    if args.cluster_rows.contains(&ClusterRow::PerPod) {
        cluster_per_pod(&c, &plugin, repeat, report).await?;
    }
    if args.cluster_rows.contains(&ClusterRow::Logs) {
        cluster_logs(&c, &plugin, repeat, report).await?;
    }
    if args.cluster_rows.contains(&ClusterRow::Check) {
        cluster_check(&c, &plugin, repeat, report).await?;
    }
    report.load("cluster benchmarks end");
    drop(c);
    Ok(())
}

async fn cluster_check(
    c: &cluster::RealCluster,
    plugin: &Path,
    repeat: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let k = cluster::check(c, plugin, repeat).await?;
    report.detail(format!(
        "cluster check: {:?} s; requests (audit log) {:?}; peak RSS {:?} KiB; last run's requests: {}",
        k.secs,
        k.requests,
        k.peak_rss_kib,
        k.last_requests.join(", ")
    ));
    let ms: Vec<f64> = k.secs.iter().map(|x| x * 1000.0).collect();
    report.row(
        "real API: check, 200 svc / 2,000 pods (ms)",
        &ms,
        "-",
        &[],
        Goal::AtMost(500.0, "<= 500 ms"),
    );
    let req: Vec<f64> = k.requests.iter().map(|&x| x as f64).collect();
    report.row(
        "real API: check requests (audit log)",
        &req,
        "-",
        &[],
        Goal::AtMost(8.0, "<= 8"),
    );
    let rss: Vec<f64> = k
        .peak_rss_kib
        .iter()
        .map(|&x| x as f64 * 1024.0 / 1e6)
        .collect();
    report.row(
        "real API: check peak RSS (MB)",
        &rss,
        "-",
        &[],
        Goal::AtMost(60.0, "<= 60 MB"),
    );

    Ok(())
}

async fn cluster_per_pod(
    c: &cluster::RealCluster,
    plugin: &Path,
    repeat: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let p = cluster::per_pod(c, plugin, repeat).await?;
    report.detail(format!(
        "cluster per-pod --connect 10 --parallel 4 --hold 0s: {:?} s; direct (netns): {:?} s; \
         manual kubectl port-forward loop: {:?} s; requests (audit log) {:?}; kube-apiserver CPU per run {:?} s; \
         --connect 1: {:?} s",
        p.plugin_secs, p.direct_secs, p.manual_secs, p.requests, p.api_cpu_secs, p.fixed_secs
    ));
    let name = "real API: per-pod 20 pods x 10 (s)";
    report.row(
        name,
        &p.plugin_secs,
        "direct to pod IPs (netns)",
        &p.direct_secs,
        Goal::RatioAtMost(3.0, "<= 3x direct"),
    );
    report.row(
        name,
        &p.plugin_secs,
        "kubectl port-forward per pod",
        &p.manual_secs,
        Goal::RatioAtMost(0.1, "<= 0.1x manual (>= 10x faster)"),
    );
    // Not a target: what does not scale with --connect (a port-forward and a
    // log stream per pod through the API server), to read the 3x goal against.
    report.row(
        "real API: per-pod 20 pods x 1 (s), fixed cost",
        &p.fixed_secs,
        "direct to pod IPs (netns)",
        &p.direct_secs,
        Goal::Info,
    );
    Ok(())
}

async fn cluster_logs(
    c: &cluster::RealCluster,
    plugin: &Path,
    repeat: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let l = cluster::logs(c, plugin, repeat).await?;
    report.detail(format!(
        "cluster logs: {:?} s, {:?} B/pod, requests (audit log) {:?}; kubectl logs --tail=500 loop: {:?} s, {:?} B/pod",
        l.plugin_secs, l.plugin_bytes_per_pod, l.requests, l.loop_secs, l.loop_bytes_per_pod
    ));
    let kib = |v: &[f64]| v.iter().map(|x| x / 1024.0).collect::<Vec<f64>>();
    report.row(
        "real API: logs 50 pods x 100k lines, moved/pod (KiB)",
        &kib(&l.plugin_bytes_per_pod),
        "kubectl logs --tail=500 loop",
        &kib(&l.loop_bytes_per_pod),
        Goal::AtMost(64.0, "<= 64 KiB"),
    );
    report.row(
        "real API: logs 50 pods x 100k lines (s)",
        &l.plugin_secs,
        "kubectl logs --tail=500 loop",
        &l.loop_secs,
        Goal::RatioAtMost(0.2, "<= 0.2x loop (>= 5x faster)"),
    );
    Ok(())
}
