//! `spread --emit artillery` run by the real Artillery (npm) against two
//! companion `websocket-server`s behind a real HAProxy on loopback.
//!
//! Artillery is installed once into `target/artillery` (override with
//! `WSAFFINITY_ARTILLERY_DIR`):
//!   PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix target/artillery --no-audit --no-fund artillery@2.0.21
//! The test runs that command itself when the directory has no Artillery, and
//! fails with this message when npm cannot. A preloaded guard keeps Node on
//! loopback (no DNS for other hosts) and Artillery's telemetry off.

mod spread_support;
mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spread_support::{Backend, backend, backends, free_port, self_signed_pem};

const ARTILLERY_PACKAGE: &str = "artillery@2.0.21";
const HOST: &str = "websocket-dev.example.com";

fn artillery_dir() -> PathBuf {
    std::env::var_os("WSAFFINITY_ARTILLERY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artillery"))
}

fn install_command(dir: &Path) -> String {
    format!(
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix {} --no-audit --no-fund {ARTILLERY_PACKAGE}",
        dir.display()
    )
}

/// The Artillery CLI, installed with npm on first use (one install at a time).
fn artillery() -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = artillery_dir();
    let bin = dir.join("node_modules/.bin/artillery");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot create {} ({e}); install Artillery with: {}",
            dir.display(),
            install_command(&dir)
        )
    });
    let mut child = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(ARTILLERY_PACKAGE)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "Artillery is not installed and npm cannot be started ({e}). Install Node.js and npm, then: {}",
                install_command(&dir)
            )
        });
    let status = wait_bounded(&mut child, Duration::from_secs(600));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    match status {
        Some(s) if s.success() && bin.exists() => bin,
        _ => panic!(
            "installing Artillery with npm failed ({status:?}): {}\nInstall it with: {}",
            stderr.lines().rev().take(15).collect::<Vec<_>>().join("\n"),
            install_command(&dir)
        ),
    }
}

/// Waits at most `limit`; kills the child after that.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Preloaded into Node: DNS only for localhost and IP literals, telemetry off.
const NODE_GUARD: &str = r#"'use strict';
const dns = require('dns');
const net = require('net');
const Module = require('module');
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  if (host === 'localhost' || net.isIP(host)) return lookup.apply(this, arguments);
  const err = new Error('getaddrinfo ENOTFOUND ' + host + ' (test: loopback only)');
  err.code = 'ENOTFOUND';
  process.nextTick(() => cb(err));
  return {};
};
try {
  const p = require.resolve('artillery/lib/telemetry.js', { paths: [process.env.WSAFFINITY_ARTILLERY_HOME] });
  const m = new Module(p);
  m.filename = p;
  m.loaded = true;
  m.exports = { init: () => ({ capture() {}, shutdown: async () => {} }) };
  require.cache[p] = m;
} catch (e) {}
"#;

/// HAProxy (roundrobin) that only lets through requests carrying
/// `X-Test: yes` and a `Host` of HOST (so the emitted headers and the
/// `--resolve` → Host rewrite are both proven by a successful run).
struct Proxy {
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn haproxy_requiring_headers(servers: &[Backend], tls_pem: Option<&Path>) -> Proxy {
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut cfg = String::from(
            "global\n  maxconn 2000\n  nbthread 1\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 60s\n\n",
        );
        cfg.push_str(&format!(
            "frontend fe\n  bind 127.0.0.1:{port}{}\n  http-request deny deny_status 403 unless {{ req.hdr(x-test) -m str yes }}\n  http-request deny deny_status 421 unless {{ req.hdr(host) -m beg {HOST} }}\n  default_backend be\n\nbackend be\n  balance roundrobin\n",
            tls_pem
                .map(|p| format!(" ssl crt {}", p.display()))
                .unwrap_or_default()
        ));
        for b in servers {
            cfg.push_str(&format!("  server {} {}\n", b.pod, b.addr));
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy log");
        let child = Command::new(haproxy_bin())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy (Debian package `haproxy`; .ci/run installs it)");
        let mut proxy = Proxy {
            port,
            child: Some(child),
            _dir: dir,
        };
        if listening(&mut proxy) {
            return proxy;
        }
    }
    panic!("haproxy did not start listening (is Debian's haproxy installed?)");
}

fn haproxy_bin() -> PathBuf {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("haproxy"))
}

