//! Fault knobs (403s, latency, port-forward errors), bearer-token permissions,
//! and the request counters and open-stream gauges tests read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::status::qualified_resource;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A snapshot of what the lab served, and of what it holds open right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `"list pods"`, `"get pods/log"`, `"create pods/portforward"`, `"discovery /apis"`, …
    pub requests: BTreeMap<String, u64>,
    pub log_bytes: u64,
    /// Gauge: port-forward WebSocket streams open now, from the 101 answer
    /// until the lab has let go of both halves of the upgraded connection.
    pub open_port_forwards: u64,
    /// Gauge: `follow=true` log responses still streaming (until the client
    /// goes away, the log ends or `limitBytes` is reached).
    pub open_log_follows: u64,
    /// Gauge: HTTP connections to the API open now, idle keep-alive ones
    /// included; a connection upgraded to a port-forward counts there instead.
    pub open_connections: u64,
}

impl Counts {
    pub fn get(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }

    /// Every request, discovery included.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Requests for resources only (no discovery, /version or health).
    pub fn api_total(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(k, _)| !k.starts_with("discovery "))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn log_bytes_sent(&self) -> u64 {
        self.log_bytes
    }

    /// Port-forwards and log follows open now: what a client that went away
    /// must leave at 0.
    pub fn open_streams(&self) -> u64 {
        self.open_port_forwards + self.open_log_follows
    }
}

/// What an [`OpenGuard`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    PortForward,
    LogFollow,
    Connection,
}

