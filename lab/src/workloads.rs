//! What the controllers and the scheduler would have made of the scenario:
//! Deployments become a ReplicaSet and `replicas` running pods on fake nodes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::names;

/// Deployment annotations that steer the lab.
pub const ANN_NOT_READY: &str = "lab.wsaffinity.dev/not-ready";
pub const ANN_PROCESSES: &str = "lab.wsaffinity.dev/processes";
pub const ANN_SERVER_ARGS: &str = "lab.wsaffinity.dev/server-args";
pub const ANN_NODES: &str = "lab.wsaffinity.dev/nodes";

const ZONES: &[&str] = &["lab-zone-a", "lab-zone-b", "lab-zone-c"];

/// A pod the lab will back with a process (or deliberately not).
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub pod_ip: String,
    /// Container ports the backend answers on.
    pub ports: Vec<u16>,
    pub process: bool,
    pub server_args: Vec<String>,
}

pub struct World {
    pub objects: Vec<Value>,
    pub pods: Vec<PodPlan>,
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub fn node_name(index: usize) -> String {
    format!("lab-node-{}", index + 1)
}

fn node_object(index: usize) -> Value {
    let name = node_name(index);
    let zone = ZONES[index % ZONES.len()];
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "lab-region",
        }},
        "spec": {"podCIDR": format!("10.244.{}.0/24", index % 250)},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": format!("172.18.{}.{}", index / 250, index % 250 + 2)},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "containerd://2.0.0",
                "operatingSystem": "linux", "architecture": "amd64", "osImage": "wsaffinity-lab (test double)"},
        }
    })
}

fn container_ports(spec: &Value) -> Vec<u16> {
    let mut ports: Vec<u16> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["containerPort"].as_u64())
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    ports.dedup();
    ports
}

fn container_names(spec: &Value) -> Vec<String> {
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

/// A running pod's status as the kubelet reports it.
pub fn running_status(
    spec: &Value,
    node_ip: &str,
    pod_ip: &str,
    created: &str,
    ready: bool,
) -> Value {
    let names = container_names(spec);
    let statuses: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("");
            let image = c["image"].as_str().unwrap_or("");
            json!({
                "name": name, "image": image,
                "imageID": format!("docker.io/library/{image}@sha256:{}", names::hex_id(&[image])),
                "containerID": format!("containerd://{}", names::hex_id(&[pod_ip, name])),
                "ready": ready, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": created}},
            })
        })
        .collect();
    let status = |ok: bool| if ok { "True" } else { "False" };
    let mut ready_cond =
        json!({"type": "Ready", "status": status(ready), "lastTransitionTime": created});
    let mut containers_cond =
        json!({"type": "ContainersReady", "status": status(ready), "lastTransitionTime": created});
    if !ready {
        let msg = format!("containers with unready status: [{}]", names.join(" "));
        for c in [&mut ready_cond, &mut containers_cond] {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(msg);
        }
    }
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": created},
            {"type": "Initialized", "status": "True", "lastTransitionTime": created},
            ready_cond,
            containers_cond,
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
        ],
        "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": created,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// Whether the pod's Ready condition is True.
pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn node_ip(index: usize) -> String {
    format!("172.18.{}.{}", index / 250, index % 250 + 2)
}

fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("lab-node-")?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

