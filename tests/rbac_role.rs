//! `k8s/rbac/role.yaml` is enough, and every rule in it is accounted for.
//!
//! The lab (a local stand-in for the Kubernetes API) checks bearer tokens
//! against `"VERB RESOURCE[.GROUP]"` rules. The rules here are read from the
//! Role file itself, so the Role and this test cannot drift: one token gets
//! exactly the Role, and one token per permission gets the Role minus that
//! permission. With the Role every subcommand works; without a permission the
//! plugin says which verb on which resource to ask for and exits 2, or, for an
//! optional routing kind, notes what it skipped (WSA037).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use support::Run;
use wsaffinity_lab::{Lab, Scenario};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const NS: &str = "websocket-app-dev";
const SVC: &str = "svc/dev-websocket-server";

/// `"list pods"`, `"get pods/log"`, `"list ingresses.networking.k8s.io"`: one
/// per verb × resource × group of the Role's rules, in the lab's rule syntax.
fn role_permissions() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(REPO).join("k8s/rbac/role.yaml"))
        .expect("read k8s/rbac/role.yaml");
    let role: Value = serde_saphyr::from_str(&text).expect("role.yaml is YAML");
    assert_eq!(role["kind"], "Role");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    };
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    let (plural, sub) = match resource.split_once('/') {
                        Some((p, s)) => (p.to_string(), Some(s.to_string())),
                        None => (resource.clone(), None),
                    };
                    let mut name = if group.is_empty() {
                        plural
                    } else {
                        format!("{plural}.{group}")
                    };
                    if let Some(s) = sub {
                        name = format!("{name}/{s}");
                    }
                    out.push(format!("{verb} {name}"));
                }
            }
        }
    }
    out
}

/// The CRDs of the optional routing kinds, so that a forbidden LIST is a 403
/// (WSA037) rather than the 404 of a kind that is not installed.
fn optional_crds() -> Vec<Value> {
    [
        ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
        ("projectcontour.io", "v1", "HTTPProxy", "httpproxies"),
        (
            "networking.istio.io",
            "v1",
            "DestinationRule",
            "destinationrules",
        ),
        ("cloud.google.com", "v1", "BackendConfig", "backendconfigs"),
        ("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes"),
    ]
    .into_iter()
    .map(|(group, version, kind, plural)| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                "versions": [{"name": version, "served": true, "storage": true}],
            }
        })
    })
    .collect()
}

fn token_without(permission: &str) -> String {
    let safe: String = permission
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("without-{safe}")
}

/// The objects of `k8s/overlays/dev`, rendered by `kubectl kustomize`.
fn overlay() -> Vec<Value> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(Path::new(REPO).join("k8s/overlays/dev"))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("overlay YAML")
}

/// The dev overlay as rendered by kustomize (with pod processes), the optional
/// CRDs, its Service pointing at a GKE BackendConfig (so that kind is read
/// too), and the tokens.
fn scenario(permissions: &[String]) -> String {
    let mut docs = overlay();
    for doc in &mut docs {
        if doc["kind"] == "Service" {
            doc["metadata"]["annotations"]["cloud.google.com/backend-config"] =
                Value::from(r#"{"default":"dev-websocket-server"}"#);
        }
    }
    docs.extend(optional_crds());
    let mut tokens: BTreeMap<String, Vec<String>> = BTreeMap::new();
    tokens.insert("role".into(), permissions.to_vec());
    for p in permissions {
        let rest = permissions.iter().filter(|q| *q != p).cloned().collect();
        tokens.insert(token_without(p), rest);
    }
    docs.push(json!({
        "apiVersion": "lab.wsaffinity.dev/v1",
        "kind": "LabConfig",
        "namespace": NS,
        "tokens": tokens,
    }));
    docs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

async fn lab(permissions: &[String]) -> Lab {
    support::start_lab(Scenario::Yaml(scenario(permissions)), false, true).await
}

async fn plugin(lab: &Lab, token: &str, args: &[&str]) -> Run {
    let kubeconfig = lab.write_kubeconfig_for_token(token).expect("kubeconfig");
    support::run(&kubeconfig, args).await
}

const PER_POD: &[&str] = &[
    "per-pod",
    SVC,
    "--connect",
    "2",
    "--hold",
    "0",
    "-o",
    "json",
];
const LOGS: &[&str] = &["logs", SVC, "-o", "json"];

/// What happens without one permission of the Role.
enum Without {
    /// Exit 2 and "Ask for `VERB` on `RESOURCE`" from this command.
    Fatal(&'static [&'static str]),
    /// An optional routing kind: `check` notes it (WSA037) and succeeds.
    Skipped,
    /// Granted for older API servers or kubectl parity; these commands still succeed.
    NotNeeded(&'static [&'static str]),
}

