//! A pod's container as a process: the real `websocket-server`, whatever the
//! image says, with the container's args and env (downward-API `fieldRef`s
//! resolved), bound to the pod's IP. No image, no filesystem isolation, no
//! security context: the process runs as the agent's user.

use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::process::Command;

/// The value of a downward-API `fieldPath` for this pod.
pub fn field_ref(pod: &Pod, path: &str, pod_ip: Ipv4Addr) -> Option<String> {
    let meta = &pod.metadata;
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" => Some(pod_ip.to_string()),
        "status.podIPs" => Some(pod_ip.to_string()),
        p => {
            let key = p
                .strip_prefix("metadata.labels['")
                .map(|k| (k, &meta.labels))
                .or_else(|| {
                    p.strip_prefix("metadata.annotations['")
                        .map(|k| (k, &meta.annotations))
                });
            let (k, map) = key?;
            let k = k.strip_suffix("']")?;
            map.as_ref()?.get(k).cloned()
        }
    }
}

/// The container's environment: literal values and `fieldRef`s (others are skipped).
pub fn env(pod: &Pod, c: &Container, pod_ip: Ipv4Addr) -> Vec<(String, String)> {
    c.env
        .iter()
        .flatten()
        .filter_map(|e| {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(from)) => from
                    .field_ref
                    .as_ref()
                    .and_then(|f| field_ref(pod, &f.field_path, pod_ip)),
                _ => None,
            }?;
            Some((e.name.clone(), value))
        })
        .collect()
}

/// `websocket-server` arguments: the `command` after a websocket-server
/// entrypoint (anything else in `command` is the image's and is ignored),
/// then `args`, then `--bind POD_IP` so the process listens on the pod's address.
pub fn args(c: &Container, pod_ip: Ipv4Addr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(cmd) = &c.command
        && cmd
            .first()
            .is_some_and(|c0| c0.ends_with("websocket-server"))
    {
        out.extend(cmd.iter().skip(1).cloned());
    }
    out.extend(c.args.iter().flatten().cloned());
    out.push("--bind".into());
    out.push(pod_ip.to_string());
    out
}

/// A container's environment starts empty, as a kubelet's does: the image's
/// `PATH`, `HOSTNAME` (the pod's name) and the container's `env`
/// ([`crate::process::clean_env`]).
pub fn command(server: &Path, pod: &Pod, c: &Container, pod_ip: Ipv4Addr) -> Command {
    let mut cmd = Command::new(server);
    cmd.args(args(c, pod_ip));
    crate::process::clean_env(&mut cmd, pod.metadata.name.as_deref().unwrap_or_default());
    cmd.envs(env(pod, c, pod_ip));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p1", "namespace": "ns", "labels": {"app": "ws"}},
            "spec": {"nodeName": "lab-node-2", "containers": [{
                "name": "c", "image": "ghcr.io/x/websocket-server:1",
                "command": ["/usr/local/bin/websocket-server", "--log-format=text"],
                "args": ["--port=8080"],
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ]
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn downward_api_fields_resolve_and_unsupported_sources_are_skipped() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let ip = Ipv4Addr::new(10, 244, 2, 5);
        let env = env(&p, c, ip);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("POD_NAME"), Some("p1"));
        assert_eq!(get("NODE_NAME"), Some("lab-node-2"));
        assert_eq!(get("POD_IP"), Some("10.244.2.5"));
        assert_eq!(get("APP"), Some("ws"));
        assert_eq!(get("SECRET"), None);
    }

    #[tokio::test]
    async fn the_container_gets_its_own_env_and_nothing_of_the_agents() {
        let mut p = pod();
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        // `sh -c env --bind IP`: the container's process prints its environment.
        c.command = None;
        c.args = Some(vec!["-c".into(), "env".into()]);
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let out = command(Path::new("/bin/sh"), &p, &c, Ipv4Addr::new(10, 244, 1, 2))
            .output()
            .await
            .expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        keys.sort_unstable();
        // sh itself adds PWD (and may add SHLVL); cargo's test env (CARGO_*,
        // RUST_*) and the agent's own must not reach the pod.
        keys.retain(|k| !["PWD", "SHLVL", "_"].contains(k));
        assert_eq!(
            keys,
            [
                "A",
                "APP",
                "HOSTNAME",
                "NODE_NAME",
                "PATH",
                "POD_IP",
                "POD_NAME"
            ],
            "{text}"
        );
        assert!(text.contains("HOSTNAME=p1\n"), "{text}");
    }

    #[test]
    fn args_keep_the_entrypoint_flags_and_bind_the_pod_ip() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            args(c, Ipv4Addr::new(10, 244, 1, 2)),
            ["--log-format=text", "--port=8080", "--bind", "10.244.1.2"]
        );
    }
}
