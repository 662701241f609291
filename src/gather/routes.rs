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

/// Objects the routes in front of the Service name and `check` needs to
/// explain them: the TraefikServices an HTTPRoute or IngressRoute sends to,
/// the Gateways an HTTPRoute hangs on and their GatewayClasses (whose
/// `controllerName` says which controller serves the route). One GET each,
/// and none at all when no route names one: a namespace without them costs
/// no request. A 404 (a dangling reference, a CRD not installed) is left out
/// quietly; a 403 is recorded as skipped.
pub async fn read_referenced(
    kube: &Kube,
    service: &str,
    custom: &[CustomObjects],
) -> Result<(Vec<CustomObjects>, Vec<Skipped>), GatherError> {
    let refs = referenced(custom, &kube.namespace, service);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut read = |kind, items: Vec<Option<DynamicObject>>, skip: Vec<Skipped>| {
        skipped.extend(skip);
        out.push(CustomObjects {
            kind,
            objects: items.into_iter().flatten().collect(),
        });
    };
    let (ts, skip) = get_each(kube, RouteKind::TraefikService, &refs.traefik_services).await?;
    read(RouteKind::TraefikService, ts, skip);
    let (gateways, skip) = get_each(kube, RouteKind::Gateway, &refs.gateways).await?;
    let mut classes: Vec<(Option<String>, String)> = gateways
        .iter()
        .flatten()
        .filter_map(|g| str_field(&g.data, &["spec", "gatewayClassName"]))
        .map(|c| (None, c))
        .collect();
    classes.sort();
    classes.dedup();
    read(RouteKind::Gateway, gateways, skip);
    let (classes, skip) = get_each(kube, RouteKind::GatewayClass, &classes).await?;
    read(RouteKind::GatewayClass, classes, skip);
    out.retain(|c| !c.objects.is_empty());
    Ok((out, skipped))
}

/// Names (namespace, name) a snapshot's routes refer to; namespace `None` for
/// cluster-scoped kinds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    pub gateways: Vec<(Option<String>, String)>,
    pub traefik_services: Vec<(Option<String>, String)>,
}