fn without(permission: &str) -> Without {
    match permission {
        "get services" => Without::Fatal(&["check", SVC]),
        "list services" => Without::Fatal(&["check"]),
        "list pods" => Without::Fatal(&["check", SVC]),
        "list endpointslices.discovery.k8s.io" => Without::Fatal(&["check", SVC]),
        "get ingresses.networking.k8s.io" => {
            Without::Fatal(&["check", "ingress/dev-websocket-server"])
        }
        "get deployments.apps" => Without::Fatal(&["check", "deploy/dev-websocket-server"]),
        "get pods/log" => Without::Fatal(LOGS),
        "create pods/portforward" => Without::Fatal(PER_POD),
        // API servers before 1.30 authorized the WebSocket port-forward as `get`.
        "get pods/portforward" => Without::NotNeeded(PER_POD),
        // `kubectl get pod NAME` / `kubectl get backendconfig NAME` for the
        // commands the findings suggest; the plugin itself only LISTs.
        "get pods" => Without::NotNeeded(LOGS),
        "get backendconfigs.cloud.google.com" => Without::NotNeeded(&["check", SVC]),
        // Read by name only when an HTTPRoute or IngressRoute names one; the
        // dev overlay has none (tests/traefik_real.rs reads them for real).
        "get gateways.gateway.networking.k8s.io" | "get traefikservices.traefik.io" => {
            Without::NotNeeded(&["check", SVC])
        }
        "list ingresses.networking.k8s.io"
        | "list httproutes.gateway.networking.k8s.io"
        | "list httpproxies.projectcontour.io"
        | "list destinationrules.networking.istio.io"
        | "list backendconfigs.cloud.google.com"
        | "list ingressroutes.traefik.io" => Without::Skipped,
        other => panic!(
            "k8s/rbac/role.yaml grants `{other}`, which this test does not know: add what happens without it"
        ),
    }
}

