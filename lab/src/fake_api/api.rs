//! Request routing: authentication, counting, fault knobs, then discovery,
//! GET/LIST, pod logs, port-forward, and create/delete of Services (`writes`).

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::fake_api::discovery;
pub use crate::fake_api::request::ResourcePath;
use crate::fake_api::selector::{FieldSelector, LabelSelector, labels_of};
use crate::fake_api::state::{State, lock};
use crate::fake_api::types::ResourceType;
use crate::fake_api::{pod_log, portforward, table, writes};
use crate::query::Query;
use crate::respond::{self, Body};
use crate::status::ApiError;

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    Discovery(Discovery),
    Resource(ResourcePath),
    NotFound,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Discovery {
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String, String),
}

pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz", ..] => return Route::Health,
        ["api"] => return Route::Discovery(Discovery::CoreVersions),
        ["api", v] => {
            return Route::Discovery(Discovery::ResourceList(String::new(), v.to_string()));
        }
        ["apis"] => return Route::Discovery(Discovery::Groups),
        ["apis", g] => return Route::Discovery(Discovery::Group(g.to_string())),
        ["apis", g, v] => {
            return Route::Discovery(Discovery::ResourceList(g.to_string(), v.to_string()));
        }
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return Route::NotFound,
    };
    let owned = |s: &&str| s.to_string();
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !tail.is_empty() || *plural != "status" && *plural != "finalize" =>
        {
            (
                Some(ns.to_string()),
                plural.to_string(),
                tail.first().map(owned),
                tail.get(1).map(owned),
            )
        }
        [plural, tail @ ..] => (
            None,
            plural.to_string(),
            tail.first().map(owned),
            tail.get(1).map(owned),
        ),
        [] => return Route::NotFound,
    };
    if rest.len() > 5 {
        return Route::NotFound;
    }
    Route::Resource(ResourcePath {
        group,
        version,
        namespace,
        plural,
        name,
        sub,
    })
}

/// The Kubernetes verb of a request.
pub fn verb(method: &Method, p: &ResourcePath, q: &Query) -> &'static str {
    if p.sub.as_deref() == Some("portforward") {
        // WebSocket port-forward is authorized as `create` (AuthorizePodWebsocketUpgradeCreatePermission).
        return "create";
    }
    match *method {
        Method::GET | Method::HEAD if q.flag("watch") => "watch",
        Method::GET | Method::HEAD if p.name.is_none() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let route = route(req.uri().path());
    let q = Query::parse(req.uri().query());
    let key = match &route {
        Route::Resource(p) => {
            let resource = match &p.sub {
                Some(s) => format!("{}/{s}", p.plural),
                None => p.plural.clone(),
            };
            format!("{} {resource}", verb(req.method(), p, &q))
        }
        Route::Discovery(_) => format!("discovery {}", req.uri().path()),
        _ => format!(
            "{} {}",
            req.method().as_str().to_lowercase(),
            req.uri().path()
        ),
    };
    state.counters.count(key);
    let latency = state.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match route {
        Route::Version => return respond::ok(&discovery::version()),
        Route::Health => return respond::text(StatusCode::OK, "ok"),
        _ => {}
    }
    // client-go never sends credentials over plain HTTP (clientcmd loads them only
    // for TLS), so on plain HTTP a request without a token is the admin, like the
    // API server's old insecure port. A wrong token is always 401; over TLS, so is none.
    let token = match bearer(&req) {
        Some(t) if state.tokens.known(t) => t.to_string(),
        None if !state.tls => state.admin_token.clone(),
        _ => return respond::error(&ApiError::unauthorized()),
    };
    match route {
        Route::Version | Route::Health => respond::text(StatusCode::OK, "ok"),
        Route::NotFound => respond::error(&ApiError::no_such_resource()),
        Route::Discovery(d) => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .unwrap_or("");
            serve_discovery(&state, d, discovery::aggregated_version(accept))
        }
        Route::Resource(p) => resource(state, req, p, q, &token).await,
    }
}

