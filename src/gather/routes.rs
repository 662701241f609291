//! Ingresses and the optional routing custom resources in front of a Service.
//! A kind that answers 404 (CRD not installed) or 403 (forbidden) is recorded
//! as [`Skipped`] and the check goes on.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::error::{Call, Failure, GatherError, classify};
use crate::client::Kube;
use crate::snapshot::{CustomObjects, RouteKind, SkipReason, Skipped};

pub const INGRESS_RESOURCE: &str = "ingresses.networking.k8s.io";

/// GKE reads a BackendConfig only through this Service annotation.
pub const BACKEND_CONFIG_ANNOTATIONS: [&str; 2] = [
    "cloud.google.com/backend-config",
    "beta.cloud.google.com/backend-config",
];

/// The optional kinds worth one LIST each for this Service: every kind, except
/// BackendConfig when the Service does not reference one.
pub fn kinds_to_read(service: &Service) -> Vec<RouteKind> {
    let annotations = service.metadata.annotations.as_ref();
    let uses_backend_config = BACKEND_CONFIG_ANNOTATIONS
        .iter()
        .any(|a| annotations.is_some_and(|m| m.contains_key(*a)));
    RouteKind::ALL
        .into_iter()
        .filter(|k| *k != RouteKind::BackendConfig || uses_backend_config)
        .collect()
}

/// `httproutes.gateway.networking.k8s.io`
pub fn resource_name(kind: RouteKind) -> String {
    let (group, _, _, plural) = kind.gvk();
    format!("{plural}.{group}")
}

pub fn api_resource(kind: RouteKind) -> ApiResource {
    let (group, version, k, plural) = kind.gvk();
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, k), plural)
}

/// Either the objects, or why they were skipped.
pub enum Listed<T> {
    Items(Vec<T>),
    Skipped(Skipped),
}

fn skipped(resource: String, failure: Failure) -> Result<Skipped, GatherError> {
    let (reason, message) = match failure {
        Failure::NotFound(m) => (SkipReason::NotInstalled, m),
        Failure::Forbidden(m) => (SkipReason::Forbidden, m),
        Failure::Fatal(e) => return Err(e),
    };
    Ok(Skipped {
        resource,
        reason,
        message,
    })
}

/// Every Ingress in the namespace (one LIST).
pub async fn list_ingresses(kube: &Kube) -> Result<Listed<Ingress>, GatherError> {
    let c = Call {
        verb: "list",
        resource: INGRESS_RESOURCE,
        namespace: &kube.namespace,
        server: &kube.server,
    };
    let api: Api<Ingress> = Api::namespaced(kube.client.clone(), &kube.namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Listed::Items(list.items)),
        Err(e) => Ok(Listed::Skipped(skipped(
            INGRESS_RESOURCE.to_string(),
            classify(e, c),
        )?)),
    }
}

/// Every object of one optional kind in the namespace (one LIST).
pub async fn list_custom(
    kube: &Kube,
    kind: RouteKind,
) -> Result<Listed<DynamicObject>, GatherError> {
    let resource = resource_name(kind);
    let c = Call {
        verb: "list",
        resource: &resource,
        namespace: &kube.namespace,
        server: &kube.server,
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &api_resource(kind));
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Listed::Items(list.items)),
        Err(e) => Ok(Listed::Skipped(skipped(resource.clone(), classify(e, c))?)),
    }
}

/// All optional kinds at once.
pub async fn list_all_custom(
    kube: &Kube,
    kinds: &[RouteKind],
) -> Result<(Vec<CustomObjects>, Vec<Skipped>), GatherError> {
    let results = futures::future::join_all(kinds.iter().map(|k| list_custom(kube, *k))).await;
    let mut custom = Vec::new();
    let mut skipped = Vec::new();
    for (kind, result) in kinds.iter().zip(results) {
        match result? {
            Listed::Items(objects) => custom.push(CustomObjects {
                kind: *kind,
                objects,
            }),
            Listed::Skipped(s) => skipped.push(s),
        }
    }
    Ok((custom, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn backend_config_only_when_annotated() {
        let plain = Service::default();
        assert!(!kinds_to_read(&plain).contains(&RouteKind::BackendConfig));
        assert_eq!(kinds_to_read(&plain).len(), RouteKind::ALL.len() - 1);
        let gke = Service {
            metadata: ObjectMeta {
                annotations: Some(
                    [(
                        "cloud.google.com/backend-config".to_string(),
                        "{\"default\":\"bc\"}".to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(kinds_to_read(&gke).contains(&RouteKind::BackendConfig));
    }

    #[test]
    fn resource_names() {
        assert_eq!(
            resource_name(RouteKind::HTTPRoute),
            "httproutes.gateway.networking.k8s.io"
        );
        let ar = api_resource(RouteKind::DestinationRule);
        assert_eq!(ar.api_version, "networking.istio.io/v1");
        assert_eq!(ar.plural, "destinationrules");
    }
}
