//! The plugin against the REAL control plane (`wsaffinity-lab cluster up`:
//! kube-apiserver, etcd, controllers and scheduler built from their Go
//! modules, the lab's node agent as kubelets) next to what users do by hand:
//! `kubectl port-forward` per pod with a WebSocket client through it. API
//! requests are counted from the API server's audit log, never from our side.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::plugin::{direct_from, per_pod_args, run_plugin};

/// Nodes for 2,000 pods: the node agent's nodes take 250 pods each.
const NODES: u8 = 9;

/// A running `wsaffinity-lab cluster up --empty`; stopped (SIGTERM, so it
/// removes everything) when dropped.
pub struct RealCluster {
    child: std::process::Child,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    kubectl: PathBuf,
    /// The cluster's network namespace (kube-apiserver's), for direct connections.
    netns: std::fs::File,
    api_pid: String,
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why the real cluster cannot run here, if it cannot.
pub fn missing(bin_dir: &Path, cluster_bin: &Path) -> Option<String> {
    for p in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ] {
        if !cluster_bin.join(p).is_file() {
            return Some(format!(
                "{} is missing: run scripts/cluster-build.sh",
                cluster_bin.join(p).display()
            ));
        }
    }
    if !bin_dir.join("wsaffinity-lab").is_file() {
        return Some(format!(
            "{} is missing",
            bin_dir.join("wsaffinity-lab").display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: the cluster needs its own network namespace".into());
    }
    None
}

impl RealCluster {
    pub fn up(bin_dir: &Path, cluster_bin: &Path) -> anyhow::Result<Self> {
        let lab = bin_dir.join("wsaffinity-lab");
        let mut child = Command::new(&lab)
            .args(["cluster", "up", "--empty", "--nodes", &NODES.to_string()])
            .arg("--bin-dir")
            .arg(cluster_bin)
            // The node agent's count of the log bytes it serves (the API
            // server relays them as they are).
            .env(
                "RUST_LOG",
                "warn,kube_client=off,node_agent::log_bytes=debug",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", lab.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                    let _ = tx.send(PathBuf::from(path.trim()));
                    sent = true;
                }
            }
        });
        let kubeconfig = match rx.recv_timeout(Duration::from_secs(240)) {
            Ok(k) => k,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`wsaffinity-lab cluster up` was not ready within 240 s");
            }
        };
        let dir = kubeconfig
            .parent()
            .context("kubeconfig without a directory")?
            .to_path_buf();
        let pids =
            std::fs::read_to_string(dir.join("pids")).context("reading the cluster's pids")?;
        let api_pid = pids
            .lines()
            .find_map(|l| l.strip_prefix("kube-apiserver "))
            .context("no kube-apiserver in pids")?
            .trim()
            .to_string();
        let netns = std::fs::File::open(format!("/proc/{api_pid}/ns/net"))
            .context("opening the cluster's network namespace")?;
        Ok(Self {
            child,
            kubeconfig,
            dir,
            kubectl: cluster_bin.join("kubectl"),
            netns,
            api_pid,
        })
    }

    /// CPU seconds kube-apiserver has used so far (user + system).
    pub fn api_cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.api_pid)).unwrap_or_default();
        // Fields after the `(comm)`: utime and stime are the 12th and 13th.
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / hz.max(1.0)
    }

    /// Before each measured run: the API server collects its garbage
    /// (`/debug/pprof/heap?gc=1`), then the machine gets (at most 5 s) to be
    /// quiet: two 250 ms windows with the CPUs under 25% busy. Without it a
    /// run paid for the run before: the manual routine's 20 tunnels leave
    /// the API server garbage whose collection (up to ~70 ms of CPU) landed
    /// in the next plugin run, about one run in three.
    pub fn settle(&self) {
        let _ = self.kubectl(&["get", "--raw", "/debug/pprof/heap?gc=1"], None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            let before = cpu_ticks();
            std::thread::sleep(Duration::from_millis(250));
            let after = cpu_ticks();
            let (busy, total) = (
                after.0.saturating_sub(before.0),
                after.1.saturating_sub(before.1),
            );
            if total > 0 && busy * 4 < total {
                quiet += 1;
            } else {
                quiet = 0;
            }
        }
    }

    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// The real kubectl with the admin kubeconfig; stdout, or stderr as the error.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().context("cannot start kubectl")?;
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            use std::io::Write;
            pipe.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn kubectl_json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all, None)?).context("kubectl output is not JSON")
    }

    fn node_agent_log(&self) -> PathBuf {
        self.dir.join("logs/node-agent.log")
    }

    /// The node agent's log length now (see [`Self::log_bytes_since`]).
    pub fn node_log_mark(&self) -> u64 {
        std::fs::metadata(self.node_agent_log()).map_or(0, |m| m.len())
    }

    /// Bytes of pod logs in `ns` the node agent served after `mark`, and in
    /// how many responses: what the API server relayed to the reader.
    pub fn log_bytes_since(&self, mark: u64, ns: &str) -> anyhow::Result<(u64, u64)> {
        std::thread::sleep(Duration::from_millis(300));
        let mut f =
            std::fs::File::open(self.node_agent_log()).context("opening the node agent's log")?;
        f.seek(SeekFrom::Start(mark))?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        let prefix = format!("pods/log {ns}/");
        let (mut bytes, mut responses) = (0, 0);
        for line in text.lines() {
            let Some(at) = line.find(&prefix) else {
                continue;
            };
            let Some(n) = line[at..]
                .strip_suffix(" bytes sent")
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            bytes += n;
            responses += 1;
        }
        Ok((bytes, responses))
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("logs/audit.log")
    }

    /// The audit log's length now: events after it belong to what runs next.
    pub fn audit_mark(&self) -> u64 {
        std::fs::metadata(self.audit_path()).map_or(0, |m| m.len())
    }

    /// Audit events written after `mark` (the API server writes each as it
    /// completes; give it a moment to land).
    pub fn audit_since(&self, mark: u64) -> anyhow::Result<Vec<Value>> {
        std::thread::sleep(Duration::from_millis(300));
        let mut f = std::fs::File::open(self.audit_path()).context("opening the audit log")?;
        f.seek(SeekFrom::Start(mark))?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Waits until `ns` has `n` ready pods in total over its Deployments.
    pub fn wait_ready(&self, ns: &str, n: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let list = self.kubectl_json(&["get", "deployments", "-n", ns])?;
            let ready: u64 = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["status"]["readyReplicas"].as_u64().unwrap_or(0))
                .sum();
            if ready >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{ns}: {ready} of {n} pods ready after {within:?}");
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits until the EndpointSlices of `ns` list `n` ready endpoints.
    pub fn wait_slices(&self, ns: &str, n: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let list = self.kubectl_json(&["get", "endpointslices", "-n", ns])?;
            let ready = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"].as_bool() == Some(true))
                .count() as u64;
            if ready >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{ns}: {ready} of {n} endpoints ready in EndpointSlices after {within:?}");
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Pod IPs of the ready pods of `ns`.
    pub fn pod_ips(&self, ns: &str) -> anyhow::Result<Vec<(String, SocketAddr)>> {
        let list = self.kubectl_json(&["get", "pods", "-n", ns])?;
        let mut out = Vec::new();
        for p in list["items"].as_array().into_iter().flatten() {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            let Some(ip) = p["status"]["podIP"].as_str() else {
                continue;
            };
            let ip: std::net::IpAddr = ip.parse().with_context(|| format!("pod IP {ip}"))?;
            out.push((name.to_string(), SocketAddr::new(ip, 8080)));
        }
        out.sort();
        Ok(out)
    }

    /// `direct_from` run on a thread inside the cluster's network namespace.
    pub fn direct(
        &self,
        backends: &[SocketAddr],
        connect: usize,
        parallel: usize,
    ) -> anyhow::Result<f64> {
        let fd = self.netns.try_clone()?;
        let backends = backends.to_vec();
        std::thread::spawn(move || -> anyhow::Result<f64> {
            // SAFETY: setns on this thread only, with a namespace fd we own.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("entering the cluster's network namespace");
            }
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(direct_from(&backends, connect, parallel))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("direct-connection thread panicked"))?
    }
}

/// Services `app-0..` with Deployments of `replicas` pods each, in `ns`;
/// `processes: false` pods run nothing and are Ready at once; `extra_args`
/// go to each websocket-server.
fn workloads(
    ns: &str,
    prefix: &str,
    count: usize,
    replicas: u32,
    processes: bool,
    extra_args: &[&str],
) -> String {
    let ann = if processes {
        String::new()
    } else {
        "\n      annotations:\n        lab.wsaffinity.dev/processes: \"false\"".to_string()
    };
    let args = std::iter::once("--port=8080")
        .chain(extra_args.iter().copied())
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    for i in 0..count {
        let name = if count == 1 {
            prefix.to_string()
        } else {
            format!("{prefix}-{i}")
        };
        s.push_str(&format!(
            "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector: {{app: {name}}}
  ports:
    - {{name: ws, port: 80, targetPort: ws, protocol: TCP}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}{ann}
    spec:
      containers:
        - name: server
          image: websocket-server:dev
          args: [{args}]
          ports:
            - {{name: ws, containerPort: 8080, protocol: TCP}}
          readinessProbe:
            tcpSocket: {{port: 8080}}
            periodSeconds: 2
"
        ));
    }
    s
}

pub struct Check {
    pub secs: Vec<f64>,
    pub requests: Vec<u64>,
    pub peak_rss_kib: Vec<u64>,
    /// Each request of the last run: `verb resource` as the audit log has it.
    pub last_requests: Vec<String>,
}

/// `check svc/app-0` in a namespace of 200 Services and 2,000 Ready pods,
/// through the real API server.
pub async fn check(c: &RealCluster, plugin: &Path, repeat: usize) -> anyhow::Result<Check> {
    let ns = "bench-check";
    let setup = Instant::now();
    c.kubectl(
        &["apply", "-f", "-"],
        Some(&workloads(ns, "app", 200, 10, false, &[])),
    )?;
    c.wait_ready(ns, 2000, Duration::from_secs(900))?;
    c.wait_slices(ns, 2000, Duration::from_secs(600))?;
    eprintln!(
        "[bench] cluster: 200 Services, 2,000 Ready pods in EndpointSlices after {:.0} s",
        setup.elapsed().as_secs_f64()
    );
    let mut out = Check {
        secs: vec![],
        requests: vec![],
        peak_rss_kib: vec![],
        last_requests: vec![],
    };
    for _ in 0..repeat {
        let mark = c.audit_mark();
        let run = run_plugin(
            plugin,
            &c.kubeconfig,
            &["check", "svc/app-0", "-n", ns, "-o", "json"],
        )
        .await?;
        run.expect("app-0")?;
        let events = plugin_requests(&c.audit_since(mark)?);
        out.secs.push(run.secs);
        out.requests.push(events.len() as u64);
        out.peak_rss_kib.push(run.max_rss_kib);
        out.last_requests = events;
    }
    Ok(out)
}

/// The plugin's requests among audit events: the admin user's, not kubectl's
/// (nothing else runs as the admin while the plugin runs).
fn plugin_requests(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| {
            let user = e["user"]["username"].as_str().unwrap_or("");
            let agent = e["userAgent"].as_str().unwrap_or("");
            !user.starts_with("system:") && !agent.starts_with("kubectl/")
        })
        .map(|e| {
            let uri = e["requestURI"].as_str().unwrap_or("");
            let path = uri.split('?').next().unwrap_or(uri);
            format!("{} {}", e["verb"].as_str().unwrap_or("?"), path)
        })
        .collect()
}

