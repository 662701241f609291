//! Target references (`svc/NAME`, `ingress/NAME`, `deploy/NAME`, a bare name,
//! or nothing) and the pure half of resolving them to one Service. The API
//! reads live in `gather::resolve`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use thiserror::Error;

use crate::snapshot::{TargetKind, TargetRef};

/// What the user asked to check, as parsed from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    Service(String),
    Ingress(String),
    Deployment(String),
    /// No target: the namespace's only Service.
    OnlyService,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetSyntaxError {
    #[error("empty target: pass svc/NAME, ingress/NAME, deploy/NAME or a Service name")]
    Empty,
    #[error(
        "unsupported kind `{kind}` in `{input}`: use svc/NAME, ingress/NAME or deploy/NAME (a bare NAME means a Service)"
    )]
    UnknownKind { kind: String, input: String },
    #[error("`{input}` has no name after the `/`: write it as {kind}/NAME")]
    MissingName { kind: String, input: String },
    #[error(
        "`{0}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)"
    )]
    InvalidName(String),
}

impl FromStr for TargetSpec {
    type Err = TargetSyntaxError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        if input.is_empty() {
            return Err(TargetSyntaxError::Empty);
        }
        let (kind, name) = match input.split_once('/') {
            None => return valid_name(input).map(|n| TargetSpec::Service(n.to_string())),
            Some((kind, name)) => (kind, name),
        };
        if name.is_empty() {
            return Err(TargetSyntaxError::MissingName {
                kind: kind.to_string(),
                input: input.to_string(),
            });
        }
        let name = valid_name(name)?.to_string();
        match kind.to_ascii_lowercase().as_str() {
            "svc" | "service" | "services" => Ok(TargetSpec::Service(name)),
            "ing" | "ingress" | "ingresses" => Ok(TargetSpec::Ingress(name)),
            "deploy" | "deployment" | "deployments" => Ok(TargetSpec::Deployment(name)),
            _ => Err(TargetSyntaxError::UnknownKind {
                kind: kind.to_string(),
                input: input.to_string(),
            }),
        }
    }
}

/// RFC 1123 subdomain, as Kubernetes object names are.
fn valid_name(name: &str) -> Result<&str, TargetSyntaxError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .as_bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(name)
    } else {
        Err(TargetSyntaxError::InvalidName(name.to_string()))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Service(n) => write!(f, "svc/{n}"),
            TargetSpec::Ingress(n) => write!(f, "ingress/{n}"),
            TargetSpec::Deployment(n) => write!(f, "deploy/{n}"),
            TargetSpec::OnlyService => write!(f, "(the namespace's only Service)"),
        }
    }
}

impl TargetSpec {
    pub fn to_ref(&self) -> TargetRef {
        let (kind, name) = match self {
            TargetSpec::Service(n) => (TargetKind::Service, Some(n.clone())),
            TargetSpec::Ingress(n) => (TargetKind::Ingress, Some(n.clone())),
            TargetSpec::Deployment(n) => (TargetKind::Deployment, Some(n.clone())),
            TargetSpec::OnlyService => (TargetKind::Service, None),
        };
        TargetRef { kind, name }
    }
}

/// A target that parsed but cannot be resolved to exactly one Service.
///
/// Its text is the problem plus a command to run next; the subcommand and
/// `-n` in that command are filled in by [`ResolveError::message`] so the
/// advice runs as printed (`Display` alone says `check`).
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    NoServices {
        namespace: String,
    },
    SeveralServices {
        namespace: String,
        names: Vec<String>,
    },
    IngressWithoutService {
        ingress: String,
    },
    IngressSeveralServices {
        ingress: String,
        services: Vec<String>,
    },
    DeploymentWithoutService {
        namespace: String,
        deployment: String,
        labels: String,
        services: Vec<String>,
    },
    DeploymentSeveralServices {
        deployment: String,
        services: Vec<String>,
    },
}

