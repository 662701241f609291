//! What `gather` read from the cluster and what `probe` observed.
//!
//! Plain data only: the diagnose engine takes these by reference and never
//! touches the network, so its tests build them by hand.

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DynamicObject;
use serde::Serialize;

/// The object the user named, as they named it (`svc/NAME`, `ingress/NAME`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub kind: TargetKind,
    /// With no target given, the Service it resolved to (the namespace's only
    /// one); `None` only when none was resolved.
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetKind {
    Service,
    Ingress,
    Deployment,
}

/// Everything one `check` read, as raw Kubernetes objects.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub namespace: String,
    /// The Service the target resolved to; `None` when it does not exist (WSA001).
    pub service: Option<Service>,
    /// What the user asked for, e.g. `svc/dev-websocket-server`, for messages.
    pub requested: String,
    /// Names of the Services in the namespace, for "did you mean" suggestions.
    pub service_names: Vec<String>,
    /// Pods matching the Service selector (one LIST).
    pub pods: Vec<Pod>,
    /// EndpointSlices labelled `kubernetes.io/service-name=<service>` (one LIST).
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Every Ingress in the namespace (one LIST); rules decide which point at us.
    pub ingresses: Vec<Ingress>,
    /// Optional routing custom resources that could be read, one entry per kind.
    pub custom: Vec<CustomObjects>,
    /// Routing kinds that could not be read.
    pub skipped: Vec<Skipped>,
}

/// Objects of one optional routing kind (HTTPRoute, DestinationRule, ...).
#[derive(Clone, Debug)]
pub struct CustomObjects {
    pub kind: RouteKind,
    pub objects: Vec<DynamicObject>,
}

/// The optional routing kinds the tool knows how to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RouteKind {
    /// gateway.networking.k8s.io/v1 HTTPRoute
    HTTPRoute,
    /// projectcontour.io/v1 HTTPProxy
    HTTPProxy,
    /// networking.istio.io/v1 DestinationRule
    DestinationRule,
    /// cloud.google.com/v1 BackendConfig
    BackendConfig,
    /// traefik.io/v1alpha1 IngressRoute
    IngressRoute,
    /// gateway.networking.k8s.io/v1 Gateway: read (GET) only when an HTTPRoute
    /// in front of the Service names it as a parent.
    Gateway,
    /// gateway.networking.k8s.io/v1 GatewayClass (cluster-scoped): its
    /// `controllerName` says which controller serves a Gateway's routes.
    GatewayClass,
    /// traefik.io/v1alpha1 TraefikService: read (GET) only when a route names one.
    TraefikService,
}

impl RouteKind {
    /// The kinds listed in the namespace; the others are read by reference.
    pub const ALL: [RouteKind; 5] = [
        RouteKind::HTTPRoute,
        RouteKind::HTTPProxy,
        RouteKind::DestinationRule,
        RouteKind::BackendConfig,
        RouteKind::IngressRoute,
    ];

    /// (group, version, kind, plural)
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            RouteKind::HTTPRoute => ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
            RouteKind::HTTPProxy => ("projectcontour.io", "v1", "HTTPProxy", "httpproxies"),
            RouteKind::DestinationRule => (
                "networking.istio.io",
                "v1",
                "DestinationRule",
                "destinationrules",
            ),
            RouteKind::BackendConfig => {
                ("cloud.google.com", "v1", "BackendConfig", "backendconfigs")
            }
            RouteKind::IngressRoute => ("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes"),
            RouteKind::Gateway => ("gateway.networking.k8s.io", "v1", "Gateway", "gateways"),
            RouteKind::GatewayClass => (
                "gateway.networking.k8s.io",
                "v1",
                "GatewayClass",
                "gatewayclasses",
            ),
            RouteKind::TraefikService => (
                "traefik.io",
                "v1alpha1",
                "TraefikService",
                "traefikservices",
            ),
        }
    }
}

/// A routing kind that was not read, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// e.g. `httproutes.gateway.networking.k8s.io` or `ingresses.networking.k8s.io`
    pub resource: String,
    pub reason: SkipReason,
    /// The API's own message.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// 404: the CRD is not installed. No finding; listed under `skipped`.
    NotInstalled,
    /// 403: RBAC forbids the list. Becomes WSA037.
    Forbidden,
}

/// What the probes saw. Each field is `None` when that probe was not run.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_pod: Option<Vec<PodProbe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<PodLog>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlRun>,
    /// Where `logs` read the counts from when not the log line (`--metric`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_source: Option<ActiveSource>,
}

