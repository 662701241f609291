//! Command-line definitions (clap derive). kubectl-style global flags work
//! before or after the subcommand. Clap types end here: [`Cli::into_config`]
//! turns them into [`crate::config::Config`].
//!
//! - `mod.rs`: the top level ([`Cli`], the global flags, the subcommand list)
//!   and parsing with usage errors;
//! - `args.rs`: each subcommand's flags and value parsers;
//! - `help.rs`: the `Examples:` text of every `--help`;
//! - `convert.rs`: flags → [`crate::config::Config`].

mod args;
mod convert;
mod help;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub use self::args::{
    CheckArgs, CompleteArgs, CompletionArgs, EmitArg, LogsArgs, PerPodArgs, ShellArg, SpreadArgs,
    TestServiceArgs, spread_args,
};
use self::help::{
    CHECK_EXAMPLES, COMPLETION_EXAMPLES, LOGS_EXAMPLES, PER_POD_EXAMPLES, ROOT_EXAMPLES,
    SPREAD_EXAMPLES, TEST_SERVICE_EXAMPLES,
};
use crate::config;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommandConfig, OutputFormat};
    use crate::target::TargetSpec;

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