impl ResolveError {
    /// The problem and what to run next: `kubectl wsaffinity COMMAND [-n NS] svc/...`.
    /// `namespace` is the `-n` the user gave, repeated so the command runs as printed.
    pub fn message(&self, command: &str, namespace: Option<&str>) -> String {
        let run = match namespace {
            Some(ns) => format!("kubectl wsaffinity {command} -n {ns}"),
            None => format!("kubectl wsaffinity {command}"),
        };
        match self {
            ResolveError::NoServices { namespace } => format!(
                "no Services in namespace {namespace}. Pass the namespace with -n NAMESPACE, or a target: kubectl wsaffinity {command} svc/NAME"
            ),
            ResolveError::SeveralServices { namespace, names } => format!(
                "namespace {namespace} has {} Services: {}",
                names.len(),
                pass_one(names, &run)
            ),
            ResolveError::IngressWithoutService { ingress } => format!(
                "ingress/{ingress} sends to no Service (only resource backends). Check a Service directly: {run} svc/NAME"
            ),
            ResolveError::IngressSeveralServices { ingress, services } => format!(
                "ingress/{ingress} sends to {} Services: {}",
                services.len(),
                pass_one(services, &run)
            ),
            ResolveError::DeploymentWithoutService {
                namespace,
                deployment,
                labels,
                services,
            } => format!(
                "no Service in namespace {namespace} selects the pods of deploy/{deployment} (labels {labels}). Services here: {}. Expose it (kubectl expose deploy/{deployment} --port=PORT) or pass a Service: {run} svc/NAME",
                list_or_none(services)
            ),
            ResolveError::DeploymentSeveralServices {
                deployment,
                services,
            } => format!(
                "{} Services select the pods of deploy/{deployment}: {}",
                services.len(),
                pass_one(services, &run)
            ),
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("check", None))
    }
}

impl std::error::Error for ResolveError {}

