//! The only writes the lab accepts: create and delete of a Service, as
//! `kubectl wsaffinity test-service --apply/--delete` makes them. Every other
//! write still answers 405. Answers are shaped like the API server's: 201 with
//! the stored object (uid, resourceVersion, creationTimestamp, clusterIP
//! filled), 409 AlreadyExists, 404 NotFound, 422 Invalid, and 200 with a
//! `Status` of `Success` on delete. Server-side dry run (`dryRun: All`) is read
//! where the API server reads it: the query for create; for delete the
//! DeleteOptions body when there is one (kubectl sends
//! `{"propagationPolicy":"Background","dryRun":["All"]}`), else the query. RBAC (the token rules) and `forbid(..)` are
//! checked by the router before this runs. A created Service gets its
//! EndpointSlices and v1 Endpoints once, at creation (not refreshed later).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::fake_api::endpointslice;
use crate::fake_api::request::ResourcePath;
use crate::fake_api::state::{State, lock};
use crate::names;
use crate::query::Query;
use crate::respond::{self, Body};
use crate::status::ApiError;

/// Largest request body read (the API server's default is 3 MiB).
const MAX_BODY: usize = 3 << 20;

/// Whether this write is one the lab performs.
pub fn accepts(p: &ResourcePath, verb: &str) -> bool {
    p.group.is_empty()
        && p.plural == "services"
        && p.sub.is_none()
        && p.namespace.is_some()
        && match verb {
            "create" => p.name.is_none(),
            "delete" => p.name.is_some(),
            _ => false,
        }
}

pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    p: &ResourcePath,
    q: &Query,
    verb: &str,
) -> Response<Body> {
    let ns = p.namespace.clone().unwrap_or_default();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return respond::error(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )));
        }
    };
    let query_dry_run = q.all("dryRun").contains(&"All");
    let result = if verb == "create" {
        create(&state, &ns, &body, query_dry_run)
    } else {
        delete(
            &state,
            &ns,
            p.name.as_deref().unwrap_or(""),
            &body,
            query_dry_run,
        )
    };
    match result {
        Ok((status, value)) => respond::json(status, &value),
        Err(e) => respond::error(&e),
    }
}

fn error(code: u16, reason: &'static str, message: String, details: Value) -> ApiError {
    ApiError {
        code,
        reason,
        message,
        details: Some(details),
    }
}

