//! `test-service` against the lab (the local stand-in for the Kubernetes API,
//! dev scenario: svc/dev-websocket-server with ClientIP affinity): the printed
//! manifest, `--apply` (the plugin's only write), `--delete` and its refusal,
//! a 403 on create, and the lab's create/delete answers themselves.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use support::Run;
use wsaffinity_lab::{Lab, Scenario};

const NS: &str = "websocket-app-dev";
const SOURCE: &str = "dev-websocket-server";
const TEST_SVC: &str = "dev-websocket-server-affinity-test";
/// The dev scenario's Service as a target.
const SOURCE_TARGET: &str = "svc/dev-websocket-server";
const LABEL: &str = "app.kubernetes.io/managed-by";

fn dev_yaml() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/scenarios/dev.yaml");
    std::fs::read_to_string(&path).expect("read lab/scenarios/dev.yaml")
}

async fn lab_with(extra: &str) -> Lab {
    let yaml = format!("{}\n---\n{extra}", dev_yaml());
    support::start_lab(Scenario::Yaml(yaml), false, false).await
}

async fn lab() -> Lab {
    support::start_lab(Scenario::Yaml(dev_yaml()), false, false).await
}

async fn client(lab: &Lab) -> Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(lab.kubeconfig_path()).expect("lab kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

async fn plugin_with(kubeconfig: &Path, args: &[&str]) -> Run {
    support::run(kubeconfig, args).await
}

async fn plugin(lab: &Lab, args: &[&str]) -> Run {
    plugin_with(lab.kubeconfig_path(), args).await
}

/// `test-service svc/dev-websocket-server -n NS`, then `extra`.
async fn test_service(lab: &Lab, extra: &[&str]) -> Run {
    let mut args = vec!["test-service", SOURCE_TARGET, "-n", NS];
    args.extend_from_slice(extra);
    plugin(lab, &args).await
}

fn selector(svc: &Service) -> Option<BTreeMap<String, String>> {
    svc.spec.as_ref().and_then(|s| s.selector.clone())
}

/// (name, port, targetPort, protocol) of each port, for comparisons.
fn ports(svc: &Service) -> Vec<(Option<String>, i32, String, Option<String>)> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.port, format!("{:?}", p.target_port), p.protocol))
        .collect()
}

fn label(svc: &Service) -> Option<String> {
    svc.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL).cloned())
}

