//! Command-line definitions (clap derive). kubectl-style global flags work
//! before or after the subcommand. Clap types end here: [`Cli::into_config`]
//! turns them into [`crate::config::Config`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{
    self, CheckConfig, CommandConfig, Config, KubeOptions, OutputFormat, OutputOptions,
    PerPodConfig,
};
use crate::probe::url::{ResolveEntry, WsUrl};
use crate::target::TargetSpec;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

const ROOT_EXAMPLES: &str = "\
Examples:
  # Why do all my connections land on one pod?
  kubectl wsaffinity check svc/dev-websocket-server

  # The namespace's only Service, as JSON
  kubectl wsaffinity check -n dev -o json

  # What a finding means
  kubectl wsaffinity check --explain WSA030";

const CHECK_EXAMPLES: &str = "\
Examples:
  # A Service by name (svc/, service/ or a bare name)
  kubectl wsaffinity check svc/dev-websocket-server
  kubectl wsaffinity check dev-websocket-server -n dev

  # The Service behind an Ingress, or the one that selects a Deployment's pods
  kubectl wsaffinity check ingress/dev-websocket-server
  kubectl wsaffinity check deploy/dev-websocket-server

  # The namespace's only Service, with more columns; log every API call
  kubectl wsaffinity check -o wide -v

  # Machine-readable output (exit code 1 when a finding is an error)
  kubectl wsaffinity check svc/web -o json

  # The long explanation of a finding code, like rustc --explain
  kubectl wsaffinity check --explain WSA030";

/// Explains why WebSocket connections are not spread across pods.
///
/// Reads the Service, its EndpointSlices, and the Ingresses and routes in front
/// of it, then explains path by path where new connections land and why.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-wsaffinity",
    bin_name = "kubectl wsaffinity",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = ROOT_EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand shares, spelled as kubectl spells them.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Namespace of the target (default: the kubeconfig context's namespace)
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubeconfig context to use (default: current-context)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputArg::Text, value_name = "FORMAT")]
    pub output: OutputArg,

    /// Never colour the output (NO_COLOR is honoured too; colour is only used on a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Log each API call (method, path, status, time) to stderr; repeat for more detail
    #[arg(short = 'v', long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Time to wait for each API request, e.g. 5s, 1m ("0" = no timeout)
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = config::parse_request_timeout)]
    pub request_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// Sections and tables
    Text,
    /// Text with more columns
    Wide,
    /// One JSON object (the output contract)
    Json,
    /// The same object as YAML
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the routing in front of a Service and explain, path by path, why traffic is or is not spread
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Port-forward to each pod behind the target and prove it serves WebSockets
    #[command(after_help = PER_POD_EXAMPLES)]
    PerPod(PerPodArgs),
    /// Read each pod's `Active connections: N` log line: where connections actually are, once or live
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Simulate K clients (own cookie jars) through a URL and show which pod each connection reached
    #[command(after_help = SPREAD_EXAMPLES)]
    Spread(Box<SpreadArgs>),
    /// Print (or --apply) a copy of the Service without session affinity, to compare against
    #[command(after_help = TEST_SERVICE_EXAMPLES)]
    TestService(TestServiceArgs),
    /// Print a shell completion script: bash, zsh, fish, or kubectl's plugin helper
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
    /// Completion candidates in cobra's format (run by kubectl_complete-wsaffinity)
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),
}

const COMPLETION_EXAMPLES: &str = "\
Examples:
  # kubectl wsaffinity <TAB> (kubectl 1.26+): install the helper kubectl looks for on PATH
  kubectl wsaffinity completion kubectl > ~/.krew/bin/kubectl_complete-wsaffinity
  chmod +x ~/.krew/bin/kubectl_complete-wsaffinity

  # kubectl-wsaffinity <TAB> in bash (add the line to ~/.bashrc)
  source <(kubectl-wsaffinity completion bash)

  # zsh and fish
  kubectl-wsaffinity completion zsh > \"${fpath[1]}/_kubectl-wsaffinity\"
  kubectl-wsaffinity completion fish > ~/.config/fish/completions/kubectl-wsaffinity.fish";

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

const TEST_SERVICE_EXAMPLES: &str = "\
Examples:
  # Print the manifest: same selector and ports, sessionAffinity: None (no write)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev

  # Create it (the only write kubectl-wsaffinity makes; needs `create services`)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev --apply

  # Then compare: per pod, and through a URL that reaches it
  kubectl wsaffinity per-pod svc/dev-websocket-server-affinity-test -n dev
  kubectl wsaffinity spread svc/dev-websocket-server-affinity-test -n dev --url ws://HOST/

  # Remove it (only a Service labelled app.kubernetes.io/managed-by=kubectl-wsaffinity)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev --delete

  # Or apply the printed manifest yourself
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev | kubectl apply -f -";

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

