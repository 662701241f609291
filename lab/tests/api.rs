//! The lab's API against real clients: kubectl and kube-rs.

mod common;

use common::{NS, client, close, dev_lab, echo, eventually, kubectl, last_active, ws_over};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, LogParams};
use wsaffinity_lab::{Lab, LabOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_gets_and_reads_logs() {
    let lab = dev_lab().await;
    let pods = lab.pods(NS);
    assert_eq!(pods.len(), 2, "dev overlay has 2 replicas: {pods:?}");
    let Some((ok, out)) = kubectl(&lab, &["get", "svc,pods,endpointslices,ingress", "-n", NS])
    else {
        return;
    };
    assert!(ok, "kubectl get failed:\n{out}");
    for want in [
        "service/dev-websocket-server",
        "ingress.networking.k8s.io/dev-websocket-server",
        "nginx",
        "Running",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    for p in &pods {
        assert!(out.contains(p.as_str()), "missing pod {p} in:\n{out}");
    }
    assert!(
        out.contains("endpointslice.discovery.k8s.io/dev-websocket-server-"),
        "{out}"
    );

    let (ok, out) =
        kubectl(&lab, &["get", "pods", "-l", "app=websocket-server"]).expect("kubectl ran");
    assert!(ok, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("dev-websocket-server-"))
            .count(),
        2,
        "{out}"
    );
    let (ok, out) = kubectl(&lab, &["get", "pods", "-l", "app=nothing"]).expect("kubectl ran");
    assert!(ok && out.contains("No resources found"), "{out}");

    let (ok, out) = kubectl(&lab, &["logs", &format!("pod/{}", pods[0])]).expect("kubectl ran");
    assert!(ok, "{out}");
    assert!(out.contains("listening on 127.0.0.1:"), "{out}");
    assert!(
        out.contains(&pods[0]),
        "the server logs its pod name: {out}"
    );

    let (ok, out) = kubectl(&lab, &["get", "pod", "nope"]).expect("kubectl ran");
    assert!(!ok && out.contains("pods \"nope\" not found"), "{out}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_with_selectors_and_gets_404_status() {
    let lab = dev_lab().await;
    let client = client(&lab).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let count = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
                .len()
        }
    };
    assert_eq!(count("app=websocket-server").await, 2);
    assert_eq!(count("app==websocket-server").await, 2);
    assert_eq!(count("app!=websocket-server").await, 0);
    assert_eq!(count("app in (websocket-server,other)").await, 2);
    assert_eq!(count("app notin (websocket-server)").await, 0);
    assert_eq!(count("pod-template-hash").await, 2);
    assert_eq!(count("!pod-template-hash").await, 0);
    let name = lab.pods(NS)[0].clone();
    let by_name = pods
        .list(&ListParams::default().fields(&format!("metadata.name={name}")))
        .await
        .expect("list by field");
    assert_eq!(by_name.items.len(), 1);
    assert!(by_name.metadata.resource_version.is_some());

    let all: Api<Pod> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all namespaces")
            .items
            .len(),
        2
    );

    match pods.get("nope").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "pods \"nope\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
    let svc: Api<Service> = Api::namespaced(client.clone(), NS);
    let s = svc.get("dev-websocket-server").await.expect("service");
    assert_eq!(
        s.spec.and_then(|s| s.session_affinity).as_deref(),
        Some("ClientIP")
    );
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let sl = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=dev-websocket-server"))
        .await
        .expect("slices");
    assert_eq!(sl.items.len(), 1);
    let eps = &sl.items[0].endpoints;
    assert_eq!(eps.len(), 2);
    assert!(
        eps.iter()
            .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
    );
    assert_eq!(
        sl.items[0].ports.as_ref().and_then(|p| p[0].port),
        Some(8080)
    );

    // A readiness change shows in the slice.
    lab.set_ready(NS, &name, false);
    let sl = slices.list(&ListParams::default()).await.expect("slices");
    let ready: Vec<_> = sl.items[0]
        .endpoints
        .iter()
        .map(|e| e.conditions.as_ref().and_then(|c| c.ready))
        .collect();
    assert!(ready.contains(&Some(false)), "{ready:?}");
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), NS);
    let d = deploys
        .get("dev-websocket-server")
        .await
        .expect("deployment");
    assert_eq!(
        d.status.and_then(|s| s.ready_replicas),
        Some(1),
        "deployment status follows pod readiness"
    );
    let eps: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), NS);
    let ep = eps.get("dev-websocket-server").await.expect("v1 Endpoints");
    let subset = &ep.subsets.expect("subsets")[0];
    assert_eq!(subset.addresses.as_ref().map(Vec::len), Some(1));
    assert_eq!(subset.not_ready_addresses.as_ref().map(Vec::len), Some(1));

    // 403 on demand; a CRD that isn't installed is 404.
    lab.forbid("ingresses");
    let ing: Api<Ingress> = Api::namespaced(client.clone(), NS);
    match ing.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden")),
        other => panic!("expected 403, got {other:?}"),
    }
    let gvk = kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
    match routes.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }

    let counts = lab.counts();
    assert!(counts.get("list pods") >= 8, "{counts:?}");
    assert_eq!(counts.get("get pods"), 1);
    assert_eq!(counts.get("list ingresses"), 1);
    lab.reset_counts();
    let text = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(text.lines().count(), 1);
    let counts = lab.counts();
    assert_eq!((counts.get("get pods/log"), counts.total()), (1, 1));
    assert_eq!(counts.log_bytes_sent(), text.len() as u64);
    lab.shutdown().await;
}