/// Expand the scenario. `processes` is the lab-wide default for running real pods.
pub fn expand(input: Vec<Value>, created: &str, processes: bool) -> World {
    let mut objects = Vec::new();
    let mut pods = Vec::new();
    let mut nodes: BTreeSet<usize> = BTreeSet::new();
    let mut pods_per_node: BTreeMap<usize, usize> = BTreeMap::new();
    let mut namespaces: BTreeSet<String> = ["default", "kube-system"].map(String::from).into();
    let mut declared_ns = BTreeSet::new();
    let mut next_ip = |node: usize| {
        let k = pods_per_node.entry(node).or_insert(1);
        *k += 1;
        format!("10.244.{}.{}", node % 250, *k)
    };

    for obj in input {
        if let Some(ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str) {
            namespaces.insert(ns.to_string());
        }
        if obj["kind"] == "Namespace" && obj["apiVersion"] == "v1" {
            declared_ns.insert(str_at(&obj, "/metadata/name").to_string());
        }
        match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
            (Some("apps/v1"), Some("Deployment")) => {
                expand_deployment(
                    &obj,
                    created,
                    processes,
                    &mut objects,
                    &mut pods,
                    &mut nodes,
                    &mut next_ip,
                );
                objects.push(with_deployment_status(obj));
            }
            (Some("v1"), Some("Pod")) => {
                let mut pod = obj;
                let node = str_at(&pod, "/spec/nodeName").to_string();
                let index = node_index(&node).unwrap_or(0);
                if node.is_empty() {
                    pod["spec"]["nodeName"] = json!(node_name(index));
                }
                if node_index(str_at(&pod, "/spec/nodeName")).is_some() {
                    nodes.insert(index);
                }
                if pod.get("status").is_none_or(Value::is_null) {
                    let ip = next_ip(index);
                    pod["status"] =
                        running_status(&pod["spec"], &node_ip(index), &ip, created, true);
                }
                let process = processes
                    && annotation(&pod, ANN_PROCESSES) != Some("false")
                    && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
                pods.push(plan_for(&pod, process));
                objects.push(pod);
            }
            (Some("v1"), Some("Service")) => objects.push(with_cluster_ip(obj)),
            _ => objects.push(obj),
        }
    }
    for ns in namespaces.difference(&declared_ns) {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    for obj in &mut objects {
        if obj["kind"] == "Namespace" && obj["apiVersion"] == "v1" {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
    }
    if nodes.is_empty() {
        nodes.insert(0);
    }
    objects.extend(nodes.iter().map(|&i| node_object(i)));
    World { objects, pods }
}

fn plan_for(pod: &Value, process: bool) -> PodPlan {
    let ann = annotation(pod, ANN_SERVER_ARGS).unwrap_or("");
    PodPlan {
        namespace: str_at(pod, "/metadata/namespace").to_string(),
        name: str_at(pod, "/metadata/name").to_string(),
        node: str_at(pod, "/spec/nodeName").to_string(),
        pod_ip: str_at(pod, "/status/podIP").to_string(),
        ports: container_ports(&pod["spec"]),
        process,
        server_args: ann.split_whitespace().map(String::from).collect(),
    }
}

fn with_cluster_ip(mut svc: Value) -> Value {
    let headless_or_set = svc.pointer("/spec/clusterIP").is_some();
    let external = svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
    if !headless_or_set && !external {
        let h = names::fnv1a(&[
            str_at(&svc, "/metadata/namespace"),
            str_at(&svc, "/metadata/name"),
        ]);
        let ip = format!("10.96.{}.{}", (h >> 8) % 250, h % 250 + 2);
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
    }
    if svc.pointer("/spec/type").is_none() {
        svc["spec"]["type"] = json!("ClusterIP");
    }
    if svc.pointer("/spec/sessionAffinity").is_none() {
        svc["spec"]["sessionAffinity"] = json!("None");
    }
    svc
}

fn replicas(deploy: &Value) -> usize {
    deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .map_or(1, |r| r as usize)
}

fn with_deployment_status(mut deploy: Value) -> Value {
    let n = replicas(&deploy);
    let not_ready = annotation(&deploy, ANN_NOT_READY)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let ready = n.saturating_sub(not_ready);
    deploy["status"] = json!({
        "observedGeneration": 1, "replicas": n, "updatedReplicas": n, "readyReplicas": ready,
        "availableReplicas": ready, "unavailableReplicas": n - ready,
        "conditions": [{"type": "Available", "status": if ready > 0 { "True" } else { "False" },
            "reason": "MinimumReplicasAvailable"}],
    });
    deploy
}

fn expand_deployment(
    deploy: &Value,
    created: &str,
    processes: bool,
    objects: &mut Vec<Value>,
    pods: &mut Vec<PodPlan>,
    nodes: &mut BTreeSet<usize>,
    next_ip: &mut impl FnMut(usize) -> String,
) {
    let ns = str_at(deploy, "/metadata/namespace");
    let ns = if ns.is_empty() { "default" } else { ns };
    let name = str_at(deploy, "/metadata/name");
    let n = replicas(deploy);
    let hash = names::safe_suffix(&[ns, name, "pod-template-hash"], 10);
    let rs_name = format!("{name}-{hash}");
    let deploy_uid = names::uid(&["deployments.apps", ns, name]);
    let rs_uid = names::uid(&["replicasets.apps", ns, &rs_name]);
    let template = &deploy["spec"]["template"];
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels["pod-template-hash"] = json!(hash);
    let not_ready = annotation(deploy, ANN_NOT_READY)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let node_count = annotation(deploy, ANN_NODES)
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .unwrap_or(n.max(1));
    let run = processes && annotation(deploy, ANN_PROCESSES) != Some("false");

    objects.push(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": ns, "uid": rs_uid, "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": n.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": deploy_uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": n, "selector": deploy["spec"]["selector"], "template": template},
        "status": {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n.saturating_sub(not_ready),
            "availableReplicas": n.saturating_sub(not_ready), "observedGeneration": 1},
    }));

    for i in 0..n {
        let suffix = names::safe_suffix(&[ns, &rs_name, &i.to_string()], 5);
        let pod_name = format!("{rs_name}-{suffix}");
        let node = i % node_count;
        nodes.insert(node);
        let ip = next_ip(node);
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!(node_name(node));
        if spec.get("restartPolicy").is_none() {
            spec["restartPolicy"] = json!("Always");
        }
        spec["schedulerName"] = json!("default-scheduler");
        let ready = i < n.saturating_sub(not_ready);
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["name"] = json!(pod_name);
        meta["generateName"] = json!(format!("{rs_name}-"));
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(names::uid(&["pods", ns, &pod_name]));
        meta["labels"] = labels.clone();
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
            "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}]);
        let status = running_status(&spec, &node_ip(node), &ip, created, ready);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status});
        let mut plan = plan_for(&pod, run);
        if let Some(args) = annotation(deploy, ANN_SERVER_ARGS) {
            plan.server_args = args.split_whitespace().map(String::from).collect();
        }
        pods.push(plan);
        objects.push(pod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: u64, ann: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "annotations": ann},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i",
                        "ports": [{"name": "ws", "containerPort": 8080}]}]}}}})
    }

    #[test]
    fn deployment_becomes_pods_on_distinct_nodes() {
        let w = expand(
            vec![deploy(3, json!({ANN_NOT_READY: "1"}))],
            "2026-01-01T00:00:00Z",
            true,
        );
        let pods: Vec<&Value> = w.objects.iter().filter(|o| o["kind"] == "Pod").collect();
        assert_eq!(pods.len(), 3);
        let nodes: BTreeSet<&str> = pods.iter().map(|p| str_at(p, "/spec/nodeName")).collect();
        assert_eq!(nodes.len(), 3);
        let name = str_at(pods[0], "/metadata/name");
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("web", 10, 5));
        assert_eq!(pods.iter().filter(|p| pod_is_ready(p)).count(), 2);
        assert!(!pod_is_ready(pods[2]));
        assert_eq!(w.pods[0].ports, [8080]);
        assert!(w.objects.iter().any(|o| o["kind"] == "ReplicaSet"));
        assert!(
            w.objects
                .iter()
                .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == "ns")
        );
        // Same input, same names.
        let again = expand(vec![deploy(3, json!({}))], "2026-01-01T00:00:00Z", true);
        assert_eq!(again.pods[0].name, w.pods[0].name);
    }

    #[test]
    fn processes_annotation_turns_processes_off() {
        let w = expand(vec![deploy(2, json!({ANN_PROCESSES: "false"}))], "t", true);
        assert!(w.pods.iter().all(|p| !p.process));
    }
}
