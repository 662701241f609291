//! Hand-built Kubernetes objects for the rule tests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, Container, ContainerPort, ObjectReference, Pod, PodCondition, PodSpec,
    PodStatus, Service, ServicePort, ServiceSpec, SessionAffinityConfig,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::report::Finding;
use crate::snapshot::{CustomObjects, RouteKind, SkipReason, Skipped, Snapshot};

pub fn codes(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        ..Default::default()
    }
}

fn annotate(m: &mut ObjectMeta, k: &str, v: &str) {
    m.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(k.into(), v.into());
}

// ---------------------------------------------------------------- Service

pub struct SvcB(Service);

/// A ClusterIP Service `name` selecting `app=name`, port 8080 → targetPort `ws`.
pub fn service(name: &str) -> SvcB {
    SvcB(Service {
        metadata: meta(name),
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), name.to_string())].into()),
            cluster_ip: Some("10.96.0.10".into()),
            ports: Some(vec![ServicePort {
                name: Some("ws".into()),
                port: 8080,
                target_port: Some(IntOrString::String("ws".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

impl SvcB {
    fn spec(&mut self) -> &mut ServiceSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }
    pub fn client_ip(mut self, timeout: i32) -> Self {
        let s = self.spec();
        s.session_affinity = Some("ClientIP".into());
        s.session_affinity_config = Some(SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(timeout),
            }),
        });
        self
    }
    pub fn client_ip_default(mut self) -> Self {
        self.spec().session_affinity = Some("ClientIP".into());
        self
    }
    pub fn affinity_none(mut self) -> Self {
        self.spec().session_affinity = Some("None".into());
        self
    }
    pub fn type_(mut self, t: &str) -> Self {
        self.spec().type_ = Some(t.into());
        if t != "ClusterIP" {
            for p in self.spec().ports.iter_mut().flatten() {
                p.node_port = Some(30080);
            }
        }
        self
    }
    pub fn load_balancer(self) -> Self {
        self.type_("LoadBalancer")
    }
    pub fn etp(mut self, p: &str) -> Self {
        self.spec().external_traffic_policy = Some(p.into());
        self
    }
    pub fn itp(mut self, p: &str) -> Self {
        self.spec().internal_traffic_policy = Some(p.into());
        self
    }
    pub fn traffic_distribution(mut self, v: &str) -> Self {
        self.spec().traffic_distribution = Some(v.into());
        self
    }
    pub fn no_selector(mut self) -> Self {
        self.spec().selector = None;
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        annotate(&mut self.0.metadata, k, v);
        self
    }
    pub fn build(self) -> Service {
        self.0
    }
}

// ---------------------------------------------------------------- Pods and endpoints

pub struct PodB(Pod);

/// A running pod with container `server` declaring port `ws` = 8080.
pub fn pod(name: &str) -> PodB {
    PodB(Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "server".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("ws".into()),
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }),
    })
}

impl PodB {
    pub fn node(mut self, n: &str) -> Self {
        self.0.spec.get_or_insert_with(Default::default).node_name = Some(n.into());
        self
    }
    pub fn ready(mut self, ready: bool) -> Self {
        let st = self.0.status.get_or_insert_with(Default::default);
        st.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            ..Default::default()
        }]);
        self
    }
    pub fn started(mut self, rfc3339: &str) -> Self {
        if let Ok(ts) = rfc3339.parse() {
            self.0
                .status
                .get_or_insert_with(Default::default)
                .start_time = Some(Time(ts));
        }
        self
    }
    pub fn deleting(mut self) -> Self {
        if let Ok(ts) = "2026-01-01T00:00:00Z".parse() {
            self.0.metadata.deletion_timestamp = Some(Time(ts));
        }
        self
    }
    pub fn build(self) -> Pod {
        self.0
    }
}

pub struct EpB(Endpoint);

