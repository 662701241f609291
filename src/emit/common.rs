//! What the generators share: quoting, `spread`'s command line for a file's
//! leading comment, the `--resolve` entry, header spelling and the notes on
//! what a tool does not carry over.

use crate::probe::url::{ResolveEntry, UrlOptions, WsUrl};

/// A double-quoted string, valid as a YAML double-quoted scalar and as a
/// JavaScript string literal (JSON's escapes are a subset of both).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// `spread`'s command line for the leading comment of a file (no secrets:
/// header values are not repeated).
pub fn spread_line(opts: &UrlOptions) -> String {
    let mut line = format!(
        "kubectl wsaffinity spread --url {} --clients {} --connect {}",
        opts.url, opts.settings.clients, opts.settings.connect
    );
    for r in &opts.settings.resolve {
        line.push_str(&format!(" --resolve {r}"));
    }
    for (name, _) in &opts.settings.headers {
        line.push_str(&format!(" -H '{name}: …'"));
    }
    if opts.settings.insecure {
        line.push_str(" --insecure");
    }
    if !opts.settings.hold.is_zero() {
        line.push_str(&format!(" --hold {}s", opts.settings.hold.as_secs_f64()));
    }
    line
}

/// The `--resolve` entry that applies to the URL, with the address to use.
pub fn resolve_for(opts: &UrlOptions) -> Option<(&ResolveEntry, std::net::SocketAddr)> {
    let entry = opts
        .settings
        .resolve
        .iter()
        .find(|r| r.matches(&opts.url.host, opts.url.port))?;
    let addr = entry.socket_addrs().into_iter().next()?;
    Some((entry, addr))
}

/// `Host` header value for a URL (the port only when it is not the default).
pub fn host_header(url: &WsUrl) -> String {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let default = if url.tls { 443 } else { 80 };
    if url.port == default {
        host
    } else {
        format!("{host}:{}", url.port)
    }
}

/// Header name as Go's `http.CanonicalHeaderKey` writes it (k6 response
/// headers are keyed this way): `x-pod-name` → `X-Pod-Name`.
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Comment lines (`prefix` + text) about what the tool does not carry over.
pub fn not_carried(opts: &UrlOptions, prefix: &str, cookies_kept: bool) -> String {
    let mut out = String::new();
    if !opts.settings.source_ips.is_empty() {
        out.push_str(&format!(
            "{prefix}--source-ip is not carried over: every connection leaves from the machine's own address.\n"
        ));
    }
    if opts.settings.resolve.len() > 1 || opts.settings.resolve.iter().any(|r| r.addrs.len() > 1) {
        out.push_str(&format!(
            "{prefix}only the first --resolve address of the URL's host:port is used.\n"
        ));
    }
    if !cookies_kept && opts.settings.cookies {
        out.push_str(&format!(
            "{prefix}no cookies are kept between connections: this is `spread --no-cookies` (cookie affinity is not exercised).\n"
        ));
    }
    out
}

/// Whole seconds for a duration, at least `min`.
pub fn secs_at_least(d: std::time::Duration, min: u64) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_yaml_and_js_safe() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(quote("ws://x/"), "\"ws://x/\"");
    }

    #[test]
    fn canonical_header_keys() {
        assert_eq!(canonical_header("x-pod-name"), "X-Pod-Name");
        assert_eq!(canonical_header("authorization"), "Authorization");
    }

    #[test]
    fn host_header_keeps_non_default_ports() {
        let u = WsUrl::parse("ws://h.example:8080/x").expect("url");
        assert_eq!(host_header(&u), "h.example:8080");
        let u = WsUrl::parse("wss://h.example/").expect("url");
        assert_eq!(host_header(&u), "h.example");
        let u = WsUrl::parse("ws://[::1]:81/").expect("url");
        assert_eq!(host_header(&u), "[::1]:81");
    }

    #[test]
    fn seconds_round_up() {
        use std::time::Duration;
        assert_eq!(secs_at_least(Duration::ZERO, 1), 1);
        assert_eq!(secs_at_least(Duration::from_millis(1500), 1), 2);
        assert_eq!(secs_at_least(Duration::from_secs(30), 1), 30);
    }
}
