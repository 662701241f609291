//! Command-line flags and the validated configuration the server runs with.
//!
//! clap types end here: [`Cli::config`] turns flags into a [`Config`], and
//! nothing past that point sees a flag.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-11-26T23:40:01.123Z INFO Active connections: 2`
    Text,
    /// One JSON object per line; the message keeps the same text.
    Json,
}

/// Flags of the `websocket-server` binary.
#[derive(Debug, Parser)]
#[command(
    name = "websocket-server",
    version,
    about = "Companion WebSocket server for kubectl-wsaffinity: hello, echo, \
             `Active connections: N` log lines, graceful drain"
)]
pub struct Cli {
    /// TCP port to listen on (0 picks a free port; the chosen address is logged
    /// as `listening on ADDR`).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Seconds between `Active connections: N` reports while N > 0.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub report_interval: Duration,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Open WebSocket connections allowed; further upgrades get HTTP 503.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Seconds between keepalive pings; a client silent for twice this is closed.
    #[arg(long, value_name = "SECS", default_value = "20", value_parser = parse_secs)]
    pub ping_interval: Duration,

    /// Seconds a client has to send its request (the HTTP upgrade); also how
    /// long an idle keep-alive HTTP connection stays open.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub handshake_timeout: Duration,

    /// Largest accepted message (and frame) in bytes; larger ones close the
    /// connection with code 1009.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_message_size: u64,

    /// Seconds to wait for open connections to close after SIGTERM/SIGINT.
    #[arg(long, value_name = "SECS", default_value = "25", value_parser = parse_secs)]
    pub drain_timeout: Duration,

    /// Do not send the hello message: a pure echo server (for conformance suites).
    #[arg(long)]
    pub no_hello: bool,

    /// Also serve this fixed gauge series on /metrics, e.g.
    /// 'ws_connections{route="/chat"} 3' or ws_connections{route="/chat"}=3
    /// (repeatable: a small multi-series
    /// exporter for testing metric readers such as `kubectl wsaffinity logs --metric`)
    #[arg(long, value_name = "SERIES VALUE", value_parser = parse_extra_gauge)]
    pub extra_gauge: Vec<ExtraGauge>,

    /// Before serving, log N past `Active connections: K` lines (K rising and
    /// falling between 1 and 96), then the real `Active connections: 0`: the
    /// log of a server that has run for weeks, in an instant, for benchmarks
    /// and tests of log readers such as `kubectl wsaffinity logs`
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub log_history: u32,
}

/// One `--extra-gauge` series: `name{label="value",...} N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraGauge {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: i64,
}

/// The names the server's own metrics use; an extra gauge may not take one.
const OWN_NAMES: [&str; 4] = [
    "websocket_active_connections",
    "websocket_connections",
    "websocket_messages",
    "websocket_rejected",
];

fn metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `--extra-gauge`: `NAME N` or `NAME{LABEL="V",...} N` (label
/// values without `"` or `,`), N an integer, also written `...=N`.
pub fn parse_extra_gauge(text: &str) -> Result<ExtraGauge, String> {
    let form = r#"expected NAME{LABEL="VALUE",...} N, e.g. 'ws_connections{route="/chat"} 3'"#;
    let text = text.trim();
    // The value follows the labels after a space or `=` (`=` needs no
    // quoting in a shell or in the lab's whitespace-split server-args).
    let tail = text.rfind('}').map_or(0, |i| i + 1);
    let (series, value) = text[tail..]
        .rfind(|c: char| c == '=' || c.is_whitespace())
        .map(|i| (&text[..tail + i], &text[tail + i + 1..]))
        .ok_or_else(|| format!("`{text}` has no value: {form}"))?;
    let value: i64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number: {form}"))?;
    let series = series.trim();
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| format!("`{series}` does not end its labels with `}}`: {form}"))?;
            let mut labels = Vec::new();
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let label = pair.split_once('=').and_then(|(k, v)| {
                    let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
                    (metric_name(k.trim()) && !v.contains('"'))
                        .then(|| (k.trim().to_string(), v.to_string()))
                });
                labels
                    .push(label.ok_or_else(|| format!("`{pair}` is not LABEL=\"VALUE\": {form}"))?);
            }
            (name, labels)
        }
    };
    if !metric_name(name) {
        return Err(format!("`{name}` is not a metric name: {form}"));
    }
    if OWN_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` is one of the server's own metrics; pick another name"
        ));
    }
    Ok(ExtraGauge {
        name: name.to_string(),
        labels,
        value,
    })
}

impl Cli {
    /// The socket address to listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The configuration the server runs with; identity comes from the
    /// downward-API environment.
    pub fn config(&self) -> Config {
        Config {
            report_interval: self.report_interval,
            max_connections: self.max_connections,
            ping_interval: self.ping_interval,
            handshake_timeout: self.handshake_timeout,
            // The range check above keeps this within usize on 32- and 64-bit targets.
            max_message_size: usize::try_from(self.max_message_size).unwrap_or(usize::MAX),
            drain_timeout: self.drain_timeout,
            hello: !self.no_hello,
            identity: Identity::from_env(),
            extra_gauges: self.extra_gauge.clone(),
            log_history: self.log_history,
        }
    }
}

/// Parses a positive number of seconds, fractions allowed (`0.2`).
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("`{text}` must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` seconds is too long"))
}