const SPREAD_EXAMPLES: &str = "\
Examples:
  # 5 clients x 4 connections through the target's Ingress URL
  kubectl wsaffinity spread svc/dev-websocket-server -n dev

  # A URL instead of a target (the same as --url); no cluster needed
  kubectl wsaffinity spread ws://websocket-dev.example.com/ --clients 10

  # A given URL without DNS (as curl --resolve), self-signed TLS
  kubectl wsaffinity spread wss://ws.example.com/ --resolve ws.example.com:443:192.0.2.10 -k

  # One client, 20 connections, cookies off: does the balancer spread them?
  kubectl wsaffinity spread ws://ws.example.com/ --clients 1 --connect 20 --no-cookies

  # Clients from several local addresses (for client-address hashing)
  kubectl wsaffinity spread --url ws://127.0.0.1:8080/ --source-ip 127.0.0.2 127.0.0.3 127.0.0.4

  # More clients than one machine makes: the same scenario for Artillery or k6
  kubectl wsaffinity spread svc/dev-websocket-server --clients 50 --emit artillery > test.yml
  kubectl wsaffinity spread wss://ws.example.com/ --emit k6 > test.js
  kubectl wsaffinity spread wss://ws.example.com/ --emit k6-operator > testrun.yaml";

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

    pub fn header_name(s: &str) -> Result<HeaderName, String> {
        HeaderName::from_bytes(s.trim().as_bytes())
            .map_err(|_| format!("`{s}` is not a valid header name"))
    }
}

const LOGS_EXAMPLES: &str = "\
Examples:
  # Open connections per pod of the namespace's only Service, with totals
  kubectl wsaffinity logs

  # Live: a table updated in place (plain `POD active=N` lines when piped)
  kubectl wsaffinity logs svc/dev-websocket-server --follow

  # Pods by label, a sidecar's log, another log format
  kubectl wsaffinity logs -l app=web -c server --pattern 'clients=(\\d+)'

  # Only lines of the last 10 minutes, as JSON
  kubectl wsaffinity logs --since 10m -o json";

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
}

fn parse_pattern(s: &str) -> Result<crate::probe::logs::ActivePattern, String> {
    crate::probe::logs::ActivePattern::new(s).map_err(|e| e.to_string())
}

const PER_POD_EXAMPLES: &str = "\
Examples:
  # 10 connections to each ready pod of the namespace's only Service
  kubectl wsaffinity per-pod --connect 10

  # Two pods at a time, the not-ready pods too, a server that does not echo
  kubectl wsaffinity per-pod svc/dev-websocket-server --parallel 2 --all-pods --no-echo

  # Another port and path, held open for 30 s
  kubectl wsaffinity per-pod --port 8080 --path /ws --hold 30s";

#[derive(Debug, Args)]
pub struct PerPodArgs {
    /// svc/NAME, ingress/NAME, deploy/NAME or a Service NAME (default: the namespace's only Service)
    #[arg(value_name = "TARGET", value_parser = parse_target)]
    pub target: Option<TargetSpec>,

    /// WebSocket connections to open to each pod, one port-forward each
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

    /// How long all connections to a pod stay open together, e.g. 2s, 1m
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = config::parse_duration)]
    pub hold: Duration,

    /// Give up on one connection's step (port-forward, handshake, echo, close) after this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_positive_duration)]
    pub timeout: Duration,
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

/// The usage line of the subcommand named in `args` (else the top level).
fn usage_for(args: &[std::ffi::OsString]) -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let sub = args
        .iter()
        .skip(1)
        .find_map(|a| names.iter().find(|n| a.to_str() == Some(n.as_str())));
    match sub.and_then(|n| cmd.find_subcommand_mut(n)) {
        Some(sc) => sc.render_usage().to_string(),
        None => cmd.render_usage().to_string(),
    }
}

fn parse_target(s: &str) -> Result<TargetSpec, String> {
    s.parse()
        .map_err(|e: crate::target::TargetSyntaxError| e.to_string())
}

impl Cli {
    /// Parses `std::env::args_os()`. Usage errors print the usage and exit 2
    /// (`--help`/`--version` exit 0), as clap does.
    pub fn parse_args() -> Cli {
        Self::parse_from_args(std::env::args_os())
    }

