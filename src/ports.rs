//! Service port → container port, without the network.
//!
//! A Service port's `targetPort` is either a number (used as is) or a name that
//! each pod resolves on its own through its containers' `ports[].name`. Two
//! pods of one Service may therefore listen on different numbers. Everything
//! here reads untrusted objects: nothing panics on a strange pod.

use k8s_openapi::api::core::v1::{Container, Pod, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A `targetPort` resolved against one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPort {
    /// The port number inside the pod.
    pub port: i32,
    /// The container that declares (or, for a bare number, most likely serves) it.
    pub container: Option<String>,
}

/// Why a `targetPort` could not be resolved against a pod.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("no container of pod `{pod}` declares a port named `{name}`")]
    NamedPortNotFound { pod: String, name: String },
    #[error("targetPort {0} is not a valid port number")]
    OutOfRange(i32),
    #[error("the Service has no port named or numbered `{0}`")]
    NoSuchServicePort(String),
}

/// `targetPort` as written in the Service: `ws`, `8080`; an absent targetPort means `port`.
pub fn target_port_text(sp: &ServicePort) -> String {
    match &sp.target_port {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => sp.port.to_string(),
    }
}

/// The numeric `targetPort` when it does not depend on the pod.
pub fn numeric_target_port(sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        Some(IntOrString::Int(n)) => Some(*n),
        // A numeric string ("8080") is how some tools write it.
        Some(IntOrString::String(s)) => s.trim().parse().ok(),
        None => Some(sp.port),
    }
}

fn valid(port: i32) -> Result<i32, PortError> {
    if (1..=65535).contains(&port) {
        Ok(port)
    } else {
        Err(PortError::OutOfRange(port))
    }
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[])
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Resolve a Service port's `targetPort` to the container port of `pod`.
pub fn resolve_target_port(sp: &ServicePort, pod: &Pod) -> Result<ResolvedPort, PortError> {
    if let Some(n) = numeric_target_port(sp) {
        let port = valid(n)?;
        return Ok(ResolvedPort {
            port,
            container: default_container(pod, port).map(str::to_owned),
        });
    }
    let name = match &sp.target_port {
        Some(IntOrString::String(s)) => s.as_str(),
        _ => "",
    };
    for c in containers(pod) {
        for cp in c.ports.iter().flatten() {
            if cp.name.as_deref() == Some(name) {
                return Ok(ResolvedPort {
                    port: valid(cp.container_port)?,
                    container: Some(c.name.clone()),
                });
            }
        }
    }
    Err(PortError::NamedPortNotFound {
        pod: pod_name(pod),
        name: name.to_owned(),
    })
}

