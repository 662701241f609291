//! Which pods to read and from which container: pure functions over the Pod
//! objects of one LIST (the API call itself is `gather::list_pods`).

use k8s_openapi::api::core::v1::{Pod, Service};

/// One pod whose log is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTarget {
    pub pod: String,
    pub node: Option<String>,
    /// `status.startTime` (RFC 3339).
    pub started: Option<String>,
    /// The container whose log is read; `None` lets the API pick (one-container pods).
    pub container: Option<String>,
    /// Why there is no log to read yet (a Pending pod), instead of a request.
    pub not_loggable: Option<String>,
    /// `metadata.uid`: a pod re-created under the same name is another pod.
    pub uid: Option<String>,
    /// Phase Succeeded or Failed: its log will not grow.
    pub finished: bool,
}

/// How the container is chosen when `-c` is not given.
#[derive(Clone, Debug, Default)]
pub enum ContainerChoice {
    /// `-c NAME`.
    Named(String),
    /// The container that serves the Service's (first) port.
    ServicePort(Box<Service>),
    /// `kubectl.kubernetes.io/default-container`, else the first container.
    #[default]
    Default,
}

impl ContainerChoice {
    pub fn new(flag: Option<&str>, service: Option<&Service>) -> Self {
        match (flag, service) {
            (Some(c), _) => ContainerChoice::Named(c.to_owned()),
            (None, Some(s)) => ContainerChoice::ServicePort(Box::new(s.clone())),
            (None, None) => ContainerChoice::Default,
        }
    }

    /// The container of `pod` to read.
    pub fn for_pod(&self, pod: &Pod) -> Option<String> {
        match self {
            ContainerChoice::Named(c) => Some(c.clone()),
            ContainerChoice::ServicePort(svc) => {
                serving_container(svc, pod).or_else(|| default_container(pod))
            }
            ContainerChoice::Default => default_container(pod),
        }
    }
}

/// The container that serves the Service's first port, as `ports` resolves
/// it: the one declaring a named `targetPort` or the port number (else the
/// default container).
fn serving_container(svc: &Service, pod: &Pod) -> Option<String> {
    let ports = svc.spec.as_ref()?.ports.as_deref()?;
    let sp = crate::ports::select_service_port(ports, None).ok()?;
    crate::ports::resolve_target_port(sp, pod).ok()?.container
}

/// `kubectl.kubernetes.io/default-container`, else the first container (as kubectl logs).
fn default_container(pod: &Pod) -> Option<String> {
    crate::ports::default_container(pod, 0).map(str::to_owned)
}

/// The pods of one LIST as log targets, sorted by name.
pub fn log_targets(pods: &[Pod], choice: &ContainerChoice) -> Vec<LogTarget> {
    let mut out: Vec<LogTarget> = pods
        .iter()
        .filter_map(|p| {
            let pod = p.metadata.name.clone()?;
            Some(LogTarget {
                pod,
                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                started: p
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0.to_string()),
                container: choice.for_pod(p),
                not_loggable: not_loggable(p),
                uid: p.metadata.uid.clone(),
                finished: matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                ),
            })
        })
        .collect();
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    out
}

/// A pod that has never started a container has no log: say so instead of
/// asking the API (which would answer 400 "waiting to start").
pub fn not_loggable(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let any_started = status
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            })
        });
    match phase {
        "Pending" if !any_started => {
            Some("pod is Pending: no container has started, so there is no log yet".to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStatus, PodSpec,
        PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, phase: &str, containers: &[(&str, Option<(&str, i32)>)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                containers: containers
                    .iter()
                    .map(|(n, port)| Container {
                        name: (*n).into(),
                        ports: port.map(|(pn, p)| {
                            vec![ContainerPort {
                                name: Some(pn.into()),
                                container_port: p,
                                ..Default::default()
                            }]
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                start_time: Some(Time(
                    "2026-11-26T20:00:00Z"
                        .parse()
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                )),
                ..Default::default()
            }),
        }
    }

    fn service(target: IntOrString) -> Service {
        Service {
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    port: 80,
                    target_port: Some(target),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn container_serving_the_named_target_port() {
        let p = pod(
            "a",
            "Running",
            &[
                ("sidecar", Some(("metrics", 9090))),
                ("server", Some(("ws", 8080))),
            ],
        );
        let choice = ContainerChoice::new(None, Some(&service(IntOrString::String("ws".into()))));
        assert_eq!(choice.for_pod(&p).as_deref(), Some("server"));
        let choice = ContainerChoice::new(None, Some(&service(IntOrString::Int(8080))));
        assert_eq!(choice.for_pod(&p).as_deref(), Some("server"));
    }

    #[test]
    fn flag_wins_and_first_container_is_the_fallback() {
        let p = pod("a", "Running", &[("one", None), ("two", None)]);
        assert_eq!(
            ContainerChoice::new(Some("two"), None)
                .for_pod(&p)
                .as_deref(),
            Some("two")
        );
        assert_eq!(
            ContainerChoice::new(None, None).for_pod(&p).as_deref(),
            Some("one")
        );
        let choice = ContainerChoice::new(None, Some(&service(IntOrString::String("nope".into()))));
        assert_eq!(choice.for_pod(&p).as_deref(), Some("one"));
    }

    #[test]
    fn targets_are_sorted_with_node_and_start() {
        let pods = vec![
            pod("b", "Running", &[("c", None)]),
            pod("a", "Running", &[("c", None)]),
        ];
        let t = log_targets(&pods, &ContainerChoice::Default);
        assert_eq!(
            t.iter().map(|t| t.pod.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(t[0].node.as_deref(), Some("node-1"));
        assert_eq!(t[0].started.as_deref(), Some("2026-11-26T20:00:00Z"));
        assert_eq!(t[0].not_loggable, None);
    }

    #[test]
    fn pending_pod_is_not_read() {
        let mut p = pod("a", "Pending", &[("c", None)]);
        assert!(not_loggable(&p).is_some_and(|m| m.contains("Pending")));
        // Pending with a running container (a restarting init phase) is read.
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus {
                name: "c".into(),
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }]);
        }
        assert_eq!(not_loggable(&p), None);
        assert_eq!(not_loggable(&Pod::default()), None);
    }
}