/// A lab whose namespace `t` has `replicas` pods that run no process, so
/// their logs hold only what a test appends.
async fn quiet_pods(replicas: u32) -> Lab {
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: quiet, namespace: t, \
        annotations: {{lab.wsaffinity.dev/processes: \"false\"}}}}\nspec:\n  replicas: {replicas}\n  \
        selector: {{matchLabels: {{app: q}}}}\n  template:\n    metadata: {{labels: {{app: q}}}}\n    \
        spec: {{containers: [{{name: c, image: i}}]}}\n"
    );
    Lab::start(LabOptions::new(Scenario::Yaml(yaml)))
        .await
        .expect("lab")
}

#[tokio::test]
async fn logs_options_and_follow() {
    let lab = quiet_pods(1).await;
    let pod = lab.pods("t")[0].clone();
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, "t");
    assert_eq!(
        pods.logs(&pod, &LogParams::default())
            .await
            .expect("empty log"),
        ""
    );
    lab.append_log("t", &pod, "one\ntwo\nthree\n");
    let lp = |f: fn(&mut LogParams)| {
        let mut p = LogParams::default();
        f(&mut p);
        p
    };
    assert_eq!(
        pods.logs(&pod, &lp(|p| p.tail_lines = Some(2)))
            .await
            .expect("tail"),
        "two\nthree\n"
    );
    assert_eq!(
        pods.logs(&pod, &lp(|p| p.limit_bytes = Some(5)))
            .await
            .expect("limit"),
        "one\nt"
    );
    assert_eq!(
        pods.logs(&pod, &lp(|p| p.since_seconds = Some(60)))
            .await
            .expect("since")
            .lines()
            .count(),
        3
    );
    let ts = pods
        .logs(&pod, &lp(|p| p.timestamps = true))
        .await
        .expect("timestamps");
    let first = ts.lines().next().expect("a line");
    let (stamp, rest) = first.split_once(' ').expect("timestamp and text");
    assert!(
        stamp.parse::<jiff::Timestamp>().is_ok() && rest == "one",
        "{first}"
    );
    match pods
        .logs(&pod, &lp(|p| p.container = Some("nope".into())))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 400),
        other => panic!("expected 400, got {other:?}"),
    }

    // follow: new lines arrive as they are appended.
    use futures::AsyncBufReadExt;
    let stream = pods
        .log_stream(&pod, &lp(|p| p.follow = true))
        .await
        .expect("follow");
    let mut lines = stream.lines();
    use futures::StreamExt;
    for want in ["one", "two", "three"] {
        assert_eq!(lines.next().await.expect("line").expect("ok"), want);
    }
    lab.append_log("t", &pod, "four\n");
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next()).await;
    assert_eq!(
        next.expect("followed line in time")
            .expect("line")
            .expect("ok"),
        "four"
    );
    assert_eq!(lab.counts().open_log_follows, 1, "{:?}", lab.counts());
    drop(lines);
    assert!(lab.counts().log_bytes_sent() > 0);
    // The client went away: the lab ends the follow and counts it closed.
    eventually(
        "the follow stayed open after the client dropped it",
        std::time::Duration::from_secs(5),
        || lab.counts().open_log_follows == 0,
    )
    .await;
}

