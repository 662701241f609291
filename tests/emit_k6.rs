//! `spread --emit k6` and `--emit k6-operator`. k6 itself cannot be installed
//! here, so the script is checked for structure, parsed by Node
//! (`node --check`), and run by Node against stand-ins of k6's modules (a
//! fake `ws.connect` that answers with a hello): the headers reach
//! `ws.connect`, each VU makes M connections, and the hello's pod lands in the
//! counter. The TestRun manifest must parse as YAML with the expected fields.
//! `--emit` with a target reads the URL from its Ingress in the lab.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use wsaffinity_lab::Scenario;

fn emit(args: &[&str]) -> String {
    support::spread_without_cluster(args)
}

const K6_ARGS: [&str; 15] = [
    "--url",
    "wss://ws.example.com/chat?room=1",
    "--clients",
    "4",
    "--connect",
    "3",
    "-H",
    "Authorization: Bearer abc'\"def",
    "--resolve",
    "ws.example.com:443:127.0.0.1",
    "--insecure",
    "--hold",
    "2s",
    "--emit",
    "k6",
];

#[test]
fn emit_k6_script_has_the_spread_structure() {
    let s = emit(&K6_ARGS);
    assert!(s.starts_with("// "), "{s}");
    for line in [
        "import ws from 'k6/ws';",
        "import { check } from 'k6';",
        "import { Counter } from 'k6/metrics';",
        "const URL = \"wss://ws.example.com/chat?room=1\";",
        "const HEADERS = {\"authorization\":\"Bearer abc'\\\"def\"};",
        "const HOLD_MS = 2000;",
        "      executor: 'per-vu-iterations',",
        "      vus: 4,",
        "      iterations: 3,",
        "  insecureSkipTLSVerify: true,",
        "  hosts: { \"ws.example.com:443\": \"127.0.0.1:443\" },",
        "const connections = new Counter('wsaffinity_connections');",
        "export default function () {",
    ] {
        assert!(s.lines().any(|l| l == line), "missing `{line}`:\n{s}");
    }
    assert!(
        s.contains("ws.connect(URL, { headers: HEADERS"),
        "ws.connect with the headers:\n{s}"
    );
    assert!(s.contains("connections.add(1, { pod: pod })"), "{s}");
    // The header value is not repeated in the comments.
    assert!(
        !s.lines()
            .any(|l| l.starts_with("//") && l.contains("Bearer"))
    );
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stand-ins for k6's modules: `ws.connect` records its arguments, calls the
/// handler with a socket that delivers a hello (pods alternate) and fires the
/// close timers; `check` and `Counter` record what the script reports.
const K6_STUBS: &str = r#"
const __calls = [];
const __counted = [];
const __checks = [];
let __n = 0;
const ws = {
  connect(url, params, handler) {
    __calls.push({ url, params });
    const handlers = {};
    const timers = [];
    const socket = {
      on(event, f) { handlers[event] = f; },
      setTimeout(f, ms) { timers.push([ms, f]); },
      close() { socket.closed = true; },
      closed: false,
    };
    handler(socket);
    const pod = 'ws-' + (__n++ % 2);
    if (handlers.message) {
      handlers.message(JSON.stringify({ type: 'hello', pod: pod, connection: __n }));
      handlers.message('echo, not a hello');
    }
    timers.sort((a, b) => a[0] - b[0]);
    for (const [, f] of timers) { if (!socket.closed) f(); }
    if (!socket.closed) throw new Error('the script never closes the socket');
    return { status: 101, headers: {} };
  },
};
function check(value, checks) {
  const ok = Object.values(checks).every((f) => f(value));
  __checks.push(ok);
  return ok;
}
class Counter {
  constructor(name) { this.name = name; }
  add(value, tags) { __counted.push({ name: this.name, value, tags }); }
}
globalThis.__report = () => ({ calls: __calls, counted: __counted, checks: __checks });
"#;

const K6_RUNNER: &str = r#"
import script, { options } from './script.mjs';
const sc = options.scenarios.spread;
console.log = () => {};
for (let vu = 1; vu <= sc.vus; vu++) {
  globalThis.__VU = vu;
  for (let iter = 0; iter < sc.iterations; iter++) {
    globalThis.__ITER = iter;
    script();
  }
}
process.stdout.write(JSON.stringify(globalThis.__report()));
"#;

#[test]
fn emit_k6_script_runs_under_node_with_k6_stand_ins() {
    assert!(
        node_available(),
        "node is needed to check the k6 script (Debian package nodejs)"
    );
    let s = emit(&K6_ARGS);
    let dir = tempfile::tempdir().expect("temp dir");

    // The script as emitted: valid JavaScript (ES module).
    let emitted = dir.path().join("test.mjs");
    std::fs::write(&emitted, &s).expect("write test.mjs");
    let check = Command::new("node")
        .arg("--check")
        .arg(&emitted)
        .output()
        .expect("node --check");
    assert!(
        check.status.success(),
        "node --check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Run it: k6's imports replaced by the stand-ins.
    let body: String = s
        .lines()
        .filter(|l| !l.starts_with("import "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        s.lines().filter(|l| l.starts_with("import ")).count(),
        3,
        "{s}"
    );
    std::fs::write(dir.path().join("script.mjs"), format!("{K6_STUBS}\n{body}"))
        .expect("write script.mjs");
    std::fs::write(dir.path().join("runner.mjs"), K6_RUNNER).expect("write runner.mjs");
    let mut child = Command::new("node")
        .arg("runner.mjs")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("node output");
    assert!(
        out.status.success(),
        "node runner.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("runner JSON");

    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 12, "4 VUs x 3 connections");
    for call in calls {
        assert_eq!(call["url"], "wss://ws.example.com/chat?room=1");
        assert_eq!(
            call["params"]["headers"]["authorization"],
            "Bearer abc'\"def"
        );
    }
    let counted = report["counted"].as_array().expect("counted");
    assert_eq!(counted.len(), 12);
    let pods: Vec<&str> = counted
        .iter()
        .filter_map(|c| c["tags"]["pod"].as_str())
        .collect();
    assert_eq!(pods.iter().filter(|p| **p == "ws-0").count(), 6, "{pods:?}");
    assert_eq!(pods.iter().filter(|p| **p == "ws-1").count(), 6, "{pods:?}");
    assert!(
        counted
            .iter()
            .all(|c| c["name"] == "wsaffinity_connections")
    );
    assert!(
        report["checks"]
            .as_array()
            .is_some_and(|c| c.len() == 12 && c.iter().all(|ok| *ok == Value::Bool(true)))
    );
}

#[test]
fn emit_k6_operator_test_run_parses_with_the_expected_fields() {
    let y = emit(&[
        "--url",
        "ws://websocket-dev.example.com/",
        "--clients",
        "10",
        "--emit",
        "k6-operator",
        "-n",
        "websocket-app-dev",
    ]);
    let doc: Value = serde_saphyr::from_str(&y).expect("TestRun YAML");
    assert_eq!(doc["apiVersion"], "k6.io/v1alpha1");
    assert_eq!(doc["kind"], "TestRun");
    assert_eq!(doc["metadata"]["name"], "wsaffinity-spread");
    assert_eq!(doc["metadata"]["namespace"], "websocket-app-dev");
    assert_eq!(doc["spec"]["parallelism"], 4);
    assert_eq!(
        doc["spec"]["script"]["configMap"]["name"],
        "wsaffinity-spread"
    );
    assert_eq!(doc["spec"]["script"]["configMap"]["file"], "test.js");
    assert!(
        y.lines().any(|l| l.starts_with('#')
            && l.contains(
                "kubectl create configmap wsaffinity-spread --from-file=test.js -n websocket-app-dev"
            )),
        "{y}"
    );
    assert!(y.contains("--emit k6 > test.js"), "{y}");
}

#[test]
fn emit_rejects_an_unknown_tool() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"))
        .args(["spread", "--url", "ws://x/", "--emit", "jmeter"])
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-wsaffinity");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("artillery") && err.contains("k6-operator"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_without_url_takes_the_ingress_url_from_the_lab() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/scenarios/dev.yaml");
    let lab = support::start_lab(Scenario::File(scenario), false, false).await;
    lab.reset_counts();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"))
        .args([
            "spread",
            "svc/dev-websocket-server",
            "-n",
            "websocket-app-dev",
            "--emit",
            "artillery",
            "--kubeconfig",
        ])
        .arg(lab.kubeconfig_path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("spread --emit took more than 60 s")
        .expect("run kubectl-wsaffinity");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_saphyr::from_str(&text).expect("Artillery YAML");
    let target = doc["config"]["target"].as_str().unwrap_or_default();
    // The dev Ingress: host websocket-dev.example.com, no TLS.
    assert_eq!(target, "ws://websocket-dev.example.com/", "{text}");
    // Default 5 clients x 4 connections.
    assert_eq!(doc["config"]["phases"][0]["arrivalCount"], 20);
    // Read only: no write, no port-forward.
    let counts = lab.counts();
    assert!(
        counts.requests.keys().all(|k| k.starts_with("get ")
            || k.starts_with("list ")
            || k.starts_with("discovery ")),
        "{counts:?}"
    );
}
