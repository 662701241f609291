//! The plugin against the lab: `check` at scale, `per-pod` against direct
//! connections, `logs` over long logs, and `per-pod`'s peak memory.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use wsaffinity_lab::{Lab, LabOptions, Scenario};

/// A deployment `name` of `replicas` pods and a Service of the same name.
fn workload(out: &mut String, ns: &str, name: &str, replicas: u32, processes: bool) {
    let ann = if processes {
        String::new()
    } else {
        "\n  annotations:\n    lab.wsaffinity.dev/processes: \"false\"".to_string()
    };
    let _ = write!(
        out,
        "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  selector: {{app: {name}}}
  ports:
    - {{name: ws, port: 80, targetPort: ws, protocol: TCP}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}{ann}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: server
          image: websocket-server:dev
          ports:
            - {{name: ws, containerPort: 8080, protocol: TCP}}
"
    );
}

fn scenario(ns: &str, workloads: &[(&str, u32)], processes: bool) -> String {
    let mut s = format!(
        "apiVersion: lab.wsaffinity.dev/v1\nkind: LabConfig\nnamespace: {ns}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
    );
    for (name, replicas) in workloads {
        workload(&mut s, ns, name, *replicas, processes);
    }
    s
}

async fn start_lab(yaml: String, processes: bool) -> anyhow::Result<Lab> {
    Lab::start(LabOptions {
        scenario: Scenario::Yaml(yaml),
        tls: false,
        processes,
    })
    .await
    .context("cannot start the lab")
}

/// One run of the plugin: wall time from spawn to exit, peak RSS, exit code.
pub struct Run {
    pub secs: f64,
    pub max_rss_kib: u64,
    pub code: i32,
    pub stdout: String,
}

impl Run {
    /// Fails unless the output names `what` (the plugin really read the target).
    pub(crate) fn expect(&self, what: &str) -> anyhow::Result<()> {
        if !self.stdout.contains(what) {
            let head: String = self.stdout.chars().take(300).collect();
            bail!(
                "plugin output (exit {}) does not mention {what}: {head}",
                self.code
            );
        }
        Ok(())
    }
}

/// The per-pod command both per-pod rows (lab and real API) time:
/// `per-pod svc/web --connect 10 --parallel 4 --hold 0s -o json`.
pub(crate) fn per_pod_args(ns: &str) -> [&str; 12] {
    [
        "per-pod",
        "svc/web",
        "-n",
        ns,
        "--connect",
        "10",
        "--parallel",
        "4",
        "--hold",
        "0s",
        "-o",
        "json",
    ]
}

/// Runs `plugin args…` with the lab's kubeconfig, capturing its output.
/// Waits with wait4; the peak RSS is the child's own VmHWM, sampled.
pub(crate) async fn run_plugin(
    plugin: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> anyhow::Result<Run> {
    let mut cmd = Command::new(plugin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Run> {
        let start = Instant::now();
        let mut child = cmd.spawn().context("cannot start the plugin")?;
        // Drain both pipes on threads so the child never blocks on them.
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_string(&mut s);
                }
                s
            })
        };
        let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let drain = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let pid = child.id() as libc::pid_t;
        // Peak RSS: the child's VmHWM, sampled until it exits. (wait4's
        // ru_maxrss is no good here: std spawns with CLONE_VM, and exec
        // records the *parent's* high-water mark — this process, with the lab.)
        let sampler = std::thread::spawn(move || {
            let mut peak = 0u64;
            while let Some(hwm) = vm_hwm_kib(pid as u32) {
                peak = peak.max(hwm);
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        let mut status = 0;
        // SAFETY: wait4 on our own child; no rusage wanted.
        let r = unsafe { libc::wait4(pid, &mut status, 0, std::ptr::null_mut()) };
        let secs = start.elapsed().as_secs_f64();
        let peak = sampler.join().unwrap_or(0);
        let err = drain.join().unwrap_or_default();
        let stdout = out.join().unwrap_or_default();
        if r != pid {
            bail!("wait4 failed: {}", std::io::Error::last_os_error());
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        if code > 1 {
            bail!("plugin exited {code}: {}", err.trim());
        }
        Ok(Run {
            secs,
            max_rss_kib: peak,
            code,
            stdout,
        })
    })
    .await?
}

/// VmHWM (peak resident set) of a live process, in KiB; None once it has
/// exited (a zombie has no memory lines).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub struct Check {
    pub secs: Vec<f64>,
    pub requests: Vec<u64>,
    pub api_requests: Vec<u64>,
}

/// `check svc/app-0` in a namespace of 200 Services and 2,000 pods.
pub async fn check(plugin: &Path, repeat: usize) -> anyhow::Result<Check> {
    let names: Vec<String> = (0..200).map(|i| format!("app-{i}")).collect();
    let wl: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 10)).collect();
    let lab = start_lab(scenario("bench-check", &wl, false), false).await?;
    let mut out = Check {
        secs: vec![],
        requests: vec![],
        api_requests: vec![],
    };
    for _ in 0..repeat {
        lab.reset_counts();
        let run = run_plugin(
            plugin,
            lab.kubeconfig_path(),
            &["check", "svc/app-0", "-n", "bench-check", "-o", "json"],
        )
        .await?;
        run.expect("app-0")?;
        let counts = lab.counts();
        out.secs.push(run.secs);
        out.requests.push(counts.total());
        out.api_requests.push(counts.api_total());
    }
    lab.shutdown().await;
    Ok(out)
}