#[tokio::test]
async fn a_silent_pods_follow_gets_its_headers_with_the_first_line_as_from_a_kubelet() {
    use futures::{AsyncBufReadExt, StreamExt};
    use std::time::Duration;
    let lab = quiet_pods(2).await;
    let (pod, other) = (lab.pods("t")[0].clone(), lab.pods("t")[1].clone());
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, "t");
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };

    // Nothing logged: no response yet (a kubelet writes no headers before
    // the first byte, and the API server relays none before the kubelet's).
    let opening = pods.log_stream(&pod, &follow);
    tokio::pin!(opening);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut opening)
            .await
            .is_err(),
        "the follow of a silent pod answered before it logged"
    );
    lab.append_log("t", &pod, "first\n");
    let stream = tokio::time::timeout(Duration::from_secs(5), opening)
        .await
        .expect("headers once the pod logs")
        .expect("follow");
    let mut lines = stream.lines();
    assert_eq!(lines.next().await.expect("line").expect("ok"), "first");
    drop(lines);

    // A pod with a log answers at once.
    let stream = tokio::time::timeout(Duration::from_secs(5), pods.log_stream(&pod, &follow))
        .await
        .expect("headers at once")
        .expect("follow");
    drop(stream);

    // A client that gives up before the first byte leaves nothing open.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), pods.log_stream(&other, &follow));
    assert!(gave_up.await.is_err(), "the other pod is silent too");
    eventually(
        "the follows stayed open after the client dropped them",
        Duration::from_secs(5),
        || lab.counts().open_log_follows == 0,
    )
    .await;
}

#[tokio::test]
async fn tls_kubeconfig_works_with_kube_rs() {
    let lab = Lab::start(LabOptions {
        scenario: Scenario::DevOverlay,
        tls: true,
        processes: false,
    })
    .await
    .expect("lab");
    assert!(lab.server_url().starts_with("https://127.0.0.1:"));
    let text = std::fs::read_to_string(lab.kubeconfig_path()).expect("kubeconfig");
    assert!(text.contains("certificate-authority-data:"));
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("list over TLS")
            .items
            .len(),
        2
    );

    // Over TLS a request without the token is 401, as on a real API server.
    let ca = reqwest_free_get(&lab).await;
    assert_eq!(ca, 401);
}

/// A bare kube-rs client with the lab's CA but no token.
async fn reqwest_free_get(lab: &Lab) -> u16 {
    let mut config = kube::Config::new(lab.server_url().parse().expect("url"));
    let pem = lab.ca_pem().expect("ca");
    let der = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    use base64::Engine;
    config.root_cert = Some(vec![
        base64::engine::general_purpose::STANDARD
            .decode(der)
            .expect("pem body"),
    ]);
    let client = kube::Client::try_from(config).expect("client");
    let pods: Api<Pod> = Api::namespaced(client, NS);
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("expected 401, got {other:?}"),
    }
}