pub struct PerPod {
    pub plugin_secs: Vec<f64>,
    /// kube-apiserver's CPU seconds during each plugin run.
    pub api_cpu_secs: Vec<f64>,
    pub direct_secs: Vec<f64>,
    pub manual_secs: Vec<f64>,
    pub requests: Vec<u64>,
    /// `--connect 1`: the part that does not scale with the connections
    /// (process start, 8 reads, and a port-forward and a log stream per pod).
    pub fixed_secs: Vec<f64>,
}

/// `per-pod --connect 10 --parallel 4 --hold 0s` over 20 pods through the
/// real API server and node agent; the same connections straight to the pod
/// IPs from inside the cluster's network namespace; and the manual routine.
pub async fn per_pod(c: &RealCluster, plugin: &Path, repeat: usize) -> anyhow::Result<PerPod> {
    let ns = "bench-perpod";
    c.kubectl(
        &["apply", "-f", "-"],
        Some(&workloads(ns, "web", 1, 20, true, &[])),
    )?;
    c.wait_ready(ns, 20, Duration::from_secs(300))?;
    c.wait_slices(ns, 20, Duration::from_secs(120))?;
    let pods = c.pod_ips(ns)?;
    if pods.len() != 20 {
        bail!("expected 20 pods, got {}", pods.len());
    }
    let backends: Vec<SocketAddr> = pods.iter().map(|(_, a)| *a).collect();
    let names: Vec<String> = pods.iter().map(|(n, _)| n.clone()).collect();
    let mut out = PerPod {
        plugin_secs: vec![],
        api_cpu_secs: vec![],
        direct_secs: vec![],
        manual_secs: vec![],
        requests: vec![],
        fixed_secs: vec![],
    };
    let args = per_pod_args(ns);
    let mut args1 = args;
    args1[5] = "1";
    for _ in 0..repeat {
        c.settle();
        let mark = c.audit_mark();
        let cpu = c.api_cpu_secs();
        let run = run_plugin(plugin, &c.kubeconfig, &args).await?;
        out.api_cpu_secs.push(c.api_cpu_secs() - cpu);
        if run.code != 0 {
            bail!(
                "per-pod exited {}: {}",
                run.code,
                run.stdout.chars().take(300).collect::<String>()
            );
        }
        run.expect("web-")?;
        out.requests
            .push(plugin_requests(&c.audit_since(mark)?).len() as u64);
        out.plugin_secs.push(run.secs);
        c.settle();
        let run = run_plugin(plugin, &c.kubeconfig, &args1).await?;
        if run.code != 0 {
            bail!("per-pod --connect 1 exited {}", run.code);
        }
        out.fixed_secs.push(run.secs);
        c.settle();
        out.direct_secs.push(c.direct(&backends, 10, 4)?);
        c.settle();
        out.manual_secs.push(manual(c, ns, &names, 10).await?);
    }
    Ok(out)
}

