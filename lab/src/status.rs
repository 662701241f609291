//! `metav1.Status` error bodies, shaped as the API server sends them.

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
            details: None,
        }
    }

    /// `pods "x" not found` (with group: `ingresses.networking.k8s.io "x" not found`).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let qualified = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        let mut e = Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"));
        let mut details = json!({"name": name, "kind": plural});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        e.details = Some(details);
        e
    }

    /// Unknown path or resource, as the API server's not-found handler answers.
    pub fn no_such_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )
    }

    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        name: &str,
        ns: Option<&str>,
    ) -> Self {
        let (plural, sub, qualified) = qualified_resource(group, resource);
        let subject = match (name.is_empty(), sub) {
            (true, _) => qualified.clone(),
            (false, _) => format!("{qualified} \"{name}\""),
        };
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let mut e = Self::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
            ),
        );
        let mut details = json!({"kind": plural});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        e.details = Some(details);
        e
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into())
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource (the wsaffinity lab is read-only)"
                .into(),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// `resource` (`"plural"` or `"plural/subresource"`) split, with the plural
/// qualified by `group` (`"plural.group"`; the core group adds nothing).
pub(crate) fn qualified_resource<'r>(
    group: &str,
    resource: &'r str,
) -> (&'r str, Option<&'r str>, String) {
    let (plural, sub) = match resource.split_once('/') {
        Some((p, s)) => (p, Some(s)),
        None => (resource, None),
    };
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    (plural, sub, qualified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let nf = ApiError::not_found("", "pods", "x").to_json();
        assert_eq!(nf["message"], "pods \"x\" not found");
        assert_eq!(
            (nf["code"].as_u64(), nf["reason"].as_str()),
            (Some(404), Some("NotFound"))
        );
        let fb = ApiError::forbidden(
            "u",
            "list",
            "networking.k8s.io",
            "ingresses",
            "",
            Some("ns"),
        )
        .to_json();
        assert_eq!(
            fb["message"],
            "ingresses.networking.k8s.io is forbidden: User \"u\" cannot list resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace \"ns\""
        );
    }
}
