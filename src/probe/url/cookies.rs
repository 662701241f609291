//! One simulated client's cookie jar, kept as a browser keeps it: a
//! [`cookie_store::CookieStore`] (the jar behind reqwest and ureq: RFC 6265
//! parsing, domain and path matching, default paths, replacement, `Secure`
//! and `HttpOnly`). `Set-Cookie` from a handshake response is stored and sent
//! on the same client's later connections. A WebSocket URL is matched as the
//! HTTP URL its handshake is (`ws://` as `http://`, `wss://` as `https://`).
//!
//! Expiry runs on the caller's clock: each call takes `now`, so tests need no
//! sleeping. The store itself reads the system clock, so it holds every
//! cookie as a session cookie, and the jar turns `Max-Age` into an absolute
//! `Expires` (on `now`) that it checks itself; `Max-Age` still wins over
//! `Expires`, and a cookie that has run out on arrival deletes its namesake.

use std::cmp::Reverse;
use std::time::SystemTime;

use cookie_store::{Cookie, CookieExpiration, CookieStore, RawCookie};
use time::OffsetDateTime;
use url::Url;

#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    store: CookieStore,
}

impl CookieJar {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.store.iter_any().next().is_none()
    }

    /// Every cookie the jar holds.
    pub fn cookies(&self) -> Vec<&Cookie<'static>> {
        self.store.iter_any().collect()
    }

    /// Stores one `Set-Cookie` header value received from `host` for a
    /// request to `request_path`. Malformed values, and a `Domain` that does
    /// not cover `host`, are ignored, as browsers do.
    pub fn store(&mut self, set_cookie: &str, host: &str, request_path: &str, now: SystemTime) {
        let (Ok(mut raw), Some(url)) = (
            RawCookie::parse(set_cookie),
            http_url(host, request_path, false),
        ) else {
            return;
        };
        let now = OffsetDateTime::from(now);
        // Max-Age wins over Expires; both become an absolute time on `now`.
        let expires = match raw.max_age() {
            Some(max_age) => Some(now.saturating_add(max_age)),
            None => raw.expires_datetime(),
        };
        raw.set_max_age(None);
        if let Some(at) = expires {
            raw.set_expires(at);
        }
        let Ok(mut cookie) = Cookie::try_from_raw_cookie(&raw.into_owned(), &url) else {
            return;
        };
        if expires.is_some_and(|at| at <= now) {
            // Max-Age<=0 or an Expires in the past deletes the cookie.
            let (domain, path) = (String::from(&cookie.domain), String::from(&cookie.path));
            self.store.remove(&domain, &path, cookie.name());
            return;
        }
        // Kept as a session cookie for the store (see the module docs).
        cookie.expires = CookieExpiration::SessionEnd;
        let _ = self.store.insert(cookie, &url);
    }

    /// The `Cookie` header value for a request, or `None` when nothing matches.
    /// Longer paths first, as RFC 6265 §5.4 asks.
    pub fn header_for(&self, host: &str, path: &str, tls: bool, now: SystemTime) -> Option<String> {
        let mut matching = self.matching(host, path, tls, now);
        if matching.is_empty() {
            return None;
        }
        matching.sort_by_key(|c| Reverse(String::from(&c.path).len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value_trimmed()))
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
        self.matching(host, path, tls, now)
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value_trimmed())
    }

    /// The unexpired cookies the store matches to the request.
    fn matching(
        &self,
        host: &str,
        path: &str,
        tls: bool,
        now: SystemTime,
    ) -> Vec<&Cookie<'static>> {
        let Some(url) = http_url(host, path, tls) else {
            return Vec::new();
        };
        let now = OffsetDateTime::from(now);
        self.store
            .iter_any()
            .filter(|c| c.matches(&url))
            .filter(|c| c.expires_datetime().is_none_or(|at| at > now))
            .collect()
    }
}

/// The HTTP URL of a WebSocket handshake to `host` and `path`.
fn http_url(host: &str, path: &str, tls: bool) -> Option<Url> {
    let scheme = if tls { "https" } else { "http" };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = if path.starts_with('/') { path } else { "/" };
    Url::parse(&format!("{scheme}://{host}{path}")).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