/// A DNS-1035 label: what a Service name must be.
fn dns1035(name: &str) -> bool {
    name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn create(
    state: &State,
    ns: &str,
    body: &[u8],
    dry_run: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let mut svc: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })?;
    if !svc.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format: not an object",
        ));
    }
    if svc["kind"] != "Service" || svc["apiVersion"] != "v1" {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version (v1), or the kind ({}) is not Service",
            svc["apiVersion"], svc["kind"]
        )));
    }
    if let Some(body_ns) = svc.pointer("/metadata/namespace").and_then(Value::as_str)
        && body_ns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let name = match svc.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match svc
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
        {
            Some(prefix) if !prefix.is_empty() => {
                format!("{prefix}{}", names::safe_suffix(&[prefix, &now()], 5))
            }
            _ => {
                return Err(invalid(
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        },
    };
    if !dns1035(&name) {
        return Err(invalid(
            &name,
            &format!(
                "metadata.name: Invalid value: \"{name}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
            ),
        ));
    }
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if ports == 0 {
        return Err(invalid(&name, "spec.ports: Required value"));
    }

    let mut store = lock(&state.store);
    if store.get("", "services", ns, &name).is_some() {
        return Err(error(
            409,
            "AlreadyExists",
            format!("services \"{name}\" already exists"),
            json!({"name": name, "kind": "services"}),
        ));
    }
    let created = now();
    let uid = names::uid(&[ns, &name, &created, &store.resource_version()]);
    let ip_seed = names::fnv1a(&[ns, &name]);
    let cluster_ip = format!("10.96.{}.{}", (ip_seed >> 8) % 256, ip_seed % 254 + 1);
    {
        let meta = &mut svc["metadata"];
        if !meta.is_object() {
            *meta = json!({});
        }
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(created);
    }
    fill_spec_defaults(&mut svc, &cluster_ip);
    svc["status"] = json!({"loadBalancer": {}});
    if dry_run {
        svc["metadata"]["resourceVersion"] = json!("");
        return Ok((StatusCode::CREATED, svc));
    }
    store.put(svc).map_err(|e| ApiError {
        code: 500,
        reason: "InternalError",
        message: e.to_string(),
        details: None,
    })?;
    let stored = store
        .get("", "services", ns, &name)
        .cloned()
        .unwrap_or(Value::Null);
    let slices = {
        let pods = store.list("", "pods", None);
        let nodes = store.list("", "nodes", None);
        endpointslice::compute(&stored, &pods, &nodes, &created)
    };
    let endpoints = endpointslice::compute_endpoints(&stored, &slices);
    for s in slices.into_iter().chain(endpoints) {
        if let Err(e) = store.put(s) {
            tracing::warn!("endpoints of a created Service: {e}");
        }
    }
    Ok((StatusCode::CREATED, stored))
}

fn invalid(name: &str, cause: &str) -> ApiError {
    error(
        422,
        "Invalid",
        format!("Service \"{name}\" is invalid: {cause}"),
        json!({"name": name, "kind": "Service"}),
    )
}

/// What the API server's defaulting and allocation add to a ClusterIP Service.
fn fill_spec_defaults(svc: &mut Value, cluster_ip: &str) {
    if !svc["spec"].is_object() {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    let defaults = [
        ("type", json!("ClusterIP")),
        ("sessionAffinity", json!("None")),
        ("internalTrafficPolicy", json!("Cluster")),
        ("ipFamilies", json!(["IPv4"])),
        ("ipFamilyPolicy", json!("SingleStack")),
    ];
    for (key, value) in defaults {
        if spec[key].is_null() {
            spec[key] = value;
        }
    }
    if spec["clusterIP"].is_null() {
        spec["clusterIP"] = json!(cluster_ip);
        spec["clusterIPs"] = json!([cluster_ip]);
    }
    if let Some(ports) = spec["ports"].as_array_mut() {
        for port in ports.iter_mut() {
            if port["protocol"].is_null() {
                port["protocol"] = json!("TCP");
            }
            if port["targetPort"].is_null() {
                port["targetPort"] = port["port"].clone();
            }
        }
    }
}

/// Whether DeleteOptions (the request body) ask for `dryRun: ["All"]`.
fn options_dry_run(options: &Value) -> bool {
    options["dryRun"]
        .as_array()
        .is_some_and(|values| values.iter().any(|v| v == "All"))
}

fn delete(
    state: &State,
    ns: &str,
    name: &str,
    body: &[u8],
    query_dry_run: bool,
) -> Result<(StatusCode, Value), ApiError> {
    // DeleteOptions may carry preconditions (uid, resourceVersion) and dryRun.
    // As in the API server's delete handler, a non-empty body is the options
    // and the query is then not read; without a body the query is.
    let (options, dry_run): (Value, bool) = if body.is_empty() {
        (Value::Null, query_dry_run)
    } else {
        let options = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })?;
        let dry_run = options_dry_run(&options);
        (options, dry_run)
    };
    let mut store = lock(&state.store);
    let Some(svc) = store.get("", "services", ns, name) else {
        return Err(ApiError::not_found("", "services", name));
    };
    let uid = svc["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let rv = svc["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for (key, actual) in [("uid", &uid), ("resourceVersion", &rv)] {
        if let Some(want) = options
            .pointer(&format!("/preconditions/{key}"))
            .and_then(Value::as_str)
            && want != actual
        {
            let label = if key == "uid" {
                "UID"
            } else {
                "ResourceVersion"
            };
            return Err(error(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on services \"{name}\": Precondition failed: {label} in precondition: {want}, {label} in object meta: {actual}"
                ),
                json!({"name": name, "kind": "services"}),
            ));
        }
    }
    if !dry_run {
        store.remove_where("", "services", |v| {
            v["metadata"]["namespace"] == ns && v["metadata"]["name"] == name
        });
        store.remove_where("", "endpoints", |v| {
            v["metadata"]["namespace"] == ns && v["metadata"]["name"] == name
        });
        store.remove_where("discovery.k8s.io", "endpointslices", |v| {
            v["metadata"]["namespace"] == ns
                && v["metadata"]["labels"][endpointslice::SERVICE_NAME_LABEL] == name
        });
    }
    Ok((
        StatusCode::OK,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": "services", "uid": uid},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(ns: Option<&str>, name: Option<&str>, plural: &str) -> ResourcePath {
        ResourcePath {
            group: String::new(),
            version: "v1".into(),
            namespace: ns.map(String::from),
            plural: plural.into(),
            name: name.map(String::from),
            sub: None,
        }
    }

    #[test]
    fn only_service_create_and_delete_are_accepted() {
        assert!(accepts(&path(Some("x"), None, "services"), "create"));
        assert!(accepts(&path(Some("x"), Some("s"), "services"), "delete"));
        assert!(!accepts(&path(Some("x"), Some("s"), "services"), "update"));
        assert!(!accepts(&path(Some("x"), Some("s"), "services"), "patch"));
        assert!(!accepts(
            &path(Some("x"), None, "services"),
            "deletecollection"
        ));
        assert!(!accepts(&path(None, None, "services"), "create"));
        assert!(!accepts(&path(Some("x"), None, "pods"), "create"));
    }

    #[test]
    fn service_names_are_dns_1035_labels() {
        assert!(dns1035("web-affinity-test"));
        assert!(!dns1035("1web"));
        assert!(!dns1035("web-"));
        assert!(!dns1035("Web"));
        assert!(!dns1035("a.b"));
        assert!(!dns1035(&"a".repeat(64)));
    }

    #[test]
    fn delete_options_body_can_ask_for_a_dry_run() {
        assert!(options_dry_run(&json!({
            "propagationPolicy": "Background",
            "dryRun": ["All"]
        })));
        assert!(!options_dry_run(
            &json!({"propagationPolicy": "Background"})
        ));
        assert!(!options_dry_run(&json!({"dryRun": []})));
        assert!(!options_dry_run(&json!({"dryRun": "All"})));
        assert!(!options_dry_run(&Value::Null));
    }

    #[test]
    fn defaults_fill_what_the_api_server_adds() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        fill_spec_defaults(&mut svc, "10.96.0.9");
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["clusterIPs"][0], "10.96.0.9");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    }
}
