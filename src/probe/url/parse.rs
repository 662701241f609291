//! Parsing of the user-facing `spread` options: `--url`, `--resolve` (curl
//! syntax) and `--header`. Pure functions; errors are worded for the user.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use tokio_tungstenite::tungstenite::http::{self, HeaderName, HeaderValue};

/// A `--resolve HOST:PORT:ADDR[,ADDR...]` entry, as curl reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveEntry {
    /// Lower-cased host name, or `*` for any host.
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

impl ResolveEntry {
    /// Whether this entry applies to a connection to `host:port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port == port && (self.host == "*" || self.host.eq_ignore_ascii_case(host))
    }

    /// The socket addresses to connect to instead of resolving `host`.
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .map(|a| SocketAddr::new(*a, self.port))
            .collect()
    }
}

impl fmt::Display for ResolveEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs: Vec<String> = self
            .addrs
            .iter()
            .map(|a| match a {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            })
            .collect();
        write!(f, "{}:{}:{}", self.host, self.port, addrs.join(","))
    }
}

/// Why an option value was rejected. Always a usage error (exit code 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "invalid --resolve `{value}`: {reason} (expected HOST:PORT:ADDR, e.g. websocket-dev.example.com:80:127.0.0.1)"
    )]
    Resolve { value: String, reason: String },
    #[error("invalid --header `{value}`: {reason} (expected 'Name: value')")]
    Header { value: String, reason: String },
    #[error("invalid --url `{value}`: {reason} (expected ws://HOST[:PORT]/PATH or wss://...)")]
    Url { value: String, reason: String },
}

/// Parses one `--resolve` value: `HOST:PORT:ADDR[,ADDR...]`; IPv6 addresses
/// (and an IPv6 HOST) may be written in brackets, as curl accepts them.
pub fn parse_resolve(value: &str) -> Result<ResolveEntry, ParseError> {
    let err = |reason: &str| ParseError::Resolve {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let (host, rest) = if let Some(after) = value.strip_prefix('[') {
        let end = after.find(']').ok_or_else(|| err("unclosed `[` in HOST"))?;
        let rest = after[end + 1..]
            .strip_prefix(':')
            .ok_or_else(|| err("missing `:` after HOST"))?;
        (&after[..end], rest)
    } else {
        value
            .split_once(':')
            .ok_or_else(|| err("missing `:` after HOST"))?
    };
    if host.is_empty() {
        return Err(err("HOST is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(err("HOST contains a space or `/`"));
    }
    let (port, addrs) = rest
        .split_once(':')
        .ok_or_else(|| err("missing `:` between PORT and ADDR"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| err("PORT is not a number between 1 and 65535"))?;
    if port == 0 {
        return Err(err("PORT is not a number between 1 and 65535"));
    }
    let mut parsed = Vec::new();
    for addr in addrs.split(',') {
        let addr = addr.trim();
        let bare = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        if bare.is_empty() {
            return Err(err("ADDR is empty"));
        }
        let ip: IpAddr = bare
            .parse()
            .map_err(|_| err(&format!("`{addr}` is not an IP address")))?;
        parsed.push(ip);
    }
    Ok(ResolveEntry {
        host: host.to_ascii_lowercase(),
        port,
        addrs: parsed,
    })
}

/// Parses one `--header 'Name: value'`.
pub fn parse_header(value: &str) -> Result<(HeaderName, HeaderValue), ParseError> {
    let err = |reason: &str| ParseError::Header {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let (name, val) = value.split_once(':').ok_or_else(|| err("missing `:`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(err("the header name is empty"));
    }
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| err("the header name is not a valid HTTP token"))?;
    const RESERVED: [&str; 5] = [
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-accept",
    ];
    if RESERVED.contains(&name.as_str()) {
        return Err(err("this header belongs to the WebSocket handshake"));
    }
    let val = HeaderValue::from_str(val.trim())
        .map_err(|_| err("the value contains characters not allowed in a header"))?;
    Ok((name, val))
}

/// A validated `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    pub tls: bool,
    /// Lower-cased host, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl WsUrl {
    pub fn parse(value: &str) -> Result<WsUrl, ParseError> {
        let err = |reason: &str| ParseError::Url {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = value.parse().map_err(|_| err("not a valid URL"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(_) => return Err(err("the scheme must be ws or wss")),
            None => return Err(err("the scheme is missing")),
        };
        let host = uri.host().ok_or_else(|| err("the host is missing"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(err("the host is missing"));
        }
        let port = match uri.port_u16() {
            Some(0) => return Err(err("port 0 is not a port")),
            Some(p) => p,
            None if tls => 443,
            None => 80,
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        Ok(WsUrl {
            tls,
            host,
            port,
            path,
        })
    }

    /// The path without the query, for cookie path matching.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            write!(f, "{scheme}://{host}{}", self.path)
        } else {
            write!(f, "{scheme}://{host}:{}{}", self.port, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_like_curl() {
        let r = parse_resolve("websocket-dev.example.com:8080:127.0.0.1").unwrap();
        assert_eq!(r.host, "websocket-dev.example.com");
        assert_eq!(r.port, 8080);
        assert_eq!(r.addrs, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(r.matches("WebSocket-Dev.example.com", 8080));
        assert!(!r.matches("websocket-dev.example.com", 80));

        let r = parse_resolve("h:443:[::1],127.0.0.2").unwrap();
        assert_eq!(r.addrs.len(), 2);
        assert_eq!(r.to_string(), "h:443:[::1],127.0.0.2");
        let r = parse_resolve("*:80:127.0.0.1").unwrap();
        assert!(r.matches("anything", 80));
        let r = parse_resolve("[::1]:80:::1").unwrap();
        assert_eq!(r.host, "::1");
    }

    #[test]
    fn resolve_rejects_bad_syntax() {
        for bad in [
            "",
            "host",
            "host:80",
            "host:80:",
            "host:0:127.0.0.1",
            "host:99999:127.0.0.1",
            "host:http:127.0.0.1",
            ":80:127.0.0.1",
            "host:80:not-an-ip",
            "host:80:127.0.0.1,",
            "[::1:80:127.0.0.1",
        ] {
            assert!(parse_resolve(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = parse_resolve("host:80").unwrap_err().to_string();
        assert!(e.contains("HOST:PORT:ADDR"), "{e}");
    }

    #[test]
    fn headers() {
        let (n, v) = parse_header("X-Test:  yes ").unwrap();
        assert_eq!(n.as_str(), "x-test");
        assert_eq!(v, "yes");
        let (n, v) = parse_header("Authorization: Bearer a:b").unwrap();
        assert_eq!(n.as_str(), "authorization");
        assert_eq!(v, "Bearer a:b");
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header(": v").is_err());
        assert!(parse_header("Bad Name: v").is_err());
        assert!(parse_header("Upgrade: h2c").is_err());
        assert!(parse_header("X: a\nb").is_err());
    }

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://websocket-dev.example.com/ws?x=1").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 80, "/ws?x=1"));
        assert_eq!(u.path_only(), "/ws");
        assert_eq!(u.to_string(), "ws://websocket-dev.example.com/ws?x=1");
        let u = WsUrl::parse("wss://Example.com:8443").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 8443, "/"));
        assert_eq!(u.host, "example.com");
        let u = WsUrl::parse("ws://[::1]:9000/").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.to_string(), "ws://[::1]:9000/");
        assert!(WsUrl::parse("http://x/").is_err());
        assert!(WsUrl::parse("x/y").is_err());
        assert!(WsUrl::parse("ws://x:0/").is_err());
    }
}