fn listening(p: &mut Proxy) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], p.port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(c) = p.child.as_mut()
            && let Ok(Some(_)) = c.try_wait()
        {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `kubectl wsaffinity spread ... --emit artillery` (no cluster: --url).
fn emit(args: &[&str]) -> String {
    support::spread_without_cluster(&[args, &["--emit", "artillery"]].concat())
}

/// [`emit`], with what it wrote on stderr.
fn emit_with_stderr(args: &[&str]) -> (String, String) {
    let out = Command::new(support::BIN)
        .arg("spread")
        .args(args)
        .args(["--emit", "artillery"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-wsaffinity");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (String::from_utf8(out.stdout).expect("UTF-8"), stderr)
}

/// The pods the virtual users logged (`landed on pod X`), sorted.
fn landed(run: &ArtilleryRun) -> Vec<String> {
    let mut v: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("landed on pod "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

struct ArtilleryRun {
    report: Value,
    stdout: String,
}

impl ArtilleryRun {
    fn counter(&self, name: &str) -> u64 {
        self.report["aggregate"]["counters"][name]
            .as_u64()
            .unwrap_or(0)
    }
}

/// `artillery run --output report.json test.yml`, at most 120 s; `env`
/// is added to Artillery's environment.
fn run_artillery(bin: &Path, scenario: &str, env: &[(&str, &Path)]) -> ArtilleryRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("test.yml");
    std::fs::write(&script, scenario).expect("write test.yml");
    let guard = dir.path().join("guard.cjs");
    std::fs::File::create(&guard)
        .and_then(|mut f| f.write_all(NODE_GUARD.as_bytes()))
        .expect("write the Node guard");
    let report = dir.path().join("report.json");
    let stdout_path = dir.path().join("stdout.txt");
    let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
    let stderr = std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file");
    let mut child = Command::new(bin)
        .arg("run")
        .arg("--output")
        .arg(&report)
        .arg(&script)
        .current_dir(dir.path())
        .env("NODE_OPTIONS", format!("--require {}", guard.display()))
        .env("WSAFFINITY_ARTILLERY_HOME", artillery_dir())
        .env("ARTILLERY_DISABLE_TELEMETRY", "true")
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start artillery");
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
    assert!(
        status.is_some(),
        "artillery took more than 120 s\n{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!("artillery wrote no report ({e}); exit {status:?}\n{stdout}\n{stderr}")
    });
    let report: Value = serde_json::from_str(&text).expect("Artillery's JSON report");
    ArtilleryRun { report, stdout }
}

/// [`run_artillery`] on a blocking thread, so the backends keep serving.
async fn artillery_run(bin: &Path, scenario: &str, env: &[(&'static str, &Path)]) -> ArtilleryRun {
    let (bin, scenario) = (bin.to_path_buf(), scenario.to_string());
    let env: Vec<(&'static str, PathBuf)> =
        env.iter().map(|(k, v)| (*k, v.to_path_buf())).collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        run_artillery(&bin, &scenario, &env)
    })
    .await
    .expect("artillery task")
}

/// Every one of `n` virtual users completed and none failed.
fn assert_all_completed(run: &ArtilleryRun, n: u64) {
    assert_eq!(
        (
            run.counter("vusers.completed"),
            run.counter("vusers.failed")
        ),
        (n, 0),
        "{}\n{}",
        run.report["aggregate"]["counters"],
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_artillery_scenario_runs_with_no_failed_virtual_users() {
    let bin = artillery();
    let servers = backends(2).await;
    let proxy = haproxy_requiring_headers(&servers, None);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let resolve = format!("{HOST}:{}:127.0.0.1", proxy.port);
    let common = [
        "--url",
        url.as_str(),
        "--resolve",
        resolve.as_str(),
        "--clients",
        "3",
        "--connect",
        "2",
    ];

    let mut args = common.to_vec();
    args.extend(["-H", "X-Test: yes"]);
    let scenario = emit(&args);
    // The structure Artillery reads.
    let doc: Value = serde_saphyr::from_str(&scenario).expect("the scenario is YAML");
    assert!(scenario.starts_with("# "), "{scenario}");
    assert_eq!(
        doc["config"]["target"],
        format!("ws://127.0.0.1:{}/", proxy.port)
    );
    assert_eq!(doc["config"]["phases"][0]["arrivalCount"], 6);
    assert_eq!(doc["config"]["ws"]["headers"]["x-test"], "yes");
    assert_eq!(
        doc["config"]["ws"]["headers"]["Host"],
        format!("{HOST}:{}", proxy.port)
    );
    assert_eq!(doc["scenarios"][0]["engine"], "ws");
    assert_eq!(
        doc["scenarios"][0]["flow"][0]["send"]["capture"]["json"],
        "$.pod"
    );

    let run = artillery_run(&bin, &scenario, &[]).await;
    assert_all_completed(&run, 6);
    assert_eq!(run.counter("websocket.messages_received"), 6);
    // Every connection captured the hello's pod; roundrobin reached both.
    let landed: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("landed on pod "))
        .collect();
    assert_eq!(landed.len(), 6, "{}", run.stdout);
    for pod in ["ws-0", "ws-1"] {
        assert!(landed.contains(&pod), "{pod} not reached: {landed:?}");
    }

    // The same scenario without the header the proxy requires: every virtual
    // user fails, so a clean run above really went through the proxy's checks.
    let scenario = emit(&common);
    let run = artillery_run(&bin, &scenario, &[]).await;
    assert_eq!(
        run.counter("vusers.failed"),
        6,
        "{}",
        run.report["aggregate"]["counters"]
    );
    assert_eq!(run.counter("vusers.completed"), 0);
    drop(proxy);
    drop(servers);
}

/// `spread` arguments for 2 clients x 2 connections through the proxy that
/// [`haproxy_requiring_headers`] starts: its URL, `--resolve` and header.
fn through_the_proxy<'a>(url: &'a str, resolve: &'a str) -> Vec<&'a str> {
    vec![
        "--url",
        url,
        "--resolve",
        resolve,
        "--clients",
        "2",
        "--connect",
        "2",
        "-H",
        "X-Test: yes",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_artillery_scenario_over_tls_connects_to_the_resolved_address_as_the_host() {
    let bin = artillery();
    let certs = tempfile::tempdir().expect("temp dir");
    let pem = self_signed_pem(HOST, certs.path());
    // Node trusts the certificate alone (not the key) through NODE_EXTRA_CA_CERTS.
    let text = std::fs::read_to_string(&pem).expect("read pem");
    let end = "-----END CERTIFICATE-----";
    let cert_only = text
        .find(end)
        .map(|i| &text[..i + end.len()])
        .expect("a certificate in the pem");
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, format!("{cert_only}\n")).expect("write ca.pem");

    let servers = backends(2).await;
    let proxy = haproxy_requiring_headers(&servers, Some(&pem));
    let url = format!("wss://{HOST}:{}/", proxy.port);
    let resolve = format!("{HOST}:{}:127.0.0.1", proxy.port);
    let args = through_the_proxy(&url, &resolve);

    // Verified TLS to 127.0.0.1: passes only if the server name (SNI and the
    // certificate check) is the host, as the emitted `servername` says.
    let scenario = emit(&args);
    let doc: Value = serde_saphyr::from_str(&scenario).expect("YAML");
    assert_eq!(doc["config"]["ws"]["servername"], HOST);
    assert_eq!(
        doc["config"]["target"],
        format!("wss://127.0.0.1:{}/", proxy.port)
    );
    assert!(doc["config"].get("tls").is_none(), "{scenario}");
    let run = artillery_run(&bin, &scenario, &[("NODE_EXTRA_CA_CERTS", ca.as_path())]).await;
    assert_all_completed(&run, 4);

    // --insecure: no CA given, the self-signed certificate is accepted.
    let mut insecure = args.clone();
    insecure.push("--insecure");
    let scenario = emit(&insecure);
    let doc: Value = serde_saphyr::from_str(&scenario).expect("YAML");
    assert_eq!(doc["config"]["tls"]["rejectUnauthorized"], false);
    let run = artillery_run(&bin, &scenario, &[]).await;
    assert_all_completed(&run, 4);
    drop(proxy);
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_artillery_scenario_passes_against_a_server_that_sends_no_hello() {
    let bin = artillery();
    // `websocket-server --no-hello`: a pure echo server.
    let quiet = backend("quiet-0", false).await;
    let url = format!("ws://{}/", quiet.addr);
    let scenario = emit(&["--url", url.as_str(), "--clients", "1", "--connect", "2"]);
    let run = artillery_run(&bin, &scenario, &[]).await;
    // No `response timeout`: the capture reads the echo of the probe.
    assert_all_completed(&run, 2);
    assert_eq!(landed(&run), ["unknown", "unknown"], "{}", run.stdout);
    drop(quiet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_artillery_scenario_captures_the_hello_pod_where_a_server_sends_one() {
    let bin = artillery();
    // Roundrobin over a server that says hello and one that does not.
    let servers = vec![backend("ws-0", true).await, backend("quiet-1", false).await];
    let proxy = haproxy_requiring_headers(&servers, None);
    let url = format!("ws://{HOST}:{}/", proxy.port);
    let resolve = format!("{HOST}:{}:127.0.0.1", proxy.port);
    let scenario = emit(&through_the_proxy(&url, &resolve));
    let run = artillery_run(&bin, &scenario, &[]).await;
    assert_all_completed(&run, 4);
    // The hello server's connections carry its pod; the others the probe's.
    assert_eq!(
        landed(&run),
        ["unknown", "unknown", "ws-0", "ws-0"],
        "{}",
        run.stdout
    );
    // One message read per connection: after a hello, the echo is not read
    // by the capture again (that would crash Artillery's worker).
    assert_eq!(run.counter("websocket.messages_received"), 4);
    drop(proxy);
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artillery_export_warns_on_stderr_that_cookie_affinity_is_not_reproduced() {
    let bin = artillery();
    let quiet = backend("quiet-0", false).await;
    let url = format!("ws://{}/", quiet.addr);
    let args = ["--url", url.as_str(), "--clients", "2", "--connect", "3"];

    let (scenario, stderr) = emit_with_stderr(&args);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("warning: --emit artillery: "),
        "{stderr}"
    );
    assert!(lines[0].contains("keeps no cookies"), "{stderr}");
    assert!(lines[0].contains("2 clients x 3 connections"), "{stderr}");
    assert!(lines[0].contains("--emit k6"), "{stderr}");
    // stdout is only the file, and Artillery runs it.
    assert!(!scenario.contains("warning:"), "{scenario}");
    let run = artillery_run(&bin, &scenario, &[]).await;
    assert_all_completed(&run, 6);

    // Nothing to warn about: no cookies asked for, or one connection per client.
    let (no_cookies, stderr) = emit_with_stderr(&[&args[..], &["--no-cookies"]].concat());
    assert_eq!(stderr, "");
    assert!(no_cookies.contains("arrivalCount: 6"), "{no_cookies}");
    let (_, stderr) =
        emit_with_stderr(&["--url", url.as_str(), "--clients", "6", "--connect", "1"]);
    assert_eq!(stderr, "");
    drop(quiet);
}
