//! The Kubernetes manifests under `k8s/`: they parse into k8s-openapi types,
//! match what the server serves, run it locked down, and the dev overlay
//! renders with the real `kubectl kustomize`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s")
}

fn parse<T: DeserializeOwned>(file: &str) -> T {
    let path = k8s_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn container(deployment: &Deployment) -> &Container {
    let spec = deployment.spec.as_ref().expect("deployment spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    &pod.containers[0]
}

/// The value of `--flag=value` in the container args.
fn arg<'a>(container: &'a Container, flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    container
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn port_name(port: &IntOrString) -> &str {
    match port {
        IntOrString::String(name) => name,
        IntOrString::Int(n) => panic!("probe uses port number {n}, expected the port name"),
    }
}

/// Asserts the pod runs locked down: non-root, read-only root fs, no capabilities.
fn assert_locked_down(deployment: &Deployment) {
    let spec = deployment.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let pod_security = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(pod_security.run_as_user.is_some_and(|uid| uid != 0));
    let security = container(deployment)
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let drop = security
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.as_ref())
        .expect("capabilities.drop");
    assert_eq!(drop, &["ALL".to_string()]);
    assert!(
        security
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_none_or(|add| add.is_empty())
    );
}

#[test]
fn the_deployment_runs_the_server_as_the_issue_describes() {
    let deployment: Deployment = parse("base/deployment.yaml");
    let labels = deployment.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels["app"], "websocket-server");
    let spec = deployment.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let selector = spec.selector.match_labels.as_ref().expect("selector");
    assert_eq!(selector["app"], "websocket-server");

    let c = container(&deployment);
    let ports = c.ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].container_port, 8080);
    assert_eq!(ports[0].name.as_deref(), Some("ws"));
    assert_eq!(arg(c, "--port"), Some("8080"));

    let env: Vec<(&str, &str)> = c
        .env
        .iter()
        .flatten()
        .map(|e| {
            let field = e
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                .unwrap_or_else(|| panic!("{} is not from the downward API", e.name));
            (e.name.as_str(), field)
        })
        .collect();
    for expected in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("NODE_NAME", "spec.nodeName"),
        ("POD_IP", "status.podIP"),
    ] {
        assert!(env.contains(&expected), "missing {expected:?} in {env:?}");
    }

    let resources = c.resources.as_ref().expect("resources");
    assert!(
        resources
            .requests
            .as_ref()
            .is_some_and(|r| r.contains_key("memory"))
    );
    assert!(
        resources
            .limits
            .as_ref()
            .is_some_and(|l| l.contains_key("memory"))
    );

    // The grace period covers preStop plus the server's drain timeout.
    let pre_stop = c
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|p| p.sleep.as_ref())
        .expect("preStop sleep")
        .seconds;
    assert!((1..=15).contains(&pre_stop), "preStop sleep {pre_stop}s");
    let drain: f64 = arg(c, "--drain-timeout")
        .unwrap_or("25")
        .parse()
        .expect("--drain-timeout is a number");
    let grace = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.termination_grace_period_seconds)
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace as f64 > pre_stop as f64 + drain,
        "grace {grace}s must exceed preStop {pre_stop}s + drain {drain}s"
    );
    assert_locked_down(&deployment);
}

#[tokio::test]
async fn probes_and_ports_match_what_the_server_serves() {
    let deployment: Deployment = parse("base/deployment.yaml");
    let service: Service = parse("base/service.yaml");
    let c = container(&deployment);
    let port = &c.ports.as_ref().expect("ports")[0];
    let port_name_declared = port.name.as_deref().expect("port name");

    let server = InProcess::start(config()).await;
    for (what, probe) in [
        ("readiness", c.readiness_probe.as_ref()),
        ("liveness", c.liveness_probe.as_ref()),
    ] {
        let http = probe
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{what} probe is an httpGet"));
        assert_eq!(
            port_name(&http.port),
            port_name_declared,
            "{what} probe port"
        );
        let path = http.path.as_deref().expect("probe path");
        let (status, body) = get(server.addr, path).await;
        assert_eq!(status, 200, "{what} probe {path} answers {status}: {body}");
    }
    assert_eq!(
        c.readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.as_deref()),
        Some("/readyz")
    );
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.as_deref()),
        Some("/healthz")
    );

    let spec = service.spec.as_ref().expect("service spec");
    let ports = spec.ports.as_ref().expect("service ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 8080);
    assert_eq!(
        ports[0].target_port.as_ref().map(port_name),
        Some(port_name_declared)
    );
    server.shutdown().await;
}

