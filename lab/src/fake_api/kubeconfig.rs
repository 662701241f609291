//! The kubeconfig the lab writes: one cluster, one token user, one context.

use base64::Engine;

pub const CONTEXT: &str = "wsaffinity-lab";

/// YAML text of a kubeconfig; `ca_pem` switches on certificate verification data.
pub fn render(server: &str, token: &str, namespace: &str, ca_pem: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            format!("    certificate-authority-data: {data}\n")
        })
        .unwrap_or_default();
    format!(
        "# Written by wsaffinity-lab, a local TEST DOUBLE of the Kubernetes API (not a cluster).\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {CONTEXT}\n  cluster:\n    server: {server}\n{ca}\
         users:\n\
         - name: {CONTEXT}\n  user:\n    token: {token}\n\
         contexts:\n\
         - name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: {namespace}\n\
         current-context: {CONTEXT}\n\
         preferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_parseable_yaml() {
        let text = render("http://127.0.0.1:1", "tok", "ns", Some("PEM"));
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1");
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "ns");
        assert!(v["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    }
}