/// The container of `pod` that serves `port`: the one declaring it, else the
/// `kubectl.kubernetes.io/default-container` annotation, else the first container.
pub fn default_container(pod: &Pod, port: i32) -> Option<&str> {
    let cs = containers(pod);
    if let Some(c) = cs
        .iter()
        .find(|c| c.ports.iter().flatten().any(|p| p.container_port == port))
    {
        return Some(c.name.as_str());
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .and_then(|n| cs.iter().find(|c| &c.name == n));
    annotated.or_else(|| cs.first()).map(|c| c.name.as_str())
}

/// Pick the Service port a probe should use: by name or number when given,
/// else the first port.
pub fn select_service_port<'a>(
    ports: &'a [ServicePort],
    wanted: Option<&str>,
) -> Result<&'a ServicePort, PortError> {
    match wanted {
        None => ports
            .first()
            .ok_or_else(|| PortError::NoSuchServicePort("(any)".into())),
        Some(w) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(w) || w.parse::<i32>().ok() == Some(p.port))
            .ok_or_else(|| PortError::NoSuchServicePort(w.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(containers: &[(&str, &[(&str, i32)])]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: containers
                    .iter()
                    .map(|(n, ports)| Container {
                        name: (*n).into(),
                        ports: Some(
                            ports
                                .iter()
                                .map(|(pn, p)| ContainerPort {
                                    name: if pn.is_empty() {
                                        None
                                    } else {
                                        Some((*pn).into())
                                    },
                                    container_port: *p,
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sp(port: i32, target: Option<IntOrString>) -> ServicePort {
        ServicePort {
            port,
            target_port: target,
            ..Default::default()
        }
    }

    #[test]
    fn numeric_target_port_is_used_as_is() {
        let p = pod(&[
            ("sidecar", &[("metrics", 9090)]),
            ("server", &[("ws", 8080)]),
        ]);
        let r = resolve_target_port(&sp(80, Some(IntOrString::Int(8080))), &p).unwrap();
        assert_eq!(
            r,
            ResolvedPort {
                port: 8080,
                container: Some("server".into())
            }
        );
    }

    #[test]
    fn missing_target_port_defaults_to_port() {
        let p = pod(&[("server", &[])]);
        let r = resolve_target_port(&sp(8080, None), &p).unwrap();
        assert_eq!(r.port, 8080);
        assert_eq!(r.container.as_deref(), Some("server"));
    }

    #[test]
    fn named_target_port_is_looked_up_in_containers() {
        let p = pod(&[
            ("sidecar", &[("metrics", 9090)]),
            ("server", &[("ws", 8081)]),
        ]);
        let r = resolve_target_port(&sp(80, Some(IntOrString::String("ws".into()))), &p).unwrap();
        assert_eq!(
            r,
            ResolvedPort {
                port: 8081,
                container: Some("server".into())
            }
        );
    }

    #[test]
    fn unknown_named_port_is_an_error_not_a_panic() {
        let p = pod(&[("server", &[("http", 8080)])]);
        let e =
            resolve_target_port(&sp(80, Some(IntOrString::String("ws".into()))), &p).unwrap_err();
        assert_eq!(
            e,
            PortError::NamedPortNotFound {
                pod: "web-0".into(),
                name: "ws".into()
            }
        );
        assert!(
            resolve_target_port(
                &sp(80, Some(IntOrString::String("ws".into()))),
                &Pod::default()
            )
            .is_err()
        );
    }

    #[test]
    fn out_of_range_ports_are_rejected() {
        let p = pod(&[("server", &[("ws", 70000)])]);
        assert!(resolve_target_port(&sp(80, Some(IntOrString::String("ws".into()))), &p).is_err());
        assert!(resolve_target_port(&sp(80, Some(IntOrString::Int(0))), &p).is_err());
    }

    #[test]
    fn default_container_prefers_declared_then_annotation_then_first() {
        let mut p = pod(&[("a", &[]), ("b", &[]), ("c", &[("", 8080)])]);
        assert_eq!(default_container(&p, 8080), Some("c"));
        assert_eq!(default_container(&p, 1234), Some("a"));
        p.metadata.annotations = Some(
            [(
                "kubectl.kubernetes.io/default-container".to_string(),
                "b".to_string(),
            )]
            .into(),
        );
        assert_eq!(default_container(&p, 1234), Some("b"));
        assert_eq!(default_container(&Pod::default(), 1), None);
    }

    #[test]
    fn service_port_selection() {
        let ports = vec![
            ServicePort {
                name: Some("http".into()),
                port: 80,
                ..Default::default()
            },
            ServicePort {
                name: Some("ws".into()),
                port: 8080,
                ..Default::default()
            },
        ];
        assert_eq!(select_service_port(&ports, None).unwrap().port, 80);
        assert_eq!(select_service_port(&ports, Some("ws")).unwrap().port, 8080);
        assert_eq!(
            select_service_port(&ports, Some("8080")).unwrap().port,
            8080
        );
        assert!(select_service_port(&ports, Some("9")).is_err());
        assert!(select_service_port(&[], None).is_err());
    }

    #[test]
    fn target_port_text_as_written() {
        assert_eq!(
            target_port_text(&sp(80, Some(IntOrString::String("ws".into())))),
            "ws"
        );
        assert_eq!(target_port_text(&sp(80, None)), "80");
        assert_eq!(
            numeric_target_port(&sp(80, Some(IntOrString::String("8080".into())))),
            Some(8080)
        );
    }
}
