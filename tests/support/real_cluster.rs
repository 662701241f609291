//! One REAL control plane per test binary (`wsaffinity-lab cluster up`:
//! kube-apiserver, etcd, controllers and scheduler built from their Go modules,
//! with the lab's node agent as kubelets), and the real kubectl built with it.
//! Without the programs (or without root) a test prints why and skips, except
//! with `CI=true`, where that is a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub struct RealCluster {
    pub kubeconfig: PathBuf,
    /// The launcher's process id (SIGUSR1 restarts kube-apiserver).
    pub launcher: u32,
    pub dir: PathBuf,
    /// Traefik's `web` entrypoint on the host (`export WSAFFINITY_INGRESS=`).
    pub ingress: Option<SocketAddr>,
}

pub fn bin_dir() -> PathBuf {
    Path::new(REPO).join("target/cluster/bin")
}

pub fn kubectl_path() -> PathBuf {
    bin_dir().join("kubectl")
}

pub fn lab_binary() -> PathBuf {
    Path::new(super::BIN)
        .parent()
        .expect("the plugin binary has a directory")
        .join("wsaffinity-lab")
}

/// Why the real cluster cannot run here, if it cannot.
fn missing() -> Option<String> {
    for p in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "traefik",
    ] {
        if !bin_dir().join(p).is_file() {
            return Some(format!(
                "{} is missing: run scripts/cluster-build.sh",
                bin_dir().join(p).display()
            ));
        }
    }
    if !lab_binary().is_file() {
        return Some(format!(
            "{} is missing: run cargo build --workspace --bins",
            lab_binary().display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: the cluster needs its own network namespace".into());
    }
    None
}

static CLUSTER: OnceLock<Result<RealCluster, String>> = OnceLock::new();
/// One real-cluster test at a time: on 2 cores, two tests that each start
/// programs (a second cluster, a scale-up) starve the pods' probes, whose
/// 1 s timeout then fails as a real kubelet's would.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The shared cluster and this test's turn, or `None` (after printing why)
/// when it cannot run here. With `CI=true` a missing program is a panic,
/// never a skip.
pub fn cluster() -> Option<(&'static RealCluster, std::sync::MutexGuard<'static, ()>)> {
    let turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    shared().map(|c| (c, turn))
}

fn shared() -> Option<&'static RealCluster> {
    if let Some(why) = missing() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and the real cluster cannot run: {why}");
        }
        eprintln!("skipped: the real control plane is not available here ({why})");
        return None;
    }
    match CLUSTER.get_or_init(start) {
        Ok(c) => Some(c),
        Err(e) => panic!("the real cluster did not start: {e}"),
    }
}

fn start() -> Result<RealCluster, String> {
    // The launcher must outlive every test, so it is spawned from a thread
    // that never ends (PDEATHSIG fires when the spawning thread exits); it
    // gets SIGTERM when the test binary exits and then removes everything.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = Command::new(lab_binary());
        cmd.args([
            "cluster",
            "up",
            "--empty",
            "--nodes",
            "3",
            "--node-monitor-grace",
            "8",
            "--ingress",
            "traefik",
        ])
        .env("RUST_LOG", "info,kube_client=off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
                Ok(())
            });
        }
        let child: Child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(format!("spawning wsaffinity-lab: {e}")));
                return;
            }
        };
        let pid = child.id();
        let mut child = child;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        let mut ingress = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            eprintln!("[cluster] {line}");
            if let Some(addr) = line.strip_prefix("export WSAFFINITY_INGRESS=") {
                ingress = addr.trim().parse().ok();
            }
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                let kc = PathBuf::from(path);
                let dir = kc.parent().map(Path::to_path_buf).unwrap_or_default();
                let _ = tx.send(Ok(RealCluster {
                    kubeconfig: kc,
                    launcher: pid,
                    dir,
                    ingress,
                }));
                sent = true;
                break;
            }
        }
        if !sent {
            let status = child.wait();
            let _ = tx.send(Err(format!(
                "cluster up ended before it was ready: {status:?}"
            )));
            return;
        }
        // Keep draining its output, and keep this thread (and so the child) alive.
        for line in lines {
            match line {
                Ok(l) => eprintln!("[cluster] {l}"),
                Err(_) => break,
            }
        }
        let _ = child.wait();
        loop {
            std::thread::park();
        }
    });
    rx.recv_timeout(Duration::from_secs(240))
        .map_err(|e| format!("waiting for cluster up: {e}"))?
}

