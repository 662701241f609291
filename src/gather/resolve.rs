//! Target → Service: the API reads (`target` has the pure rules).
//!
//! Requests: `svc/NAME` 1 GET (plus a metadata LIST of Service names only when
//! it is missing); no target 1 LIST; `ingress/NAME` 1 GET + 1 GET;
//! `deploy/NAME` 1 GET + 1 LIST.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;

use super::error::{Call, Failure, GatherError, classify};
use crate::client::Kube;
use crate::target::{self, TargetSpec};

/// The target, resolved as far as the cluster allows.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// As the user named it (`svc/NAME`, `ingress/NAME`, ...); for no target, `svc/<the only Service>`.
    pub requested: String,
    /// `None` when the named object does not exist (→ WSA001).
    pub service: Option<Service>,
    /// The namespace's Service names when the target is missing (for "did you
    /// mean"); otherwise just the resolved Service.
    pub service_names: Vec<String>,
}

fn call<'a>(kube: &'a Kube, verb: &'static str, resource: &'a str) -> Call<'a> {
    Call {
        verb,
        resource,
        namespace: &kube.namespace,
        server: &kube.server,
    }
}

pub async fn resolve(kube: &Kube, spec: &TargetSpec) -> Result<Resolved, GatherError> {
    let ns = kube.namespace.as_str();
    match spec {
        TargetSpec::Service(name) => {
            let mut resolved = service_by_name(kube, name).await?;
            resolved.requested = spec.to_string();
            Ok(resolved)
        }
        TargetSpec::OnlyService => {
            let services = list_services(kube).await?;
            let names = services
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect();
            let name = target::only_service(ns, names)?;
            let service = services
                .into_iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            Ok(Resolved {
                requested: format!("svc/{name}"),
                service,
                service_names: vec![name],
            })
        }
        TargetSpec::Ingress(name) => {
            let c = call(kube, "get", "ingresses.networking.k8s.io");
            let api: Api<Ingress> = Api::namespaced(kube.client.clone(), ns);
            match api.get(name).await {
                Ok(ingress) => {
                    let svc = target::service_of_ingress(name, &ingress)?;
                    let mut resolved = service_by_name(kube, &svc).await?;
                    // A missing backend Service is reported as `svc/<backend>`.
                    if resolved.service.is_some() {
                        resolved.requested = spec.to_string();
                    }
                    Ok(resolved)
                }
                Err(e) => match classify(e, c) {
                    Failure::NotFound(_) => {
                        // Suggest Services: `svc/NAME` is what the user can pass instead.
                        let names = names_of::<Service>(kube, "services").await?;
                        Ok(Resolved {
                            requested: spec.to_string(),
                            service: None,
                            service_names: names,
                        })
                    }
                    other => Err(other.fatal(c)),
                },
            }
        }
        TargetSpec::Deployment(name) => {
            let c = call(kube, "get", "deployments.apps");
            let api: Api<Deployment> = Api::namespaced(kube.client.clone(), ns);
            let (deploy, services) = futures::join!(api.get(name), list_services(kube));
            match deploy {
                Ok(deploy) => {
                    let services = services?;
                    let labels = deploy
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    let svc = target::service_for_pod_labels(ns, name, &labels, &services)?;
                    let service = services
                        .into_iter()
                        .find(|s| s.metadata.name.as_deref() == Some(svc.as_str()));
                    Ok(Resolved {
                        requested: spec.to_string(),
                        service,
                        service_names: vec![svc],
                    })
                }
                Err(e) => match classify(e, c) {
                    Failure::NotFound(_) => {
                        let mut names: Vec<String> = services?
                            .into_iter()
                            .filter_map(|s| s.metadata.name)
                            .collect();
                        names.sort();
                        Ok(Resolved {
                            requested: spec.to_string(),
                            service: None,
                            service_names: names,
                        })
                    }
                    other => Err(other.fatal(c)),
                },
            }
        }
    }
}

/// GET one Service; when it is missing, the names of the others for suggestions.
async fn service_by_name(kube: &Kube, name: &str) -> Result<Resolved, GatherError> {
    let c = call(kube, "get", "services");
    let api: Api<Service> = Api::namespaced(kube.client.clone(), &kube.namespace);
    match api.get(name).await {
        Ok(service) => Ok(Resolved {
            requested: format!("svc/{name}"),
            service: Some(service),
            service_names: vec![],
        }),
        Err(e) => match classify(e, c) {
            Failure::NotFound(_) => {
                let names = names_of::<Service>(kube, "services").await?;
                Ok(Resolved {
                    requested: format!("svc/{name}"),
                    service: None,
                    service_names: names,
                })
            }
            other => Err(other.fatal(c)),
        },
    }
}

async fn list_services(kube: &Kube) -> Result<Vec<Service>, GatherError> {
    let c = call(kube, "list", "services");
    let api: Api<Service> = Api::namespaced(kube.client.clone(), &kube.namespace);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| classify(e, c).fatal(c))
}

/// Sorted names of one kind in the namespace (a metadata-only LIST).
async fn names_of<K>(kube: &Kube, resource: &str) -> Result<Vec<String>, GatherError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + std::fmt::Debug,
    K: serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let c = call(kube, "list", resource);
    let api: Api<K> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| classify(e, c).fatal(c))?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}
