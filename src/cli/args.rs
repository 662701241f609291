//! The clap definitions of each subcommand's flags, and their value parsers
//! (usage errors, exit 2, that name the expected form).

use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use crate::config;
use crate::probe::url::{ResolveEntry, WsUrl};
use crate::target::TargetSpec;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to complete in; `kubectl` prints the kubectl_complete-wsaffinity helper
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: ShellArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// Bash script for `kubectl-wsaffinity`
    Bash,
    /// Zsh script for `kubectl-wsaffinity`
    Zsh,
    /// Fish script for `kubectl-wsaffinity`
    Fish,
    /// The kubectl_complete-wsaffinity helper: `kubectl wsaffinity <TAB>`
    Kubectl,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words typed after `kubectl wsaffinity`; the last one is being completed
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TestServiceArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME to copy (default: the namespace's only Service)
    #[arg(value_name = "TARGET", value_parser = parse_target)]
    pub target: Option<TargetSpec>,

    /// Create the test Service (NAME-affinity-test) instead of printing it
    #[arg(long, conflicts_with = "delete")]
    pub apply: bool,

    /// Delete the test Service (only one labelled app.kubernetes.io/managed-by=kubectl-wsaffinity)
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct SpreadArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME: its Ingress gives the URL, its routing explains the result; or a ws(s):// URL (as --url)
    #[arg(value_name = "TARGET|URL", value_parser = spread_args::target_or_url)]
    pub target: Option<spread_args::TargetOrUrl>,

    /// ws:// or wss:// URL to connect through (default: the target's Ingress host and path); wins over a positional URL
    #[arg(long, value_name = "URL", value_parser = spread_args::url)]
    pub url: Option<WsUrl>,

    /// Simulated clients, each with its own cookie jar
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub clients: u32,

    /// Connections each client opens (one after another, all held until every client is done)
    #[arg(long, value_name = "M", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub connect: u32,

    /// Connect to ADDR for HOST:PORT instead of resolving HOST, as curl does (repeatable)
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = spread_args::resolve)]
    pub resolve: Vec<ResolveEntry>,

    /// Accept any TLS certificate (self-signed labs)
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// Extra request header, e.g. 'Authorization: Bearer ...' (repeatable)
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = spread_args::header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Bind the clients to these local addresses, round-robin (labs with several addresses)
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub source_ip: Vec<std::net::IpAddr>,

    /// Response header that names the pod when the server sends no hello
    #[arg(long, value_name = "NAME", default_value = "X-Pod-Name", value_parser = spread_args::header_name)]
    pub identity_header: HeaderName,

    /// Name of the affinity cookie (default: a known balancer cookie, or the only one set)
    #[arg(long, value_name = "NAME")]
    pub affinity_cookie: Option<String>,

    /// Never send cookies back: every connection looks like a new client
    #[arg(long)]
    pub no_cookies: bool,

    /// Start every client's cookie jar with this cookie, as a browser that
    /// already holds it (e.g. an affinity cookie copied from its dev tools);
    /// repeatable
    #[arg(long = "cookie", value_name = "NAME=VALUE", conflicts_with = "no_cookies", value_parser = spread_args::cookie)]
    pub seed_cookies: Vec<(String, String)>,

    /// Time each connection has for TCP, TLS and the WebSocket handshake, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_positive_duration)]
    pub timeout: Duration,

    /// Keep every connection open this long once all are up, e.g. 30s (to watch the pods' logs)
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = config::parse_duration)]
    pub hold: Duration,

    /// Print the same scenario for a load-testing tool instead of running it
    #[arg(long, value_enum, value_name = "TOOL")]
    pub emit: Option<EmitArg>,
}

/// `spread --emit`: which tool's file to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmitArg {
    /// Artillery scenario (YAML, ws engine): artillery run test.yml
    Artillery,
    /// k6 script (k6/ws): k6 run test.js
    K6,
    /// k6-operator TestRun manifest that runs the k6 script inside the cluster
    #[value(name = "k6-operator")]
    K6Operator,
}

/// Value parsers of `spread`: usage errors (exit 2) that name the expected form.
pub mod spread_args {
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

    use crate::probe::url::{ResolveEntry, WsUrl, parse_header, parse_resolve};
    use crate::target::TargetSpec;

    /// The positional argument: a target, or a URL (`spread wss://host/`).
    #[derive(Clone, Debug)]
    pub enum TargetOrUrl {
        Target(TargetSpec),
        Url(WsUrl),
    }

