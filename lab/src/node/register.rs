//! A node's registration and heartbeat, as the kubelet does them: create the
//! Node (labels, capacity, InternalIP, kubelet port), post `NodeReady`, and
//! renew the node's Lease in `kube-node-lease` (what the node lifecycle
//! controller watches; a node whose Lease stops is marked NotReady after
//! `--node-monitor-grace-period`).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The kubelet renews every 10 s (a quarter of the 40 s lease); the agent
/// renews faster so tests can use a short grace period.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often NodeReady's heartbeat is posted again without a change.
const STATUS_EVERY: Duration = Duration::from_secs(10);
pub const KUBELET_PORT: u16 = 10250;
const ZONES: [&str; 3] = ["lab-zone-a", "lab-zone-b", "lab-zone-c"];

pub struct NodeInfo {
    pub name: String,
    /// 1-based node number.
    pub index: usize,
    pub ip: Ipv4Addr,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn node_object(node: &NodeInfo) -> serde_json::Value {
    let zone = ZONES[(node.index - 1) % ZONES.len()];
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "lab.wsaffinity.dev/node-agent": "true",
            },
            "annotations": {
                "lab.wsaffinity.dev/what": "registered by the wsaffinity-lab node agent (pods are processes, not containers)"
            }
        },
    })
}

fn node_status(node: &NodeInfo) -> serde_json::Value {
    let t = now();
    let resources =
        json!({"cpu": "8", "memory": "16Gi", "pods": "250", "ephemeral-storage": "100Gi"});
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": t, "lastTransitionTime": t})
    };
    json!({
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "wsaffinity-lab node agent is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node.ip.to_string()},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "machineID": format!("{:032x}", node.index),
                "systemUUID": format!("lab-node-{}", node.index),
                "bootID": format!("lab-boot-{}", node.index),
                "kernelVersion": "wsaffinity-lab",
                "osImage": "wsaffinity-lab node agent (processes, no containers)",
                "containerRuntimeVersion": "wsaffinity-lab://0.1.0",
                "kubeletVersion": "v1.37.2",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    })
}

/// Create the Node (or take over an existing one) and post its status.
pub async fn register(client: &kube::Client, node: &NodeInfo) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let obj: Node = serde_json::from_value(node_object(node))?;
    match nodes.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).with_context(|| format!("registering node {}", node.name)),
    }
    post_status(client, node).await
}

pub async fn post_status(client: &kube::Client, node: &NodeInfo) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            &node.name,
            &PatchParams::default(),
            &Patch::Merge(node_status(node)),
        )
        .await
        .with_context(|| format!("posting the status of node {}", node.name))?;
    Ok(())
}

async fn renew_lease(client: &kube::Client, node: &NodeInfo, uid: &str) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let renew = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node.name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": uid}],
        },
        "spec": {"holderIdentity": node.name, "leaseDurationSeconds": 40, "renewTime": renew},
    });
    match leases
        .patch(&node.name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease: Lease = serde_json::from_value(body)?;
            leases.create(&PostParams::default(), &lease).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Register, then keep the Lease and NodeReady fresh until the process ends.
/// Errors (an API server restart) are logged and retried: a kubelet never gives up.
pub async fn heartbeat(client: kube::Client, node: NodeInfo) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut uid: Option<String> = None;
    let mut last_status = std::time::Instant::now();
    loop {
        if uid.is_none() {
            match register(&client, &node).await {
                Ok(()) => {
                    uid = nodes
                        .get(&node.name)
                        .await
                        .ok()
                        .and_then(|n| n.metadata.uid);
                    last_status = std::time::Instant::now();
                }
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        if let Some(uid) = &uid {
            if let Err(e) = renew_lease(&client, &node, uid).await {
                tracing::warn!("renewing the lease of {}: {e:#}", node.name);
            }
            if last_status.elapsed() > STATUS_EVERY {
                match post_status(&client, &node).await {
                    Ok(()) => last_status = std::time::Instant::now(),
                    Err(e) => tracing::warn!("{e:#}"),
                }
            }
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
}
