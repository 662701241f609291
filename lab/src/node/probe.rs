//! Readiness and liveness probes as the kubelet runs them (`httpGet`:
//! 200–399 succeeds; `tcpSocket`: the connect succeeds), each with its own
//! period, timeout and success/failure thresholds.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A probe's settings with the API's defaults filled in.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Http {
        port: u16,
        path: String,
    },
    Tcp {
        port: u16,
    },
    /// exec and grpc probes are not run: they count as success.
    Unsupported,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default)).unwrap_or(0))
}

fn threshold(v: Option<i32>, default: u32) -> u32 {
    v.and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A named port resolves through the container's `ports`.
fn port(c: &Container, p: &IntOrString) -> Option<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok()),
    }
}

pub fn spec(c: &Container, p: &Probe) -> ProbeSpec {
    let action = if let Some(h) = &p.http_get {
        match port(c, &h.port) {
            Some(port) => Action::Http {
                port,
                path: h.path.clone().unwrap_or_else(|| "/".into()),
            },
            None => Action::Unsupported,
        }
    } else if let Some(t) = &p.tcp_socket {
        port(c, &t.port).map_or(Action::Unsupported, |port| Action::Tcp { port })
    } else {
        Action::Unsupported
    };
    ProbeSpec {
        action,
        initial_delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: threshold(p.success_threshold, 1),
        failure_threshold: threshold(p.failure_threshold, 3),
    }
}

/// Run the probe once against the pod's IP.
pub async fn run(action: &Action, ip: Ipv4Addr, timeout: Duration) -> bool {
    let attempt = async {
        match action {
            Action::Unsupported => true,
            Action::Tcp { port } => TcpStream::connect(SocketAddr::from((ip, *port)))
                .await
                .is_ok(),
            Action::Http { port, path } => http_get(ip, *port, path).await.unwrap_or(false),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(false)
}

async fn http_get(ip: Ipv4Addr, port: u16, path: &str) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(SocketAddr::from((ip, port))).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((200..400).contains(&code))
}

/// Counts consecutive results against the thresholds, as the kubelet's prober worker.
#[derive(Debug)]
pub struct Tracker {
    pub spec: ProbeSpec,
    ok_run: u32,
    fail_run: u32,
    pub passing: bool,
}

impl Tracker {
    pub fn new(spec: ProbeSpec, initially: bool) -> Self {
        Self {
            spec,
            ok_run: 0,
            fail_run: 0,
            passing: initially,
        }
    }

    /// Record a result; returns true when `passing` changed.
    pub fn record(&mut self, ok: bool) -> bool {
        if ok {
            self.ok_run += 1;
            self.fail_run = 0;
            if !self.passing && self.ok_run >= self.spec.success_threshold {
                self.passing = true;
                return true;
            }
        } else {
            self.fail_run += 1;
            self.ok_run = 0;
            if self.passing && self.fail_run >= self.spec.failure_threshold {
                self.passing = false;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "c",
            "ports": [{"name": "ws", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "ws"}, "periodSeconds": 5, "failureThreshold": 1},
            "livenessProbe": {"tcpSocket": {"port": 9090}},
        }))
        .unwrap()
    }

    #[test]
    fn named_ports_and_defaults_follow_the_api() {
        let c = container();
        let r = spec(&c, c.readiness_probe.as_ref().unwrap());
        assert_eq!(
            r.action,
            Action::Http {
                port: 8080,
                path: "/readyz".into()
            }
        );
        assert_eq!(
            (r.period, r.failure_threshold, r.success_threshold),
            (Duration::from_secs(5), 1, 1)
        );
        let l = spec(&c, c.liveness_probe.as_ref().unwrap());
        assert_eq!(l.action, Action::Tcp { port: 9090 });
        assert_eq!(
            (l.period, l.timeout, l.failure_threshold),
            (Duration::from_secs(10), Duration::from_secs(1), 3)
        );
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let c = container();
        let mut t = Tracker::new(spec(&c, c.liveness_probe.as_ref().unwrap()), true);
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(!t.record(true), "a success resets the failure run");
        assert!(!t.record(false) && !t.record(false));
        assert!(t.record(false), "the third failure in a row flips it");
        assert!(!t.passing);
        assert!(
            t.record(true),
            "one success (the default threshold) recovers"
        );
    }

    #[tokio::test]
    async fn http_probe_reads_the_status_code() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for code in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let a = Action::Http {
            port,
            path: "/readyz".into(),
        };
        assert!(run(&a, Ipv4Addr::LOCALHOST, Duration::from_secs(2)).await);
        assert!(!run(&a, Ipv4Addr::LOCALHOST, Duration::from_secs(2)).await);
    }
}