/// One open stream or connection: counted while this lives.
#[derive(Debug)]
pub struct OpenGuard(Arc<AtomicU64>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
pub struct Counters {
    requests: Mutex<BTreeMap<String, u64>>,
    log_bytes: AtomicU64,
    open_port_forwards: Arc<AtomicU64>,
    open_log_follows: Arc<AtomicU64>,
    open_connections: Arc<AtomicU64>,
}

impl Counters {
    pub fn count(&self, key: String) {
        *lock(&self.requests).entry(key).or_insert(0) += 1;
    }

    pub fn add_log_bytes(&self, n: usize) {
        self.log_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Count one open `what` until the guard is dropped.
    pub fn open(&self, what: Open) -> OpenGuard {
        let gauge = match what {
            Open::PortForward => &self.open_port_forwards,
            Open::LogFollow => &self.open_log_follows,
            Open::Connection => &self.open_connections,
        };
        gauge.fetch_add(1, Ordering::SeqCst);
        OpenGuard(gauge.clone())
    }

    pub fn snapshot(&self) -> Counts {
        Counts {
            requests: lock(&self.requests).clone(),
            log_bytes: self.log_bytes.load(Ordering::Relaxed),
            open_port_forwards: self.open_port_forwards.load(Ordering::SeqCst),
            open_log_follows: self.open_log_follows.load(Ordering::SeqCst),
            open_connections: self.open_connections.load(Ordering::SeqCst),
        }
    }

    /// Clears the request counts and log bytes; the gauges are live and stay.
    pub fn reset(&self) {
        lock(&self.requests).clear();
        self.log_bytes.store(0, Ordering::Relaxed);
    }
}

/// Whether `rule` (`"plural"` or `"plural.group"`, optionally `/subresource`) names this resource.
fn resource_matches(rule: &str, group: &str, resource: &str) -> bool {
    if rule == "*" || rule == resource {
        return true;
    }
    // "httproutes.gateway.networking.k8s.io" or "pods/log" forms.
    let (_, sub, qualified) = qualified_resource(group, resource);
    let qualified = match sub {
        Some(s) => format!("{qualified}/{s}"),
        None => qualified,
    };
    rule == qualified
}

#[derive(Default)]
pub struct Faults {
    forbidden: Mutex<BTreeSet<String>>,
    latency: Mutex<Duration>,
    /// The kubelet's streaming idle timeout (`streamingConnectionIdleTimeout`, 4 h by default).
    idle_timeout: Mutex<Option<Duration>>,
    /// (namespace or "" for any, pod) → message.
    portforward_errors: Mutex<HashMap<(String, String), String>>,
}

impl Faults {
    pub fn forbid(&self, resource: &str) {
        lock(&self.forbidden).insert(resource.to_string());
    }

    pub fn is_forbidden(&self, group: &str, resource: &str) -> bool {
        lock(&self.forbidden)
            .iter()
            .any(|r| resource_matches(r, group, resource))
    }

    pub fn set_latency(&self, d: Duration) {
        *lock(&self.latency) = d;
    }

    pub fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    pub fn set_idle_timeout(&self, d: Option<Duration>) {
        *lock(&self.idle_timeout) = d;
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        *lock(&self.idle_timeout)
    }

    pub fn inject_portforward_error(&self, namespace: &str, pod: &str, message: &str) {
        lock(&self.portforward_errors).insert(
            (namespace.to_string(), pod.to_string()),
            message.to_string(),
        );
    }

    pub fn portforward_error(&self, namespace: &str, pod: &str) -> Option<String> {
        let map = lock(&self.portforward_errors);
        map.get(&(namespace.to_string(), pod.to_string()))
            .or_else(|| map.get(&(String::new(), pod.to_string())))
            .cloned()
    }
}

/// Bearer tokens: the admin token may do everything; others only what they list.
#[derive(Default)]
pub struct Tokens {
    /// token → None (everything) or the allowed `"verb resource"` rules.
    tokens: HashMap<String, Option<Vec<String>>>,
}

impl Tokens {
    pub fn new(admin: &str, limited: &BTreeMap<String, Vec<String>>) -> Self {
        let mut tokens: HashMap<String, Option<Vec<String>>> = limited
            .iter()
            .map(|(t, rules)| (t.clone(), Some(rules.clone())))
            .collect();
        tokens.insert(admin.to_string(), None);
        Self { tokens }
    }

    pub fn known(&self, token: &str) -> bool {
        self.tokens.contains_key(token)
    }

    /// RBAC-like check: a rule is `"*"`, `"VERB RESOURCE"`, where either may be `*`.
    pub fn allows(&self, token: &str, verb: &str, group: &str, resource: &str) -> bool {
        match self.tokens.get(token) {
            None => false,
            Some(None) => true,
            Some(Some(rules)) => rules.iter().any(|rule| {
                if rule.trim() == "*" {
                    return true;
                }
                let mut words = rule.split_whitespace();
                let (Some(v), Some(r)) = (words.next(), words.next()) else {
                    return false;
                };
                (v == "*" || v == verb) && resource_matches(r, group, resource)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbid_matches_plural_or_qualified() {
        let f = Faults::default();
        f.forbid("ingresses");
        f.forbid("httproutes.gateway.networking.k8s.io");
        assert!(f.is_forbidden("networking.k8s.io", "ingresses"));
        assert!(f.is_forbidden("gateway.networking.k8s.io", "httproutes"));
        assert!(!f.is_forbidden("", "pods"));
        assert!(!f.is_forbidden("networking.k8s.io", "ingresses/status"));
    }

    #[test]
    fn token_rules() {
        let limited = BTreeMap::from([(
            "t".to_string(),
            vec!["list pods".to_string(), "get pods/log".to_string()],
        )]);
        let t = Tokens::new("admin", &limited);
        assert!(t.allows("admin", "list", "", "ingresses"));
        assert!(t.allows("t", "list", "", "pods"));
        assert!(t.allows("t", "get", "", "pods/log"));
        assert!(!t.allows("t", "get", "", "pods"));
        assert!(!t.allows("nope", "list", "", "pods"));
    }

    #[test]
    fn counts_total() {
        let c = Counters::default();
        c.count("list pods".into());
        c.count("list pods".into());
        c.count("discovery /api".into());
        let s = c.snapshot();
        assert_eq!((s.get("list pods"), s.total(), s.api_total()), (2, 3, 2));
    }

    #[test]
    fn gauges_follow_their_guards_and_survive_reset() {
        let c = Counters::default();
        let forward = c.open(Open::PortForward);
        let follow = c.open(Open::LogFollow);
        let conns = [c.open(Open::Connection), c.open(Open::Connection)];
        let s = c.snapshot();
        assert_eq!(
            (s.open_port_forwards, s.open_log_follows, s.open_connections),
            (1, 1, 2)
        );
        assert_eq!(s.open_streams(), 2);
        c.reset();
        assert_eq!(c.snapshot().open_streams(), 2, "reset keeps live gauges");
        drop(forward);
        drop(conns);
        let s = c.snapshot();
        assert_eq!(
            (s.open_port_forwards, s.open_log_follows, s.open_connections),
            (0, 1, 0)
        );
        drop(follow);
        assert_eq!(c.snapshot().open_streams(), 0);
    }
}