fn serve_discovery(
    state: &State,
    d: Discovery,
    aggregated: Option<&'static str>,
) -> Response<Body> {
    let store = lock(&state.store);
    if let Some(v) = aggregated
        && matches!(d, Discovery::CoreVersions | Discovery::Groups)
    {
        let doc = discovery::aggregated(&store, d == Discovery::CoreVersions, v);
        let mut res = respond::ok(&doc);
        let ct = format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
        if let Ok(ct) = http::HeaderValue::from_str(&ct) {
            res.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        return res;
    }
    let doc = match d {
        Discovery::CoreVersions => Some(discovery::core_versions(&state.server_addr)),
        Discovery::Groups => Some(discovery::group_list(&store)),
        Discovery::Group(g) => discovery::group(&store, &g),
        Discovery::ResourceList(g, v) => discovery::resource_list(&store, &g, &v),
    };
    match doc {
        Some(doc) => respond::ok(&doc),
        None => respond::error(&ApiError::no_such_resource()),
    }
}

fn user_of(state: &State, token: &str) -> String {
    if state.tokens.allows(token, "*", "*", "*") {
        "lab-admin".to_string()
    } else {
        format!(
            "system:serviceaccount:lab:{}",
            token.chars().take(12).collect::<String>()
        )
    }
}

async fn resource(
    state: Arc<State>,
    req: Request<Incoming>,
    p: ResourcePath,
    q: Query,
    token: &str,
) -> Response<Body> {
    let t = {
        let store = lock(&state.store);
        store.find_type(&p.group, &p.version, &p.plural).cloned()
    };
    let Some(t) = t else {
        return respond::error(&ApiError::no_such_resource());
    };
    if p.namespace.is_some() && !t.namespaced {
        return respond::error(&ApiError::no_such_resource());
    }
    if let Some(sub) = &p.sub
        && !t.subresources.iter().any(|s| s.name == sub)
    {
        return respond::error(&ApiError::no_such_resource());
    }
    let verb = verb(req.method(), &p, &q);
    let resource = match &p.sub {
        Some(s) => format!("{}/{s}", p.plural),
        None => p.plural.clone(),
    };
    let name = p.name.as_deref().unwrap_or("");
    if !state.tokens.allows(token, verb, &t.group, &resource)
        || state.faults.is_forbidden(&t.group, &resource)
    {
        let user = user_of(&state, token);
        return respond::error(&ApiError::forbidden(
            &user,
            verb,
            &t.group,
            &resource,
            name,
            p.namespace.as_deref(),
        ));
    }
    if writes::accepts(&p, verb) {
        return writes::handle(state, req, &p, &q, verb).await;
    }
    let read = Read {
        state: &state,
        t: &t,
        p: &p,
        q: &q,
        table: wants_table(&req),
    };
    let mut res = match (verb, p.sub.as_deref()) {
        (_, Some("portforward")) => return portforward::handle(state, req, p, q).await,
        ("get", Some("log")) => pod_log::handle(state, &p, &q),
        ("get", None) => read.get(),
        ("list", None) => read.list(),
        ("get", Some(_)) => read.get(),
        ("watch", _) => respond::error(&ApiError::bad_request(
            "watch is not supported by the wsaffinity lab (a test double)",
        )),
        _ => respond::error(&ApiError::method_not_allowed()),
    };
    if t.group.is_empty() && t.plural == "endpoints" {
        // What a 1.33 API server says about v1 Endpoints (kubectl prints it).
        res.headers_mut().insert(
            "Warning",
            http::HeaderValue::from_static(
                "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"",
            ),
        );
    }
    res
}

fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

/// One GET or LIST of a resource type: what both answers are built from.
struct Read<'a> {
    state: &'a State,
    t: &'a ResourceType,
    p: &'a ResourcePath,
    q: &'a Query,
    /// `Accept: ...;as=Table` (kubectl get): answer with a Table.
    table: bool,
}