    pub fn target_or_url(s: &str) -> Result<TargetOrUrl, String> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.starts_with("ws://") || lower.starts_with("wss://") {
            return url(s).map(TargetOrUrl::Url);
        }
        super::parse_target(s).map(TargetOrUrl::Target)
    }

    pub fn url(s: &str) -> Result<WsUrl, String> {
        WsUrl::parse(s).map_err(|e| e.to_string())
    }

    pub fn resolve(s: &str) -> Result<ResolveEntry, String> {
        parse_resolve(s).map_err(|e| e.to_string())
    }

    pub fn header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
        parse_header(s).map_err(|e| e.to_string())
    }

    /// `NAME=VALUE`, a cookie as a `Cookie` header carries it.
    pub fn cookie(s: &str) -> Result<(String, String), String> {
        let (name, value) = s.split_once('=').ok_or_else(|| {
            format!("`{s}` is not NAME=VALUE, e.g. --cookie _49ac9=17ebd1d5c2ef67ac")
        })?;
        let name = name.trim();
        let value = value.trim().trim_matches('"');
        let bad = |c: char| c.is_ascii_control() || c.is_whitespace() || ";,\"".contains(c);
        if name.is_empty()
            || name
                .chars()
                .any(|c| bad(c) || "=()<>@:\\/[]?{}".contains(c))
        {
            return Err(format!(
                "`{name}` is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
            ));
        }
        if value.chars().any(bad) {
            return Err(format!(
                "the value of cookie `{name}` holds a space, `;`, `,` or `\"`"
            ));
        }
        Ok((name.to_string(), value.to_string()))
    }

    pub fn header_name(s: &str) -> Result<HeaderName, String> {
        HeaderName::from_bytes(s.trim().as_bytes())
            .map_err(|_| format!("`{s}` is not a valid header name"))
    }
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME (default: the namespace's only Service)
    #[arg(value_name = "TARGET", value_parser = parse_target, conflicts_with = "selector")]
    pub target: Option<TargetSpec>,

    /// Read the pods matching this label selector instead of a Service's, e.g. app=web
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Container to read (default: the one serving the Service's port, else the first)
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,

    /// Regex with exactly one capture group around the number of open connections
    #[arg(long, value_name = "REGEX", value_parser = parse_pattern,
          default_value = crate::probe::logs::DEFAULT_PATTERN)]
    pub pattern: crate::probe::logs::ActivePattern,

    /// Lines read from the end of each log
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub tail: u32,

    /// Bytes read from each log at most, per request
    #[arg(long, value_name = "BYTES", default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..=16 << 20))]
    pub limit_bytes: u32,

    /// Only lines newer than this, e.g. 5m, 1h
    #[arg(long, value_name = "DURATION", value_parser = config::parse_positive_duration)]
    pub since: Option<Duration>,

    /// Log requests at once (with --follow: pods followed at once)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_log_requests: u16,

    /// Stream every pod's log and update the counts live (Ctrl-C to stop)
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Stop following after this long (for tests and scripts)
    #[arg(long, hide = true, value_name = "DURATION", requires = "follow", value_parser = config::parse_positive_duration)]
    pub follow_duration: Option<Duration>,

    /// How often the pod list is re-read while following
    #[arg(long, hide = true, value_name = "DURATION", default_value = "2s", value_parser = config::parse_positive_duration)]
    pub poll_interval: Duration,

    #[command(flatten)]
    pub metrics: MetricArgs,

    /// With --metric --follow: how often each pod's gauge is read again
    #[arg(long, value_name = "DURATION", default_value = "2s", requires = "metric", value_parser = config::parse_positive_duration)]
    pub interval: Duration,
}

/// `--metric`, `--metrics-port`, `--metrics-path`: one definition for `logs`
/// and `per-pod`, so both spell, validate and explain them the same way.
#[derive(Debug, Args)]
pub struct MetricArgs {
    /// Read open connections from this Prometheus gauge on each pod's metrics
    /// endpoint (through port-forward) instead of its `Active connections` log
    /// line, e.g. websocket_active_connections or 'socketio_connected{namespace="/chat"}'
    /// (several series of one name are summed, and a note says so)
    #[arg(long, value_name = "NAME", value_parser = parse_metric)]
    pub metric: Option<crate::probe::metrics::MetricQuery>,

    /// The pods' metrics port (default: a container port named `metrics` or
    /// `http-metrics`, else the `prometheus.io/port` annotation)
    #[arg(long, value_name = "PORT", requires = "metric", value_parser = clap::value_parser!(u16).range(1..))]
    pub metrics_port: Option<u16>,

    /// The metrics path (default: the `prometheus.io/path` annotation, else /metrics)
    #[arg(long, value_name = "PATH", requires = "metric", value_parser = parse_metrics_path)]
    pub metrics_path: Option<String>,
}

impl MetricArgs {
    /// The validated source, or `None` without `--metric`; `interval` is
    /// `logs --follow`'s `--interval`.
    pub fn source(self, interval: Duration) -> Option<crate::probe::metrics::MetricSource> {
        self.metric
            .map(|query| crate::probe::metrics::MetricSource {
                query,
                port: self.metrics_port,
                path: self.metrics_path,
                interval,
            })
    }
}

fn parse_metric(s: &str) -> Result<crate::probe::metrics::MetricQuery, String> {
    crate::probe::metrics::MetricQuery::parse(s)
}

fn parse_metrics_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.contains(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a URL path: it starts with `/`, e.g. /metrics"
        ))
    }
}

fn parse_pattern(s: &str) -> Result<crate::probe::logs::ActivePattern, String> {
    crate::probe::logs::ActivePattern::new(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct PerPodArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME (default: the namespace's only Service)
    #[arg(value_name = "TARGET", value_parser = parse_target)]
    pub target: Option<TargetSpec>,

    /// WebSocket connections to open to each pod, all through one port-forward per pod
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connect: u32,

    /// Pods tested at once
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,

    /// Also test the pods that are not ready endpoints
    #[arg(long)]
    pub all_pods: bool,

    /// Pod port to forward to (default: the container port behind the Service's targetPort, per pod)
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// WebSocket request path
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path: String,

    /// Do not round-trip an echo message (for servers that do not echo)
    #[arg(long)]
    pub no_echo: bool,

    /// How long all connections to a pod stay open together, e.g. 2s, 1m (at
    /// least until the pod's log shows them, up to 1s, when it logs a count)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = config::parse_duration)]
    pub hold: Duration,

    /// Give up on one connection's step (port-forward, handshake, echo, close) after this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_positive_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub metrics: MetricArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME (default: the namespace's only Service)
    #[arg(value_name = "TARGET", value_parser = parse_target)]
    pub target: Option<TargetSpec>,

    /// Print the long explanation of a finding code (e.g. WSA030) and exit; reads no cluster
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,
}

pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    s.parse()
        .map_err(|e: crate::target::TargetSyntaxError| e.to_string())
}
