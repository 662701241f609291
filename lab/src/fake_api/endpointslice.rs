//! EndpointSlices as the EndpointSlice controller computes them from a Service
//! and the pods its selector matches.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::fake_api::selector::{LabelSelector, labels_of};
use crate::fake_api::workloads::pod_is_ready;
use crate::names;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The controller's default `--max-endpoints-per-slice`.
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Resolve a Service port's targetPort for one pod (`podutil.FindPort`):
/// a number is used as is; a name must match a container port's name.
fn find_port(pod: &Value, target: &Value, service_port: u64) -> Option<u64> {
    match target {
        Value::Number(n) => n.as_u64(),
        Value::String(name) => {
            if let Ok(n) = name.parse::<u64>() {
                return Some(n);
            }
            pod.pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .find(|p| p["name"].as_str() == Some(name))
                .and_then(|p| p["containerPort"].as_u64())
        }
        _ => Some(service_port),
    }
}

fn endpoint_ports(svc: &Value, pod: &Value) -> Vec<Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p["port"].as_u64().unwrap_or(0);
            let target = find_port(pod, &p["targetPort"], port)?;
            let mut out = json!({
                "name": p["name"].as_str().unwrap_or(""),
                "port": target,
                "protocol": p["protocol"].as_str().unwrap_or("TCP"),
            });
            if let Some(app) = p.get("appProtocol") {
                out["appProtocol"] = app.clone();
            }
            Some(out)
        })
        .collect()
}

fn endpoint(pod: &Value, zones: &BTreeMap<String, String>, publish_not_ready: bool) -> Value {
    let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
    let ready = pod_is_ready(pod);
    let node = s(pod, "/spec/nodeName");
    let mut ep = json!({
        "addresses": [s(pod, "/status/podIP")],
        "conditions": {
            "ready": (ready || publish_not_ready) && !terminating,
            "serving": ready || publish_not_ready,
            "terminating": terminating,
        },
        "targetRef": {"kind": "Pod", "namespace": s(pod, "/metadata/namespace"),
            "name": s(pod, "/metadata/name"), "uid": s(pod, "/metadata/uid")},
        "nodeName": node,
    });
    if let Some(zone) = zones.get(node) {
        ep["zone"] = json!(zone);
    }
    ep
}

/// Slices for one Service; `pods` and `nodes` may span namespaces.
pub fn compute(svc: &Value, pods: &[&Value], nodes: &[&Value], now: &str) -> Vec<Value> {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return Vec::new(); // No selector: the controller leaves the slices to the user.
    };
    let sel: BTreeMap<String, String> = sel
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    if sel.is_empty() {
        return Vec::new();
    }
    let selector = LabelSelector::from_map(&sel);
    let ns = s(svc, "/metadata/namespace");
    let name = s(svc, "/metadata/name");
    let publish_not_ready = svc.pointer("/spec/publishNotReadyAddresses") == Some(&json!(true));
    let zones: BTreeMap<String, String> = nodes
        .iter()
        .filter_map(|n| {
            let zone = n
                .pointer("/metadata/labels/topology.kubernetes.io~1zone")?
                .as_str()?;
            Some((s(n, "/metadata/name").to_string(), zone.to_string()))
        })
        .collect();

    // Pods with the same resolved ports share slices, like the controller's port-map grouping.
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for pod in pods {
        let phase = s(pod, "/status/phase");
        if s(pod, "/metadata/namespace") != ns
            || !selector.matches(&labels_of(pod))
            || s(pod, "/status/podIP").is_empty()
            || phase == "Succeeded"
            || phase == "Failed"
        {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let entry = groups.entry(key).or_insert_with(|| (ports, Vec::new()));
        entry.1.push(endpoint(pod, &zones, publish_not_ready));
    }
    if groups.is_empty() {
        // The controller keeps one empty "placeholder" slice for a Service with no endpoints.
        groups.insert(String::new(), (Vec::new(), Vec::new()));
    }

    let mut labels = service_labels(svc);
    labels[SERVICE_NAME_LABEL] = json!(name);
    labels[MANAGED_BY_LABEL] = json!(CONTROLLER_NAME);
    let mut out = Vec::new();
    for (key, (ports, endpoints)) in groups {
        let chunks: Vec<&[Value]> = if endpoints.is_empty() {
            vec![&[]]
        } else {
            endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).collect()
        };
        for (i, chunk) in chunks.into_iter().enumerate() {
            let slice_name = format!(
                "{name}-{}",
                names::safe_suffix(&[ns, name, &key, &i.to_string()], 5)
            );
            out.push(json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name, "generateName": format!("{name}-"), "namespace": ns,
                    "labels": labels,
                    "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                        "uid": s(svc, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true}],
                },
                "addressType": "IPv4",
                "endpoints": chunk,
                "ports": ports,
            }));
        }
    }
    out
}

