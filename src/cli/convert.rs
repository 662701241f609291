//! Flags → the validated [`Config`]: the one place that reads both.

use std::io::IsTerminal;

use super::args::{EmitArg, ShellArg, spread_args};
use super::{Cli, Command, OutputArg};
use crate::config::{
    self, Action, CheckConfig, CommandConfig, Config, KubeOptions, OutputFormat, OutputOptions,
    PerPodConfig, ScriptKind, SpreadConfig, TestServiceConfig,
};
use crate::target::TargetSpec;

impl Cli {
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
                // No follow in `per-pod`: the interval is never used.
                metric: args.metrics.source(crate::probe::metrics::DEFAULT_INTERVAL),
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
                metric: args.metrics.source(args.interval),
            }),
            Command::Spread(args) => CommandConfig::Spread(Box::new(SpreadConfig {
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
                    seed_cookies: args.seed_cookies,
                    timeout: args.timeout,
                    hold: args.hold,
                },
                emit: args.emit.map(|e| match e {
                    EmitArg::Artillery => crate::emit::Format::Artillery,
                    EmitArg::K6 => crate::emit::Format::K6,
                    EmitArg::K6Operator => crate::emit::Format::K6Operator,
                }),
            })),
            Command::Completion(args) => CommandConfig::Completion(match args.shell {
                ShellArg::Bash => ScriptKind::Bash,
                ShellArg::Zsh => ScriptKind::Zsh,
                ShellArg::Fish => ScriptKind::Fish,
                ShellArg::Kubectl => ScriptKind::Kubectl,
            }),
            Command::Complete(args) => CommandConfig::Complete(args.words),
            Command::TestService(args) => CommandConfig::TestService(TestServiceConfig {
                target: args.target.unwrap_or(TargetSpec::OnlyService),
                action: if args.apply {
                    Action::Apply
                } else if args.delete {
                    Action::Delete
                } else {
                    Action::Print
                },
            }),
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
