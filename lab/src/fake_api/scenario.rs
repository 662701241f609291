//! Loading a scenario: multi-document YAML of raw Kubernetes objects, plus an
//! optional `lab.wsaffinity.dev/v1 LabConfig` document with the lab's knobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// What the lab loads at start.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// The project's `k8s/overlays/dev`, rendered with `kubectl kustomize`
    /// (falls back to `lab/scenarios/dev.yaml` when kubectl or the overlay is missing).
    DevOverlay,
    File(PathBuf),
    Yaml(String),
}

pub const LAB_API_VERSION: &str = "lab.wsaffinity.dev/v1";

/// The lab-only document of a scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabConfig {
    /// The kubeconfig context's default namespace.
    pub namespace: Option<String>,
    /// Resources answered with 403 (e.g. `ingresses`, `httproutes.gateway.networking.k8s.io`).
    pub forbidden: Vec<String>,
    pub latency_ms: u64,
    /// Close port-forwards after this long without a frame from the client (kubelet: 4 h).
    pub port_forward_idle_timeout_ms: Option<u64>,
    /// Extra bearer tokens and what each may do (`"list pods"`, `"get pods/log"`, `"*"`).
    pub tokens: BTreeMap<String, Vec<String>>,
    /// Pod name (or `DEPLOYMENT[i]`, its i-th pod) → error text sent on the port-forward error channel.
    pub port_forward_errors: BTreeMap<String, String>,
}

pub struct Loaded {
    pub objects: Vec<Value>,
    pub config: LabConfig,
    /// Where the objects came from, for messages.
    pub source: String,
}

/// The workspace root, found from this crate's manifest dir at build time.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The bundled copy of the dev overlay, used when the real overlay can't be rendered.
pub const DEV_FALLBACK: &str = include_str!("../../scenarios/dev.yaml");

pub fn load(scenario: &Scenario) -> anyhow::Result<Loaded> {
    let (text, source) = match scenario {
        Scenario::DevOverlay => render_dev_overlay(),
        Scenario::File(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario {}", path.display()))?,
            path.display().to_string(),
        ),
        Scenario::Yaml(text) => (text.clone(), "inline YAML".to_string()),
    };
    parse(&text)
        .with_context(|| format!("loading scenario from {source}"))
        .map(|(objects, config)| Loaded {
            objects,
            config,
            source,
        })
}

/// `kubectl kustomize k8s/overlays/dev`, else the bundled copy. Rendered once per
/// process: tests start many labs and kustomize takes a noticeable moment.
fn render_dev_overlay() -> (String, String) {
    static RENDERED: std::sync::Mutex<Option<(PathBuf, (String, String))>> =
        std::sync::Mutex::new(None);
    let overlay = std::env::var_os("WSAFFINITY_K8S_OVERLAY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("k8s/overlays/dev"));
    let mut cache = RENDERED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, rendered)) = cache.as_ref()
        && *path == overlay
    {
        return rendered.clone();
    }
    let rendered = render_overlay(&overlay);
    *cache = Some((overlay, rendered.clone()));
    rendered
}

fn render_overlay(overlay: &Path) -> (String, String) {
    if overlay.join("kustomization.yaml").is_file() || overlay.join("kustomization.yml").is_file() {
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(overlay)
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                return (
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    format!("kubectl kustomize {}", overlay.display()),
                );
            }
            Ok(out) => tracing::warn!(
                "kubectl kustomize {} failed: {}; using the bundled dev scenario",
                overlay.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => tracing::warn!("cannot run kubectl ({e}); using the bundled dev scenario"),
        }
    }
    (
        DEV_FALLBACK.to_string(),
        "lab/scenarios/dev.yaml (bundled)".to_string(),
    )
}

/// Split a YAML stream into Kubernetes objects and the optional LabConfig.
pub fn parse(text: &str) -> anyhow::Result<(Vec<Value>, LabConfig)> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| anyhow::anyhow!("invalid YAML: {e}"))?;
    let mut objects = Vec::new();
    let mut config = LabConfig::default();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        // A `kind: List` (as `kubectl get -o yaml` prints) holds its objects in items.
        if doc["kind"] == "List" {
            objects.extend(doc["items"].as_array().cloned().unwrap_or_default());
            continue;
        }
        if doc["apiVersion"] == LAB_API_VERSION {
            if doc["kind"] != "LabConfig" {
                bail!("unknown lab document kind {}", doc["kind"]);
            }
            let mut body = doc.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("apiVersion");
                o.remove("kind");
                o.remove("metadata");
            }
            config = serde_json::from_value(body).context("invalid LabConfig")?;
            continue;
        }
        if !doc["apiVersion"].is_string() || !doc["kind"].is_string() {
            bail!("a document without apiVersion/kind: {doc}");
        }
        objects.push(doc);
    }
    Ok((objects, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_lab_config() {
        let (objs, cfg) = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
             apiVersion: lab.wsaffinity.dev/v1\nkind: LabConfig\nnamespace: a\nlatencyMs: 5\n\
             forbidden: [ingresses]\nportForwardErrors: {p: boom}\n---\n",
        )
        .unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(cfg.namespace.as_deref(), Some("a"));
        assert_eq!(cfg.latency_ms, 5);
        assert_eq!(cfg.forbidden, ["ingresses"]);
        assert_eq!(cfg.port_forward_errors["p"], "boom");
    }

    #[test]
    fn bundled_dev_scenario_parses() {
        let (objs, _) = parse(DEV_FALLBACK).unwrap();
        assert!(objs.iter().any(|o| o["kind"] == "Deployment"));
    }
}
