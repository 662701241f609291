//! Discovery documents: /version, /api, /api/v1, /apis, /apis/{group}[/{version}],
//! plain, and aggregated (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList) for
//! /api and /apis when the client's Accept asks for it, as kubectl and
//! kube-rs's `Discovery::run_aggregated` do.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::fake_api::store::Store;
use crate::fake_api::types::{RESOURCE_VERBS, ResourceType};

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
    for t in store.types().iter().filter(|t| !t.group.is_empty()) {
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
        .filter(|t| t.group == group && t.version == version)
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

/// Which aggregated discovery version the Accept header asks for first, if any
/// (the first acceptable media type wins, as in the API server's negotiation).
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
            continue;
        }
        if matches!(params.first(), Some(&"application/json" | &"*/*")) {
            return None;
        }
    }
    None
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let subresources: Vec<Value> = t
        .subresources
        .iter()
        .map(|s| {
            let kind = gvk(
                &t.group,
                &t.version,
                if s.kind.is_empty() { &t.kind } else { s.kind },
            );
            let kind = if s.kind == "Scale" {
                gvk("autoscaling", "v1", "Scale")
            } else {
                kind
            };
            json!({"subresource": s.name, "responseKind": kind, "verbs": s.verbs})
        })
        .collect();
    let mut r = json!({
        "resource": t.plural,
        "responseKind": gvk(&t.group, &t.version, &t.kind),
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": RESOURCE_VERBS,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !subresources.is_empty() {
        r["subresources"] = json!(subresources);
    }
    r
}

/// APIGroupDiscoveryList for the core group (`core == true`, /api) or the named groups (/apis).
pub fn aggregated(store: &Store, core: bool, api_version: &str) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        groups(store)
    };
    let items: Vec<Value> = groups
        .drain(..)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let mut types: Vec<&ResourceType> = store
                        .types()
                        .iter()
                        .filter(|t| t.group == group && &t.version == v)
                        .collect();
                    types.sort_by(|a, b| a.plural.cmp(&b.plural));
                    let resources: Vec<Value> =
                        types.into_iter().map(aggregated_resource).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !group.is_empty() {
                meta["name"] = json!(group);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{api_version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        assert_eq!(aggregated_version("application/json"), None);
        assert_eq!(aggregated_version(""), None);
    }

    #[test]
    fn aggregated_lists_pods_with_subresources() {
        let s = Store::new("t".into());
        let core = aggregated(&s, true, "v2");
        let res = &core["items"][0]["versions"][0]["resources"];
        let pods = res
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        let subs: Vec<&str> = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["subresource"].as_str())
            .collect();
        assert!(subs.contains(&"log") && subs.contains(&"portforward"));
        let apis = aggregated(&s, false, "v2");
        assert!(
            apis["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["metadata"]["name"] == "apps")
        );
    }

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