/// Everything the server needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often `Active connections: N` is repeated while N > 0.
    pub report_interval: Duration,
    /// Open WebSocket connections allowed at once.
    pub max_connections: usize,
    /// Keepalive ping period; silence for twice this closes the connection.
    pub ping_interval: Duration,
    /// Time a client has to send a complete request head (the HTTP upgrade);
    /// also the idle limit of kept-alive HTTP connections and how long an
    /// answer may sit unread. Only the first counts as a rejection.
    pub handshake_timeout: Duration,
    /// Largest message and frame accepted, in bytes.
    pub max_message_size: usize,
    /// Time to wait for connections to close on shutdown.
    pub drain_timeout: Duration,
    /// Send the hello message on connect.
    pub hello: bool,
    /// Who this server is, as reported in the hello message.
    pub identity: Identity,
    /// `--extra-gauge`: fixed series served on /metrics besides the server's own.
    pub extra_gauges: Vec<ExtraGauge>,
    /// `--log-history`: past `Active connections` lines logged at start.
    pub log_history: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            report_interval: Duration::from_secs(30),
            max_connections: 10_000,
            ping_interval: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            max_message_size: 1 << 20,
            drain_timeout: Duration::from_secs(25),
            hello: true,
            identity: Identity::default(),
            extra_gauges: Vec::new(),
            log_history: 0,
        }
    }
}

/// The pod identity from the Kubernetes downward API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `POD_NAME`, else the hostname.
    pub pod: String,
    /// `POD_NAMESPACE`.
    pub namespace: String,
    /// `NODE_NAME`.
    pub node: String,
    /// `POD_IP`.
    pub ip: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            pod: "unknown".into(),
            namespace: "unknown".into(),
            node: "unknown".into(),
            ip: "unknown".into(),
        }
    }
}

impl Identity {
    /// Reads `POD_NAME`, `POD_NAMESPACE`, `NODE_NAME` and `POD_IP`; the pod
    /// name falls back to the hostname, the rest to `unknown`.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let unknown = || "unknown".to_string();
        Identity {
            pod: var("POD_NAME").or_else(hostname).unwrap_or_else(unknown),
            namespace: var("POD_NAMESPACE").unwrap_or_else(unknown),
            node: var("NODE_NAME").unwrap_or_else(unknown),
            ip: var("POD_IP").unwrap_or_else(unknown),
        }
    }
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_reject_nonsense() {
        assert_eq!(parse_secs("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_secs("30"), Ok(Duration::from_secs(30)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("inf").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn defaults_match_the_documented_interface() {
        let cli = Cli::try_parse_from(["websocket-server"]).expect("defaults parse");
        assert_eq!(cli.bind.to_string(), "0.0.0.0");
        assert_eq!(cli.report_interval, Duration::from_secs(30));
        assert_eq!(cli.max_connections, 10_000);
        assert_eq!(cli.ping_interval, Duration::from_secs(20));
        assert_eq!(cli.handshake_timeout, Duration::from_secs(10));
        assert_eq!(cli.max_message_size, 1 << 20);
        assert_eq!(cli.drain_timeout, Duration::from_secs(25));
        assert!(!cli.no_hello);
        assert_eq!(cli.log_format, LogFormat::Text);
    }
}