/// The plugin with `args` and `--kubeconfig kc`, to the end (bounded).
pub fn plugin(kc: &Path, args: &[&str]) -> super::Run<i32> {
    let started = Instant::now();
    let mut cmd = Command::new(super::BIN);
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(kc)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let out = run_bounded(cmd, Duration::from_secs(90));
    super::Run::from_output(out, started.elapsed())
}

pub fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: killing our own child.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("command did not finish within {limit:?}: {cmd:?}");
        }
    }
}

impl RealCluster {
    /// The real kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        self.kubectl_as(&self.kubeconfig, args, None)
    }

    pub fn kubectl_as(
        &self,
        kc: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, String> {
        let mut cmd = Command::new(kubectl_path());
        cmd.arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().map_err(|e| format!("kubectl: {e}"))?;
        if let Some(text) = stdin {
            use std::io::Write;
            let mut si = child.stdin.take().expect("piped stdin");
            si.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let so = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(so)
        } else {
            Err(format!(
                "kubectl {} failed: {}{}",
                args.join(" "),
                so,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl JSON: {e}\n{out}"))
    }

    /// The API server's audit log's length now: requests completed after
    /// this mark are in [`Self::audit_since`].
    pub fn audit_mark(&self) -> u64 {
        std::fs::metadata(self.dir.join("logs/audit.log")).map_or(0, |m| m.len())
    }

    /// `(user agent, verb, request URI)` of every request completed after
    /// `mark`, as the API server's audit log records it. Waits a moment: the
    /// API server writes each event as the request completes.
    pub fn audit_since(&self, mark: u64) -> Vec<(String, String, String)> {
        use std::io::{Read, Seek, SeekFrom};
        std::thread::sleep(Duration::from_millis(500));
        let mut text = String::new();
        let mut f =
            std::fs::File::open(self.dir.join("logs/audit.log")).expect("the audit log exists");
        f.seek(SeekFrom::Start(mark)).expect("seek");
        f.read_to_string(&mut text).expect("read the audit log");
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                (s("userAgent"), s("verb"), s("requestURI"))
            })
            .collect()
    }

    pub fn apply(&self, yaml: &str) {
        self.kubectl_as(&self.kubeconfig, &["apply", "-f", "-"], Some(yaml))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A fresh namespace with the base manifests (Deployment `websocket-server`
    /// with `replicas` pods, its Service and Ingress), applied by the real kubectl.
    pub fn namespace_with_base(&self, ns: &str, replicas: u32) {
        let _ = self.kubectl(&["create", "namespace", ns]);
        self.kubectl(&["apply", "-n", ns, "-k", &format!("{REPO}/k8s/base")])
            .unwrap_or_else(|e| panic!("{e}"));
        if replicas != 2 {
            self.kubectl(&[
                "scale",
                "-n",
                ns,
                "deployment/websocket-server",
                &format!("--replicas={replicas}"),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Ready pods of `app=websocket-server` in `ns`.
    pub fn ready_pods(&self, ns: &str) -> Vec<String> {
        let list = self.kubectl_json(&["get", "pods", "-n", ns, "-l", "app=websocket-server"]);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect()
    }

    /// Wait (bounded) until `ns` has exactly `n` ready pods.
    pub fn wait_ready(&self, ns: &str, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let pods = self.ready_pods(ns);
            if pods.len() == n {
                return pods;
            }
            if Instant::now() > deadline {
                panic!(
                    "{ns}: {} ready pods, not {n}, after {within:?}:\n{}",
                    pods.len(),
                    self.kubectl(&["get", "pods", "-n", ns, "-o", "wide"])
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// A kubeconfig for `user` (no permissions of its own) from `cluster kubeconfig`.
    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        let out = Command::new(lab_binary())
            .args(["cluster", "kubeconfig", "--user", user])
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run wsaffinity-lab cluster kubeconfig");
        assert!(
            out.status.success(),
            "cluster kubeconfig: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(text.lines().last().expect("a path").trim())
    }

    /// `NAME PID` lines the launcher writes.
    pub fn pid_of(&self, component: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join("pids")).ok()?;
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == component)
            .and_then(|(_, p)| p.trim().parse().ok())
    }
}

/// Polls `check` (blocking) until it holds; panics after `within`.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
