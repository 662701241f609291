//! `spread --emit k6` and `--emit k6-operator`.
//!
//! The k6 script uses `k6/ws`: one virtual user per client (each VU has its
//! own cookie jar, as each `spread` client does), M iterations per VU, one
//! connection per iteration (`ws.connect` returns when the socket closes, so a
//! VU's connections follow one another). Each connection records the pod
//! named by the hello (or by the identity response header) in the
//! `wsaffinity_connections` counter, tagged `pod`.
//!
//! The TestRun runs that script inside the cluster with the k6-operator, its
//! VUs split over `spec.parallelism` runner pods.

use super::common::{canonical_header, not_carried, quote, resolve_for, spread_line};
use crate::probe::url::UrlOptions;

/// Name of the k6-operator TestRun and of the ConfigMap holding the script.
pub const K6_NAME: &str = "wsaffinity-spread";

/// Runner pods at most (each takes an equal share of the VUs).
const MAX_PARALLELISM: u32 = 4;

/// The k6 script (`k6 run test.js`).
pub fn script(opts: &UrlOptions) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = opts
        .settings
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    let headers = serde_json::to_string(&headers).unwrap_or_else(|_| "{}".to_string());
    let hello_ms = opts.hello_wait.as_millis();
    let hold_ms = opts.settings.hold.as_millis();
    let timeout_s = opts.settings.timeout.as_secs().max(1);
    // Generous bound on the whole run: every connection's wait, one after another.
    let max_minutes = (u128::from(opts.settings.connect)
        * (hello_ms + hold_ms + 1000 * u128::from(timeout_s)))
    .div_ceil(60_000)
    .max(1)
        + 1;

    let mut s = String::new();
    s.push_str("// k6 script written by `kubectl wsaffinity spread --emit k6`:\n");
    s.push_str(&format!("//   {}\n", spread_line(opts)));
    s.push_str(&format!(
        "// {} virtual users (the clients, each with its own cookie jar) x {} connections each,\n",
        opts.settings.clients, opts.settings.connect
    ));
    s.push_str(
        "// one after another. Every connection waits for the server's hello and counts its\n",
    );
    s.push_str(
        "// `pod` field in the counter wsaffinity_connections (tag pod); without a hello the\n",
    );
    s.push_str(&format!(
        "// {} response header names the pod, else \"unknown\".\n",
        canonical_header(opts.settings.identity_header.as_str())
    ));
    s.push_str(&not_carried(opts, "// Note: ", true));
    s.push_str(
        "// Run: k6 run test.js    Per pod: the `landed on pod` lines, or the counter by tag.\n",
    );
    s.push_str(&format!(
        "// In the cluster: kubectl wsaffinity spread ... --emit k6-operator (ConfigMap {K6_NAME}, key test.js).\n"
    ));
    s.push_str("import ws from 'k6/ws';\n");
    s.push_str("import { check } from 'k6';\n");
    s.push_str("import { Counter } from 'k6/metrics';\n\n");
    s.push_str(&format!("const URL = {};\n", quote(&opts.url.to_string())));
    s.push_str(&format!("const HEADERS = {headers};\n"));
    s.push_str(&format!(
        "const IDENTITY_HEADER = {};\n",
        quote(&canonical_header(opts.settings.identity_header.as_str()))
    ));
    s.push_str(&format!("const HELLO_WAIT_MS = {hello_ms};\n"));
    s.push_str(&format!("const HOLD_MS = {hold_ms};\n\n"));
    s.push_str("export const options = {\n");
    s.push_str("  scenarios: {\n");
    s.push_str("    spread: {\n");
    s.push_str("      executor: 'per-vu-iterations',\n");
    s.push_str(&format!("      vus: {},\n", opts.settings.clients));
    s.push_str(&format!("      iterations: {},\n", opts.settings.connect));
    s.push_str(&format!("      maxDuration: '{max_minutes}m',\n"));
    s.push_str("    },\n");
    s.push_str("  },\n");
    if opts.settings.insecure {
        s.push_str("  insecureSkipTLSVerify: true,\n");
    }
    if let Some((_, addr)) = resolve_for(opts) {
        s.push_str(&format!(
            "  hosts: {{ {}: {} }},\n",
            quote(&format!("{}:{}", opts.url.host, opts.url.port)),
            quote(&addr.to_string())
        ));
    }
    s.push_str("  thresholds: { checks: ['rate==1'] },\n");
    s.push_str("};\n\n");
    s.push_str("const connections = new Counter('wsaffinity_connections');\n\n");
    s.push_str("export default function () {\n");
    s.push_str("  let pod = '';\n");
    s.push_str("  const res = ws.connect(URL, { headers: HEADERS, tags: { name: 'spread' } }, function (socket) {\n");
    s.push_str("    socket.on('message', function (data) {\n");
    s.push_str("      if (pod !== '') {\n");
    s.push_str("        return;\n");
    s.push_str("      }\n");
    s.push_str("      try {\n");
    s.push_str("        const hello = JSON.parse(data);\n");
    s.push_str("        if (hello && typeof hello.pod === 'string') {\n");
    s.push_str("          pod = hello.pod;\n");
    s.push_str("          socket.setTimeout(function () {\n");
    s.push_str("            socket.close();\n");
    s.push_str("          }, Math.max(HOLD_MS, 1));\n");
    s.push_str("        }\n");
    s.push_str("      } catch (e) {\n");
    s.push_str("        // Not JSON: not a hello.\n");
    s.push_str("      }\n");
    s.push_str("    });\n");
    s.push_str("    socket.setTimeout(function () {\n");
    s.push_str("      socket.close();\n");
    s.push_str("    }, HELLO_WAIT_MS + HOLD_MS);\n");
    s.push_str("  });\n");
    s.push_str("  if (pod === '' && res && res.headers && res.headers[IDENTITY_HEADER]) {\n");
    s.push_str("    pod = res.headers[IDENTITY_HEADER];\n");
    s.push_str("  }\n");
    s.push_str("  if (pod === '') {\n");
    s.push_str("    pod = 'unknown';\n");
    s.push_str("  }\n");
    s.push_str("  const opened = check(res, { 'WebSocket handshake (101)': (r) => r && r.status === 101 });\n");
    s.push_str("  if (opened) {\n");
    s.push_str("    connections.add(1, { pod: pod });\n");
    s.push_str("  }\n");
    s.push_str(
        "  console.log(`client ${__VU} connection ${__ITER + 1} landed on pod ${opened ? pod : '(failed)'}`);\n",
    );
    s.push_str("}\n");
    s
}

