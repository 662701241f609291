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

/// What every pod of a Deployment shares: its ReplicaSet, labels and template.
struct Replicas<'a> {
    deploy: &'a Value,
    ns: &'a str,
    rs_name: String,
    rs_uid: String,
    /// The template's labels plus `pod-template-hash`.
    labels: Value,
    /// Whether its pods run a real process.
    run: bool,
}

impl<'a> Replicas<'a> {
    fn of(deploy: &'a Value, processes: bool) -> Self {
        let ns = str_at(deploy, "/metadata/namespace");
        let ns = if ns.is_empty() { "default" } else { ns };
        let name = str_at(deploy, "/metadata/name");
        let hash = names::safe_suffix(&[ns, name, "pod-template-hash"], 10);
        let rs_name = format!("{name}-{hash}");
        let rs_uid = names::uid(&["replicasets.apps", ns, &rs_name]);
        let mut labels = deploy
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        labels["pod-template-hash"] = json!(hash);
        Self {
            deploy,
            ns,
            rs_name,
            rs_uid,
            labels,
            run: processes && annotation(deploy, ANN_PROCESSES) != Some("false"),
        }
    }

    /// The i-th pod's name: `<rs>-<5 chars>`, deterministic.
    fn pod_name(&self, i: usize) -> String {
        let suffix = names::safe_suffix(&[self.ns, &self.rs_name, &i.to_string()], 5);
        format!("{}-{suffix}", self.rs_name)
    }

    /// Where the i-th pod is scheduled: its own node, or round-robin over
    /// `lab.wsaffinity.dev/nodes` nodes.
    fn node_of(&self, i: usize, default_count: usize) -> usize {
        let count = annotation(self.deploy, ANN_NODES)
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&c| c > 0)
            .unwrap_or(default_count.max(1));
        i % count
    }

    /// A running pod of this ReplicaSet, and its plan.
    fn pod(
        &self,
        name: &str,
        node: usize,
        ip: &str,
        created: &str,
        ready: bool,
    ) -> (Value, PodPlan) {
        let template = &self.deploy["spec"]["template"];
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!(node_name(node));
        if spec.get("restartPolicy").is_none() {
            spec["restartPolicy"] = json!("Always");
        }
        spec["schedulerName"] = json!("default-scheduler");
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["name"] = json!(name);
        meta["generateName"] = json!(format!("{}-", self.rs_name));
        meta["namespace"] = json!(self.ns);
        meta["uid"] = json!(names::uid(&["pods", self.ns, name]));
        meta["labels"] = self.labels.clone();
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": self.rs_name, "uid": self.rs_uid, "controller": true, "blockOwnerDeletion": true}]);
        let status = running_status(&spec, &node_ip(node), ip, created, ready);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status});
        let mut plan = plan_for(&pod, self.run);
        if let Some(args) = annotation(self.deploy, ANN_SERVER_ARGS) {
            plan.server_args = args.split_whitespace().map(String::from).collect();
        }
        (pod, plan)
    }
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
    let rs = Replicas::of(deploy, processes);
    let name = str_at(deploy, "/metadata/name");
    let n = replicas(deploy);
    let deploy_uid = names::uid(&["deployments.apps", rs.ns, name]);
    let not_ready = annotation(deploy, ANN_NOT_READY)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);

    objects.push(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs.rs_name, "namespace": rs.ns, "uid": rs.rs_uid, "labels": rs.labels,
            "annotations": {"deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": n.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": deploy_uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": n, "selector": deploy["spec"]["selector"], "template": deploy["spec"]["template"]},
        "status": {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n.saturating_sub(not_ready),
            "availableReplicas": n.saturating_sub(not_ready), "observedGeneration": 1},
    }));

    for i in 0..n {
        let node = rs.node_of(i, n);
        nodes.insert(node);
        let ip = next_ip(node);
        let ready = i < n.saturating_sub(not_ready);
        let (pod, plan) = rs.pod(&rs.pod_name(i), node, &ip, created, ready);
        pods.push(plan);
        objects.push(pod);
    }
}

/// One more pod for a running Deployment, as its ReplicaSet makes it when the
/// Deployment is scaled up by one.
pub struct ScaleUp {
    pub pod: Value,
    pub plan: PodPlan,
    /// The fake node it is scheduled on, when that node is new.
    pub new_node: Option<Value>,
    /// The ReplicaSet that owns it (`<deploy>-<hash>`).
    pub replicaset: String,
    /// The Deployment's (and ReplicaSet's) replicas after the scale-up.
    pub replicas: usize,
}

