//! One simulated client's cookie jar, roughly as a browser keeps it
//! (RFC 6265 §5.3, simplified): `Set-Cookie` from a handshake response is
//! stored and sent on the same client's later connections when the domain and
//! path match, until `Max-Age`/`Expires` runs out. `Secure` cookies only go
//! over `wss://`. The clock is a parameter, so tests need no sleeping.

use std::time::{Duration, SystemTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// Lower-cased domain without a leading dot.
    pub domain: String,
    /// `false`: sent only to exactly `domain` (no `Domain` attribute given).
    pub include_subdomains: bool,
    pub path: String,
    pub secure: bool,
    /// `None`: a session cookie (lives as long as the simulated client).
    pub expires: Option<SystemTime>,
}

#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

/// Cookies a jar may hold; a browser keeps ~50 per domain.
const MAX_COOKIES: usize = 50;

impl CookieJar {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn cookies(&self) -> &[Cookie] {
        &self.cookies
    }

    /// Stores one `Set-Cookie` header value received from `host` for a
    /// request to `request_path`. Malformed values are ignored, as browsers do.
    pub fn store(&mut self, set_cookie: &str, host: &str, request_path: &str, now: SystemTime) {
        let Some(cookie) = parse_set_cookie(set_cookie, host, request_path, now) else {
            return;
        };
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        if cookie.expires.is_some_and(|e| e <= now) {
            // Max-Age<=0 or an Expires in the past deletes the cookie.
            return;
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(cookie);
    }

    /// The `Cookie` header value for a request, or `None` when nothing matches.
    /// Longer paths first, as RFC 6265 §5.4 asks.
    pub fn header_for(&self, host: &str, path: &str, tls: bool, now: SystemTime) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|e| e > now))
            .filter(|c| !c.secure || tls)
            .filter(|c| domain_matches(c, &host))
            .filter(|c| path_matches(&c.path, path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(pairs.join("; "))
    }

    /// The value of cookie `name` this jar would send to `host`/`path`.
    pub fn value_of(
        &self,
        name: &str,
        host: &str,
        path: &str,
        tls: bool,
        now: SystemTime,
    ) -> Option<&str> {
        let host = host.to_ascii_lowercase();
        self.cookies
            .iter()
            .filter(|c| c.name == name)
            .filter(|c| c.expires.is_none_or(|e| e > now))
            .filter(|c| !c.secure || tls)
            .filter(|c| domain_matches(c, &host))
            .find(|c| path_matches(&c.path, path))
            .map(|c| c.value.as_str())
    }
}

fn domain_matches(c: &Cookie, host: &str) -> bool {
    if c.domain == host {
        return true;
    }
    c.include_subdomains
        && host.len() > c.domain.len()
        && host.ends_with(&c.domain)
        && host.as_bytes()[host.len() - c.domain.len() - 1] == b'.'
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    if cookie_path == request_path {
        return true;
    }
    request_path.starts_with(cookie_path)
        && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/'))
}

/// RFC 6265 §5.1.4 default-path: the request path up to its last `/`.
fn default_path(request_path: &str) -> String {
    if !request_path.starts_with('/') {
        return "/".to_string();
    }
    match request_path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => request_path[..i].to_string(),
    }
}

