//! `kubectl wsaffinity test-service`: a copy of the target Service without
//! session affinity, to compare against. Prints the manifest (no write);
//! `--apply` creates it — the only write the plugin ever makes — and
//! `--delete` removes it, refusing a Service without our label.
//!
//! Requests: print 1 GET (1 LIST without a target); `--apply` + 1 POST (and a
//! GET after a 409, to say whose the Service is); `--delete` 1 GET + 1 DELETE.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};

use crate::client::{self, Kube};
use crate::config::{Action, Config, OutputFormat, TestServiceConfig};
use crate::gather::error::{Call, Failure, classify};
use crate::gather::{self, GatherError};
use crate::render;
use crate::target::{self, TargetSpec};

/// The label every Service the plugin creates carries; `--delete` requires it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "kubectl-wsaffinity";
/// Appended to the source Service's name.
pub const SUFFIX: &str = "-affinity-test";

/// `<service>-affinity-test`, cut to a valid DNS-1035 label (63 characters):
/// the suffix is kept, the source name is shortened.
pub fn test_service_name(source: &str) -> String {
    let keep = 63 - SUFFIX.len();
    let mut base: String = source.chars().take(keep).collect();
    while base.ends_with(['-', '.']) {
        base.pop();
    }
    // Service names are DNS-1035 already; a dot (not allowed) becomes '-'.
    let base = base.replace('.', "-");
    format!("{base}{SUFFIX}")
}

/// Whether a Service was made by `test-service --apply`.
pub fn is_ours(service: &Service) -> bool {
    service
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// Why a Service cannot be copied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error(
        "svc/{0} has no selector (its endpoints are managed by hand): a copy would select no pods. Pass the Service that selects the pods"
    )]
    NoSelector(String),
    #[error("svc/{0} has no ports: there is nothing to copy")]
    NoPorts(String),
    #[error(
        "svc/{0} is itself a test Service made by kubectl-wsaffinity (label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}). Pass the original Service, or remove it with --delete"
    )]
    AlreadyATestService(String),
}