/// A Service named `name` with one port, 80, and nothing else.
fn port_80_service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_prints_a_copy_without_affinity_and_writes_nothing() {
    let lab = lab().await;
    let source: Service = Api::namespaced(client(&lab).await, NS)
        .get(SOURCE)
        .await
        .expect("source Service");
    lab.reset_counts();

    let run = test_service(&lab, &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    // The comment block comes first and says what changes.
    let comments: Vec<&str> = run
        .stdout
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect();
    let block = comments.join("\n");
    assert!(comments.len() >= 5, "{}", run.stdout);
    assert!(
        block.contains("New connections are balanced one by one"),
        "{block}"
    );
    assert!(
        block.contains("Open WebSockets stay on their pod"),
        "{block}"
    );
    assert!(block.contains("Reconnects"), "{block}");
    assert!(block.contains("only"), "{block}");
    assert!(block.contains("per-pod session state"), "{block}");

    let svc: Service = serde_saphyr::from_str(&run.stdout).expect("the output is a Service");
    let raw: Value = serde_saphyr::from_str(&run.stdout).expect("YAML");
    assert_eq!(raw["kind"], "Service");
    assert_eq!(raw["apiVersion"], "v1");
    assert_eq!(svc.metadata.name.as_deref(), Some(TEST_SVC));
    assert_eq!(svc.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(label(&svc).as_deref(), Some("kubectl-wsaffinity"));
    let spec = svc.spec.clone().expect("spec");
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert!(spec.session_affinity_config.is_none());
    assert!(raw["spec"].get("sessionAffinityConfig").is_none());
    assert_eq!(selector(&svc), selector(&source));
    assert!(selector(&svc).is_some_and(|s| !s.is_empty()));
    assert_eq!(ports(&svc), ports(&source));

    let counts = lab.counts();
    assert_eq!(counts.get("create services"), 0, "{counts:?}");
    assert_eq!(counts.get("delete services"), 0, "{counts:?}");
    assert_eq!(counts.get("get services"), 1, "{counts:?}");

    // -o json: the same object.
    let run = test_service(&lab, &["-o", "json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json: Service = serde_json::from_str(&run.stdout).expect("JSON Service");
    assert_eq!(json, svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_apply_creates_exactly_that_object_and_delete_removes_it() {
    let lab = lab().await;
    let api: Api<Service> = Api::namespaced(client(&lab).await, NS);
    let printed = plugin(&lab, &["test-service", "-n", NS]).await;
    assert_eq!(printed.code, Some(0), "{}", printed.stderr);
    let printed: Service = serde_saphyr::from_str(&printed.stdout).expect("printed Service");
    lab.reset_counts();

    let run = test_service(&lab, &["--apply"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("service/{TEST_SVC} created in namespace {NS}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "kubectl wsaffinity per-pod svc/{TEST_SVC} -n {NS}"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("kubectl wsaffinity spread svc/{TEST_SVC} -n {NS}")),
        "{}",
        run.stdout
    );
    let counts = lab.counts();
    assert_eq!(counts.get("create services"), 1, "{counts:?}");
    assert_eq!(counts.get("delete services"), 0, "{counts:?}");

    // Exactly the printed object, plus what the API server fills in.
    let created = api.get(TEST_SVC).await.expect("the test Service exists");
    assert_eq!(created.metadata.labels, printed.metadata.labels);
    assert_eq!(selector(&created), selector(&printed));
    assert_eq!(ports(&created), ports(&printed));
    let spec = created.spec.clone().expect("spec");
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert!(spec.session_affinity_config.is_none());
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(spec.cluster_ip.is_some());
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert!(created.metadata.annotations.is_none());

    // `check` reads it like any Service: no affinity (WSA011), the same pods.
    let check = plugin(
        &lab,
        &["check", &format!("svc/{TEST_SVC}"), "-n", NS, "-o", "json"],
    )
    .await;
    let report: Value = serde_json::from_str(&check.stdout)
        .unwrap_or_else(|e| panic!("check JSON ({e}): {}\n{}", check.stdout, check.stderr));
    assert_eq!(report["service"]["sessionAffinity"], "None", "{report}");
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"WSA011"), "{codes:?}");
    assert!(
        report["endpoints"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{report}"
    );

    // A second --apply: clear message, nothing changed.
    let again = test_service(&lab, &["--apply"]).await;
    assert_eq!(again.code, Some(2), "{}\n{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(again.stderr.contains("--delete"), "{}", again.stderr);

    // Without a target the test Service does not count as a second Service.
    lab.reset_counts();
    let run = plugin(&lab, &["test-service", "-n", NS, "--delete"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("service/{TEST_SVC} deleted")),
        "{}",
        run.stdout
    );
    assert_eq!(lab.counts().get("delete services"), 1);
    let gone = api.get(TEST_SVC).await;
    assert!(
        matches!(&gone, Err(kube::Error::Api(s)) if s.code == 404),
        "{gone:?}"
    );
    assert!(api.get(SOURCE).await.is_ok(), "the source Service stays");

    let again = test_service(&lab, &["--delete"]).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to delete"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_delete_refuses_a_service_without_the_label() {
    let lab = lab().await;
    let api: Api<Service> = Api::namespaced(client(&lab).await, NS);
    let theirs = Service {
        metadata: ObjectMeta {
            name: Some(TEST_SVC.into()),
            labels: Some(BTreeMap::from([("team".into(), "web".into())])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".into(), "websocket-server".into())])),
            ports: Some(vec![ServicePort {
                port: 8080,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    api.create(&PostParams::default(), &theirs)
        .await
        .expect("create an unlabelled Service");
    lab.reset_counts();

    for target in [SOURCE_TARGET, &format!("svc/{TEST_SVC}")] {
        let run = plugin(&lab, &["test-service", target, "-n", NS, "--delete"]).await;
        assert_eq!(
            run.code,
            Some(2),
            "{target}: {}\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "does not carry the label app.kubernetes.io/managed-by=kubectl-wsaffinity"
            ),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing deleted"), "{}", run.stderr);
    }
    assert_eq!(lab.counts().get("delete services"), 0, "{:?}", lab.counts());
    assert!(
        api.get(TEST_SVC).await.is_ok(),
        "their Service is still there"
    );

    // --apply over it: someone else's, left as it is.
    let run = test_service(&lab, &["--apply"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains("someone else's"), "{}", run.stderr);
    let still = api.get(TEST_SVC).await.expect("still there");
    assert_eq!(label(&still), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_forbidden_create_names_the_permission() {
    let lab = lab_with(
        "apiVersion: lab.wsaffinity.dev/v1\nkind: LabConfig\nnamespace: websocket-app-dev\ntokens:\n  reader-token: [\"get services\", \"list services\"]\n",
    )
    .await;
    let kubeconfig = lab
        .write_kubeconfig_for_token("reader-token")
        .expect("reader kubeconfig");
    // Printing needs only read access.
    let run = plugin_with(&kubeconfig, &["test-service", SOURCE_TARGET]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    lab.reset_counts();
    let run = plugin_with(&kubeconfig, &["test-service", SOURCE_TARGET, "--apply"]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("forbidden"), "{}", run.stderr);
    assert!(run.stderr.contains("`create services`"), "{}", run.stderr);
    assert!(
        run.stderr
            .trim_end()
            .ends_with("apply the printed manifest"),
        "the advice ends in a whole sentence: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("in namespace {NS}")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(lab.counts().get("create services"), 1);
    let api: Api<Service> = Api::namespaced(client(&lab).await, NS);
    assert!(api.get(TEST_SVC).await.is_err(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_answers_service_writes_like_an_api_server() {
    let lab = lab().await;
    let kube = client(&lab).await;
    let api: Api<Service> = Api::namespaced(kube.clone(), NS);
    let svc = port_80_service("scratch");
    let created = api
        .create(&PostParams::default(), &svc)
        .await
        .expect("201 Created");
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    assert!(created.metadata.uid.is_some());
    let spec = created.spec.clone().expect("spec");
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert_eq!(
        spec.ports.expect("ports")[0].protocol.as_deref(),
        Some("TCP")
    );

    let again = api.create(&PostParams::default(), &svc).await;
    match again {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
            assert_eq!(s.message, "services \"scratch\" already exists");
        }
        other => panic!("expected 409, got {other:?}"),
    }

    // Other writes stay refused as a read-only API would.
    let replaced = api
        .replace("scratch", &PostParams::default(), &created)
        .await;
    assert!(
        matches!(&replaced, Err(kube::Error::Api(s)) if s.code == 405),
        "{replaced:?}"
    );

    let deleted = api
        .delete("scratch", &DeleteParams::default())
        .await
        .expect("200 on delete");
    let status = deleted.right().expect("a Status");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let missing = api.delete("scratch", &DeleteParams::default()).await;
    assert!(
        matches!(&missing, Err(kube::Error::Api(s)) if s.code == 404 && s.reason == "NotFound"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_follows_ingress_and_deployment_targets_and_refuses_selectorless() {
    let lab = lab().await;
    for target in [
        "ingress/dev-websocket-server",
        "deploy/dev-websocket-server",
    ] {
        let run = plugin(&lab, &["test-service", target, "-n", NS]).await;
        assert_eq!(run.code, Some(0), "{target}: {}", run.stderr);
        let svc: Service = serde_saphyr::from_str(&run.stdout).expect("Service");
        assert_eq!(svc.metadata.name.as_deref(), Some(TEST_SVC), "{target}");
    }

    // A Service without a selector: a copy would select no pods.
    let api: Api<Service> = Api::namespaced(client(&lab).await, NS);
    let manual = port_80_service("manual");
    api.create(&PostParams::default(), &manual)
        .await
        .expect("create a selector-less Service");
    lab.reset_counts();
    let run = plugin(&lab, &["test-service", "svc/manual", "-n", NS, "--apply"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("has no selector"), "{}", run.stderr);
    assert_eq!(lab.counts().get("create services"), 0);

    // A target that does not exist names the Services there.
    let run = plugin(&lab, &["test-service", "svc/nope", "-n", NS]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("svc/nope not found in namespace")
            && run.stderr.contains("dev-websocket-server"),
        "{}",
        run.stderr
    );
}