/// Plan the next pod of `deploy`: named `<deploy>-<hash>-<5 new chars>`, Ready,
/// on its own fake node (or the next of `lab.wsaffinity.dev/nodes`), with a pod
/// IP no pod in `pods` (all namespaces) has. `nodes` are the Node objects.
pub fn scale_up(
    deploy: &Value,
    pods: &[&Value],
    nodes: &[&Value],
    created: &str,
    processes: bool,
) -> ScaleUp {
    let rs = Replicas::of(deploy, processes);
    let n = replicas(deploy);
    let taken: BTreeSet<(&str, &str)> = pods
        .iter()
        .map(|p| {
            (
                str_at(p, "/metadata/namespace"),
                str_at(p, "/metadata/name"),
            )
        })
        .collect();
    // Indexes below `replicas` named the pods made so far (some may be deleted):
    // a new pod never reuses a name.
    let (i, name) = (n..)
        .map(|i| (i, rs.pod_name(i)))
        .find(|(_, name)| !taken.contains(&(rs.ns, name.as_str())))
        .expect("an unused pod name");
    let node = rs.node_of(i, usize::MAX);
    let ips: BTreeSet<&str> = pods.iter().map(|p| str_at(p, "/status/podIP")).collect();
    let ip = (2..)
        .map(|k| format!("10.244.{}.{k}", node % 250))
        .find(|ip| !ips.contains(ip.as_str()))
        .expect("a free pod IP");
    let (mut pod, plan) = rs.pod(&name, node, &ip, created, true);
    pod["metadata"]["creationTimestamp"] = json!(created);
    let node_exists = nodes
        .iter()
        .any(|o| str_at(o, "/metadata/name") == node_name(node));
    ScaleUp {
        pod,
        plan,
        new_node: (!node_exists).then(|| node_object(node)),
        replicaset: rs.rs_name,
        replicas: n + 1,
    }
}

/// Record a Deployment's or ReplicaSet's new replica count as the scale and
/// the controllers would: spec, generation, and the counts in its status
/// (ready counts follow the pods, see `state::refresh_slices`).
pub fn set_replicas(w: &mut Value, n: usize) {
    let generation = w
        .pointer("/metadata/generation")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        + 1;
    w["metadata"]["generation"] = json!(generation);
    w["spec"]["replicas"] = json!(n);
    w["status"]["observedGeneration"] = json!(generation);
    w["status"]["replicas"] = json!(n);
    if w["kind"] == "ReplicaSet" {
        w["status"]["fullyLabeledReplicas"] = json!(n);
        w["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
            json!(n.to_string());
    } else {
        w["status"]["updatedReplicas"] = json!(n);
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

    /// The one Deployment of `w`, its pods and the nodes.
    fn deployment_pods_nodes(w: &World) -> (&Value, Vec<&Value>, Vec<&Value>) {
        let of = |kind: &str| -> Vec<&Value> {
            w.objects.iter().filter(|o| o["kind"] == kind).collect()
        };
        let d = of("Deployment")[0];
        (d, of("Pod"), of("Node"))
    }

    #[test]
    fn scale_up_makes_the_next_replica_with_a_new_name_node_and_ip() {
        let created = "2026-01-01T00:00:00Z";
        let w = expand(vec![deploy(2, json!({}))], created, true);
        let (d, pods, nodes) = deployment_pods_nodes(&w);
        let up = scale_up(d, &pods, &nodes, "2026-01-01T00:05:00Z", true);
        let first = &w.pods[0].name;
        let rs = &first[..first.len() - 6];
        assert_eq!(up.replicaset, rs);
        let name = up.plan.name.as_str();
        assert!(name.starts_with(&format!("{rs}-")), "{name}");
        assert_eq!(name.len(), first.len());
        assert!(w.pods.iter().all(|p| p.name != name));
        assert_eq!(up.replicas, 3);
        assert!(up.plan.process);
        assert!(pod_is_ready(&up.pod));
        assert_eq!(up.pod["metadata"]["labels"], pods[0]["metadata"]["labels"]);
        assert_eq!(
            up.pod["metadata"]["ownerReferences"],
            pods[0]["metadata"]["ownerReferences"]
        );
        assert_eq!(
            str_at(&up.pod, "/metadata/creationTimestamp"),
            "2026-01-01T00:05:00Z"
        );
        // Its own node, new to the cluster, and an IP no pod has.
        assert_eq!(str_at(&up.pod, "/spec/nodeName"), "lab-node-3");
        assert_eq!(
            str_at(up.new_node.as_ref().unwrap(), "/metadata/name"),
            "lab-node-3"
        );
        let ip = str_at(&up.pod, "/status/podIP");
        assert!(
            pods.iter().all(|p| str_at(p, "/status/podIP") != ip),
            "{ip}"
        );

        // Spread over 2 nodes: the third pod shares the first node, and an IP there is free.
        let w = expand(vec![deploy(2, json!({ANN_NODES: "2"}))], created, true);
        let (d, pods, nodes) = deployment_pods_nodes(&w);
        let up = scale_up(d, &pods, &nodes, created, true);
        assert_eq!(str_at(&up.pod, "/spec/nodeName"), "lab-node-1");
        assert!(up.new_node.is_none());
        let ip = str_at(&up.pod, "/status/podIP");
        assert!(
            pods.iter().all(|p| str_at(p, "/status/podIP") != ip),
            "{ip}"
        );

        // After a scale to 3, the next pod is a fourth name, even if one was deleted.
        let mut d = d.clone();
        set_replicas(&mut d, 3);
        assert_eq!(d["status"]["updatedReplicas"], 3);
        let next = scale_up(&d, &pods[..1], &nodes, created, true);
        assert_ne!(next.plan.name, up.plan.name);
        assert_eq!(next.replicas, 4);
    }

    #[test]
    fn processes_annotation_turns_processes_off() {
        let w = expand(vec![deploy(2, json!({ANN_PROCESSES: "false"}))], "t", true);
        assert!(w.pods.iter().all(|p| !p.process));
    }
}
