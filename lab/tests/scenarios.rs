//! The scenario files in lab/scenarios, loaded without processes (fast), and their knobs.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::client;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams};
use wsaffinity_lab::{Lab, LabOptions, Scenario};

fn scenario(name: &str) -> Scenario {
    Scenario::File(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
}

async fn start(name: &str) -> Lab {
    Lab::start(LabOptions {
        scenario: scenario(name),
        tls: false,
        processes: false,
    })
    .await
    .expect("scenario loads")
}

#[tokio::test]
async fn every_scenario_file_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(dir).expect("scenarios dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let lab = Lab::start(LabOptions {
                scenario: Scenario::File(path.clone()),
                tls: false,
                processes: false,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(
                !lab.pods(lab.namespace()).is_empty(),
                "{} has pods",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn big_scenario_has_200_pods_in_two_slices() {
    let lab = start("big.yaml").await;
    assert_eq!(lab.namespace(), "big");
    let c = client(&lab).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "big");
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .len(),
        200
    );
    // limit/continue paging, as kubectl (limit=500) and paging clients use it.
    let mut seen = 0;
    let mut lp = ListParams::default().limit(64);
    for _ in 0..10 {
        let page = pods.list(&lp).await.expect("page");
        seen += page.items.len();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(seen, 200);
    let nodes: Api<Node> = Api::all(c.clone());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("nodes")
            .items
            .len(),
        20
    );
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "big");
    let slices = slices
        .list(&ListParams::default())
        .await
        .expect("slices")
        .items;
    assert_eq!(
        slices.len(),
        2,
        "the controller's 100-endpoint limit splits the slices"
    );
    let not_ready = slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(false))
        .count();
    assert_eq!(not_ready, 3);

    let name = lab.pods("big")[0].clone();
    assert_eq!(
        pods.logs(&name, &LogParams::default())
            .await
            .expect("empty log"),
        ""
    );
    let mut pf = pods
        .portforward(&name, &[8080])
        .await
        .expect("portforward upgrade");
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        pf.take_error(8080).expect("error future"),
    )
    .await
    .expect("error in time");
    assert!(err.is_some_and(|e| e.contains("connection refused")));
}

#[tokio::test]
async fn faults_scenario_forbids_delays_and_limits_tokens() {
    let lab = start("faults.yaml").await;
    let c = client(&lab).await;
    let ing: Api<Ingress> = Api::namespaced(c.clone(), "faults");
    match ing.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message.contains(
                    "cannot list resource \"ingresses\" in API group \"networking.k8s.io\""
                ),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let pods: Api<Pod> = Api::namespaced(c.clone(), "faults");
    let t = Instant::now();
    pods.list(&ListParams::default()).await.expect("pods");
    assert!(
        t.elapsed() >= Duration::from_millis(20),
        "latencyMs applies"
    );

    // The faults scenario's `websocket-server[1]` error lands on that pod.
    let names: Vec<String> = lab.pods("faults");
    let mut hits = 0;
    for name in &names {
        let mut pf = pods.portforward(name, &[8080]).await.expect("portforward");
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            pf.take_error(8080).expect("error future"),
        )
        .await
        .expect("error in time")
        .unwrap_or_default();
        hits += usize::from(err.contains("injected by the faults scenario"));
    }
    assert_eq!(hits, 1);

    // A limited token from LabConfig.tokens: may list pods, may not read logs.
    let path = lab
        .write_kubeconfig_for_token("lab-reader-token")
        .expect("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(path).expect("read");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let reader: Api<Pod> =
        Api::namespaced(kube::Client::try_from(config).expect("client"), "faults");
    assert_eq!(
        reader
            .list(&ListParams::default())
            .await
            .expect("allowed")
            .items
            .len(),
        3
    );
    match reader.logs(&names[0], &LogParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn gateway_scenario_serves_its_custom_group() {
    let lab = start("gateway.yaml").await;
    let c = client(&lab).await;
    let discovery = kube::discovery::Discovery::new(c.clone())
        .run()
        .await
        .expect("kube-rs discovery");
    assert!(discovery.has_group("gateway.networking.k8s.io"));
    let aggregated = kube::discovery::Discovery::new(c.clone())
        .run_aggregated()
        .await
        .expect("kube-rs aggregated discovery");
    assert!(aggregated.has_group("gateway.networking.k8s.io") && aggregated.has_group("apps"));
    let (pods_ar, caps) = aggregated
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
        .expect("pods in core discovery");
    assert_eq!(pods_ar.plural, "pods");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "pods/log" || s.plural == "log"),
        "{:?}",
        caps.subresources
    );
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ));
    let routes: Api<DynamicObject> = Api::namespaced_with(c.clone(), "gw", &ar);
    let list = routes.list(&ListParams::default()).await.expect("routes");
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].data["spec"]["rules"][0]["sessionPersistence"]["type"],
        "Cookie"
    );
    let pods: Api<Pod> = Api::namespaced(c.clone(), "gw");
    let nodes: std::collections::BTreeSet<String> = pods
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect();
    assert_eq!(nodes.len(), 2, "3 pods on 2 nodes");
}

#[test]
fn bundled_dev_scenario_matches_the_overlay_objects() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let overlay = root.join("k8s/overlays/dev");
    let Ok(out) = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&overlay)
        .output()
    else {
        eprintln!("SKIP: kubectl not runnable");
        return;
    };
    if !out.status.success() {
        eprintln!("SKIP: kubectl kustomize failed");
        return;
    }
    let ids = |text: &str| -> std::collections::BTreeSet<(String, String)> {
        serde_saphyr::from_multiple::<serde_json::Value>(text)
            .expect("yaml")
            .into_iter()
            .filter(|d| !d.is_null())
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or("").to_string(),
                    d["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let bundled = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/dev.yaml"),
    )
    .expect("bundled");
    assert_eq!(
        ids(&String::from_utf8_lossy(&out.stdout)),
        ids(&bundled),
        "lab/scenarios/dev.yaml drifted from k8s/overlays/dev: regenerate it with kubectl kustomize"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_pods_run_and_listed_endpointslices_are_kept() {
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: raw, labels: {app: solo}}
spec:
  containers:
    - name: server
      image: websocket-server:dev
      ports: [{name: ws, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: solo, namespace: raw}
spec:
  selector: {app: solo}
  ports: [{name: ws, port: 80, targetPort: ws}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: solo-handmade
  namespace: raw
  labels: {kubernetes.io/service-name: solo}
addressType: IPv4
endpoints: []
ports: []
"#;
    let lab = Lab::start(LabOptions::new(Scenario::Yaml(yaml.into())))
        .await
        .expect("lab");
    assert_eq!(lab.pods("raw"), ["solo"]);
    let c = client(&lab).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "raw");
    let pod = pods.get("solo").await.expect("pod");
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    let mut pf = pods
        .portforward("solo", &[8080])
        .await
        .expect("portforward");
    let (ws, hello) = common::ws_over(pf.take_stream(8080).expect("stream")).await;
    assert_eq!(hello["pod"], "solo");
    common::close(ws).await;
    pf.join().await.expect("join");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "raw");
    let names: Vec<String> = slices
        .list(&ListParams::default())
        .await
        .expect("slices")
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["solo-handmade"],
        "the scenario's own slice, not a computed one"
    );
    lab.shutdown().await;
}
