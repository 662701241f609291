//! The lab's shared state: objects, pod runtimes, knobs and counters.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::process::Child;

use crate::fake_api::endpointslice;
use crate::fake_api::faults::{Counters, Faults, Tokens};
use crate::fake_api::store::Store;
use crate::fake_api::workloads::PodPlan;
use crate::logs::LogBuffer;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What backs one pod.
pub struct PodRuntime {
    pub plan: PodPlan,
    pub logs: Arc<LogBuffer>,
    pub backend: Option<SocketAddr>,
    pub child: Option<Child>,
    /// The process was killed by the lab: forwards to it end with an error.
    pub killed: bool,
    /// The CRI sandbox id the kubelet names in port-forward errors.
    pub sandbox: String,
}

pub struct State {
    pub store: Mutex<Store>,
    pub pods: Mutex<HashMap<(String, String), PodRuntime>>,
    pub faults: Faults,
    pub counters: Counters,
    pub tokens: Tokens,
    pub admin_token: String,
    /// Serving HTTPS: requests without a token are rejected.
    pub tls: bool,
    /// host:port the API listens on.
    pub server_addr: String,
    /// Services whose EndpointSlices the lab computes (the scenario listed none for them).
    pub managed_services: BTreeSet<(String, String)>,
}

impl State {
    /// Recompute the managed EndpointSlices, as the controller does after a pod change.
    pub fn refresh_endpointslices(&self) {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut store = lock(&self.store);
        refresh_slices(&mut store, &self.managed_services, &now);
    }
}

pub fn refresh_slices(store: &mut Store, managed: &BTreeSet<(String, String)>, now: &str) {
    let is_managed = |v: &Value| {
        let labels = &v["metadata"]["labels"];
        labels[endpointslice::MANAGED_BY_LABEL] == endpointslice::CONTROLLER_NAME
            && labels[endpointslice::SERVICE_NAME_LABEL]
                .as_str()
                .is_some_and(|svc| {
                    let ns = v["metadata"]["namespace"].as_str().unwrap_or("");
                    managed.contains(&(ns.to_string(), svc.to_string()))
                })
    };
    store.remove_where("discovery.k8s.io", "endpointslices", is_managed);
    let mut objects = Vec::new();
    {
        let pods = store.list("", "pods", None);
        let nodes = store.list("", "nodes", None);
        for (ns, name) in managed {
            if let Some(svc) = store.get("", "services", ns, name) {
                let slices = endpointslice::compute(svc, &pods, &nodes, now);
                objects.extend(endpointslice::compute_endpoints(svc, &slices));
                objects.extend(slices);
            }
        }
    }
    for o in objects {
        if let Err(e) = store.put(o) {
            tracing::warn!("endpoints: {e}");
        }
    }
    refresh_workload_status(store);
}

/// Keep Deployment and ReplicaSet ready counts in step with their pods' readiness.
fn refresh_workload_status(store: &mut Store) {
    let mut updates = Vec::new();
    for (plural, ready_paths) in [
        (
            "deployments",
            &["/status/readyReplicas", "/status/availableReplicas"][..],
        ),
        (
            "replicasets",
            &["/status/readyReplicas", "/status/availableReplicas"][..],
        ),
    ] {
        for w in store.list("apps", plural, None) {
            let ns = w["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let name = w["metadata"]["name"].as_str().unwrap_or("").to_string();
            let Some(sel) = w
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
            else {
                continue;
            };
            let sel: std::collections::BTreeMap<String, String> = sel
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect();
            let selector = crate::fake_api::selector::LabelSelector::from_map(&sel);
            let pods: Vec<&Value> = store
                .list("", "pods", Some(&ns))
                .into_iter()
                .filter(|p| selector.matches(&crate::fake_api::selector::labels_of(p)))
                .collect();
            let ready = pods
                .iter()
                .filter(|p| crate::fake_api::workloads::pod_is_ready(p))
                .count();
            let total = w
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
            let unchanged = ready_paths
                .iter()
                .all(|p| w.pointer(p).and_then(Value::as_u64) == Some(ready as u64));
            if !unchanged {
                updates.push((plural, ns, name, ready, total));
            }
        }
    }
    for (plural, ns, name, ready, total) in updates {
        store.update("apps", plural, &ns, &name, |w| {
            w["status"]["readyReplicas"] = json!(ready);
            w["status"]["availableReplicas"] = json!(ready);
            if plural == "deployments" {
                w["status"]["unavailableReplicas"] = json!(total.saturating_sub(ready));
            }
        });
    }
}

/// Set a pod's readiness in its status as the kubelet would report it.
pub fn set_pod_ready(pod: &mut Value, ready: bool) {
    let value = if ready { "True" } else { "False" };
    if let Some(conds) = pod
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds.iter_mut() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["status"] = json!(value);
                if let Some(o) = c.as_object_mut() {
                    if ready {
                        o.remove("reason");
                        o.remove("message");
                    } else {
                        o.insert("reason".into(), json!("ContainersNotReady"));
                    }
                }
            }
        }
    }
    if let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for s in statuses {
            s["ready"] = json!(ready);
        }
    }
}

/// Mark the pod's containers terminated by SIGKILL (exit code 137).
pub fn set_pod_killed(pod: &mut Value, at: &str) {
    set_pod_ready(pod, false);
    if let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for s in statuses {
            let started = s
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or(json!(at));
            s["started"] = json!(false);
            s["state"] = json!({"terminated": {"exitCode": 137, "reason": "Error",
                "startedAt": started, "finishedAt": at}});
        }
    }
}
