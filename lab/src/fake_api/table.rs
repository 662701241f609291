//! `as=Table` responses (what `kubectl get` asks for), with the columns the
//! API server's printers produce for the kinds the plugin deals with.

use serde_json::{Value, json};

use crate::fake_api::types::ResourceType;
use crate::query::Query;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// apimachinery's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 48 * 3600 => format!("{h}h"),
        s if s < 8 * 86400 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn age(obj: &Value) -> String {
    let created = s(obj, "/metadata/creationTimestamp");
    match created.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn pod_row(p: &Value) -> (Vec<Value>, Vec<Value>) {
    let statuses = arr(p, "/status/containerStatuses");
    let total = arr(p, "/spec/containers").len();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: u64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_u64())
        .sum();
    let mut status = s(p, "/status/phase").to_string();
    for c in statuses {
        if let Some(reason) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            status = reason.to_string();
        } else if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            status = reason.to_string();
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        status = "Terminating".into();
    }
    let cols = vec![
        col("Name", "string", 0),
        col("Ready", "string", 0),
        col("Status", "string", 0),
        col("Restarts", "string", 0),
        col("Age", "string", 0),
        col("IP", "string", 1),
        col("Node", "string", 1),
        col("Nominated Node", "string", 1),
        col("Readiness Gates", "string", 1),
    ];
    let cells = vec![
        json!(s(p, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        json!(age(p)),
        json!(or_none(s(p, "/status/podIP").into())),
        json!(or_none(s(p, "/spec/nodeName").into())),
        json!("<none>"),
        json!("<none>"),
    ];
    (cols, cells)
}

fn service_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let ports: Vec<String> = arr(v, "/spec/ports")
        .iter()
        .map(|p| {
            let mut out = p["port"].as_u64().unwrap_or(0).to_string();
            if let Some(np) = p["nodePort"].as_u64() {
                out.push_str(&format!(":{np}"));
            }
            format!("{out}/{}", p["protocol"].as_str().unwrap_or("TCP"))
        })
        .collect();
    let selector: Vec<String> = v
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let cols = vec![
        col("Name", "string", 0),
        col("Type", "string", 0),
        col("Cluster-IP", "string", 0),
        col("External-IP", "string", 0),
        col("Port(s)", "string", 0),
        col("Age", "string", 0),
        col("Selector", "string", 1),
    ];
    let cells = vec![
        json!(s(v, "/metadata/name")),
        json!(s(v, "/spec/type")),
        json!(or_none(s(v, "/spec/clusterIP").into())),
        json!("<none>"),
        json!(or_none(ports.join(","))),
        json!(age(v)),
        json!(or_none(selector.join(","))),
    ];
    (cols, cells)
}

fn endpointslice_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let ports: Vec<String> = arr(v, "/ports")
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .map(|p| p.to_string())
        .collect();
    let mut all: Vec<String> = arr(v, "/endpoints")
        .iter()
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let more = all.len().saturating_sub(3);
    all.truncate(3);
    let mut endpoints = all.join(",");
    if more > 0 {
        endpoints.push_str(&format!(" + {more} more..."));
    }
    let cols = vec![
        col("Name", "string", 0),
        col("AddressType", "string", 0),
        col("Ports", "string", 0),
        col("Endpoints", "string", 0),
        col("Age", "string", 0),
    ];
    let cells = vec![
        json!(s(v, "/metadata/name")),
        json!(s(v, "/addressType")),
        json!(if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        }),
        json!(if endpoints.is_empty() {
            "<unset>".to_string()
        } else {
            endpoints
        }),
        json!(age(v)),
    ];
    (cols, cells)
}

fn endpoints_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut all: Vec<String> = Vec::new();
    for subset in arr(v, "/subsets") {
        for a in subset["addresses"].as_array().into_iter().flatten() {
            for p in subset["ports"].as_array().into_iter().flatten() {
                all.push(format!(
                    "{}:{}",
                    a["ip"].as_str().unwrap_or(""),
                    p["port"].as_u64().unwrap_or(0)
                ));
            }
        }
    }
    let more = all.len().saturating_sub(3);
    all.truncate(3);
    let mut text = all.join(",");
    if more > 0 {
        text.push_str(&format!(" + {more} more..."));
    }
    let cols = vec![
        col("Name", "string", 0),
        col("Endpoints", "string", 0),
        col("Age", "string", 0),
    ];
    let cells = vec![
        json!(s(v, "/metadata/name")),
        json!(or_none(text)),
        json!(age(v)),
    ];
    (cols, cells)
}

fn ingress_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let hosts: Vec<&str> = arr(v, "/spec/rules")
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect();
    let tls = !arr(v, "/spec/tls").is_empty();
    let cols = vec![
        col("Name", "string", 0),
        col("Class", "string", 0),
        col("Hosts", "string", 0),
        col("Address", "string", 0),
        col("Ports", "string", 0),
        col("Age", "string", 0),
    ];
    let cells = vec![
        json!(s(v, "/metadata/name")),
        json!(or_none(s(v, "/spec/ingressClassName").into())),
        json!(if hosts.is_empty() {
            "*".to_string()
        } else {
            hosts.join(",")
        }),
        json!(""),
        json!(if tls { "80, 443" } else { "80" }),
        json!(age(v)),
    ];
    (cols, cells)
}

fn deployment_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let cols = vec![
        col("Name", "string", 0),
        col("Ready", "string", 0),
        col("Up-to-date", "integer", 0),
        col("Available", "integer", 0),
        col("Age", "string", 0),
    ];
    let cells = vec![
        json!(s(v, "/metadata/name")),
        json!(format!(
            "{}/{}",
            n("/status/readyReplicas"),
            n("/spec/replicas")
        )),
        json!(n("/status/updatedReplicas")),
        json!(n("/status/availableReplicas")),
        json!(age(v)),
    ];
    (cols, cells)
}

fn default_row(v: &Value) -> (Vec<Value>, Vec<Value>) {
    (
        vec![col("Name", "string", 0), col("Age", "string", 0)],
        vec![json!(s(v, "/metadata/name")), json!(age(v))],
    )
}

pub fn to_table(t: &ResourceType, objects: &[&Value], resource_version: &str, q: &Query) -> Value {
    let row_of: fn(&Value) -> (Vec<Value>, Vec<Value>) = match (t.group.as_str(), t.plural.as_str())
    {
        ("", "pods") => pod_row,
        ("", "services") => service_row,
        ("", "endpoints") => endpoints_row,
        ("discovery.k8s.io", "endpointslices") => endpointslice_row,
        ("networking.k8s.io", "ingresses") => ingress_row,
        ("apps", "deployments") => deployment_row,
        _ => default_row,
    };
    let columns = row_of(&json!({})).0;
    let include = q.get("includeObject").unwrap_or("Metadata");
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include {
                "None" => Value::Null,
                "Object" => (*o).clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"]}),
            };
            json!({"cells": row_of(o).1, "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns, "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(300), "5m0s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(5 * 3600), "5h0m");
        assert_eq!(human_duration(10 * 86400), "10d");
    }
}
