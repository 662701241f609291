//! Discovery documents: /version, /api, /api/v1, /apis, /apis/{group}[/{version}].
//! Plain (unaggregated) discovery; clients that ask for the aggregated form fall
//! back to it when the response's content type says so.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::store::Store;
use crate::types::{RESOURCE_VERBS, ResourceType};

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-wsaffinity-lab",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

/// Groups (other than core) and their versions, in first-seen order.
fn groups(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in store
        .types()
        .iter()
        .filter(|t| !t.group.is_empty() && store.group_has_content(t))
    {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone())
            }
            Some(_) => {}
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn group_list(store: &Store) -> Value {
    let groups: Vec<Value> = groups(store)
        .iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(store: &Store, name: &str) -> Option<Value> {
    let (g, v) = groups(store).into_iter().find(|(g, _)| g == name)?;
    let mut doc = group_json(&g, &v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
        "kind": t.kind, "verbs": RESOURCE_VERBS,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut out = vec![main];
    for s in &t.subresources {
        let kind = if s.kind.is_empty() {
            t.kind.as_str()
        } else {
            s.kind
        };
        out.push(json!({
            "name": format!("{}/{}", t.plural, s.name), "singularName": "",
            "namespaced": t.namespaced, "kind": kind, "verbs": s.verbs,
        }));
    }
    out
}

/// The APIResourceList of one group version; None when the lab doesn't serve it.
pub fn resource_list(store: &Store, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = store
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version && store.group_has_content(t))
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut by_name: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for t in types {
        by_name.insert(t.plural.clone(), resource_entries(t));
    }
    let resources: Vec<Value> = by_name.into_values().flatten().collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_groups_only_when_present() {
        let mut s = Store::new("t".into());
        assert!(resource_list(&s, "gateway.networking.k8s.io", "v1").is_none());
        s.put(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "x"}}),
        )
        .unwrap();
        let gl = group_list(&s);
        assert!(
            gl["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "gateway.networking.k8s.io")
        );
        let core = resource_list(&s, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(
            names.contains(&"pods/log")
                && names.contains(&"pods/portforward")
                && names.contains(&"services")
        );
    }
}