/// The test Service for `source` in `namespace`: the same selector and ports
/// (name, port, targetPort, protocol, appProtocol), ClusterIP,
/// `sessionAffinity: None`, our label. Nothing else is copied (no nodePorts,
/// traffic policies or annotations: the comparison is affinity alone).
pub fn manifest(source: &Service, namespace: &str) -> Result<Service, CopyError> {
    let name = source.metadata.name.clone().unwrap_or_default();
    if is_ours(source) {
        return Err(CopyError::AlreadyATestService(name));
    }
    let spec = source.spec.clone().unwrap_or_default();
    let selector = spec
        .selector
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CopyError::NoSelector(name.clone()))?;
    let ports: Vec<ServicePort> = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| ServicePort {
            name: p.name,
            port: p.port,
            target_port: p.target_port,
            protocol: p.protocol,
            app_protocol: p.app_protocol,
            node_port: None,
        })
        .collect();
    if ports.is_empty() {
        return Err(CopyError::NoPorts(name));
    }
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(test_service_name(&name)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY_VALUE.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector),
            ports: Some(ports),
            session_affinity: Some("None".to_string()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

pub async fn run(
    config: &Config,
    ts: &TestServiceConfig,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let kube = client::connect(&config.kube).await?;
    match ts.action {
        Action::Print => {
            let source = source_service(&kube, &ts.target).await?;
            let svc = manifest(&source, &kube.namespace)?;
            let source_name = source.metadata.name.unwrap_or_default();
            write(out, |out| match config.output.format {
                OutputFormat::Json => render::test_service::json(out, &svc),
                _ => render::test_service::manifest(out, &svc, &source_name),
            })?;
        }
        Action::Apply => {
            let source = source_service(&kube, &ts.target).await?;
            let svc = manifest(&source, &kube.namespace)?;
            let source_name = source.metadata.name.unwrap_or_default();
            let created = create(&kube, &svc, &source_name).await?;
            write(out, |out| match config.output.format {
                OutputFormat::Json => render::test_service::json(out, &created),
                OutputFormat::Yaml => render::test_service::yaml(out, &created),
                _ => render::test_service::applied(out, &created, &source_name),
            })?;
        }
        Action::Delete => {
            let name = match &ts.target {
                TargetSpec::Service(n) if n.ends_with(SUFFIX) => n.clone(),
                TargetSpec::Service(n) => test_service_name(n),
                other => {
                    let source = source_service(&kube, other).await?;
                    test_service_name(source.metadata.name.as_deref().unwrap_or_default())
                }
            };
            let deleted = delete(&kube, &name).await?;
            write(out, |out| {
                render::test_service::deleted(out, &name, &kube.namespace, deleted)
            })?;
        }
    }
    Ok(0)
}

fn write(
    out: &mut dyn Write,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    f(out)
        .and_then(|()| out.flush())
        .context("writing the output")
}

fn call<'a>(kube: &'a Kube, verb: &'static str) -> Call<'a> {
    Call {
        verb,
        resource: "services",
        namespace: &kube.namespace,
        server: &kube.server,
    }
}

/// The Service to copy. Without a target: the namespace's only Service that
/// is not one of our test Services (so it still works once one exists).
async fn source_service(kube: &Kube, spec: &TargetSpec) -> anyhow::Result<Service> {
    if *spec == TargetSpec::OnlyService {
        let c = call(kube, "list");
        let api: Api<Service> = Api::namespaced(kube.client.clone(), &kube.namespace);
        let services = api
            .list(&ListParams::default())
            .await
            .map_err(|e| classify(e, c).fatal(c))?
            .items;
        let names = services
            .iter()
            .filter(|s| !is_ours(s))
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        let name = target::only_service(&kube.namespace, names).map_err(GatherError::from)?;
        return services
            .into_iter()
            .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
            .context("the Service list changed while it was read");
    }
    let resolved = gather::resolve::resolve(kube, spec).await?;
    match resolved.service {
        Some(s) => Ok(s),
        None => bail!(
            "{} not found in namespace {}.{} Pass another target or namespace (-n)",
            resolved.requested,
            kube.namespace,
            if resolved.service_names.is_empty() {
                " It has no Services.".to_string()
            } else {
                format!(" Services there: {}.", resolved.service_names.join(", "))
            }
        ),
    }
}

/// POST the Service; a 403 names the permission, a 409 says whose it is.
async fn create(kube: &Kube, svc: &Service, source: &str) -> anyhow::Result<Service> {
    let api: Api<Service> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let name = svc.metadata.name.clone().unwrap_or_default();
    let ns = &kube.namespace;
    let c = call(kube, "create");
    let err = match api.create(&PostParams::default(), svc).await {
        Ok(created) => return Ok(created),
        Err(e) => e,
    };
    let already = matches!(&err, kube::Error::Api(s) if s.code == 409);
    if already {
        let existing = api.get(&name).await.ok();
        let whose = match existing.as_ref().map(is_ours) {
            Some(true) => format!(
                "it was made by kubectl-wsaffinity earlier. Use it as it is (kubectl wsaffinity per-pod svc/{name} -n {ns}), or remove it first: kubectl wsaffinity test-service svc/{source} -n {ns} --delete"
            ),
            _ => format!(
                "it does not carry the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}, so it is someone else's and was left as it is. Compare against it directly, or pick another namespace"
            ),
        };
        bail!("service/{name} already exists in namespace {ns}: {whose}");
    }
    match classify(err, c) {
        Failure::Forbidden(message) => bail!(
            "forbidden: cannot create services in namespace {ns} ({message}). --apply needs `create services` in {ns} (--delete needs `delete services`): `kubectl create role wsaffinity-test-service --verb=create,get,delete --resource=services -n {ns}` plus a RoleBinding. Or leave out --apply and have someone who may create Services apply the printed manifest"
        ),
        other => Err(other.fatal(c).into()),
    }
}

/// Deletes our test Service `name`: `Ok(false)` when there is none; an error
/// (nothing deleted) when it exists without our label.
async fn delete(kube: &Kube, name: &str) -> anyhow::Result<bool> {
    let api: Api<Service> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let ns = &kube.namespace;
    let c = call(kube, "get");
    let existing = match api.get(name).await {
        Ok(s) => s,
        Err(e) => match classify(e, c) {
            Failure::NotFound(_) => return Ok(false),
            other => return Err(other.fatal(c).into()),
        },
    };
    if !is_ours(&existing) {
        bail!(
            "service/{name} in namespace {ns} does not carry the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}: it was not made by `test-service --apply`, so it is left alone (nothing deleted). If it really should go: kubectl delete service {name} -n {ns}"
        );
    }
    // Delete exactly the object that was checked.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let c = call(kube, "delete");
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(e) => match classify(e, c) {
            Failure::NotFound(_) => Ok(false),
            Failure::Forbidden(message) => bail!(
                "forbidden: cannot delete services in namespace {ns} ({message}). --delete needs `delete services` in {ns}"
            ),
            other => Err(other.fatal(c).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn source() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("dev".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                annotations: Some(BTreeMap::from([("x".into(), "y".into())])),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("NodePort".into()),
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                session_affinity: Some("ClientIP".into()),
                external_traffic_policy: Some("Local".into()),
                cluster_ip: Some("10.0.0.1".into()),
                ports: Some(vec![ServicePort {
                    name: Some("ws".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("ws".into())),
                    protocol: Some("TCP".into()),
                    node_port: Some(30080),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn copies_selector_and_ports_without_affinity() {
        let svc = manifest(&source(), "dev").expect("manifest");
        assert_eq!(svc.metadata.name.as_deref(), Some("web-affinity-test"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("dev"));
        assert!(is_ours(&svc));
        assert_eq!(svc.metadata.annotations, None);
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(spec.session_affinity_config, None);
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.external_traffic_policy, None);
        let ports = spec.ports.expect("ports");
        assert_eq!(ports[0].port, 80);
        assert_eq!(ports[0].node_port, None);
        assert_eq!(ports[0].target_port, Some(IntOrString::String("ws".into())));
        assert_eq!(
            spec.selector,
            Some(BTreeMap::from([("app".into(), "web".into())]))
        );
    }

    #[test]
    fn refuses_what_cannot_be_copied() {
        let mut s = source();
        s.spec.as_mut().expect("spec").selector = None;
        assert_eq!(
            manifest(&s, "dev").expect_err("no selector"),
            CopyError::NoSelector("web".into())
        );
        let ours = manifest(&source(), "dev").expect("manifest");
        assert!(matches!(
            manifest(&ours, "dev"),
            Err(CopyError::AlreadyATestService(_))
        ));
    }

    #[test]
    fn long_names_are_cut_to_63() {
        assert_eq!(test_service_name("web"), "web-affinity-test");
        let long = format!("{}-x", "a".repeat(48));
        let name = test_service_name(&long);
        assert_eq!(name.len(), 63 - 1, "{name}");
        assert!(
            name.ends_with("a-affinity-test") && !name.contains("--"),
            "{name}"
        );
        let name = test_service_name(&"b".repeat(80));
        assert_eq!(name.len(), 63);
        assert!(name.ends_with(SUFFIX));
    }
}