impl Read<'_> {
    fn get(&self) -> Response<Body> {
        let (t, p, q) = (self.t, self.p, self.q);
        let name = p.name.as_deref().unwrap_or("");
        let ns = p.namespace.as_deref().unwrap_or("");
        let store = lock(&self.state.store);
        let Some(obj) = store.get(&t.group, &t.plural, ns, name) else {
            return respond::error(&ApiError::not_found(&t.group, &t.plural, name));
        };
        if self.table {
            return respond::ok(&table::to_table(t, &[obj], &store.resource_version(), q));
        }
        respond::ok(obj)
    }

    fn list(&self) -> Response<Body> {
        let (t, p, q) = (self.t, self.p, self.q);
        let labels = match LabelSelector::parse(q.get("labelSelector").unwrap_or("")) {
            Ok(s) => s,
            Err(e) => return respond::error(&ApiError::bad_request(e)),
        };
        let fields = match FieldSelector::parse(
            q.get("fieldSelector").unwrap_or(""),
            extra_fields(&t.plural),
        ) {
            Ok(s) => s,
            Err(e) => return respond::error(&ApiError::bad_request(e)),
        };
        let store = lock(&self.state.store);
        let matching: Vec<&Value> = store
            .list(&t.group, &t.plural, p.namespace.as_deref())
            .into_iter()
            .filter(|o| labels.matches(&labels_of(o)) && fields.matches(o))
            .collect();
        let rv = store.resource_version();
        // limit/continue paging: the continue token is the offset of the next item.
        let offset = match q.get("continue").filter(|c| !c.is_empty()) {
            None => 0,
            Some(token) => match decode_continue(token) {
                Some(o) => o,
                None => return respond::error(&ApiError::bad_request("continue key is not valid")),
            },
        };
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > 0);
        let total = matching.len();
        let end = limit.map_or(total, |l| offset.saturating_add(l).min(total));
        let matching: Vec<&Value> = matching
            .into_iter()
            .skip(offset)
            .take(end.saturating_sub(offset))
            .collect();
        let mut meta = json!({"resourceVersion": rv});
        if end < total {
            meta["continue"] = json!(encode_continue(end));
            meta["remainingItemCount"] = json!(total - end);
        }
        if self.table {
            let mut table = table::to_table(t, &matching, &rv, q);
            table["metadata"] = meta;
            return respond::ok(&table);
        }
        let items: Vec<Value> = matching
            .into_iter()
            .map(|o| {
                let mut o = o.clone();
                // Built-in list items carry no kind/apiVersion on the wire; custom ones do.
                if t.builtin
                    && let Some(m) = o.as_object_mut()
                {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        respond::ok(&json!({
            "kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
            "metadata": meta, "items": items,
        }))
    }
}

/// Field selectors each kind supports beyond metadata.name/namespace.
fn extra_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "pods" => &[
            "spec.nodeName",
            "status.phase",
            "status.podIP",
            "spec.serviceAccountName",
        ],
        "events" => &[
            "involvedObject.name",
            "involvedObject.kind",
            "involvedObject.namespace",
            "reason",
            "type",
        ],
        "namespaces" => &["status.phase"],
        "secrets" => &["type"],
        _ => &[],
    }
}

fn encode_continue(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{{\"v\":\"lab/v1\",\"offset\":{offset}}}"))
}

fn decode_continue(token: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    usize::try_from(v["offset"].as_u64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>) -> Route {
        Route::Resource(ResourcePath {
            group: String::new(),
            version: "v1".into(),
            namespace: ns.map(String::from),
            plural: plural.into(),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })
    }

    #[test]
    fn continue_tokens_round_trip() {
        assert_eq!(decode_continue(&encode_continue(42)), Some(42));
        assert_eq!(decode_continue("garbage!"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route("/api/v1/pods"), rp(None, "pods", None, None));
        assert_eq!(
            route("/api/v1/namespaces"),
            rp(None, "namespaces", None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/x"),
            rp(None, "namespaces", Some("x"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/x/pods"),
            rp(Some("x"), "pods", None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/x/pods/p/log"),
            rp(Some("x"), "pods", Some("p"), Some("log"))
        );
        assert_eq!(route("/apis"), Route::Discovery(Discovery::Groups));
        assert_eq!(
            route("/apis/apps/v1"),
            Route::Discovery(Discovery::ResourceList("apps".into(), "v1".into()))
        );
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(route("/nope"), Route::NotFound);
    }
}
