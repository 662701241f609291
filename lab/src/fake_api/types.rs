//! The resource types the lab serves: a table of built-in kinds plus any custom
//! kind found in the scenario (from its CRD, or derived from its objects).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
    pub builtin: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` for the core group, `plural.group` otherwise (as in Status messages).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The verbs a real API server lists for ordinary resources; the lab only serves reads,
/// but advertising the real set keeps kubectl's discovery checks happy.
pub const RESOURCE_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    verbs: &["get", "patch", "update"],
};

/// (group, version, kind, plural, namespaced, short names, categories)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

const BUILTIN: &[Row] = &[
    ("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[]),
    ("", "v1", "Endpoints", "endpoints", true, &["ep"], &[]),
    ("", "v1", "Event", "events", true, &["ev"], &[]),
    ("", "v1", "Namespace", "namespaces", false, &["ns"], &[]),
    ("", "v1", "Node", "nodes", false, &["no"], &[]),
    ("", "v1", "Pod", "pods", true, &["po"], &["all"]),
    ("", "v1", "Secret", "secrets", true, &[], &[]),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
    ),
    ("", "v1", "Service", "services", true, &["svc"], &["all"]),
    (
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["all"],
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        &["all"],
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        &["all"],
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["all"],
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        &["all"],
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        &[],
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &[],
    ),
];

fn subresources_for(kind: &str) -> Vec<Subresource> {
    match kind {
        "Pod" => vec![
            Subresource {
                name: "log",
                kind: "Pod",
                verbs: &["get"],
            },
            Subresource {
                name: "portforward",
                kind: "PodPortForwardOptions",
                verbs: &["create", "get"],
            },
            STATUS,
        ],
        "Deployment" | "ReplicaSet" | "StatefulSet" => vec![
            Subresource {
                name: "scale",
                kind: "Scale",
                verbs: &["get", "patch", "update"],
            },
            STATUS,
        ],
        "Service"
        | "Ingress"
        | "Namespace"
        | "Node"
        | "DaemonSet"
        | "HorizontalPodAutoscaler"
        | "PodDisruptionBudget"
        | "CustomResourceDefinition" => vec![STATUS],
        _ => Vec::new(),
    }
}

pub fn builtin_types() -> Vec<ResourceType> {
    BUILTIN
        .iter()
        .map(
            |&(group, version, kind, plural, namespaced, short, cats)| ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                singular: kind.to_lowercase(),
                namespaced,
                short_names: short.iter().map(|s| s.to_string()).collect(),
                categories: cats.iter().map(|s| s.to_string()).collect(),
                subresources: subresources_for(kind),
                builtin: true,
            },
        )
        .collect()
}

/// The plural the API would most likely use for a kind without a CRD (gengo's rules).
pub fn guess_plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s')
        || lower.ends_with("x")
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// Split `group/version` (or `version` for the core group).
pub fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

/// The types a CRD object declares (one per served version).
pub fn types_from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let (Some(group), Some(kind), Some(plural)) = (
        spec["group"].as_str(),
        names["kind"].as_str(),
        names["plural"].as_str(),
    ) else {
        return Vec::new();
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| v["name"].as_str())
        .map(|version| ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            subresources: Vec::new(),
            builtin: false,
        })
        .collect()
}

/// A type for a custom object that came without a CRD.
pub fn type_from_object(obj: &Value) -> Option<ResourceType> {
    let (group, version) = split_api_version(obj["apiVersion"].as_str()?);
    let kind = obj["kind"].as_str()?;
    Some(ResourceType {
        group,
        version,
        kind: kind.to_string(),
        plural: guess_plural(kind),
        singular: kind.to_lowercase(),
        namespaced: obj.pointer("/metadata/namespace").is_some(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
        builtin: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(guess_plural("HTTPRoute"), "httproutes");
        assert_eq!(guess_plural("HTTPProxy"), "httpproxies");
        assert_eq!(guess_plural("Gateway"), "gateways");
        assert_eq!(guess_plural("Ingress"), "ingresses");
        assert_eq!(guess_plural("BackendConfig"), "backendconfigs");
    }

    #[test]
    fn pods_have_log_and_portforward() {
        let pods = builtin_types()
            .into_iter()
            .find(|t| t.plural == "pods")
            .unwrap();
        let names: Vec<_> = pods.subresources.iter().map(|s| s.name).collect();
        assert!(names.contains(&"log") && names.contains(&"portforward"));
    }
}