#[test]
fn the_service_pins_client_ips_for_three_hours() {
    let service: Service = parse("base/service.yaml");
    assert_eq!(service.metadata.name.as_deref(), Some("websocket-server"));
    let spec = service.spec.as_ref().expect("spec");
    assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds);
    assert_eq!(timeout, Some(10800));
    let selector = spec.selector.as_ref().expect("selector");
    assert_eq!(selector["app"], "websocket-server");
}

#[test]
fn the_ingress_uses_nginx_cookie_affinity_and_long_timeouts() {
    let ingress: Ingress = parse("base/ingress.yaml");
    let annotations = ingress.metadata.annotations.as_ref().expect("annotations");
    let annotation = |key: &str| {
        annotations
            .get(&format!("nginx.ingress.kubernetes.io/{key}"))
            .map(String::as_str)
    };
    assert_eq!(annotation("affinity"), Some("cookie"));
    assert!(annotation("session-cookie-name").is_some());
    assert_eq!(annotation("proxy-read-timeout"), Some("3600"));
    assert_eq!(annotation("proxy-send-timeout"), Some("3600"));
    let spec = ingress.spec.as_ref().expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rules = spec.rules.as_ref().expect("rules");
    assert_eq!(rules[0].host.as_deref(), Some("websocket-dev.example.com"));
    let backend = rules[0].http.as_ref().expect("http rule").paths[0]
        .backend
        .service
        .as_ref()
        .expect("service backend");
    assert_eq!(backend.name, "websocket-server");
    let port = backend.port.as_ref().expect("backend port");
    assert!(port.name.as_deref() == Some("ws") || port.number == Some(8080));
}

#[test]
fn the_base_kustomization_lists_every_manifest() {
    let text = std::fs::read_to_string(k8s_dir().join("base/kustomization.yaml"))
        .expect("read base/kustomization.yaml");
    for file in ["deployment.yaml", "service.yaml", "ingress.yaml"] {
        assert!(text.contains(file), "kustomization.yaml lacks {file}");
    }
}

#[test]
fn kubectl_kustomize_renders_the_dev_overlay() {
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(k8s_dir().join("overlays/dev"))
        .output()
        .expect("kubectl must be on PATH to render k8s/overlays/dev");
    assert!(
        output.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).expect("UTF-8 output");
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&rendered).expect("rendered YAML parses");
    let find = |kind: &str| {
        documents
            .iter()
            .filter(|d| d["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };

    let namespaces = find("Namespace");
    assert_eq!(namespaces.len(), 1);
    let namespace: Namespace = serde_json::from_value(namespaces[0].clone()).expect("Namespace");
    assert_eq!(
        namespace.metadata.name.as_deref(),
        Some("websocket-app-dev")
    );

    let services = find("Service");
    assert_eq!(services.len(), 1);
    let service: Service = serde_json::from_value(services[0].clone()).expect("Service");
    assert_eq!(
        service.metadata.name.as_deref(),
        Some("dev-websocket-server")
    );
    assert_eq!(
        service.metadata.namespace.as_deref(),
        Some("websocket-app-dev")
    );
    let spec = service.spec.as_ref().expect("spec");
    assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    assert_eq!(
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds),
        Some(10800)
    );

    let deployments = find("Deployment");
    assert_eq!(deployments.len(), 1);
    let deployment: Deployment =
        serde_json::from_value(deployments[0].clone()).expect("Deployment");
    assert_eq!(
        deployment.metadata.name.as_deref(),
        Some("dev-websocket-server")
    );
    assert_eq!(
        deployment.metadata.namespace.as_deref(),
        Some("websocket-app-dev")
    );
    assert_locked_down(&deployment);

    let ingresses = find("Ingress");
    assert_eq!(ingresses.len(), 1);
    let ingress: Ingress = serde_json::from_value(ingresses[0].clone()).expect("Ingress");
    assert_eq!(
        ingress.metadata.namespace.as_deref(),
        Some("websocket-app-dev")
    );
    let backend = ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .expect("rules")[0]
        .http
        .as_ref()
        .expect("http")
        .paths[0]
        .backend
        .service
        .as_ref()
        .expect("service backend")
        .name
        .clone();
    assert_eq!(
        backend, "dev-websocket-server",
        "the Ingress follows the prefix"
    );
}
