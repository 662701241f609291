//! Without `--url`: the URL a browser would use, from the Ingress rules that
//! send traffic to the target Service (`ws://HOST/PATH`, `wss://` when the
//! Ingress has TLS for that host). Pure: reads a [`Snapshot`].

use k8s_openapi::api::networking::v1::Ingress;

use super::parse::{ResolveEntry, WsUrl};
use crate::snapshot::Snapshot;

/// A derived URL carries the scheme's port (80/443), but the Ingress often
/// answers elsewhere (a port-forward, a kind or lab port). When `--resolve`
/// names the URL's host only with one other port, that is where the user
/// says the Ingress is: the URL takes that port. Returns the port replaced.
pub fn port_from_resolve(url: &mut WsUrl, resolve: &[ResolveEntry]) -> Option<u16> {
    if resolve.iter().any(|r| r.matches(&url.host, url.port)) {
        return None;
    }
    let mut ports: Vec<u16> = resolve
        .iter()
        .filter(|r| r.host.eq_ignore_ascii_case(&url.host))
        .map(|r| r.port)
        .collect();
    ports.dedup();
    match ports.as_slice() {
        [port] => Some(std::mem::replace(&mut url.port, *port)),
        _ => None,
    }
}

/// The derived URL and the Ingress it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerivedUrl {
    pub url: WsUrl,
    pub ingress: String,
    /// Other host/path pairs that also reach the Service (not tested).
    pub alternatives: Vec<String>,
}

/// Picks the first Ingress rule (Ingresses by name, rules in order) with a
/// concrete host whose backend is the Service. The error says what to pass.
pub fn url_from_ingresses(snapshot: &Snapshot) -> Result<DerivedUrl, String> {
    let service = snapshot
        .service
        .as_ref()
        .and_then(|s| s.metadata.name.clone())
        .ok_or_else(|| {
            format!(
                "`{}` was not found, so no Ingress URL can be derived; pass --url ws://HOST/PATH",
                snapshot.requested
            )
        })?;
    let mut ingresses: Vec<&Ingress> = snapshot.ingresses.iter().collect();
    ingresses.sort_by_key(|i| i.metadata.name.clone().unwrap_or_default());
    let mut found: Vec<(WsUrl, String)> = Vec::new();
    let mut hostless: Vec<String> = Vec::new();
    for ing in ingresses {
        let name = ing.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &ing.spec else { continue };
        let tls_hosts: Vec<&str> = spec
            .tls
            .iter()
            .flatten()
            .flat_map(|t| t.hosts.iter().flatten())
            .map(String::as_str)
            .collect();
        if spec
            .default_backend
            .as_ref()
            .and_then(|b| b.service.as_ref())
            .is_some_and(|s| s.name == service)
        {
            hostless.push(name.clone());
        }
        for rule in spec.rules.iter().flatten() {
            let Some(http) = &rule.http else { continue };
            for p in &http.paths {
                let to_us = p
                    .backend
                    .service
                    .as_ref()
                    .is_some_and(|s| s.name == service);
                if !to_us {
                    continue;
                }
                let host = rule.host.as_deref().unwrap_or("").trim();
                if host.is_empty() || host.contains('*') {
                    hostless.push(name.clone());
                    continue;
                }
                let path = literal_path(p.path.as_deref().unwrap_or("/"));
                let tls = tls_hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
                let scheme = if tls { "wss" } else { "ws" };
                if let Ok(url) = WsUrl::parse(&format!("{scheme}://{host}{path}")) {
                    found.push((url, name.clone()));
                }
            }
        }
    }
    let mut found = found.into_iter();
    match found.next() {
        Some((url, ingress)) => Ok(DerivedUrl {
            url,
            ingress,
            alternatives: found.map(|(u, i)| format!("{u} (ingress/{i})")).collect(),
        }),
        None if !hostless.is_empty() => Err(format!(
            "ingress/{} sends to service/{service} but names no host; pass --url ws://HOST/PATH (with --resolve HOST:PORT:ADDR to reach the controller)",
            hostless[0]
        )),
        None => Err(format!(
            "no Ingress in namespace {} sends to service/{service}; pass --url ws://HOST/PATH",
            snapshot.namespace
        )),
    }
}