/// `add_pod` scales the Deployment up by one at run time: the new pod is in a
/// LIST with a newer resourceVersion, ready in the Service's EndpointSlice
/// with the right targetRef, and its own server answers a port-forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_pod_scales_the_deployment_up_by_one_at_run_time() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Node;

    let lab = dev_lab().await;
    let client = client(&lab).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let by_selector = ListParams::default().labels("app=websocket-server");
    let before = pods.list(&by_selector).await.expect("list");
    assert_eq!(before.items.len(), 2);
    let rv = |p: &Pod| {
        p.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .expect("numeric resourceVersion")
    };
    let newest_before = before.items.iter().map(rv).max().expect("pods");
    let old_names = lab.pods(NS);

    let name = lab
        .add_pod(NS, "dev-websocket-server")
        .await
        .expect("add a pod");
    // `<deploy>-<same hash>-<5 new chars>`
    let rs = &old_names[0][..old_names[0].len() - 6];
    let suffix = name
        .strip_prefix(&format!("{rs}-"))
        .unwrap_or_else(|| panic!("{name} is not a pod of {rs}"));
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(!old_names.contains(&name), "{name} is new: {old_names:?}");
    assert_eq!(lab.pods(NS).len(), 3);

    // In a LIST with the Deployment's selector, Running and Ready, newer.
    let after = pods.list(&by_selector).await.expect("list");
    assert_eq!(after.items.len(), 3);
    let pod = after
        .items
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
        .expect("the new pod is listed");
    assert!(rv(pod) > newest_before, "newer resourceVersion");
    let status = pod.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert_eq!(
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash")),
        before.items[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
    );
    let pod_uid = pod.metadata.uid.clone().expect("uid");
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("scheduled");
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.get(&node).await.expect("its fake node exists");

    // Ready in the Service's EndpointSlice, with a targetRef to it.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let sl = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=dev-websocket-server"))
        .await
        .expect("slices");
    let eps: Vec<_> = sl.items.iter().flat_map(|s| s.endpoints.iter()).collect();
    assert_eq!(eps.len(), 3);
    let ep = eps
        .iter()
        .find(|e| e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(name.as_str()))
        .expect("an endpoint for the new pod");
    let target = ep.target_ref.as_ref().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.namespace.as_deref(), Some(NS));
    assert_eq!(target.uid.as_deref(), Some(pod_uid.as_str()));
    assert_eq!(ep.conditions.as_ref().and_then(|c| c.ready), Some(true));
    assert_eq!(ep.node_name.as_deref(), Some(node.as_str()));
    assert_eq!(
        ep.addresses.first().map(String::as_str),
        status.pod_ip.as_deref()
    );

    // The Deployment is scaled: 3 wanted, 3 ready.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = deploys
        .get("dev-websocket-server")
        .await
        .expect("deployment");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));
    let ds = d.status.expect("status");
    assert_eq!((ds.replicas, ds.ready_replicas), (Some(3), Some(3)));

    // Its own real server: a backend, a baseline count, and a port-forward to it.
    assert!(lab.pod_backend(NS, &name).is_some());
    assert_eq!(last_active(&pods, &name).await, Some(0));
    let mut pf = pods.portforward(&name, &[8080]).await.expect("portforward");
    let (mut ws, hello) = ws_over(pf.take_stream(8080).expect("stream")).await;
    assert_eq!(
        hello["pod"],
        name.as_str(),
        "the forward reached the new pod"
    );
    echo(&mut ws, "hello, new pod").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while last_active(&pods, &name).await != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `Active connections: 1`"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    close(ws).await;
    pf.join().await.expect("forwarder ends cleanly");

    // Another scale-up makes another name; delete_pod undoes one.
    let second = lab
        .add_pod(NS, "dev-websocket-server")
        .await
        .expect("add another pod");
    assert_ne!(second, name);
    assert_eq!(lab.pods(NS).len(), 4);
    lab.delete_pod(NS, &name).await;
    let left = pods.list(&by_selector).await.expect("list");
    assert_eq!(left.items.len(), 3);
    let sl = slices.list(&ListParams::default()).await.expect("slices");
    assert!(
        sl.items.iter().flat_map(|s| s.endpoints.iter()).all(|e| e
            .target_ref
            .as_ref()
            .and_then(|t| t.name.as_deref())
            != Some(name.as_str()))
    );

    match lab.add_pod(NS, "nope").await {
        Err(e) => assert!(e.to_string().contains("\"nope\" not found"), "{e}"),
        Ok(p) => panic!("added {p} to a missing Deployment"),
    }
    lab.shutdown().await;
}
