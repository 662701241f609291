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
