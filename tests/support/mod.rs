//! Helpers shared by the plugin's integration tests: starting the lab (a local
//! TEST DOUBLE of the Kubernetes API), running the plugin binary against it as
//! a subprocess with `--kubeconfig`, reading its JSON report, and bounded
//! polling. Each test file uses what it needs, hence `dead_code` is allowed.

#![allow(dead_code)]

pub mod real_cluster;

use std::fmt::Debug;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};
use wsaffinity_lab::{Lab, LabOptions, Scenario};

/// The plugin binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-wsaffinity");
/// Upper bound for one plugin run in these tests.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Starts the lab. With `processes`, its pods are real `websocket-server`
/// processes, which must have been built first.
pub async fn start_lab(scenario: Scenario, tls: bool, processes: bool) -> Lab {
    let started = Lab::start(LabOptions {
        scenario,
        tls,
        processes,
    })
    .await;
    if processes {
        started.expect("lab starts (run `cargo build -p websocket-server` first)")
    } else {
        started.expect("start the lab")
    }
}

/// How a test file reads the exit code: `Option<i32>` (`None` when a signal
/// ended the plugin) or `i32` (`-1` then).
pub trait ExitCode {
    fn from_status(code: Option<i32>) -> Self;
}

impl ExitCode for Option<i32> {
    fn from_status(code: Option<i32>) -> Self {
        code
    }
}

impl ExitCode for i32 {
    fn from_status(code: Option<i32>) -> Self {
        code.unwrap_or(-1)
    }
}

/// One finished plugin run.
pub struct Run<C = Option<i32>> {
    pub code: C,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl<C: ExitCode> Run<C> {
    pub fn from_output(out: Output, took: Duration) -> Self {
        Run {
            code: C::from_status(out.status.code()),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took,
        }
    }
}

impl<C> Run<C> {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The finding codes of the JSON report on stdout.
    pub fn codes(&self) -> Vec<String> {
        codes(&self.json())
    }
}

impl<C: Debug> Run<C> {
    /// Exit code, stdout and stderr, for assertion messages.
    pub fn all(&self) -> String {
        format!("exit {:?}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

/// The finding codes of a JSON report, in order.
pub fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The plugin with `args`, then `--kubeconfig kubeconfig`; no `KUBECONFIG`,
/// `NO_COLOR=1`, stdin closed, stdout and stderr piped, killed on drop.
pub fn command(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Waits for a spawned plugin, at most [`RUN_LIMIT`].
pub async fn wait<C: ExitCode>(child: Child, started: Instant) -> Run<C> {
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("the plugin finishes in time")
        .expect("the plugin runs");
    Run::from_output(out, started.elapsed())
}

/// Runs the plugin (see [`command`]) to the end, at most [`RUN_LIMIT`].
pub async fn run<C: ExitCode>(kubeconfig: &Path, args: &[&str]) -> Run<C> {
    let started = Instant::now();
    let child = command(kubeconfig, args).spawn().expect("spawn the plugin");
    wait(child, started).await
}

/// Polls `check` until it holds (bounded).
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `kubectl wsaffinity spread ARGS` with no cluster (`--url`; `KUBECONFIG`
/// points nowhere): its stdout, after asserting it exited 0.
pub fn spread_without_cluster(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .arg("spread")
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-wsaffinity");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Whether util-linux `script` (a pty for terminal tests) is missing; says
/// the test is skipped when it is.
pub fn script_missing() -> bool {
    let missing = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err();
    if missing {
        eprintln!("skipping: util-linux `script` is not installed");
    }
    missing
}

/// A kubeconfig (YAML) with one context: `server`, namespace `dev`, and a
/// user with bearer `token`.
pub fn token_kubeconfig(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\n\
         contexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: dev}}\nusers:\n- name: u\n  user: {{token: {token}}}\n"
    )
}

/// The plugin (blocking) with no cluster configured: no `KUBECONFIG`, `HOME`
/// the temp dir (no `~/.kube/config`), `NO_COLOR=1`.
pub fn offline_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("KUBECONFIG")
        .env("HOME", std::env::temp_dir())
        .env("NO_COLOR", "1");
    cmd
}

/// Runs [`offline_command`] with `args` to the end.
pub fn run_offline(args: &[&str]) -> Output {
    offline_command()
        .args(args)
        .output()
        .expect("run kubectl-wsaffinity")
}

/// Output bytes as text (invalid UTF-8 replaced).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits (at most 5 s) until the lab's gauges show no open port-forward,
/// log follow or API connection: its side of "nothing left open".
pub async fn lab_holds_nothing_open(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = lab.counts();
        if c.open_streams() == 0 && c.open_connections == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the lab still holds streams or connections open after the plugin exited: \
             {} port-forwards, {} log follows, {} API connections",
            c.open_port_forwards,
            c.open_log_follows,
            c.open_connections
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last `Active connections: N` in pod `ns/pod`'s log, read with kube-rs.
pub async fn logged_active(lab: &Lab, ns: &str, pod: &str) -> Option<u64> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, LogParams};
    let kc = kube::config::Kubeconfig::read_from(lab.kubeconfig_path()).ok()?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .ok()?;
    let client = kube::Client::try_from(config).ok()?;
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let text = pods
        .logs(
            pod,
            &LogParams {
                tail_lines: Some(200),
                ..LogParams::default()
            },
        )
        .await
        .ok()?;
    text.lines().rev().find_map(|l| {
        let (_, n) = l.split_once("Active connections: ")?;
        n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}
