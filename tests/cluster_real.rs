//! The plugin against a REAL control plane: kube-apiserver, etcd,
//! kube-controller-manager and kube-scheduler built from their Go modules
//! (`scripts/cluster-build.sh`), the real kubectl, and the lab's node agent as
//! kubelets (pods are real `websocket-server` processes on pod IPs in the
//! cluster's own network namespace). One cluster for the whole binary, a
//! namespace per test. Skips with a printed reason when the programs are not
//! built or the user is not root, except with `CI=true`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::real_cluster::{REPO, RealCluster, cluster, plugin, run_bounded, wait_until};

const SVC: &str = "svc/websocket-server";

fn per_pod(report: &Value) -> Vec<Value> {
    report["observations"]["perPod"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn logged(report: &Value) -> Vec<Value> {
    report["observations"]["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod_ips(c: &RealCluster, ns: &str) -> Vec<(String, String)> {
    let pods = c.kubectl_json(&["get", "pods", "-n", ns, "-l", "app=websocket-server"]);
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["status"]["podIP"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// `(address, ready)` of every endpoint in the Service's EndpointSlices, as the
/// real EndpointSlice controller wrote them, read with the real kubectl.
fn slice_endpoints(c: &RealCluster, ns: &str, svc: &str) -> Vec<(String, bool)> {
    let slices = c.kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        ns,
        "-l",
        &format!("kubernetes.io/service-name={svc}"),
    ]);
    let mut out = Vec::new();
    for s in slices["items"].as_array().into_iter().flatten() {
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let ready = e["conditions"]["ready"].as_bool().unwrap_or(false);
            for a in e["addresses"].as_array().into_iter().flatten() {
                out.push((a.as_str().unwrap_or_default().to_string(), ready));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dev_overlay_applied_with_real_kubectl_runs_ready_pods_in_real_endpointslices() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "websocket-app-dev";
    c.kubectl(&["apply", "-k", &format!("{REPO}/k8s/overlays/dev")])
        .unwrap_or_else(|e| panic!("{e}"));
    let pods = c.wait_ready(ns, 2, Duration::from_secs(90));
    let ips = pod_ips(c, ns);
    for (name, ip) in &ips {
        assert!(
            ip.starts_with("10.244."),
            "{name} has a pod IP from its node's range: {ip}"
        );
    }
    // The real EndpointSlice controller lists exactly the ready pods' IPs.
    let mut want: Vec<(String, bool)> = ips.iter().map(|(_, ip)| (ip.clone(), true)).collect();
    want.sort();
    wait_until(
        "the EndpointSlice lists both pods as ready",
        Duration::from_secs(30),
        || slice_endpoints(c, ns, "dev-websocket-server") == want,
    );

    // check reads the same: two ready endpoints, ClientIP affinity explained.
    let run = plugin(
        &c.kubeconfig,
        &["check", "svc/dev-websocket-server", "-n", ns, "-o", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let report = run.json();
    assert_eq!(
        report["service"]["sessionAffinity"], "ClientIP",
        "{report:#}"
    );
    let mut eps: Vec<String> = report["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["pod"].as_str().map(String::from))
        .collect();
    eps.sort();
    let mut names = pods.clone();
    names.sort();
    assert_eq!(
        eps, names,
        "check's endpoints are the pods in the real EndpointSlice: {report:#}"
    );
    assert!(
        run.codes().contains(&"WSA010".to_string()),
        "{:?}",
        run.codes()
    );

    // per-pod: 10 connections through the API server's pods/portforward,
    // proxied to the node agent, to each pod.
    // Twice: a fresh pod's newest log line is the server's baseline count
    // (logged after `listening on`), then the count the first run left;
    // either way the stream's first line gives the count before, and no
    // pod's tail is read.
    for round in [1, 2] {
        let mark = c.audit_mark();
        let run = plugin(
            &c.kubeconfig,
            &[
                "per-pod",
                "-n",
                ns,
                "--connect",
                "10",
                "--hold",
                "0s",
                "-o",
                "json",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.all());
        let probes = per_pod(&run.json());
        assert_eq!(probes.len(), 2, "{probes:#?}");
        for p in &probes {
            assert_eq!(p["ok"], 10, "{p:#}");
            assert_eq!(p["failed"], 0, "{p:#}");
            // The log shows the 10 connections while held and none after,
            // even with `--hold 0s`.
            let counts = [
                "loggedActiveBefore",
                "loggedActiveDuring",
                "loggedActiveAfter",
            ]
            .map(|k| p[k].as_u64());
            assert_eq!(counts, [Some(0), Some(10), Some(0)], "round {round}: {p:#}");
        }
        // One follow stream per pod shows the connections open and close
        // (not a read per poll), through the real API server.
        let log_reads: Vec<String> = c
            .audit_since(mark)
            .into_iter()
            .filter(|(agent, _, uri)| !agent.starts_with("kubectl/") && uri.contains("/log"))
            .map(|(_, _, uri)| uri)
            .collect();
        for pod in &pods {
            let of_pod: Vec<&String> = log_reads
                .iter()
                .filter(|u| u.contains(&format!("/pods/{pod}/log")))
                .collect();
            assert_eq!(of_pod.len(), 1, "round {round}, {pod}: {log_reads:#?}");
            assert_eq!(
                of_pod.iter().filter(|u| u.contains("follow=true")).count(),
                1,
                "round {round}, {pod}: {log_reads:#?}"
            );
        }
    }

    // logs: the pods' own `Active connections` lines, through pods/log; the
    // real `kubectl logs` shows the same last count.
    let run = plugin(&c.kubeconfig, &["logs", "-n", ns, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let entries = logged(&run.json());
    assert_eq!(entries.len(), 2, "{entries:#?}");
    for e in &entries {
        let pod = e["pod"].as_str().expect("pod name");
        let text = c
            .kubectl(&["logs", "-n", ns, pod])
            .unwrap_or_else(|e| panic!("{e}"));
        let last = text
            .lines()
            .filter_map(|l| l.split("Active connections: ").nth(1))
            .filter_map(|n| {
                n.split(|ch: char| !ch.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .next_back()
            .unwrap_or_else(|| panic!("{pod} logged `Active connections` after per-pod:\n{text}"));
        assert_eq!(
            e["active"].as_u64(),
            Some(last),
            "{pod}: plugin {e:#} vs kubectl logs:\n{text}"
        );
    }

    // logs --metric: the servers' own gauge, read through the real API
    // server's pods/portforward, agrees with their logged counts.
    let run = plugin(
        &c.kubeconfig,
        &[
            "logs",
            "-n",
            ns,
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let by_metric = logged(&run.json());
    for e in &entries {
        let m = by_metric
            .iter()
            .find(|m| m["pod"] == e["pod"])
            .expect("same pods");
        assert_eq!(m["active"], e["active"], "{m:#} vs {e:#}");
    }
}

#[test]
fn a_failing_readiness_probe_keeps_the_endpoint_not_ready_and_check_says_so() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-unready";
    c.namespace_with_base(ns, 2);
    c.wait_ready(ns, 2, Duration::from_secs(90));
    // A third pod whose readiness probe asks for a path that answers 404.
    c.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: never-ready, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: websocket-server, variant: never-ready}}}}
  template:
    metadata: {{labels: {{app: websocket-server, variant: never-ready}}}}
    spec:
      containers:
      - name: websocket-server
        image: ghcr.io/kubectl-wsaffinity/websocket-server:0.1.0
        args: ["--port=8080"]
        ports: [{{name: ws, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /no-such-path, port: ws}}, periodSeconds: 1}}
"#
    ));
    let mut unready = String::new();
    wait_until(
        "the never-ready pod runs with an IP",
        Duration::from_secs(60),
        || {
            let pods = c.kubectl_json(&["get", "pods", "-n", ns, "-l", "variant=never-ready"]);
            match pods["items"][0]["status"]["podIP"].as_str() {
                Some(ip) => {
                    unready = ip.to_string();
                    true
                }
                None => false,
            }
        },
    );
    wait_until(
        "the real controller lists it as not ready",
        Duration::from_secs(30),
        || slice_endpoints(c, ns, "websocket-server").contains(&(unready.clone(), false)),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.ready_pods(ns).len(), 2, "the probe keeps it unready");
    let run = plugin(&c.kubeconfig, &["check", SVC, "-n", ns, "-o", "json"]);
    let codes = run.codes();
    assert!(codes.contains(&"WSA005".to_string()), "{}", run.all());
    let wsa005 = run.json()["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["code"] == "WSA005")
        .cloned()
        .expect("WSA005");
    assert!(
        wsa005.to_string().contains("never-ready"),
        "names the pod: {wsa005:#}"
    );
}

/// Runs `logs --follow` and collects its lines on a thread.
struct Follow {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follow {
    fn start(kc: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(support::BIN)
            .args(args)
            .arg("--kubeconfig")
            .arg(kc)
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logs --follow");
        let (tx, rx) = mpsc::channel();
        for r in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    fn expect(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.seen.iter().any(|l| l.contains(needle)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(500)))
            {
                Ok(l) => self.seen.push(l),
                Err(_) if Instant::now() >= deadline => {
                    panic!(
                        "no line with {needle:?} within {within:?}; seen:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(_) => {}
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_follow_picks_up_a_pod_added_by_kubectl_scale() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-follow";
    c.namespace_with_base(ns, 2);
    let before = c.wait_ready(ns, 2, Duration::from_secs(90));
    let mut follow = Follow::start(
        &c.kubeconfig,
        &[
            "logs",
            SVC,
            "-n",
            ns,
            "--follow",
            "--follow-duration",
            "90s",
            "--poll-interval",
            "500ms",
        ],
    );
    for p in &before {
        follow.expect(&format!("{p} following"), Duration::from_secs(20));
    }
    c.kubectl(&[
        "scale",
        "-n",
        ns,
        "deployment/websocket-server",
        "--replicas=3",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let after = c.wait_ready(ns, 3, Duration::from_secs(60));
    let new = after
        .iter()
        .find(|p| !before.contains(p))
        .expect("a new pod")
        .clone();
    follow.expect(&format!("{new} following"), Duration::from_secs(20));
}

/// The node lifecycle controller marks a node's pods NotReady when the
/// node's lease lapses (an API server outage longer than the grace period
/// does it). The node agent writes its own status again, as the kubelet's
/// status manager reconciles, so the pods and their endpoints come back by
/// themselves instead of staying NotReady until the next probe change.
#[test]
fn a_pod_marked_not_ready_by_another_writer_is_made_ready_again_by_its_node() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-reconcile";
    c.namespace_with_base(ns, 1);
    let pods = c.wait_ready(ns, 1, Duration::from_secs(90));
    // What the node lifecycle controller writes (MarkPodsNotReady).
    let mark = c.audit_mark();
    c.kubectl(&[
        "patch",
        "pod",
        &pods[0],
        "-n",
        ns,
        "--subresource=status",
        "--type=strategic",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"NodeNotReady"}]}}"#,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.wait_ready(ns, 1, Duration::from_secs(10)), pods);
    // The node wrote it back: a status write after the patch that is not
    // kubectl's.
    let writes: Vec<(String, String, String)> = c
        .audit_since(mark)
        .into_iter()
        .filter(|(_, verb, uri)| {
            verb == "patch" && uri.contains(&format!("/pods/{}/status", pods[0]))
        })
        .collect();
    assert!(
        writes
            .iter()
            .any(|(agent, _, _)| !agent.starts_with("kubectl")),
        "{writes:#?}"
    );
    let _ = c.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

#[test]
fn test_service_apply_and_delete_write_through_the_real_api() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-testsvc";
    c.namespace_with_base(ns, 2);
    let run = plugin(&c.kubeconfig, &["test-service", SVC, "-n", ns, "--apply"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let svc = c.kubectl_json(&["get", "service", "-n", ns, "websocket-server-affinity-test"]);
    assert_eq!(svc["spec"]["sessionAffinity"], "None", "{svc:#}");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "{svc:#}"
    );
    // The real controller gives the copy its own EndpointSlice with the same pods.
    c.wait_ready(ns, 2, Duration::from_secs(90));
    wait_until(
        "the copy's EndpointSlice has both pods",
        Duration::from_secs(30),
        || slice_endpoints(c, ns, "websocket-server-affinity-test").len() == 2,
    );
    let run = plugin(&c.kubeconfig, &["test-service", SVC, "-n", ns, "--delete"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let gone = c.kubectl(&["get", "service", "-n", ns, "websocket-server-affinity-test"]);
    assert!(gone.is_err_and(|e| e.contains("NotFound")), "deleted");
}

#[test]
fn the_role_is_enough_through_the_real_authorizer_and_each_missing_rule_is_named() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-rbac";
    c.namespace_with_base(ns, 2);
    c.wait_ready(ns, 2, Duration::from_secs(90));
    let role = std::fs::read_to_string(format!("{REPO}/k8s/rbac/role.yaml")).expect("role.yaml");
    c.kubectl_as(&c.kubeconfig, &["apply", "-n", ns, "-f", "-"], Some(&role))
        .unwrap_or_else(|e| panic!("{e}"));
    let role_name = c.kubectl_json(&["get", "-n", ns, "-f", &format!("{REPO}/k8s/rbac/role.yaml")])
        ["metadata"]["name"]
        .as_str()
        .expect("role name")
        .to_string();
    c.kubectl(&[
        "create",
        "rolebinding",
        "wsa-user",
        "-n",
        ns,
        &format!("--role={role_name}"),
        "--user=wsa-user",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let user = c.user_kubeconfig("wsa-user");

    // Without the binding's Role nothing works: the real 403 shows first.
    let nobody = c.user_kubeconfig("nobody");
    let run = plugin(&nobody, &["check", SVC, "-n", ns]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("get") && run.stderr.contains("services"),
        "names the permission: {}",
        run.all()
    );

    // With exactly the Role every read-only subcommand works.
    for args in [
        vec!["check", SVC, "-n", ns, "-o", "json"],
        vec!["per-pod", SVC, "-n", ns, "--connect", "2", "-o", "json"],
        vec!["logs", SVC, "-n", ns, "-o", "json"],
    ] {
        let run = plugin(&user, &args);
        assert_eq!(run.code, 0, "{args:?} with the Role: {}", run.all());
        assert!(!run.stdout.contains("forbidden"), "{}", run.all());
    }

    // Each rule taken away: the API server's real 403 becomes the plugin's
    // named-permission error (exit 2), or, for the Ingress LIST, a WSA037 note.
    let triples = role_triples(&role);
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("", "services", "get", &["check", SVC]),
        ("", "pods", "list", &["check", SVC]),
        (
            "discovery.k8s.io",
            "endpointslices",
            "list",
            &["check", SVC],
        ),
        (
            "networking.k8s.io",
            "ingresses",
            "get",
            &["check", "ingress/websocket-server"],
        ),
        (
            "apps",
            "deployments",
            "get",
            &["check", "deploy/websocket-server"],
        ),
        ("", "pods/log", "get", &["logs", SVC]),
        (
            "",
            "pods/portforward",
            "create",
            &["per-pod", SVC, "--connect", "1", "--hold", "0"],
        ),
        (
            "networking.k8s.io",
            "ingresses",
            "list",
            &["check", SVC, "-o", "json"],
        ),
    ];
    for (group, resource, verb, args) in cases {
        let kept: Vec<&(String, String, String)> = triples
            .iter()
            .filter(|(g, r, v)| !(g == group && r == resource && v == verb))
            .collect();
        assert_eq!(
            kept.len() + 1,
            triples.len(),
            "the Role grants {verb} {resource}"
        );
        let rules: Vec<Value> = kept
            .iter()
            .map(|(g, r, v)| serde_json::json!({"apiGroups": [g], "resources": [r], "verbs": [v]}))
            .collect();
        let narrowed = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": role_name, "namespace": ns}, "rules": rules,
        });
        c.kubectl_as(
            &c.kubeconfig,
            &["apply", "-f", "-"],
            Some(&narrowed.to_string()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (plural, sub) = resource
            .split_once('/')
            .map_or((*resource, None), |(p, s)| (p, Some(s)));
        let with_group = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        let qualified = match sub {
            Some(s) => format!("{with_group}/{s}"),
            None => with_group.clone(),
        };
        // `kubectl auth can-i get pods/log` would ask about a pod named "log".
        let mut can_i = vec![
            "auth",
            "can-i",
            verb,
            with_group.as_str(),
            "-n",
            ns,
            "--as=wsa-user",
        ];
        let sub_flag = sub.map(|s| format!("--subresource={s}"));
        can_i.extend(sub_flag.as_deref());
        wait_until(
            &format!("the authorizer sees {verb} {qualified} taken away"),
            Duration::from_secs(20),
            || c.kubectl(&can_i).is_err_and(|e| e.contains("no")),
        );
        let mut full = args.to_vec();
        full.extend(["-n", ns]);
        let run = plugin(&user, &full);
        if *verb == "list" && *resource == "ingresses" {
            assert_eq!(run.code, 0, "without {verb} {resource}: {}", run.all());
            let note = run.json()["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["code"] == "WSA037")
                .cloned()
                .unwrap_or_else(|| panic!("WSA037 without list ingresses: {}", run.all()));
            assert!(note.to_string().contains("list ingresses"), "{note:#}");
        } else {
            assert_eq!(run.code, 2, "without {verb} {resource}: {}", run.all());
            let ask = format!("Ask for `{verb}` on `{qualified}` in {ns}");
            assert!(
                run.stderr.contains(&ask),
                "without {verb} {resource}, says {ask:?}: {}",
                run.all()
            );
        }
    }
}

/// (group, resource, verb) for every rule of a Role manifest.
fn role_triples(yaml: &str) -> Vec<(String, String, String)> {
    let role: Value = serde_saphyr::from_str(yaml).expect("role.yaml is YAML");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.push((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

#[test]
fn a_pod_deleted_during_per_pod_is_reported_and_nothing_hangs() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-delete";
    c.namespace_with_base(ns, 3);
    let pods = c.wait_ready(ns, 3, Duration::from_secs(90));
    let mut cmd = Command::new(support::BIN);
    cmd.args([
        "per-pod",
        SVC,
        "-n",
        ns,
        "--connect",
        "3",
        "--hold",
        "6s",
        "-o",
        "json",
    ])
    .arg("--kubeconfig")
    .arg(&c.kubeconfig)
    .env("NO_COLOR", "1")
    .stdin(Stdio::null());
    let handle = std::thread::spawn(move || run_bounded(cmd, Duration::from_secs(120)));
    std::thread::sleep(Duration::from_secs(2));
    // Real graceful deletion: preStop sleep, SIGTERM, drain, then the node
    // agent's final delete.
    c.kubectl(&["delete", "pod", "-n", ns, &pods[2], "--wait=false"])
        .unwrap_or_else(|e| panic!("{e}"));
    let out = handle.join().expect("per-pod thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        per_pod(&report).len(),
        3,
        "every pod of the start is reported: {report:#}"
    );
    wait_until(
        "the deleted pod is gone after its grace period",
        Duration::from_secs(60),
        || c.kubectl(&["get", "pod", "-n", ns, &pods[2]]).is_err(),
    );
    // The Deployment replaced it.
    c.wait_ready(ns, 3, Duration::from_secs(60));
}

#[test]
fn the_cluster_is_real_kubernetes_with_three_ready_nodes() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let v = c.kubectl_json(&["version"]);
    assert_eq!(
        v["serverVersion"]["gitVersion"], "v1.37.2",
        "the API server built from k8s.io/kubernetes v1.37.2: {v:#}"
    );
    let nodes = c.kubectl_json(&["get", "nodes"]);
    let ready: Vec<&str> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["type"] == "Ready" && x["status"] == "True")
        })
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        ready,
        ["lab-node-1", "lab-node-2", "lab-node-3"],
        "{nodes:#}"
    );
    // The node agent's kubelet port serves /healthz through the API server's node proxy.
    let health = c
        .kubectl(&["get", "--raw", "/api/v1/nodes/lab-node-1/proxy/healthz"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.trim(), "ok");
}

/// A control-plane program that dies at start is an error that names it and
/// shows its log; a missing one says how to build it. Nothing is left behind.
#[test]
fn a_component_that_dies_or_is_missing_is_named() {
    let Some((_, _turn)) = cluster() else {
        return;
    };
    let lab = support::real_cluster::lab_binary();
    let bins = tempfile::tempdir().expect("temp dir");
    for p in [
        "etcd",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ] {
        std::os::unix::fs::symlink(
            support::real_cluster::bin_dir().join(p),
            bins.path().join(p),
        )
        .expect("symlink");
    }
    let fake = bins.path().join("kube-apiserver");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'E1204 flag provided but not defined: --boom'\nexit 3\n",
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = run_bounded(
        {
            let mut cmd = Command::new(&lab);
            cmd.args(["cluster", "up", "--empty", "--bin-dir"])
                .arg(bins.path());
            cmd
        },
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("kube-apiserver exited"), "{err}");
    assert!(
        err.contains("flag provided but not defined: --boom"),
        "the log's tail: {err}"
    );

    std::fs::remove_file(&fake).expect("rm");
    let out = run_bounded(
        {
            let mut cmd = Command::new(&lab);
            cmd.args(["cluster", "up", "--empty", "--bin-dir"])
                .arg(bins.path());
            cmd
        },
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("kube-apiserver") && err.contains("scripts/cluster-build.sh"),
        "{err}"
    );
}

#[test]
fn demo_cluster_runs_check_per_pod_logs_and_spread_through_traefik() {
    let Some((_, _turn)) = cluster() else {
        return;
    };
    let mut cmd = Command::new(support::real_cluster::lab_binary());
    cmd.args(["demo", "--cluster"]).env("NO_COLOR", "1");
    let out = run_bounded(cmd, Duration::from_secs(180));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("a REAL kube-apiserver"), "{text}");
    assert!(
        text.contains("$ kubectl wsaffinity check svc/dev-websocket-server"),
        "{text}"
    );
    // k8s/overlays/traefik: 3 replicas behind Traefik.
    assert!(text.contains("Endpoints  3 ready of 3"), "{text}");
    assert!(
        text.contains("3/3 pods accepted 10/10 connections: 30 total"),
        "{text}"
    );
    assert!(text.contains("$ kubectl wsaffinity logs"), "{text}");
    // spread through the real Traefik, its sticky cookie seen and predicted.
    assert!(text.contains("$ kubectl wsaffinity spread"), "{text}");
    assert!(text.contains("6 of 6 clients stayed on one pod"), "{text}");
    assert!(
        text.contains("Ingress dev-websocket-server") && text.contains("traefik cookie _"),
        "{text}"
    );
}

/// `n` WebSocket connections to `pod`'s port 8080, each through its own
/// port-forward of the real API server (kube-rs's WebSocket, not the plugin),
/// read in the background so the server's pings are answered. They stay
/// open until the runtime is dropped.
async fn hold(client: &kube::Client, ns: &str, pod: &str, n: u64) {
    use futures::StreamExt;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), ns);
    for _ in 0..n {
        let mut pf = api
            .portforward(pod, &[8080])
            .await
            .unwrap_or_else(|e| panic!("port-forward to {pod}: {e}"));
        let stream = pf.take_stream(8080).expect("the forwarded port's stream");
        let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost:8080/", stream)
            .await
            .unwrap_or_else(|e| panic!("WebSocket to {pod} over port-forward: {e}"));
        tokio::spawn(async move {
            let _pf = pf;
            while let Some(Ok(_)) = ws.next().await {}
        });
    }
}

/// Each pod's `active` in a `logs -o json` report, by pod name.
fn actives(report: &Value) -> Vec<(String, Option<u64>)> {
    let mut v: Vec<(String, Option<u64>)> = logged(report)
        .iter()
        .map(|l| {
            (
                l["pod"].as_str().unwrap_or_default().to_string(),
                l["active"].as_u64(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn logs_metric_matches_the_logged_counts_while_connections_are_held() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-metric";
    c.namespace_with_base(ns, 2);
    let pods = c.wait_ready(ns, 2, Duration::from_secs(90));
    // 3 connections to one pod and 1 to the other, held for the rest of the
    // test (until `rt` is dropped).
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut want: Vec<(String, Option<u64>)> = Vec::new();
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("client config");
        let client = kube::Client::try_from(config).expect("client");
        for (pod, n) in pods.iter().zip([3u64, 1]) {
            hold(&client, ns, pod, n).await;
            want.push((pod.clone(), Some(n)));
        }
    });
    want.sort();

    // The log source shows them (the server logs every change at once).
    let mut by_log = Vec::new();
    wait_until(
        "logs shows the held connections",
        Duration::from_secs(30),
        || {
            let run = plugin(&c.kubeconfig, &["logs", SVC, "-n", ns, "-o", "json"]);
            by_log = actives(&run.json());
            by_log == want
        },
    );

    // The gauge, read through the real API server's pods/portforward, agrees.
    let run = plugin(
        &c.kubeconfig,
        &[
            "logs",
            SVC,
            "-n",
            ns,
            "--metric",
            "websocket_active_connections",
            "--metrics-port",
            "8080",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let report = run.json();
    assert_eq!(actives(&report), want, "metric vs log: {report:#}");
    assert_eq!(report["observations"]["activeSource"]["kind"], "metric");

    // Without --metrics-port: the `prometheus.io/port` annotation, set with
    // the real kubectl, names the port.
    for pod in &pods {
        c.kubectl(&[
            "annotate",
            "-n",
            ns,
            &format!("pod/{pod}"),
            "prometheus.io/port=8080",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let run = plugin(
        &c.kubeconfig,
        &[
            "logs",
            SVC,
            "-n",
            ns,
            "--metric",
            "websocket_active_connections",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(actives(&run.json()), want, "{}", run.all());

    // per-pod --metric: the test's own 2 connections on top of the held ones.
    let run = plugin(
        &c.kubeconfig,
        &[
            "per-pod",
            SVC,
            "-n",
            ns,
            "--metric",
            "websocket_active_connections",
            "--connect",
            "2",
            "--hold",
            "1s",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let report = run.json();
    for (pod, n) in &want {
        let p = per_pod(&report)
            .into_iter()
            .find(|p| p["pod"] == pod.as_str())
            .unwrap_or_else(|| panic!("no probe for {pod}: {report:#}"));
        assert_eq!(p["loggedActiveBefore"].as_u64(), *n, "{p:#}");
        assert_eq!(p["loggedActiveDuring"].as_u64(), n.map(|n| n + 2), "{p:#}");
    }
    drop(rt);
}

/// The real `kubectl port-forward pod/P :8080`, started the way a user runs it:
/// returns the child and the local port from its "Forwarding from" line.
fn kubectl_port_forward(c: &RealCluster, ns: &str, pod: &str) -> (std::process::Child, u16) {
    let mut child = Command::new(support::real_cluster::kubectl_path())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["port-forward", "-n", ns, &format!("pod/{pod}"), ":8080"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward starts");
    let stdout = child.stdout.take().expect("kubectl stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let port = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some(port) = rest.split_whitespace().next()
                    && let Ok(port) = port.parse::<u16>()
                {
                    break port;
                }
            }
            Err(e) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("kubectl output");
                panic!(
                    "no \"Forwarding from\" line ({e}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    };
    (child, port)
}

/// The companion server's hello over a WebSocket through `port`: (pod, active).
async fn hello_through(port: u16) -> (String, u64) {
    use futures::StreamExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .unwrap_or_else(|e| panic!("WebSocket through kubectl port-forward: {e}"));
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a hello within 10 s")
        .expect("a message")
        .expect("a WebSocket message");
    let hello: Value = serde_json::from_str(msg.to_text().expect("a text hello"))
        .unwrap_or_else(|e| panic!("hello is JSON: {e}: {msg}"));
    assert_eq!(hello["type"], "hello", "{hello}");
    let _ = ws.close(None).await;
    // Drain until the server's close so the pod sees the connection end.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    (
        hello["pod"].as_str().unwrap_or_default().to_string(),
        hello["active"].as_u64().unwrap_or(u64::MAX),
    )
}

#[test]
fn the_real_kubectl_port_forward_reaches_the_pod_over_spdy_and_leaves_nothing_behind() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-spdy";
    c.namespace_with_base(ns, 1);
    let pods = c.wait_ready(ns, 1, Duration::from_secs(90));
    let pod = &pods[0];
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let (mut kubectl, port) = kubectl_port_forward(c, ns, pod);
    // Several connections through one kubectl: one SPDY stream pair each.
    for _ in 0..3 {
        let (name, active) = rt.block_on(hello_through(port));
        assert_eq!(&name, pod, "the hello comes from the forwarded pod");
        assert_eq!(
            active, 1,
            "the previous forwarded connection was closed on the pod"
        );
    }
    // Concurrent connections over the same session.
    let hellos = rt.block_on(async {
        let a = tokio::spawn(hello_through(port));
        let b = tokio::spawn(hello_through(port));
        (a.await, b.await)
    });
    for h in [hellos.0, hellos.1] {
        assert_eq!(&h.expect("hello task").0, pod);
    }

    kubectl.kill().expect("stop kubectl");
    let status = kubectl.wait().expect("kubectl exits");
    assert!(!status.success() || status.code().is_none());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the local port is closed once kubectl is stopped"
    );
    // Nothing left on the pod or the node: a fresh forward sees one connection, its own.
    let (mut again, port) = kubectl_port_forward(c, ns, pod);
    let (name, active) = rt.block_on(hello_through(port));
    assert_eq!(&name, pod);
    assert_eq!(
        active, 1,
        "no connection of the stopped kubectl is still open on the pod"
    );
    let _ = again.kill();
    let _ = again.wait();

    // The WebSocket path (kube-rs, as the plugin uses it) still works next to it.
    let run = plugin(
        &c.kubeconfig,
        &["per-pod", SVC, "-n", ns, "--connect", "2", "-o", "json"],
    );
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let rows = per_pod(&report);
    assert_eq!(rows.len(), 1, "{report:#}");
    assert_eq!(rows[0]["pod"], pod.as_str(), "{report:#}");
    assert_eq!(
        rows[0]["ok"], 2,
        "both WebSocket port-forwards connected: {report:#}"
    );
    let _ = c.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

#[test]
fn a_forwarding_error_reaches_the_real_kubectl_on_the_spdy_error_stream() {
    let Some((c, _turn)) = cluster() else {
        return;
    };
    let ns = "t-spdy-error";
    let _ = c.kubectl(&["create", "namespace", ns]);
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: broken
  namespace: {ns}
  annotations:
    lab.wsaffinity.dev/portforward-error: "the sandbox's network is gone"
spec:
  containers:
    - name: websocket-server
      image: ghcr.io/kubectl-wsaffinity/websocket-server:0.1.0
      args: ["--port=8080"]
"#
    ));
    wait_until("the broken pod runs", Duration::from_secs(60), || {
        c.kubectl(&[
            "get",
            "pod",
            "broken",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.phase}",
        ])
        .is_ok_and(|p| p == "Running")
    });
    let (mut kubectl, port) = kubectl_port_forward(c, ns, "broken");
    // The connection is accepted locally, then ends without a WebSocket.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ws = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(15),
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/")),
        )
        .await
    });
    assert!(
        !matches!(ws, Ok(Ok(_))),
        "no WebSocket through a failing forward"
    );
    // kubectl shows the kubelet's text from the error stream.
    std::thread::sleep(Duration::from_millis(500));
    let _ = kubectl.kill();
    let out = kubectl.wait_with_output().expect("kubectl output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error forwarding port 8080 to pod")
            && stderr.contains("the sandbox's network is gone"),
        "{stderr}"
    );
    let _ = c.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}