/// Pure: which Gateways and TraefikServices the routes name. Gateways only of
/// HTTPRoutes that send to the Service or to a TraefikService (which may lead
/// to it).
pub fn referenced(custom: &[CustomObjects], namespace: &str, service: &str) -> Referenced {
    let mut r = Referenced::default();
    for group in custom {
        for obj in &group.objects {
            let ns = obj.metadata.namespace.as_deref().unwrap_or(namespace);
            match group.kind {
                RouteKind::HTTPRoute => {
                    let mut relevant = false;
                    for b in items(&obj.data, &["spec", "rules"])
                        .iter()
                        .flat_map(|rule| items(rule, &["backendRefs"]))
                    {
                        let kind = str_field(b, &["kind"]).unwrap_or_else(|| "Service".into());
                        let name = str_field(b, &["name"]).unwrap_or_default();
                        let b_ns = str_field(b, &["namespace"]).unwrap_or_else(|| ns.to_owned());
                        match kind.as_str() {
                            "Service" => relevant |= name == service && b_ns == namespace,
                            // `name@provider` points outside Kubernetes objects.
                            "TraefikService" if !name.contains('@') => {
                                relevant = true;
                                r.traefik_services.push((Some(b_ns), name));
                            }
                            _ => {}
                        }
                    }
                    if relevant {
                        for p in items(&obj.data, &["spec", "parentRefs"]) {
                            let kind = str_field(p, &["kind"]).unwrap_or_else(|| "Gateway".into());
                            if kind != "Gateway" {
                                continue;
                            }
                            let p_ns =
                                str_field(p, &["namespace"]).unwrap_or_else(|| ns.to_owned());
                            if let Some(name) = str_field(p, &["name"]) {
                                r.gateways.push((Some(p_ns), name));
                            }
                        }
                    }
                }
                RouteKind::IngressRoute => {
                    for svc in items(&obj.data, &["spec", "routes"])
                        .iter()
                        .flat_map(|route| items(route, &["services"]))
                    {
                        let name = str_field(svc, &["name"]).unwrap_or_default();
                        if str_field(svc, &["kind"]).as_deref() == Some("TraefikService")
                            && !name.contains('@')
                        {
                            let s_ns =
                                str_field(svc, &["namespace"]).unwrap_or_else(|| ns.to_owned());
                            r.traefik_services.push((Some(s_ns), name));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for v in [&mut r.gateways, &mut r.traefik_services] {
        v.sort();
        v.dedup();
    }
    r
}

fn items<'a>(v: &'a serde_json::Value, path: &[&str]) -> Vec<&'a serde_json::Value> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn str_field(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// GET each named object of `kind`, concurrently.
async fn get_each(
    kube: &Kube,
    kind: RouteKind,
    names: &[(Option<String>, String)],
) -> Result<(Vec<Option<DynamicObject>>, Vec<Skipped>), GatherError> {
    let resource = resource_name(kind);
    let gets = names.iter().map(|(ns, name)| {
        let resource = &resource;
        async move {
            let ar = api_resource(kind);
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(kube.client.clone(), ns, &ar),
                None => Api::all_with(kube.client.clone(), &ar),
            };
            let c = Call {
                verb: "get",
                resource,
                namespace: ns.as_deref().unwrap_or(""),
                server: &kube.server,
            };
            match api.get(name).await {
                Ok(obj) => Ok((Some(obj), None)),
                Err(e) => match classify(e, c) {
                    Failure::NotFound(_) => Ok((None, None)),
                    f => Ok((None, Some(skipped(resource.clone(), f)?))),
                },
            }
        }
    });
    let results: Vec<Result<_, GatherError>> = futures::future::join_all(gets).await;
    let mut objects = Vec::new();
    let mut skips = Vec::new();
    for r in results {
        let (obj, skip) = r?;
        objects.push(obj);
        skips.extend(skip);
    }
    skips.dedup();
    Ok((objects, skips))
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

    fn objects(kind: RouteKind, data: Vec<serde_json::Value>) -> CustomObjects {
        CustomObjects {
            kind,
            objects: data
                .into_iter()
                .map(|d| {
                    let mut o = DynamicObject::new("x", &api_resource(kind)).within("app");
                    o.data = d;
                    o
                })
                .collect(),
        }
    }

    #[test]
    fn referenced_gateways_only_of_routes_to_us_and_traefikservices_by_name() {
        let routes = objects(
            RouteKind::HTTPRoute,
            vec![
                serde_json::json!({"spec": {"parentRefs": [{"name": "ours"}, {"name": "other-ns", "namespace": "infra"}],
                    "rules": [{"backendRefs": [{"name": "web"}]}]}}),
                serde_json::json!({"spec": {"parentRefs": [{"name": "not-ours"}],
                    "rules": [{"backendRefs": [{"name": "api"}]}]}}),
                serde_json::json!({"spec": {"parentRefs": [{"name": "via-ts"}],
                    "rules": [{"backendRefs": [{"kind": "TraefikService", "name": "sticky"},
                                               {"kind": "TraefikService", "name": "api@internal"}]}]}}),
            ],
        );
        let irs = objects(
            RouteKind::IngressRoute,
            vec![
                serde_json::json!({"spec": {"routes": [{"services": [{"kind": "TraefikService", "name": "wrr"}, {"name": "web"}]}]}}),
            ],
        );
        let r = referenced(&[routes, irs], "app", "web");
        let some = |ns: &str, n: &str| (Some(ns.to_string()), n.to_string());
        assert_eq!(
            r.gateways,
            vec![
                some("app", "ours"),
                some("app", "via-ts"),
                some("infra", "other-ns")
            ]
        );
        assert_eq!(
            r.traefik_services,
            vec![some("app", "sticky"), some("app", "wrr")]
        );
        assert_eq!(referenced(&[], "app", "web"), Referenced::default());
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