/// The v1 Endpoints object the endpoints controller keeps beside the slices.
pub fn compute_endpoints(svc: &Value, slices: &[Value]) -> Option<Value> {
    svc.pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())?;
    let ns = s(svc, "/metadata/namespace");
    let name = s(svc, "/metadata/name");
    let subsets: Vec<Value> = slices
        .iter()
        .filter(|sl| !arr(sl, "/endpoints").is_empty())
        .map(|sl| {
            let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
            for ep in arr(sl, "/endpoints") {
                let address = json!({"ip": ep["addresses"][0], "nodeName": ep["nodeName"],
                    "targetRef": ep["targetRef"]});
                if ep["conditions"]["ready"] == true {
                    ready.push(address);
                } else {
                    not_ready.push(address);
                }
            }
            let mut subset = json!({"ports": sl["ports"]});
            if !ready.is_empty() {
                subset["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = json!(not_ready);
            }
            subset
        })
        .collect();
    let labels = service_labels(svc);
    let mut ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
    });
    if !subsets.is_empty() {
        ep["subsets"] = json!(subsets);
    }
    Some(ep)
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The Service's labels as an object (`{}` when it has none).
fn service_labels(svc: &Value) -> Value {
    match svc.pointer("/metadata/labels") {
        Some(l) if l.is_object() => l.clone(),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::workloads::running_status;

    fn pod(name: &str, ready: bool, port_name: &str) -> Value {
        let spec = json!({"nodeName": "lab-node-1", "containers": [{"name": "c",
            "ports": [{"name": port_name, "containerPort": 8080}]}]});
        json!({"metadata": {"name": name, "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": spec, "status": running_status(&spec, "172.18.0.2", "10.244.0.2", "t", ready)})
    }

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "s"},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "ws", "port": 80, "targetPort": "ws", "protocol": "TCP"}]}})
    }

    #[test]
    fn named_target_port_resolves_and_conditions_follow_readiness() {
        let (a, b) = (pod("a", true, "ws"), pod("b", false, "ws"));
        let node = json!({"metadata": {"name": "lab-node-1",
            "labels": {"topology.kubernetes.io/zone": "z1"}}});
        let slices = compute(&svc(), &[&a, &b], &[&node], "t");
        assert_eq!(slices.len(), 1);
        let sl = &slices[0];
        assert_eq!(sl["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert_eq!(sl["metadata"]["labels"][MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(sl["addressType"], "IPv4");
        assert_eq!(sl["ports"][0]["port"], 8080);
        assert_eq!(sl["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(sl["endpoints"][1]["conditions"]["ready"], false);
        assert_eq!(sl["endpoints"][1]["conditions"]["serving"], false);
        assert_eq!(sl["endpoints"][0]["zone"], "z1");
        assert_eq!(sl["endpoints"][0]["targetRef"]["name"], "a");
    }

    #[test]
    fn endpoints_split_ready_and_not_ready() {
        let (a, b) = (pod("a", true, "ws"), pod("b", false, "ws"));
        let slices = compute(&svc(), &[&a, &b], &[], "t");
        let ep = compute_endpoints(&svc(), &slices).unwrap();
        assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(
            ep["subsets"][0]["notReadyAddresses"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    }

    #[test]
    fn pods_missing_the_named_port_go_to_another_slice() {
        let (a, b) = (pod("a", true, "ws"), pod("b", true, "other"));
        let slices = compute(&svc(), &[&a, &b], &[], "t");
        assert_eq!(slices.len(), 2);
    }

    #[test]
    fn large_services_are_chunked_and_empty_ones_keep_a_placeholder() {
        let pods: Vec<Value> = (0..150)
            .map(|i| pod(&format!("p{i}"), true, "ws"))
            .collect();
        let refs: Vec<&Value> = pods.iter().collect();
        assert_eq!(compute(&svc(), &refs, &[], "t").len(), 2);
        let empty = compute(&svc(), &[], &[], "t");
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0]["endpoints"], json!([]));
    }
}