/// Parses a `Set-Cookie` value into a cookie for `host`; `None` when the
/// value is malformed or the `Domain` attribute does not cover `host`.
pub fn parse_set_cookie(
    value: &str,
    host: &str,
    request_path: &str,
    now: SystemTime,
) -> Option<Cookie> {
    let mut parts = value.split(';');
    let (name, val) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let val = val.trim().trim_matches('"');
    let host = host.to_ascii_lowercase();
    let mut cookie = Cookie {
        name: name.to_string(),
        value: val.to_string(),
        domain: host.clone(),
        include_subdomains: false,
        path: default_path(request_path),
        secure: false,
        expires: None,
    };
    let mut max_age: Option<i64> = None;
    let mut expires: Option<SystemTime> = None;
    for attr in parts {
        let (k, v) = match attr.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (attr.trim(), ""),
        };
        match k.to_ascii_lowercase().as_str() {
            "max-age" => {
                // Non-numeric Max-Age is ignored (RFC 6265 §5.2.2).
                if let Ok(n) = v.parse::<i64>() {
                    max_age = Some(n);
                }
            }
            "expires" => {
                if let Ok(t) = httpdate::parse_http_date(v) {
                    expires = Some(t);
                }
            }
            "domain" => {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                if !d.is_empty() {
                    let covers = host == d
                        || (host.ends_with(&d)
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.');
                    if !covers {
                        return None;
                    }
                    cookie.domain = d;
                    cookie.include_subdomains = true;
                }
            }
            "path" if v.starts_with('/') => cookie.path = v.to_string(),
            "secure" => cookie.secure = true,
            _ => {}
        }
    }
    // Max-Age wins over Expires.
    cookie.expires = match max_age {
        Some(n) if n <= 0 => Some(SystemTime::UNIX_EPOCH),
        Some(n) => Some(now + Duration::from_secs(n.unsigned_abs())),
        None => expires,
    };
    Some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn session_cookie_is_sent_back() {
        let mut jar = CookieJar::new();
        jar.store("SERVERID=s2; path=/", "h.example.com", "/ws", t0());
        assert_eq!(
            jar.header_for("h.example.com", "/ws", false, t0())
                .as_deref(),
            Some("SERVERID=s2")
        );
        assert_eq!(
            jar.value_of("SERVERID", "h.example.com", "/", false, t0()),
            Some("s2")
        );
        // Another host does not get it.
        assert_eq!(
            jar.header_for("other.example.com", "/ws", false, t0()),
            None
        );
    }

    #[test]
    fn replaced_by_same_name_and_path() {
        let mut jar = CookieJar::new();
        jar.store("a=1; Path=/", "h", "/", t0());
        jar.store("a=2; Path=/", "h", "/", t0());
        assert_eq!(
            jar.header_for("h", "/", false, t0()).as_deref(),
            Some("a=2")
        );
        assert_eq!(jar.cookies().len(), 1);
    }

    #[test]
    fn max_age_and_expires() {
        let mut jar = CookieJar::new();
        jar.store("a=1; Max-Age=10", "h", "/", t0());
        assert!(jar.header_for("h", "/", false, t0()).is_some());
        assert!(
            jar.header_for("h", "/", false, t0() + Duration::from_secs(11))
                .is_none()
        );
        // Max-Age=0 deletes.
        jar.store("a=1; Max-Age=0", "h", "/", t0());
        assert!(jar.is_empty());
        // Expires in the past deletes / is not stored.
        jar.store("b=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "h", "/", t0());
        assert!(jar.is_empty());
        jar.store("c=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT", "h", "/", t0());
        assert!(jar.header_for("h", "/", false, t0()).is_some());
        // Max-Age wins over Expires.
        jar.store(
            "d=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Max-Age=-1",
            "h",
            "/",
            t0(),
        );
        assert_eq!(
            jar.header_for("h", "/", false, t0()).as_deref(),
            Some("c=1")
        );
        // Garbage Max-Age is ignored: a session cookie.
        jar.store("e=1; Max-Age=soon", "h", "/", t0());
        assert!(jar.value_of("e", "h", "/", false, t0()).is_some());
    }

    #[test]
    fn paths() {
        let mut jar = CookieJar::new();
        jar.store("a=1; Path=/ws", "h", "/", t0());
        jar.store("b=2", "h", "/app/socket", t0()); // default path /app
        assert_eq!(
            jar.header_for("h", "/ws", false, t0()).as_deref(),
            Some("a=1")
        );
        assert_eq!(
            jar.header_for("h", "/ws/x", false, t0()).as_deref(),
            Some("a=1")
        );
        assert_eq!(jar.header_for("h", "/wsx", false, t0()), None);
        assert_eq!(
            jar.header_for("h", "/app/other", false, t0()).as_deref(),
            Some("b=2")
        );
        assert_eq!(jar.header_for("h", "/", false, t0()), None);
        // Longer path first.
        jar.store("c=3; Path=/", "h", "/", t0());
        assert_eq!(
            jar.header_for("h", "/ws", false, t0()).as_deref(),
            Some("a=1; c=3")
        );
    }

    #[test]
    fn domain_and_secure() {
        let mut jar = CookieJar::new();
        jar.store("a=1; Domain=.example.com", "ws.example.com", "/", t0());
        assert!(
            jar.header_for("other.example.com", "/", false, t0())
                .is_some()
        );
        assert!(jar.header_for("example.com", "/", false, t0()).is_some());
        assert!(jar.header_for("badexample.com", "/", false, t0()).is_none());
        // A Domain that does not cover the host is rejected.
        jar.store("b=1; Domain=evil.com", "ws.example.com", "/", t0());
        assert!(jar.value_of("b", "evil.com", "/", false, t0()).is_none());
        jar.store("s=1; Secure", "ws.example.com", "/", t0());
        assert!(
            jar.value_of("s", "ws.example.com", "/", false, t0())
                .is_none()
        );
        assert!(
            jar.value_of("s", "ws.example.com", "/", true, t0())
                .is_some()
        );
    }

    #[test]
    fn malformed_is_ignored() {
        let mut jar = CookieJar::new();
        for bad in ["", "novalue", "=x", ";a=b"] {
            jar.store(bad, "h", "/", t0());
        }
        assert!(jar.is_empty());
        jar.store("q=\"quoted\"; HttpOnly; SameSite=Lax", "h", "/", t0());
        assert_eq!(
            jar.header_for("h", "/", false, t0()).as_deref(),
            Some("q=quoted")
        );
    }
}