#[test]
fn role_and_cluster_role_grant_the_same() {
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(Path::new(REPO).join("k8s/rbac").join(name))
            .expect("read the RBAC file");
        serde_saphyr::from_str(&text).expect("YAML")
    };
    // The ClusterRole adds only what a Role cannot grant: cluster-scoped
    // GatewayClasses (their controllerName names the route's controller).
    let cluster_only = |r: &Value| r["resources"] == json!(["gatewayclasses"]);
    let cluster_rules: Vec<Value> = read("clusterrole.yaml")["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| !cluster_only(r))
        .cloned()
        .collect();
    assert_eq!(read("role.yaml")["rules"], Value::Array(cluster_rules));
    assert!(
        read("clusterrole.yaml")["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(cluster_only))
    );
    let binding = read("rolebinding.yaml");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(
        binding["roleRef"]["name"],
        read("role.yaml")["metadata"]["name"]
    );
    // Every permission has a known outcome.
    for p in role_permissions() {
        let _ = without(&p);
    }
    // The Role is read-only apart from port-forward.
    for p in role_permissions() {
        let verb = p.split(' ').next().unwrap_or("");
        assert!(
            ["get", "list"].contains(&verb) || p == "create pods/portforward",
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_is_enough_for_every_subcommand() {
    let permissions = role_permissions();
    let lab = lab(&permissions).await;

    for args in [
        &["check", SVC, "-o", "json"][..],
        &["check", "-o", "json"],
        &["check", "ingress/dev-websocket-server", "-o", "json"],
        &["check", "deploy/dev-websocket-server", "-o", "json"],
    ] {
        let r = plugin(&lab, "role", args).await;
        assert_eq!(r.code, Some(0), "{args:?}\n{}\n{}", r.stdout, r.stderr);
        assert!(
            !r.codes().contains(&"WSA037".to_string()),
            "{args:?}: {:?}",
            r.codes()
        );
    }

    let r = plugin(&lab, "role", PER_POD).await;
    assert_eq!(r.code, Some(0), "per-pod\n{}\n{}", r.stdout, r.stderr);
    let r = plugin(&lab, "role", LOGS).await;
    assert_eq!(r.code, Some(0), "logs\n{}\n{}", r.stdout, r.stderr);

    // spread: clients through a URL (here one pod's server), the cluster explains.
    let pod = lab.pods(NS).into_iter().next().expect("a pod");
    let addr = lab.pod_backend(NS, &pod).expect("the pod's server");
    let url = format!("ws://{addr}/");
    let r = plugin(
        &lab,
        "role",
        &[
            "spread",
            SVC,
            "--url",
            &url,
            "--clients",
            "2",
            "--connect",
            "1",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, Some(0), "spread\n{}\n{}", r.stdout, r.stderr);
    assert!(
        !r.codes().contains(&"WSA037".to_string()),
        "{:?}",
        r.codes()
    );

    // test-service without --apply: prints the manifest after one `get services`.
    lab.reset_counts();
    let r = plugin(&lab, "role", &["test-service", SVC]).await;
    assert_eq!(r.code, Some(0), "test-service\n{}\n{}", r.stdout, r.stderr);
    let printed: Value = serde_saphyr::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("test-service prints YAML ({e}):\n{}", r.stdout));
    let source = overlay()
        .into_iter()
        .find(|d| d["kind"] == "Service")
        .expect("the overlay's Service");
    assert_eq!(
        (&printed["apiVersion"], &printed["kind"]),
        (&json!("v1"), &json!("Service")),
        "{}",
        r.stdout
    );
    assert_eq!(
        printed["metadata"]["name"], "dev-websocket-server-affinity-test",
        "{}",
        r.stdout
    );
    assert_eq!(printed["spec"]["sessionAffinity"], "None", "{}", r.stdout);
    assert_eq!(
        printed["spec"]["selector"], source["spec"]["selector"],
        "{}",
        r.stdout
    );
    let counts = lab.counts();
    assert_eq!(
        (counts.get("get services"), counts.api_total()),
        (1, 1),
        "print mode reads the Service and nothing else: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_permission_is_named() {
    let permissions = role_permissions();
    let lab = lab(&permissions).await;
    for p in &permissions {
        let token = token_without(p);
        let (verb, resource) = p.split_once(' ').expect("VERB RESOURCE");
        match without(p) {
            Without::Fatal(args) => {
                let r = plugin(&lab, &token, args).await;
                assert_eq!(
                    r.code,
                    Some(2),
                    "without `{p}`: {args:?}\n{}\n{}",
                    r.stdout,
                    r.stderr
                );
                let ask = format!("Ask for `{verb}` on `{resource}` in {NS}");
                assert!(
                    r.stderr.contains(&ask),
                    "without `{p}` the message should say {ask:?}:\n{}",
                    r.stderr
                );
                assert!(r.stderr.contains("k8s/rbac/"), "{}", r.stderr);
            }
            Without::Skipped => {
                let r = plugin(&lab, &token, &["check", SVC, "-o", "json"]).await;
                assert_eq!(r.code, Some(0), "without `{p}`\n{}\n{}", r.stdout, r.stderr);
                let report: Value = serde_json::from_str(&r.stdout).expect("JSON");
                let notes: Vec<&Value> = report["findings"]
                    .as_array()
                    .expect("findings")
                    .iter()
                    .filter(|f| f["code"] == "WSA037")
                    .collect();
                assert_eq!(notes.len(), 1, "without `{p}`: {notes:?}");
                let text = notes[0].to_string();
                assert!(
                    text.contains(&format!("{verb} {resource}")),
                    "without `{p}` WSA037 should name it: {text}"
                );
            }
            Without::NotNeeded(args) => {
                let r = plugin(&lab, &token, args).await;
                assert_eq!(
                    r.code,
                    Some(0),
                    "without `{p}`: {args:?}\n{}\n{}",
                    r.stdout,
                    r.stderr
                );
            }
        }
    }
}

/// `logs --follow` without `get pods/log` stops as one-shot `logs` does:
/// exit 2 naming the permission, at once, rather than a live table of
/// per-pod 403s until interrupted. `--follow-duration` only bounds the test
/// should the check be missing (it would then exit 0 after 30s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_without_pods_log_exits_2_at_once() {
    let permissions = role_permissions();
    let lab = lab(&permissions).await;
    let pods = lab.pods(NS).len();
    assert!(pods >= 2, "the dev overlay runs several pods: {pods}");
    lab.reset_counts();
    let r = plugin(
        &lab,
        &token_without("get pods/log"),
        &["logs", SVC, "--follow", "--follow-duration", "30s"],
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.took < std::time::Duration::from_secs(5),
        "took {:?}\n{}",
        r.took,
        r.all()
    );
    let ask = format!("Ask for `get` on `pods/log` in {NS}");
    assert!(r.stderr.contains(&ask), "{}", r.all());
    assert!(r.stdout.trim().is_empty(), "no live table: {}", r.all());
    // One small read per pod proved it; no follow stream was opened.
    assert_eq!(
        lab.counts().get("get pods/log"),
        pods as u64,
        "{:?}",
        lab.counts()
    );
}