    /// The same, from given arguments (for tests and completion). Every
    /// usage error ends with the usage line of the subcommand in question.
    pub fn parse_from_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        // `__complete WORDS...`: every word is data (`-n`, `--help` included),
        // whatever flags it looks like.
        if args.get(1).is_some_and(|a| a == "__complete") {
            args.insert(2, "--".into());
        }
        let result = Self::command()
            .try_get_matches_from(&args)
            .and_then(|mut m| Self::from_arg_matches_mut(&mut m));
        match result {
            Ok(cli) => cli,
            Err(e) => {
                use clap::error::ErrorKind;
                if matches!(
                    e.kind(),
                    ErrorKind::DisplayHelp
                        | ErrorKind::DisplayVersion
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) || e.to_string().contains("Usage:")
                {
                    e.exit()
                }
                let _ = e.print();
                eprintln!("\n{}", usage_for(&args));
                std::process::exit(e.exit_code())
            }
        }
    }

    /// Turns the parsed flags into the validated [`Config`].
    pub fn into_config(self) -> Config {
        let g = self.global;
        let format = match g.output {
            OutputArg::Text => OutputFormat::Text,
            OutputArg::Wide => OutputFormat::Wide,
            OutputArg::Json => OutputFormat::Json,
            OutputArg::Yaml => OutputFormat::Yaml,
        };
        let no_color_env = std::env::var_os("NO_COLOR");
        let color = config::color_enabled(
            g.no_color,
            no_color_env.as_deref(),
            std::io::stdout().is_terminal(),
        );
        let command = match self.command {
            Command::Check(args) => CommandConfig::Check(CheckConfig {
                target: args.target.unwrap_or(TargetSpec::OnlyService),
                explain: args.explain,
            }),
            Command::PerPod(args) => CommandConfig::PerPod(PerPodConfig {
                target: args.target.unwrap_or(TargetSpec::OnlyService),
                connect: args.connect,
                parallel: usize::from(args.parallel),
                all_pods: args.all_pods,
                port: args.port,
                path: args.path,
                echo: !args.no_echo,
                hold: args.hold,
                timeout: args.timeout,
            }),
            Command::Logs(args) => CommandConfig::Logs(crate::probe::logs::LogsConfig {
                pods: match args.selector {
                    Some(sel) => crate::probe::logs::PodSelection::Selector(sel),
                    None => crate::probe::logs::PodSelection::Target(
                        args.target.unwrap_or(TargetSpec::OnlyService),
                    ),
                },
                container: args.container,
                pattern: args.pattern,
                tail: crate::probe::logs::TailLimits {
                    tail_lines: args.tail,
                    limit_bytes: args.limit_bytes,
                    since: args.since,
                },
                max_log_requests: usize::from(args.max_log_requests),
                follow: args.follow.then_some(crate::probe::logs::FollowConfig {
                    duration: args.follow_duration,
                    poll_interval: args.poll_interval,
                }),
            }),
            Command::Spread(args) => {
                CommandConfig::Spread(Box::new(crate::commands::spread::SpreadConfig {
                    target: match &args.target {
                        Some(spread_args::TargetOrUrl::Target(t)) => Some(t.clone()),
                        _ => None,
                    },
                    url: args.url.or(match args.target {
                        Some(spread_args::TargetOrUrl::Url(u)) => Some(u),
                        _ => None,
                    }),
                    settings: crate::probe::url::ClientSettings {
                        clients: args.clients,
                        connect: args.connect,
                        resolve: args.resolve,
                        insecure: args.insecure,
                        headers: args.headers,
                        source_ips: args.source_ip,
                        identity_header: args.identity_header,
                        affinity_cookie: args.affinity_cookie,
                        cookies: !args.no_cookies,
                        timeout: args.timeout,
                        hold: args.hold,
                    },
                    emit: args.emit.map(|e| match e {
                        EmitArg::Artillery => crate::emit::Format::Artillery,
                        EmitArg::K6 => crate::emit::Format::K6,
                        EmitArg::K6Operator => crate::emit::Format::K6Operator,
                    }),
                }))
            }
            Command::Completion(args) => CommandConfig::Completion(match args.shell {
                ShellArg::Bash => crate::completion::ScriptKind::Bash,
                ShellArg::Zsh => crate::completion::ScriptKind::Zsh,
                ShellArg::Fish => crate::completion::ScriptKind::Fish,
                ShellArg::Kubectl => crate::completion::ScriptKind::Kubectl,
            }),
            Command::Complete(args) => CommandConfig::Complete(args.words),
            Command::TestService(args) => {
                CommandConfig::TestService(crate::commands::test_service::TestServiceConfig {
                    target: args.target.unwrap_or(TargetSpec::OnlyService),
                    action: if args.apply {
                        crate::commands::test_service::Action::Apply
                    } else if args.delete {
                        crate::commands::test_service::Action::Delete
                    } else {
                        crate::commands::test_service::Action::Print
                    },
                })
            }
        };
        Config {
            kube: KubeOptions {
                kubeconfig: g.kubeconfig,
                context: g.context,
                namespace: g.namespace,
                // kubectl's "0": no timeout.
                request_timeout: Some(g.request_timeout).filter(|d| !d.is_zero()),
            },
            output: OutputOptions { format, color },
            verbose: g.verbose,
            command,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args)
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn globals_work_after_the_subcommand() {
        let cli = try_parse(&[
            "kubectl-wsaffinity",
            "check",
            "svc/a",
            "-n",
            "dev",
            "-o",
            "json",
            "-vv",
            "--context",
            "c",
        ])
        .expect("parse");
        let cfg = cli.into_config();
        assert_eq!(cfg.kube.namespace.as_deref(), Some("dev"));
        assert_eq!(cfg.kube.context.as_deref(), Some("c"));
        assert_eq!(cfg.output.format, OutputFormat::Json);
        assert_eq!(cfg.verbose, 2);
        let CommandConfig::Check(check) = cfg.command else {
            panic!("not check")
        };
        assert_eq!(check.target, TargetSpec::Service("a".into()));
    }

    #[test]
    fn globals_work_before_the_subcommand() {
        let cli = try_parse(&[
            "kubectl-wsaffinity",
            "--kubeconfig",
            "/k",
            "--request-timeout",
            "5s",
            "check",
        ])
        .expect("parse");
        let cfg = cli.into_config();
        assert_eq!(cfg.kube.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(cfg.kube.request_timeout, Some(Duration::from_secs(5)));
        let CommandConfig::Check(check) = cfg.command else {
            panic!("not check")
        };
        assert_eq!(check.target, TargetSpec::OnlyService);
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            vec!["kubectl-wsaffinity", "check", "--bogus"],
            vec!["kubectl-wsaffinity", "check", "-o", "xml"],
            vec!["kubectl-wsaffinity", "check", "pod/x"],
            vec!["kubectl-wsaffinity", "check", "--request-timeout", "soon"],
            vec!["kubectl-wsaffinity", "nope"],
        ] {
            let err = try_parse(&args).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn usage_for_names_the_subcommand() {
        let args: Vec<std::ffi::OsString> = ["x", "-n", "a", "check", "-o", "xml"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(
            usage_for(&args),
            "Usage: kubectl wsaffinity check [OPTIONS] [TARGET]"
        );
        let args: Vec<std::ffi::OsString> = ["x", "--bogus"].iter().map(Into::into).collect();
        assert!(usage_for(&args).starts_with("Usage: kubectl wsaffinity [OPTIONS] <COMMAND>"));
    }

    /// clap wraps help text at 100 columns; an example command broken over
    /// two lines no longer runs when pasted. Every one must come out whole:
    /// the Examples section reads the same at 100 columns as unwrapped.
    #[test]
    fn example_commands_are_never_wrapped() {
        fn examples(mut cmd: clap::Command, width: usize) -> Vec<String> {
            cmd = cmd.term_width(width).max_term_width(width);
            cmd.build();
            let mut out = vec![examples_of(cmd.render_long_help().to_string())];
            for sub in cmd.get_subcommands_mut() {
                out.push(examples_of(sub.render_long_help().to_string()));
            }
            out
        }
        fn examples_of(help: String) -> String {
            help.split_once("Examples:")
                .map(|(_, e)| e.to_string())
                .unwrap_or_default()
        }
        let normal = examples(Cli::command(), 100);
        let unwrapped = examples(Cli::command(), 10_000);
        assert!(normal.iter().filter(|e| !e.is_empty()).count() >= 6);
        for (n, u) in normal.iter().zip(&unwrapped) {
            assert_eq!(n, u, "an example is wrapped at 100 columns");
        }
    }

    #[test]
    fn usage_names_kubectl_wsaffinity() {
        let help = Cli::command().render_help().to_string();
        assert!(
            help.contains("kubectl wsaffinity [OPTIONS] <COMMAND>"),
            "{help}"
        );
        let mut cmd = Cli::command();
        cmd.build();
        let check = cmd.find_subcommand_mut("check").expect("check");
        let help = check.render_help().to_string();
        assert!(help.contains("kubectl wsaffinity check"), "{help}");
        assert!(help.contains("Examples:"), "{help}");
    }
}
