//! The object store: every object the lab serves, by type, namespace and name,
//! with a cluster-wide resourceVersion counter like etcd's revision.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::fake_api::types::{self, ResourceType};
use crate::names;

pub struct Store {
    types: Vec<ResourceType>,
    /// (group, plural) → (namespace, name) → object. Namespace is "" for cluster-scoped.
    objects: BTreeMap<(String, String), BTreeMap<(String, String), Value>>,
    revision: u64,
    created: String,
}

impl Store {
    pub fn new(created: String) -> Self {
        Self {
            types: types::builtin_types(),
            objects: BTreeMap::new(),
            revision: 1000,
            created,
        }
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// Custom types exist only once the scenario has their CRD or an object of
    /// them, so a custom group shows in discovery only then (else 404, as on a cluster).
    pub fn add_type(&mut self, t: ResourceType) {
        let exists = self
            .types
            .iter()
            .any(|x| x.group == t.group && x.version == t.version && x.plural == t.plural);
        if !exists {
            self.types.push(t);
        }
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn type_for_object(&self, obj: &Value) -> Option<&ResourceType> {
        let (group, version) = types::split_api_version(obj["apiVersion"].as_str()?);
        let kind = obj["kind"].as_str()?;
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    pub fn resource_version(&self) -> String {
        self.revision.to_string()
    }

    /// Insert or replace an object, filling the metadata the API server would set.
    pub fn put(&mut self, mut obj: Value) -> anyhow::Result<()> {
        if self.type_for_object(&obj).is_none()
            && let Some(t) = types::type_from_object(&obj)
        {
            self.add_type(t);
        }
        let t = self
            .type_for_object(&obj)
            .ok_or_else(|| anyhow::anyhow!("object without apiVersion/kind: {obj}"))?
            .clone();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("{} without metadata.name", t.kind))?
            .to_string();
        let namespace = if t.namespaced {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        self.revision += 1;
        let revision = self.revision.to_string();
        let meta = obj
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata").or_insert_with(|| json!({}));
                o.get_mut("metadata")
            })
            .and_then(Value::as_object_mut)
            .ok_or_else(|| anyhow::anyhow!("{} {name}: metadata is not a map", t.kind))?;
        if t.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.entry("uid")
            .or_insert_with(|| json!(names::uid(&[&t.qualified(), &namespace, &name])));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(self.created));
        meta.entry("generation").or_insert_with(|| json!(1));
        meta.insert("resourceVersion".into(), json!(revision));
        self.objects
            .entry((t.group.clone(), t.plural.clone()))
            .or_default()
            .insert((namespace, name), obj);
        Ok(())
    }

    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of a type, in one namespace or (None) across all, ordered by namespace and name.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn remove_where(
        &mut self,
        group: &str,
        plural: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) {
        if let Some(m) = self
            .objects
            .get_mut(&(group.to_string(), plural.to_string()))
        {
            m.retain(|_, v| !pred(v));
            self.revision += 1;
        }
    }

    /// Apply `f` to one object and bump its resourceVersion.
    pub fn update(
        &mut self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let Some(obj) = self
            .objects
            .get_mut(&(group.to_string(), plural.to_string()))
            .and_then(|m| m.get_mut(&(namespace.to_string(), name.to_string())))
        else {
            return false;
        };
        f(obj);
        self.revision += 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_fills_metadata_and_lists_in_order() {
        let mut s = Store::new("2026-01-01T00:00:00Z".into());
        for name in ["b", "a"] {
            s.put(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "x"}}))
                .unwrap();
        }
        let names: Vec<_> = s
            .list("", "services", Some("x"))
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let a = s.get("", "services", "x", "a").unwrap();
        assert!(a["metadata"]["uid"].is_string());
        assert!(a["metadata"]["resourceVersion"].is_string());
        assert!(s.list("", "services", Some("other")).is_empty());
    }

    #[test]
    fn unknown_kinds_get_a_derived_type() {
        let mut s = Store::new("2026-01-01T00:00:00Z".into());
        s.put(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "x"}}),
        )
        .unwrap();
        let t = s
            .find_type("gateway.networking.k8s.io", "v1", "httproutes")
            .unwrap();
        assert!(t.namespaced && !t.builtin);
    }
}