/// The literal prefix of an Ingress path: regex paths such as
/// `/ws(/|$)(.*)` (ingress-nginx `use-regex`) are cut at the first
/// special character.
fn literal_path(path: &str) -> String {
    let cut = path
        .find(|c: char| "()[]{}*+?$^|\\".contains(c))
        .unwrap_or(path.len());
    let p = &path[..cut];
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    fn snapshot(ingresses: serde_json::Value) -> Snapshot {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "dev-websocket-server", "namespace": "dev"}
        }))
        .unwrap();
        Snapshot {
            namespace: "dev".into(),
            requested: "svc/dev-websocket-server".into(),
            service: Some(service),
            ingresses: serde_json::from_value(ingresses).unwrap(),
            ..Snapshot::default()
        }
    }

    fn ingress(
        name: &str,
        host: Option<&str>,
        path: &str,
        svc: &str,
        tls: bool,
    ) -> serde_json::Value {
        let mut rule = json!({"http": {"paths": [{
            "path": path, "pathType": "Prefix",
            "backend": {"service": {"name": svc, "port": {"number": 8080}}}
        }]}});
        if let Some(h) = host {
            rule["host"] = json!(h);
        }
        let mut spec = json!({"rules": [rule]});
        if tls {
            spec["tls"] = json!([{"hosts": [host.unwrap_or("")], "secretName": "x"}]);
        }
        json!({"metadata": {"name": name, "namespace": "dev"}, "spec": spec})
    }

    #[test]
    fn resolve_with_one_other_port_moves_a_derived_url_there() {
        let entry = |host: &str, port| ResolveEntry {
            host: host.into(),
            port,
            addrs: vec!["127.0.0.1".parse().expect("an address")],
        };
        let mut url = WsUrl::parse("ws://ws.example.com/chat").expect("a URL");
        assert_eq!(
            port_from_resolve(&mut url, &[entry("ws.example.com", 41365)]),
            Some(80)
        );
        assert_eq!(url.to_string(), "ws://ws.example.com:41365/chat");
        // Already matching, another host, or two candidate ports: unchanged.
        let mut url = WsUrl::parse("ws://ws.example.com/").expect("a URL");
        assert_eq!(
            port_from_resolve(&mut url, &[entry("ws.example.com", 80)]),
            None
        );
        assert_eq!(
            port_from_resolve(&mut url, &[entry("other.example.com", 9)]),
            None
        );
        assert_eq!(
            port_from_resolve(
                &mut url,
                &[entry("ws.example.com", 1), entry("ws.example.com", 2)]
            ),
            None
        );
        assert_eq!(url.port, 80);
    }

    #[test]
    fn ws_from_host_and_path() {
        let s = snapshot(json!([
            ingress("other", Some("x.example.com"), "/", "other-svc", false),
            ingress(
                "web",
                Some("websocket-dev.example.com"),
                "/ws",
                "dev-websocket-server",
                false
            ),
        ]));
        let d = url_from_ingresses(&s).unwrap();
        assert_eq!(d.url.to_string(), "ws://websocket-dev.example.com/ws");
        assert_eq!(d.ingress, "web");
        assert!(d.alternatives.is_empty());
    }

    #[test]
    fn wss_when_tls_covers_the_host_and_regex_is_cut() {
        let s = snapshot(json!([ingress(
            "web",
            Some("websocket-dev.example.com"),
            "/socket(/|$)(.*)",
            "dev-websocket-server",
            true
        )]));
        let d = url_from_ingresses(&s).unwrap();
        assert_eq!(d.url.to_string(), "wss://websocket-dev.example.com/socket");
    }

    #[test]
    fn errors_name_the_flag() {
        let e = url_from_ingresses(&snapshot(json!([]))).unwrap_err();
        assert!(e.contains("--url"), "{e}");
        let e = url_from_ingresses(&snapshot(json!([ingress(
            "web",
            None,
            "/",
            "dev-websocket-server",
            false
        )])))
        .unwrap_err();
        assert!(e.contains("names no host") && e.contains("--url"), "{e}");
        let mut s = snapshot(json!([]));
        s.service = None;
        assert!(url_from_ingresses(&s).unwrap_err().contains("not found"));
    }
}
