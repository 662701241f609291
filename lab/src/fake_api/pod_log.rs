//! `GET pods/{name}/log` on the fake API: container checks as the API server
//! makes them, then the pod process's captured output (`crate::log_stream`).

use std::sync::Arc;

use http::Response;
use serde_json::Value;

use crate::fake_api::faults::Open;
use crate::fake_api::request::ResourcePath;
use crate::fake_api::state::{State, lock};
use crate::log_stream::{log_query, respond_log};
use crate::logs::LogBuffer;
use crate::query::Query;
use crate::respond::{self, Body};
use crate::status::ApiError;

fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

pub fn handle(state: Arc<State>, p: &ResourcePath, q: &Query) -> Response<Body> {
    let ns = p.namespace.clone().unwrap_or_default();
    let name = p.name.clone().unwrap_or_default();
    let containers = {
        let store = lock(&state.store);
        match store.get("", "pods", &ns, &name) {
            Some(pod) => container_names(pod),
            None => return respond::error(&ApiError::not_found("", "pods", &name)),
        }
    };
    match q.get("container") {
        Some(c) if !c.is_empty() && !containers.iter().any(|x| x == c) => {
            return respond::error(&ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None | Some("") if containers.len() > 1 => {
            return respond::error(&ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
        _ => {}
    }
    if q.flag("previous") {
        let c = q
            .get("container")
            .filter(|c| !c.is_empty())
            .map(String::from)
            .unwrap_or_else(|| containers.join(""));
        return respond::error(&ApiError::bad_request(format!(
            "previous terminated container \"{c}\" in pod \"{name}\" not found"
        )));
    }
    let query = match log_query(q) {
        Ok(query) => query,
        Err(e) => return respond::error(&e),
    };
    // A pod without a process has an empty (and finished) log.
    let logs = lock(&state.pods)
        .get(&(ns, name))
        .map(|r| r.logs.clone())
        .unwrap_or_else(|| {
            let empty = LogBuffer::new(0);
            empty.close();
            Arc::new(empty)
        });
    let counters = state.clone();
    let on_bytes = move |n: usize| counters.counters.add_log_bytes(n);
    let open = query
        .follow
        .then(|| Box::new(state.counters.open(Open::LogFollow)) as crate::portforward::Guard);
    respond_log(logs, &query, on_bytes, open)
}
