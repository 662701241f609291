//! Which port and path a pod's metrics are on when `--metrics-port` is not
//! given: a container port named `metrics` or `http-metrics`, else the
//! Prometheus scrape annotations (`prometheus.io/port`, `prometheus.io/path`).

use k8s_openapi::api::core::v1::Pod;

pub const DEFAULT_PATH: &str = "/metrics";

/// `(port, path)` for this pod, or `None` when it names none.
pub fn metrics_endpoint(pod: &Pod) -> Option<(u16, Option<String>)> {
    let named = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| matches!(p.name.as_deref(), Some("metrics" | "http-metrics")));
    let annotations = pod.metadata.annotations.as_ref();
    let path = annotations
        .and_then(|a| a.get("prometheus.io/path"))
        .cloned();
    if let Some(p) = named {
        return u16::try_from(p.container_port)
            .ok()
            .map(|port| (port, path));
    }
    let port = annotations?
        .get("prometheus.io/port")?
        .trim()
        .parse()
        .ok()?;
    Some((port, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn named_port_then_annotations_then_nothing() {
        let named = pod(serde_json::json!({"spec": {"containers": [{"name": "c",
            "ports": [{"name": "ws", "containerPort": 8080}, {"name": "http-metrics", "containerPort": 9090}]}]}}));
        assert_eq!(metrics_endpoint(&named), Some((9090, None)));
        let annotated = pod(serde_json::json!({
            "metadata": {"annotations": {"prometheus.io/port": "9100", "prometheus.io/path": "/m"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "ws", "containerPort": 8080}]}]}}));
        assert_eq!(
            metrics_endpoint(&annotated),
            Some((9100, Some("/m".into())))
        );
        let none = pod(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(metrics_endpoint(&none), None);
    }
}
