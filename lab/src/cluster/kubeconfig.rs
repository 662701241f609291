//! Kubeconfigs for the real cluster: client certificates, the cluster CA, one context.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;

use super::pki::Pair;

pub const CONTEXT: &str = "wsaffinity-cluster";

/// Write a kubeconfig with the certificate and key embedded (so the file can
/// be copied on its own), pointing at `server`.
pub fn write(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    pair: &Pair,
    namespace: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ns = namespace
        .map(|n| format!("    namespace: {n}\n"))
        .unwrap_or_default();
    let text = format!(
        "# Written by wsaffinity-lab cluster: a real kube-apiserver on this machine.\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {CONTEXT}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n\
         - name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n\
         contexts:\n\
         - name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {user}\n{ns}\
         current-context: {CONTEXT}\n\
         preferences: {{}}\n",
        ca = b64(ca_pem),
        cert = b64(&pair.cert_pem),
        key = b64(&pair.key_pem),
    );
    super::pki::write_private(path, &text)?;
    Ok(path.to_path_buf())
}

/// The `server:` of a kubeconfig file's current context (for `cluster kubeconfig`).
pub fn server_of(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("parsing {} as a kubeconfig", path.display()))?;
    v.pointer("/clusters/0/cluster/server")
        .and_then(|s| s.as_str())
        .map(String::from)
        .with_context(|| format!("{} names no cluster server", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_kubeconfig_parses_and_names_its_server() {
        let dir = tempfile::tempdir().unwrap();
        let pair = Pair {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        let p = write(
            &dir.path().join("kc"),
            "https://127.0.0.1:1234",
            "CA",
            "alice",
            &pair,
            Some("ns1"),
        )
        .unwrap();
        assert_eq!(server_of(&p).unwrap(), "https://127.0.0.1:1234");
        let v: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["contexts"][0]["context"]["namespace"], "ns1");
        assert_eq!(v["users"][0]["name"], "alice");
    }
}