/// `logs --metric`: the counts are a Prometheus gauge read from each pod.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSource {
    /// Always `metric` (absent means the `Active connections` log line).
    pub kind: String,
    /// The series asked for, e.g. `socketio_connected{namespace="/chat"}`.
    pub metric: String,
    /// `--metrics-port`, when given (else each pod's own).
    pub port: Option<u16>,
    pub path: Option<String>,
}

/// One pod tested over port-forward (`per-pod`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodProbe {
    pub pod: String,
    pub node: Option<String>,
    pub port: u16,
    pub ready: bool,
    pub attempted: u32,
    pub ok: u32,
    pub failed: u32,
    /// The first error, as the API or the kubelet worded it.
    pub error: Option<String>,
    /// When that error was the pod's own answer to the upgrade (not 101):
    /// the pod was reached over the forward, and refused.
    /// Boxed: rare, and it would double the size of every probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Box<UpgradeRefusal>>,
    pub handshake_ms: Option<Percentiles>,
    pub echo_ms: Option<Percentiles>,
    pub identity: Identity,
    /// `Active connections` read from the pod's log while the test held `ok` open.
    pub logged_active_during: Option<u64>,
    /// The same, read before the test opened anything.
    pub logged_active_before: Option<u64>,
    /// The same, read after every test connection was closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged_active_after: Option<u64>,
}

/// A server's answer other than 101 to a WebSocket upgrade request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRefusal {
    /// The request path, as sent, e.g. `/ws`.
    pub path: String,
    /// The HTTP status code, e.g. 404.
    pub status: u16,
    /// The code and its reason, e.g. `404 Not Found`.
    pub status_text: String,
    /// The response body, trimmed, when there was one.
    pub body: Option<String>,
}

impl std::fmt::Display for UpgradeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server refused the WebSocket upgrade on {} with HTTP {}",
            self.path, self.status_text
        )?;
        match &self.body {
            Some(body) => write!(f, ": {body}"),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
}

/// Whose hello message came back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "pod")]
pub enum Identity {
    /// The hello named the pod we forwarded to.
    Matches,
    /// The hello named another pod.
    Other(String),
    /// No hello (or no `pod` field) was received.
    #[default]
    None,
}

/// One pod's latest `Active connections: N` line (`logs`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodLog {
    pub pod: String,
    pub node: Option<String>,
    /// Pod start time (RFC 3339), to tell old pods from young ones.
    pub started: Option<String>,
    pub active: Option<u64>,
    /// When the line was logged (RFC 3339), from `timestamps=true`.
    pub logged_at: Option<String>,
    pub error: Option<String>,
    /// A remark on a count that was read, e.g. with `--metric`: several
    /// series were summed (which, and how to read one alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Simulated clients through a URL (`spread`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRun {
    pub url: String,
    pub clients: Vec<UrlClient>,
    pub cookies: bool,
    /// Connections each client was asked to open (`--connect`).
    pub connect: u32,
    /// `--resolve` overrides in effect, as `HOST:PORT:ADDR`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolve: Vec<String>,
    /// The response header read for the pod name (`--identity-header`).
    pub identity_header: String,
    /// The affinity cookie's name, when one was seen (given or detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity_cookie: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlClient {
    pub client: u32,
    /// Pod name (or "unknown") for each connection, in the order opened.
    pub pods: Vec<String>,
    pub failed: u32,
    pub error: Option<String>,
    /// How each entry of `pods` was attributed, in the same order.
    pub attributed_by: Vec<Attribution>,
    /// The local address this client's sockets were bound to (`--source-ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The value of the affinity cookie this client held after its last
    /// connection (what a browser would send next).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity_cookie_value: Option<String>,
    /// Connections on which the proxy answered the client's affinity cookie
    /// with a new value: the pod the old one named was gone or unusable, and
    /// the client was pinned again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repins: Vec<Repin>,
}

/// The proxy replaced a client's affinity cookie (`spread`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repin {
    /// 1-based, among this client's successful connections (its `pods` entry).
    pub connection: u32,
    /// The value the client sent.
    pub from: String,
    /// The value the proxy set instead.
    pub to: String,
}

/// Where a `spread` connection's pod name came from, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Attribution {
    /// The hello message's `pod` field.
    Hello,
    /// The identity response header (`--identity-header`, default `X-Pod-Name`).
    Header,
    /// The affinity cookie's value.
    Cookie,
    /// Nothing named the pod: counted as `unknown`.
    Unknown,
}
