//! How API failures become messages: what was asked, what went wrong, what to do.

use thiserror::Error;

use crate::target::ResolveError;

#[derive(Debug, Error)]
pub enum GatherError {
    #[error(
        "cannot reach the Kubernetes API at {server}: {message}. Check that the cluster is up and the context is the right one (kubectl cluster-info), or pass --kubeconfig PATH / --context NAME"
    )]
    Unreachable { server: String, message: String },
    #[error(
        "the API at {server} rejected the credentials (401 Unauthorized): {message}. Log in again or pick another --context"
    )]
    Unauthorized { server: String, message: String },
    #[error(
        "forbidden: cannot {verb} {resource} in namespace {namespace}: {message}. Ask for `{verb}` on `{resource}` in {namespace} (k8s/rbac/ has a minimal Role), or check another namespace with -n"
    )]
    Forbidden {
        verb: &'static str,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error(
        "namespace {namespace} does not exist ({verb} {resource}: {message}). `kubectl get namespaces` lists them; pass one with -n NAMESPACE"
    )]
    NoNamespace {
        verb: &'static str,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error("{verb} {resource} in namespace {namespace} failed: {message} (HTTP {code})")]
    Api {
        verb: &'static str,
        resource: String,
        namespace: String,
        code: u16,
        message: String,
    },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// One API call, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub verb: &'static str,
    /// `services`, `ingresses.networking.k8s.io`, ...
    pub resource: &'a str,
    pub namespace: &'a str,
    pub server: &'a str,
}

/// A failed call: the answers a caller may treat as data, or a hard error.
#[derive(Debug)]
pub enum Failure {
    /// 404 with the API's message.
    NotFound(String),
    /// 403 with the API's message.
    Forbidden(String),
    Fatal(GatherError),
}

impl Failure {
    /// Turns every failure into a hard error (for calls where 404/403 are not data).
    pub fn fatal(self, call: Call<'_>) -> GatherError {
        match self {
            Failure::Fatal(e) => e,
            Failure::Forbidden(message) => GatherError::Forbidden {
                verb: call.verb,
                resource: call.resource.to_string(),
                namespace: call.namespace.to_string(),
                message,
            },
            Failure::NotFound(message) => GatherError::NoNamespace {
                verb: call.verb,
                resource: call.resource.to_string(),
                namespace: call.namespace.to_string(),
                message,
            },
        }
    }
}

/// Is this the API server's 403 text (`pods "x" is forbidden: User "u" cannot
/// get resource "pods/log" ...`)? For errors kept as text (pod logs, port-forward).
pub fn is_forbidden_message(message: &str) -> bool {
    message.contains(" is forbidden: ") || message.starts_with("forbidden: ")
}

/// Sorts a kube error into 404 / 403 / everything else.
pub fn classify(err: kube::Error, call: Call<'_>) -> Failure {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                404 => Failure::NotFound(message),
                403 => Failure::Forbidden(message),
                401 => Failure::Fatal(GatherError::Unauthorized {
                    server: call.server.to_string(),
                    message,
                }),
                code => Failure::Fatal(GatherError::Api {
                    verb: call.verb,
                    resource: call.resource.to_string(),
                    namespace: call.namespace.to_string(),
                    code,
                    message,
                }),
            }
        }
        other => Failure::Fatal(GatherError::Unreachable {
            server: call.server.to_string(),
            message: chain(&other),
        }),
    }
}

/// The error and its sources, without repeats: "client error (Connect): tcp connect error: Connection refused".
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        let text = text
            .strip_prefix("ServiceError: ")
            .unwrap_or(&text)
            .to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn call() -> Call<'static> {
        Call {
            verb: "list",
            resource: "pods",
            namespace: "dev",
            server: "https://127.0.0.1:6443",
        }
    }

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("nope", "Forbidden").with_code(code),
        ))
    }

    #[test]
    fn status_codes_sort() {
        assert!(matches!(classify(api(404), call()), Failure::NotFound(_)));
        assert!(matches!(classify(api(403), call()), Failure::Forbidden(m) if m == "nope"));
        assert!(matches!(
            classify(api(401), call()),
            Failure::Fatal(GatherError::Unauthorized { .. })
        ));
        assert!(matches!(
            classify(api(500), call()),
            Failure::Fatal(GatherError::Api { code: 500, .. })
        ));
    }

    #[test]
    fn forbidden_text_is_recognised() {
        assert!(is_forbidden_message(
            "pods \"web-0\" is forbidden: User \"u\" cannot get resource \"pods/log\" in API group \"\""
        ));
        assert!(!is_forbidden_message(
            "container \"x\" is not valid for pod \"web-0\""
        ));
    }

    #[test]
    fn forbidden_names_verb_and_resource() {
        let msg = Failure::Forbidden("x".into()).fatal(call()).to_string();
        assert!(msg.contains("cannot list pods in namespace dev"), "{msg}");
        assert!(msg.contains("Ask for `list` on `pods`"), "{msg}");
    }
}
