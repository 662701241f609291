//! `test-service` output: the manifest (YAML after a comment block that says
//! what the test Service changes), the object as JSON, and the messages after
//! `--apply` and `--delete`.

use std::io::{self, Write};

use k8s_openapi::api::core::v1::Service;

/// The comment block above the manifest.
fn comment(svc: &Service, source: &str) -> String {
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    format!(
        "\
# Test Service written by `kubectl wsaffinity test-service`: a copy of svc/{source}
# (the same selector and ports) without session affinity, to compare against.
# What it changes, for connections that go through it:
# - New connections are balanced one by one across the ready pods (kube-proxy
#   picks a pod per connection; no client is pinned to a pod).
# - Open WebSockets stay on their pod: a WebSocket is one TCP connection and
#   nothing moves it once it is open.
# - Reconnects (and a second tab) may land on another pod. That matters only
#   if the application keeps per-pod session state.
# svc/{source} itself is not changed. The copy is a ClusterIP Service:
# reach it from inside the cluster, or point an Ingress at it.
# Create: kubectl wsaffinity test-service svc/{source} -n {ns} --apply   (or kubectl apply -f)
# Use:    kubectl wsaffinity per-pod svc/{name} -n {ns}
# Remove: kubectl wsaffinity test-service svc/{source} -n {ns} --delete
"
    )
}

/// The manifest as YAML with the comment block (default output, no write).
pub fn manifest(out: &mut dyn Write, svc: &Service, source: &str) -> io::Result<()> {
    out.write_all(comment(svc, source).as_bytes())?;
    yaml(out, svc)
}

/// The object as YAML.
pub fn yaml(out: &mut dyn Write, svc: &Service) -> io::Result<()> {
    let text = serde_saphyr::to_string(svc).map_err(io::Error::other)?;
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// The object as JSON.
pub fn json(out: &mut dyn Write, svc: &Service) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, svc).map_err(io::Error::other)?;
    writeln!(out)
}

/// After `--apply`: what was made and how to use it.
pub fn applied(out: &mut dyn Write, svc: &Service, source: &str) -> io::Result<()> {
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let spec = svc.spec.clone().unwrap_or_default();
    let selector = spec
        .selector
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let ports = spec.ports.unwrap_or_default();
    let port_text = ports
        .iter()
        .map(|p| {
            let target = p
                .target_port
                .as_ref()
                .map(|t| match t {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => {
                        i.to_string()
                    }
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                        s.clone()
                    }
                })
                .unwrap_or_else(|| p.port.to_string());
            format!("{}->{target}", p.port)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let first_port = ports.first().map_or(80, |p| p.port);
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("(pending)");
    writeln!(
        out,
        "service/{name} created in namespace {ns}: a copy of svc/{source} (selector {selector}, ports {port_text}) with sessionAffinity: None, ClusterIP {cluster_ip}."
    )?;
    writeln!(
        out,
        "New connections through it are balanced one by one; open WebSockets stay on their pod."
    )?;
    writeln!(out)?;
    writeln!(out, "Use it:")?;
    writeln!(out, "  kubectl wsaffinity per-pod svc/{name} -n {ns}")?;
    writeln!(
        out,
        "  kubectl wsaffinity spread svc/{name} -n {ns} --url ws://{name}.{ns}.svc:{first_port}/   (from inside the cluster; from outside, point an Ingress at svc/{name})"
    )?;
    writeln!(out, "  kubectl wsaffinity check svc/{name} -n {ns}")?;
    writeln!(out, "Remove it:")?;
    writeln!(
        out,
        "  kubectl wsaffinity test-service svc/{source} -n {ns} --delete"
    )
}

/// After `--delete`.
pub fn deleted(out: &mut dyn Write, name: &str, ns: &str, deleted: bool) -> io::Result<()> {
    if deleted {
        writeln!(out, "service/{name} deleted from namespace {ns}.")
    } else {
        writeln!(
            out,
            "service/{name} does not exist in namespace {ns}: nothing to delete."
        )
    }
}
