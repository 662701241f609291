//! Every API read of the plugin lives here. Read-only (get/list), bounded:
//! the number of requests never depends on the number of pods.
//!
//! `check` on `svc/NAME`: GET the Service, then at once LIST pods (by the
//! Service selector), LIST EndpointSlices (`kubernetes.io/service-name`),
//! LIST Ingresses and LIST each optional routing kind once — 8 requests.

pub mod error;
pub mod resolve;
pub mod routes;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;

pub use error::GatherError;
use error::{Call, classify};
use routes::Listed;

use crate::client::Kube;
use crate::snapshot::Snapshot;
use crate::target::TargetSpec;

/// Resolves the target and reads everything `diagnose` needs.
pub async fn snapshot(kube: &Kube, spec: &TargetSpec) -> Result<Snapshot, GatherError> {
    let resolved = resolve::resolve(kube, spec).await?;
    let mut snap = Snapshot {
        namespace: kube.namespace.clone(),
        service: resolved.service,
        requested: resolved.requested,
        service_names: resolved.service_names,
        ..Default::default()
    };
    let Some(service) = snap.service.as_ref() else {
        return Ok(snap);
    };
    let name = service.metadata.name.clone().unwrap_or_default();
    let selector = selector_string(service);
    let kinds = routes::kinds_to_read(service);

    let (pods, slices, ingresses, custom) = futures::join!(
        list_pods(kube, selector.as_deref()),
        list_endpoint_slices(kube, &name),
        routes::list_ingresses(kube),
        routes::list_all_custom(kube, &kinds),
    );
    snap.pods = pods?;
    snap.endpoint_slices = slices?;
    match ingresses? {
        Listed::Items(items) => snap.ingresses = items,
        Listed::Skipped(s) => snap.skipped.push(s),
    }
    let (custom, skipped) = custom?;
    snap.custom = custom;
    snap.skipped.extend(skipped);
    let (referenced, skipped) = routes::read_referenced(kube, &name, &snap.custom).await?;
    snap.custom.extend(referenced);
    snap.skipped.extend(skipped);
    for s in &snap.skipped {
        tracing::debug!(target: "kubectl_wsaffinity::api", "skipped {}: {:?}: {}", s.resource, s.reason, s.message);
    }
    Ok(snap)
}

/// `app=web,tier=ws` from the Service's selector; `None` when it has none
/// (a selector-less Service: no pods to list).
pub fn selector_string(service: &Service) -> Option<String> {
    let selector: &BTreeMap<String, String> = service.spec.as_ref()?.selector.as_ref()?;
    if selector.is_empty() {
        return None;
    }
    Some(
        selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Pods matching the selector (one LIST; none without a selector).
pub async fn list_pods(kube: &Kube, selector: Option<&str>) -> Result<Vec<Pod>, GatherError> {
    let Some(selector) = selector else {
        return Ok(Vec::new());
    };
    list_labelled(kube, "pods", selector).await
}

/// EndpointSlices of one Service (one LIST).
pub async fn list_endpoint_slices(
    kube: &Kube,
    service: &str,
) -> Result<Vec<EndpointSlice>, GatherError> {
    let labels = format!("kubernetes.io/service-name={service}");
    list_labelled(kube, "endpointslices.discovery.k8s.io", &labels).await
}

/// One LIST of `resource` in the namespace by label selector. Any failure
/// is fatal, unlike the optional routing kinds in [`routes`].
async fn list_labelled<K>(kube: &Kube, resource: &str, labels: &str) -> Result<Vec<K>, GatherError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let c = Call {
        verb: "list",
        resource,
        namespace: &kube.namespace,
        server: &kube.server,
    };
    let api: Api<K> = Api::namespaced(kube.client.clone(), &kube.namespace);
    api.list(&ListParams::default().labels(labels))
        .await
        .map(|l| l.items)
        .map_err(|e| classify(e, c).fatal(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    #[test]
    fn selector_string_is_sorted_and_none_when_empty() {
        let svc = |sel: Option<BTreeMap<String, String>>| Service {
            spec: Some(ServiceSpec {
                selector: sel,
                ..Default::default()
            }),
            ..Default::default()
        };
        let sel: BTreeMap<String, String> =
            [("tier".into(), "ws".into()), ("app".into(), "web".into())].into();
        assert_eq!(
            selector_string(&svc(Some(sel))).as_deref(),
            Some("app=web,tier=ws")
        );
        assert_eq!(selector_string(&svc(Some(BTreeMap::new()))), None);
        assert_eq!(selector_string(&svc(None)), None);
    }
}