/// A ready endpoint for `pod` at `ip` on `node`, zone `zone-a`.
pub fn ep(pod: &str, ip: &str, node: &str) -> EpB {
    EpB(Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }),
        node_name: Some(node.into()),
        zone: Some("zone-a".into()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some("default".into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

impl EpB {
    pub fn not_ready(mut self) -> Self {
        self.0.conditions = Some(EndpointConditions {
            ready: Some(false),
            serving: Some(false),
            terminating: Some(false),
        });
        self
    }
    pub fn terminating(mut self) -> Self {
        self.0.conditions = Some(EndpointConditions {
            ready: Some(false),
            serving: Some(true),
            terminating: Some(true),
        });
        self
    }
    pub fn build(self) -> Endpoint {
        self.0
    }
}

pub fn slice(svc: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    let mut m = meta(&format!("{svc}-abcde"));
    m.labels = Some([("kubernetes.io/service-name".to_string(), svc.to_string())].into());
    EndpointSlice {
        address_type: "IPv4".into(),
        endpoints,
        metadata: m,
        ports: None,
    }
}

// ---------------------------------------------------------------- Ingress

pub struct IngB(Ingress);

/// An Ingress `name` with host `NAME.example.com`, path `/` → `svc`:8080, no class.
pub fn ingress(name: &str, svc: &str) -> IngB {
    IngB(Ingress {
        metadata: meta(name),
        spec: Some(IngressSpec {
            rules: Some(vec![IngressRule {
                host: Some(format!("{name}.example.com")),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: svc.into(),
                                port: Some(ServiceBackendPort {
                                    number: Some(8080),
                                    name: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

/// `ingress(name, svc)` with `ingressClassName: nginx`.
pub fn ingress_nginx(name: &str, svc: &str) -> IngB {
    ingress(name, svc).class("nginx")
}

impl IngB {
    pub fn class(mut self, c: &str) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .ingress_class_name = Some(c.into());
        self
    }
    pub fn no_class(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .ingress_class_name = None;
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        annotate(&mut self.0.metadata, k, v);
        self
    }
    /// nginx cookie affinity with 3600 s proxy timeouts, as the dev overlay has it.
    pub fn nginx_cookie_ok(self) -> Self {
        self.annotation("nginx.ingress.kubernetes.io/affinity", "cookie")
            .annotation(
                "nginx.ingress.kubernetes.io/session-cookie-max-age",
                "172800",
            )
            .timeouts_ok()
    }
    pub fn timeouts_ok(self) -> Self {
        self.annotation("nginx.ingress.kubernetes.io/proxy-read-timeout", "3600")
            .annotation("nginx.ingress.kubernetes.io/proxy-send-timeout", "3600")
    }
    /// Only a default backend naming `svc`, no rules.
    pub fn default_backend_only(mut self, svc: &str) -> Self {
        let spec = self.0.spec.get_or_insert_with(Default::default);
        spec.rules = None;
        spec.default_backend = Some(IngressBackend {
            service: Some(IngressServiceBackend {
                name: svc.into(),
                port: None,
            }),
            resource: None,
        });
        self
    }
    pub fn build(self) -> Ingress {
        self.0
    }
}

// ---------------------------------------------------------------- custom objects

pub fn dynamic(kind: RouteKind, name: &str, data: serde_json::Value) -> DynamicObject {
    let (group, version, k, plural) = kind.gvk();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, k), plural);
    DynamicObject::new(name, &ar).within("default").data(data)
}

// ---------------------------------------------------------------- Snapshot

pub struct SnapB(Snapshot);

pub fn snapshot(svc: Service) -> SnapB {
    let name = svc.metadata.name.clone().unwrap_or_default();
    SnapB(Snapshot {
        namespace: "default".into(),
        requested: format!("svc/{name}"),
        service_names: vec![name],
        service: Some(svc),
        ..Default::default()
    })
}

impl SnapB {
    fn svc_name(&self) -> String {
        self.0
            .service
            .as_ref()
            .and_then(|s| s.metadata.name.clone())
            .unwrap_or_default()
    }
    /// `n` ready pods `NAME-0..n` spread over two nodes, in one slice.
    pub fn ready_pods(mut self, n: usize) -> Self {
        let svc = self.svc_name();
        let mut eps = Vec::new();
        for i in 0..n {
            let name = format!("{svc}-{i}");
            let node = format!("node-{}", i % 2);
            self.0.pods.push(pod(&name).node(&node).ready(true).build());
            eps.push(ep(&name, &format!("10.244.0.{}", i + 10), &node).build());
        }
        self.0.endpoint_slices.push(slice(&svc, eps));
        self
    }
    pub fn pod(mut self, p: Pod) -> Self {
        self.0.pods.push(p);
        self
    }
    pub fn endpoints(mut self, eps: Vec<Endpoint>) -> Self {
        let svc = self.svc_name();
        self.0.endpoint_slices.push(slice(&svc, eps));
        self
    }
    pub fn ingress(mut self, i: Ingress) -> Self {
        self.0.ingresses.push(i);
        self
    }
    pub fn custom(mut self, kind: RouteKind, obj: DynamicObject) -> Self {
        match self.0.custom.iter_mut().find(|c| c.kind == kind) {
            Some(c) => c.objects.push(obj),
            None => self.0.custom.push(CustomObjects {
                kind,
                objects: vec![obj],
            }),
        }
        self
    }
    pub fn skipped(mut self, resource: &str, reason: SkipReason) -> Self {
        self.0.skipped.push(Skipped {
            resource: resource.into(),
            reason,
            message: "denied".into(),
        });
        self
    }
    pub fn build(self) -> Snapshot {
        self.0
    }
}

/// The dev overlay: ClientIP 10800, two ready pods, ingress-nginx with cookie
/// affinity and 3600 s proxy timeouts.
pub fn dev_overlay() -> Snapshot {
    snapshot(service("dev-websocket-server").client_ip(10800).build())
        .ready_pods(2)
        .ingress(
            ingress_nginx("dev-websocket-server", "dev-websocket-server")
                .nginx_cookie_ok()
                .build(),
        )
        .build()
}