/// `a, b. Pass one: kubectl wsaffinity ... svc/a`
fn pass_one(names: &[String], run: &str) -> String {
    let first = names.first().map(String::as_str).unwrap_or("NAME");
    format!("{}. Pass one: {run} svc/{first}", names.join(", "))
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// No target given: the namespace's only Service, else an error listing them.
pub fn only_service(namespace: &str, mut names: Vec<String>) -> Result<String, ResolveError> {
    names.sort();
    match names.len() {
        0 => Err(ResolveError::NoServices {
            namespace: namespace.to_string(),
        }),
        1 => Ok(names.remove(0)),
        _ => Err(ResolveError::SeveralServices {
            namespace: namespace.to_string(),
            names,
        }),
    }
}

/// The distinct Service names an Ingress sends to (default backend and every
/// rule path), sorted.
pub fn ingress_backend_services(ingress: &Ingress) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let Some(spec) = ingress.spec.as_ref() else {
        return names;
    };
    if let Some(svc) = spec
        .default_backend
        .as_ref()
        .and_then(|b| b.service.as_ref())
    {
        names.push(svc.name.clone());
    }
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
            if let Some(svc) = path.backend.service.as_ref() {
                names.push(svc.name.clone());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The one Service an Ingress sends to.
pub fn service_of_ingress(name: &str, ingress: &Ingress) -> Result<String, ResolveError> {
    let mut services = ingress_backend_services(ingress);
    match services.len() {
        0 => Err(ResolveError::IngressWithoutService {
            ingress: name.to_string(),
        }),
        1 => Ok(services.remove(0)),
        _ => Err(ResolveError::IngressSeveralServices {
            ingress: name.to_string(),
            services,
        }),
    }
}

/// Does a Service's (non-empty) selector match these pod labels?
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The one Service whose selector matches a Deployment's pod template labels.
pub fn service_for_pod_labels(
    namespace: &str,
    deployment: &str,
    labels: &BTreeMap<String, String>,
    services: &[Service],
) -> Result<String, ResolveError> {
    let mut matching: Vec<String> = services
        .iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_some_and(|sel| selector_matches(sel, labels))
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    matching.sort();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => {
            let mut all: Vec<String> = services
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect();
            all.sort();
            Err(ResolveError::DeploymentWithoutService {
                namespace: namespace.to_string(),
                deployment: deployment.to_string(),
                labels: labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                services: all,
            })
        }
        _ => Err(ResolveError::DeploymentSeveralServices {
            deployment: deployment.to_string(),
            services: matching,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::api::networking::v1::{
        HTTPIngressPath, HTTPIngressRuleValue, IngressBackend, IngressRule, IngressServiceBackend,
        IngressSpec,
    };
    use kube::api::ObjectMeta;

    fn parse(s: &str) -> Result<TargetSpec, TargetSyntaxError> {
        s.parse()
    }

    #[test]
    fn service_forms() {
        for s in [
            "svc/web",
            "service/web",
            "services/web",
            "web",
            "SVC/web",
            " svc/web ",
        ] {
            assert_eq!(parse(s), Ok(TargetSpec::Service("web".into())), "{s}");
        }
    }

    #[test]
    fn ingress_and_deployment_forms() {
        for s in ["ing/web", "ingress/web", "ingresses/web"] {
            assert_eq!(parse(s), Ok(TargetSpec::Ingress("web".into())), "{s}");
        }
        for s in ["deploy/web", "deployment/web", "deployments/web"] {
            assert_eq!(parse(s), Ok(TargetSpec::Deployment("web".into())), "{s}");
        }
    }

    #[test]
    fn bad_syntax_explains() {
        assert!(matches!(
            parse("pod/web"),
            Err(TargetSyntaxError::UnknownKind { .. })
        ));
        assert!(matches!(
            parse("svc/"),
            Err(TargetSyntaxError::MissingName { .. })
        ));
        assert!(matches!(
            parse("svc/a/b"),
            Err(TargetSyntaxError::InvalidName(_))
        ));
        assert!(matches!(
            parse("Web"),
            Err(TargetSyntaxError::InvalidName(_))
        ));
        assert!(matches!(
            parse("-web"),
            Err(TargetSyntaxError::InvalidName(_))
        ));
        assert_eq!(parse(""), Err(TargetSyntaxError::Empty));
        let msg = parse("pod/web").map(|_| ()).expect_err("pod").to_string();
        assert!(msg.contains("svc/NAME"), "{msg}");
    }

    #[test]
    fn display_and_ref() {
        assert_eq!(TargetSpec::Service("a".into()).to_string(), "svc/a");
        assert_eq!(
            TargetSpec::Deployment("a".into()).to_ref(),
            TargetRef {
                kind: TargetKind::Deployment,
                name: Some("a".into())
            }
        );
        assert_eq!(TargetSpec::OnlyService.to_ref().name, None);
    }

    #[test]
    fn only_service_picks_or_lists() {
        assert_eq!(only_service("dev", vec!["a".into()]), Ok("a".into()));
        let err = only_service("dev", vec!["b".into(), "a".into()]).expect_err("two");
        assert_eq!(
            err.to_string(),
            "namespace dev has 2 Services: a, b. Pass one: kubectl wsaffinity check svc/a"
        );
        assert!(matches!(
            only_service("dev", vec![]),
            Err(ResolveError::NoServices { .. })
        ));
    }

    fn backend(svc: &str) -> IngressBackend {
        IngressBackend {
            service: Some(IngressServiceBackend {
                name: svc.into(),
                port: None,
            }),
            resource: None,
        }
    }

    fn ingress(default: Option<&str>, paths: &[&str]) -> Ingress {
        Ingress {
            spec: Some(IngressSpec {
                default_backend: default.map(backend),
                rules: Some(vec![IngressRule {
                    host: Some("h".into()),
                    http: Some(HTTPIngressRuleValue {
                        paths: paths
                            .iter()
                            .map(|p| HTTPIngressPath {
                                backend: backend(p),
                                path: Some("/".into()),
                                path_type: "Prefix".into(),
                            })
                            .collect(),
                    }),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ingress_backends() {
        assert_eq!(
            service_of_ingress("i", &ingress(None, &["ws", "ws"])),
            Ok("ws".into())
        );
        assert_eq!(
            service_of_ingress("i", &ingress(Some("ws"), &["ws"])),
            Ok("ws".into())
        );
        assert!(matches!(
            service_of_ingress("i", &ingress(Some("a"), &["b"])),
            Err(ResolveError::IngressSeveralServices { .. })
        ));
        assert!(matches!(
            service_of_ingress("i", &ingress(None, &[])),
            Err(ResolveError::IngressWithoutService { .. })
        ));
    }

    fn service(name: &str, selector: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(
                    selector
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn deployment_to_service() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "ws".to_string()),
            ("tier".to_string(), "web".to_string()),
        ]
        .into();
        let services = vec![
            service("other", &[("app", "x")]),
            service("ws", &[("app", "ws")]),
            service("none", &[]),
        ];
        assert_eq!(
            service_for_pod_labels("dev", "d", &labels, &services),
            Ok("ws".into())
        );
        let err = service_for_pod_labels("dev", "d", &labels, &services[..1]).expect_err("none");
        assert!(err.to_string().contains("Services here: other"), "{err}");
        let two = vec![
            service("a", &[("app", "ws")]),
            service("b", &[("tier", "web")]),
        ];
        assert!(matches!(
            service_for_pod_labels("dev", "d", &labels, &two),
            Err(ResolveError::DeploymentSeveralServices { .. })
        ));
    }
}