/// The k6-operator `TestRun` (k6.io/v1alpha1) running the script in the cluster.
pub fn test_run(opts: &UrlOptions, namespace: Option<&str>) -> String {
    let parallelism = opts.settings.clients.clamp(1, MAX_PARALLELISM);
    let ns_flag = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    let mut y = String::new();
    y.push_str(
        "# k6-operator TestRun written by `kubectl wsaffinity spread --emit k6-operator`:\n",
    );
    y.push_str(&format!("#   {}\n", spread_line(opts)));
    y.push_str(&format!(
        "# Runs the k6 script in the cluster on {parallelism} runner pods that share the {} virtual users.\n",
        opts.settings.clients
    ));
    y.push_str("# Needs the k6-operator (CRD testruns.k6.io) installed in the cluster.\n");
    y.push_str("# 1. The script:    kubectl wsaffinity spread ... --emit k6 > test.js\n");
    y.push_str(&format!(
        "# 2. Its ConfigMap: kubectl create configmap {K6_NAME} --from-file=test.js{ns_flag}\n"
    ));
    y.push_str(&format!(
        "# 3. Run it:        kubectl apply -f testrun.yaml{ns_flag}; kubectl get testruns{ns_flag} -w\n"
    ));
    y.push_str(&format!(
        "# 4. Results:       kubectl logs -l k6_cr={K6_NAME}{ns_flag} | grep 'landed on pod' | sort | uniq -c\n"
    ));
    y.push_str(&format!(
        "# The runners connect from inside the cluster: {} must resolve and be reachable there.\n",
        opts.url
    ));
    y.push_str(&format!(
        "# Run it again: kubectl delete testrun {K6_NAME}{ns_flag}, then apply.\n"
    ));
    y.push_str("apiVersion: k6.io/v1alpha1\n");
    y.push_str("kind: TestRun\n");
    y.push_str("metadata:\n");
    y.push_str(&format!("  name: {K6_NAME}\n"));
    if let Some(ns) = namespace {
        y.push_str(&format!("  namespace: {}\n", quote(ns)));
    }
    y.push_str("  labels:\n");
    y.push_str("    app.kubernetes.io/managed-by: kubectl-wsaffinity\n");
    y.push_str("spec:\n");
    y.push_str(&format!("  parallelism: {parallelism}\n"));
    y.push_str("  script:\n");
    y.push_str("    configMap:\n");
    y.push_str(&format!("      name: {K6_NAME}\n"));
    y.push_str("      file: test.js\n");
    y.push_str(&format!("  arguments: --tag testid={K6_NAME}\n"));
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::url::{WsUrl, parse_header, parse_resolve};

    fn opts() -> UrlOptions {
        let mut o = UrlOptions::new(WsUrl::parse("wss://ws.example.com/ws").expect("url"));
        o.settings.clients = 7;
        o.settings.connect = 3;
        o
    }

    #[test]
    fn a_seeded_cookie_is_warned_about_not_silently_dropped() {
        let mut o = opts();
        assert!(crate::emit::warnings(crate::emit::Format::K6, &o).is_empty());
        o.settings.seed_cookies = vec![("_49ac9".into(), "17eb".into())];
        let w = crate::emit::warnings(crate::emit::Format::K6, &o);
        assert!(w.iter().any(|w| w.contains("--cookie")), "{w:?}");
    }

    #[test]
    fn script_has_vus_iterations_url_headers() {
        let mut o = opts();
        o.settings.headers = vec![parse_header("X-Team: a'b").expect("header")];
        o.settings.resolve = vec![parse_resolve("ws.example.com:443:127.0.0.1").expect("resolve")];
        o.settings.insecure = true;
        let s = script(&o);
        assert!(s.contains("import ws from 'k6/ws';"), "{s}");
        assert!(
            s.contains("const URL = \"wss://ws.example.com/ws\";"),
            "{s}"
        );
        assert!(s.contains("const HEADERS = {\"x-team\":\"a'b\"};"), "{s}");
        assert!(s.contains("      vus: 7,\n      iterations: 3,\n"), "{s}");
        assert!(s.contains("insecureSkipTLSVerify: true"), "{s}");
        assert!(
            s.contains("hosts: { \"ws.example.com:443\": \"127.0.0.1:443\" }"),
            "{s}"
        );
        assert!(s.contains("IDENTITY_HEADER = \"X-Pod-Name\""), "{s}");
    }

    #[test]
    fn test_run_names_the_config_map() {
        let y = test_run(&opts(), Some("dev"));
        assert!(y.contains("kind: TestRun\n"), "{y}");
        assert!(y.contains("  parallelism: 4\n"), "{y}");
        assert!(
            y.contains("      name: wsaffinity-spread\n      file: test.js\n"),
            "{y}"
        );
        assert!(
            y.contains("kubectl create configmap wsaffinity-spread --from-file=test.js -n dev")
        );
        let one = {
            let mut o = opts();
            o.settings.clients = 1;
            test_run(&o, None)
        };
        assert!(one.contains("  parallelism: 1\n"), "{one}");
        assert!(!one.contains("namespace:"), "{one}");
    }
}