pub struct PerPod {
    pub plugin_secs: Vec<f64>,
    pub direct_secs: Vec<f64>,
    /// `--connect 1`: what does not scale with the connections (process
    /// start, client, API reads, three log reads per pod, 20 forwards).
    pub fixed_secs: Vec<f64>,
    pub peak_rss_kib: Vec<u64>,
}

/// `per-pod --connect 10 --parallel 4 --hold 0s` over 20 pods against the
/// same connections made straight to the pods' servers; then the peak RSS
/// of `per-pod --connect 50 --parallel 4`.
pub async fn per_pod(plugin: &Path, repeat: usize) -> anyhow::Result<PerPod> {
    let ns = "bench-perpod";
    let lab = start_lab(scenario(ns, &[("web", 20)], true), true).await?;
    let backends: Vec<SocketAddr> = lab
        .pods(ns)
        .iter()
        .map(|p| lab.pod_backend(ns, p).context("pod without a backend"))
        .collect::<anyhow::Result<_>>()?;
    if backends.len() != 20 {
        bail!("expected 20 pods, got {}", backends.len());
    }
    let mut out = PerPod {
        plugin_secs: vec![],
        direct_secs: vec![],
        fixed_secs: vec![],
        peak_rss_kib: vec![],
    };
    let args = per_pod_args(ns);
    for _ in 0..repeat {
        let run = run_plugin(plugin, lab.kubeconfig_path(), &args).await?;
        if run.code != 0 {
            bail!("per-pod exited {}", run.code);
        }
        run.expect("web-")?;
        out.plugin_secs.push(run.secs);
        out.direct_secs.push(direct_from(&backends, 10, 4).await?);
        let mut args1 = args;
        args1[5] = "1";
        let run = run_plugin(plugin, lab.kubeconfig_path(), &args1).await?;
        if run.code != 0 {
            bail!("per-pod --connect 1 exited {}", run.code);
        }
        out.fixed_secs.push(run.secs);
    }
    let mut args50 = args;
    args50[5] = "50";
    for _ in 0..repeat {
        let run = run_plugin(plugin, lab.kubeconfig_path(), &args50).await?;
        if run.code != 0 {
            bail!("per-pod --connect 50 exited {}", run.code);
        }
        out.peak_rss_kib.push(run.max_rss_kib);
    }
    lab.shutdown().await;
    Ok(out)
}

/// What per-pod does per pod, without the API: `connect` WebSocket
/// connections at once, each reading the hello and round-tripping one echo,
/// then all closed; `parallel` pods at a time.
pub(crate) async fn direct_from(
    backends: &[SocketAddr],
    connect: usize,
    parallel: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(backends.to_vec())
        .map(|addr| async move {
            let mut set = JoinSet::new();
            for _ in 0..connect {
                set.spawn(one_connection(addr));
            }
            let mut opened = Vec::new();
            while let Some(r) = set.join_next().await {
                opened.push(r??);
            }
            let mut closing = JoinSet::new();
            for mut ws in opened {
                closing.spawn(async move {
                    let _ = ws.close(None).await;
                    // Wait for the server's close, as a clean close does.
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
            while closing.join_next().await.is_some() {}
            Ok(())
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(start.elapsed().as_secs_f64())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn one_connection(addr: SocketAddr) -> anyhow::Result<Ws> {
    let step = Duration::from_secs(10);
    let (mut ws, _) = tokio::time::timeout(
        step,
        tokio_tungstenite::connect_async(format!("ws://{addr}/")),
    )
    .await??;
    let hello = tokio::time::timeout(step, ws.next())
        .await?
        .context("closed before hello")??;
    if !hello.is_text() {
        bail!("no hello");
    }
    ws.send(Message::text("wsaffinity-bench echo")).await?;
    loop {
        match tokio::time::timeout(step, ws.next())
            .await?
            .context("closed before echo")??
        {
            Message::Text(t) if t.as_str() == "wsaffinity-bench echo" => break,
            _ => {}
        }
    }
    Ok(ws)
}

pub struct Logs {
    pub secs: Vec<f64>,
    pub bytes_per_pod: Vec<f64>,
    pub log_requests: Vec<u64>,
}

/// `logs` over 50 pods whose logs hold 100,000 lines each.
pub async fn logs(plugin: &Path, repeat: usize) -> anyhow::Result<Logs> {
    let ns = "bench-logs";
    let lab = start_lab(scenario(ns, &[("chatty", 50)], false), false).await?;
    let pods = lab.pods(ns);
    if pods.len() != 50 {
        bail!("expected 50 pods, got {}", pods.len());
    }
    for pod in &pods {
        let mut text = String::with_capacity(100_000 * 60);
        for i in 0..100_000u32 {
            let _ = writeln!(
                text,
                "2026-11-26T23:40:{:02}.{:03}Z INFO Active connections: {}",
                (i / 1000) % 60,
                i % 1000,
                i % 97
            );
        }
        lab.append_log(ns, pod, &text);
    }
    let mut out = Logs {
        secs: vec![],
        bytes_per_pod: vec![],
        log_requests: vec![],
    };
    for _ in 0..repeat {
        lab.reset_counts();
        let run = run_plugin(
            plugin,
            lab.kubeconfig_path(),
            &["logs", "svc/chatty", "-n", ns, "-o", "json"],
        )
        .await?;
        let counts = lab.counts();
        out.secs.push(run.secs);
        out.bytes_per_pod
            .push(counts.log_bytes_sent() as f64 / pods.len() as f64);
        out.log_requests.push(counts.get("get pods/log"));
    }
    lab.shutdown().await;
    Ok(out)
}