/// (busy, total) jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = f.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = f.get(3).unwrap_or(&0) + f.get(4).unwrap_or(&0);
    (total.saturating_sub(idle), total)
}

/// What a user does by hand, pod after pod: `kubectl port-forward pod/P
/// :8080`, wait for its "Forwarding from" line, the same `connect` WebSocket
/// connections with the same client through it, then stop kubectl.
async fn manual(c: &RealCluster, ns: &str, pods: &[String], connect: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    for pod in pods {
        let mut child = tokio::process::Command::new(c.kubectl_path())
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["port-forward", "-n", ns, &format!("pod/{pod}"), ":8080"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start kubectl port-forward")?;
        let stdout = child.stdout.take().context("no kubectl stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some(Ok(port)) = rest.split_whitespace().next().map(str::parse::<u16>)
                {
                    return Some(port);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| {
            format!("kubectl port-forward pod/{pod} printed no \"Forwarding from\"")
        })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        direct_from(&[addr], connect, 1).await?;
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    Ok(start.elapsed().as_secs_f64())
}

pub struct Logs {
    pub plugin_secs: Vec<f64>,
    pub plugin_bytes_per_pod: Vec<f64>,
    pub loop_secs: Vec<f64>,
    pub loop_bytes_per_pod: Vec<f64>,
    pub requests: Vec<u64>,
}

/// Pods of the `logs` row, and the lines each has logged before it serves.
const LOG_PODS: u64 = 50;
const LOG_LINES: &str = "--log-history=100000";

/// `logs svc/chatty` over 50 pods whose logs hold 100,000 lines each
/// (`websocket-server --log-history`), through the real API server and node
/// agent, vs the loop a user writes today: `kubectl logs --tail=500` per
/// pod, the same 500 lines the plugin asks for, grepped for the last count.
pub async fn logs(c: &RealCluster, plugin: &Path, repeat: usize) -> anyhow::Result<Logs> {
    let ns = "bench-logs";
    c.kubectl(
        &["apply", "-f", "-"],
        Some(&workloads(
            ns,
            "chatty",
            1,
            LOG_PODS as u32,
            true,
            &[LOG_LINES],
        )),
    )?;
    c.wait_ready(ns, LOG_PODS, Duration::from_secs(300))?;
    c.wait_slices(ns, LOG_PODS, Duration::from_secs(120))?;
    // Ready is `listening on`; the node agent may still be reading the
    // history from the pipes. Wait (untimed) until every log ends with the
    // real count.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = run_plugin(
            plugin,
            &c.kubeconfig,
            &["logs", "svc/chatty", "-n", ns, "-o", "json"],
        )
        .await?;
        let zeros = serde_json::from_str::<Value>(&run.stdout).map_or(0, |j| zero_counts(&j));
        if zeros == LOG_PODS {
            break;
        }
        if Instant::now() > deadline {
            bail!("{ns}: {zeros} of {LOG_PODS} logs end with `Active connections: 0` after 120 s");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut out = Logs {
        plugin_secs: vec![],
        plugin_bytes_per_pod: vec![],
        loop_secs: vec![],
        loop_bytes_per_pod: vec![],
        requests: vec![],
    };
    let script = format!(
        "for p in $(kubectl get pods -n {ns} -l app=chatty -o name); do \
           printf '%s ' \"$p\"; kubectl logs -n {ns} --tail=500 \"$p\" | grep 'Active connections' | tail -n 1; \
         done"
    );
    let kubectl_dir = c
        .kubectl_path()
        .parent()
        .context("kubectl without a directory")?
        .to_path_buf();
    let path = format!(
        "{}:{}",
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for _ in 0..repeat {
        let (audit, node) = (c.audit_mark(), c.node_log_mark());
        let run = run_plugin(
            plugin,
            &c.kubeconfig,
            &["logs", "svc/chatty", "-n", ns, "-o", "json"],
        )
        .await?;
        if run.code != 0 {
            bail!(
                "logs exited {}: {}",
                run.code,
                run.stdout.chars().take(300).collect::<String>()
            );
        }
        let json: Value = serde_json::from_str(&run.stdout).context("logs -o json is not JSON")?;
        let counted = zero_counts(&json);
        if counted != LOG_PODS {
            bail!("logs found the count 0 in {counted} of {LOG_PODS} pods");
        }
        out.requests
            .push(plugin_requests(&c.audit_since(audit)?).len() as u64);
        let (bytes, _) = c.log_bytes_since(node, ns)?;
        out.plugin_secs.push(run.secs);
        out.plugin_bytes_per_pod
            .push(bytes as f64 / LOG_PODS as f64);

        let node = c.node_log_mark();
        let start = Instant::now();
        let shell = tokio::process::Command::new("sh")
            .args(["-c", &script])
            .env("KUBECONFIG", &c.kubeconfig)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("cannot run the kubectl logs loop")?;
        let secs = start.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&shell.stdout);
        let zeros = text
            .lines()
            .filter(|l| l.ends_with("Active connections: 0"))
            .count() as u64;
        if !shell.status.success() || zeros != LOG_PODS {
            bail!(
                "the kubectl logs loop found the count 0 in {zeros} of {LOG_PODS} pods: {}",
                String::from_utf8_lossy(&shell.stderr)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        let (bytes, _) = c.log_bytes_since(node, ns)?;
        out.loop_secs.push(secs);
        out.loop_bytes_per_pod.push(bytes as f64 / LOG_PODS as f64);
    }
    Ok(out)
}

/// Pods whose count `logs -o json` read as 0.
fn zero_counts(json: &Value) -> u64 {
    json["observations"]["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["active"] == 0)
        .count() as u64
}
