//! The validated configuration every command runs with.
//!
//! `cli` turns clap's raw arguments into these types; nothing past this point
//! sees a flag. Every subcommand's validated config lives here, below the
//! commands that use it: this file takes nothing from `cli`, `commands/` or
//! `completion`. Pure parsing helpers (`--request-timeout`, colour choice)
//! live here so they can be unit-tested without clap.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use crate::probe::url::{ClientSettings, UrlOptions, WsUrl};
use crate::target::TargetSpec;

/// Everything one invocation needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub kube: KubeOptions,
    pub output: OutputOptions,
    /// `-v` count: 0 quiet, 1 API calls, 2 kube-rs debug, 3 trace.
    pub verbose: u8,
    pub command: CommandConfig,
}

/// Which cluster, as user, in which namespace (the kubectl flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeOptions {
    /// `--kubeconfig PATH`. Without it `KUBECONFIG` (a list of files) or `~/.kube/config` is read.
    pub kubeconfig: Option<PathBuf>,
    /// `--context NAME`; default: the kubeconfig's current-context.
    pub context: Option<String>,
    /// `-n NAMESPACE`; default: the context's namespace, else `default`.
    pub namespace: Option<String>,
    /// `--request-timeout`; `None` = no timeout (kubectl's "0").
    pub request_timeout: Option<Duration>,
}

/// How the result is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    pub format: OutputFormat,
    /// ANSI colours: on a TTY only, never with `--no-color` or `NO_COLOR`.
    pub color: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Text,
    /// Text with extra columns.
    Wide,
    Json,
    Yaml,
}

impl OutputFormat {
    pub fn is_text(self) -> bool {
        matches!(self, OutputFormat::Text | OutputFormat::Wide)
    }
}

/// One subcommand and its own options.
#[derive(Clone, Debug)]
pub enum CommandConfig {
    Check(CheckConfig),
    PerPod(PerPodConfig),
    /// `logs`: the engine's own validated config (compiled `--pattern`, limits).
    Logs(crate::probe::logs::LogsConfig),
    Spread(Box<SpreadConfig>),
    TestService(TestServiceConfig),
    /// `completion SHELL`: print a completion script.
    Completion(ScriptKind),
    /// `__complete WORDS...`: candidates for the words typed after `kubectl wsaffinity`.
    Complete(Vec<String>),
}

impl CommandConfig {
    /// The subcommand as typed after `kubectl wsaffinity`.
    pub fn name(&self) -> &'static str {
        match self {
            CommandConfig::Check(_) => "check",
            CommandConfig::PerPod(_) => "per-pod",
            CommandConfig::Logs(_) => "logs",
            CommandConfig::Spread(_) => "spread",
            CommandConfig::TestService(_) => "test-service",
            CommandConfig::Completion(_) => "completion",
            CommandConfig::Complete(_) => "__complete",
        }
    }
}

/// `per-pod`: test each pod over port-forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerPodConfig {
    pub target: TargetSpec,
    /// `--connect`: WebSocket connections per pod.
    pub connect: u32,
    /// `--parallel`: pods tested at once.
    pub parallel: usize,
    /// `--all-pods`: also the pods that are not ready endpoints.
    pub all_pods: bool,
    /// `--port`: pod port; default: the Service's targetPort resolved per pod.
    pub port: Option<u16>,
    /// `--path`: WebSocket request path.
    pub path: String,
    /// `false` with `--no-echo`.
    pub echo: bool,
    /// `--hold`: how long the connections stay open together.
    pub hold: Duration,
    /// `--timeout`: limit for each step of one connection.
    pub timeout: Duration,
    /// `--metric`: cross-check with this gauge instead of the logged count.
    pub metric: Option<crate::probe::metrics::MetricSource>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    pub target: TargetSpec,
    /// `--explain CODE`: print the long explanation and touch no cluster.
    pub explain: Option<String>,
}

/// The validated `spread` options.
#[derive(Clone, Debug)]
pub struct SpreadConfig {
    /// `None`: the namespace's only Service.
    pub target: Option<TargetSpec>,
    /// `None`: derived from the target's Ingress.
    pub url: Option<WsUrl>,
    /// What each simulated client does.
    pub settings: ClientSettings,
    /// `--emit`: print this tool's file instead of running the clients.
    pub emit: Option<crate::emit::Format>,
}

impl SpreadConfig {
    /// The engine options for `url`.
    pub fn options(&self, url: WsUrl) -> UrlOptions {
        UrlOptions::with_settings(url, self.settings.clone())
    }
}

/// What `test-service` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Print the manifest (default): no write.
    Print,
    /// `--apply`: create it.
    Apply,
    /// `--delete`: remove it (only if it carries the label).
    Delete,
}

/// `test-service`: a copy of the target Service without session affinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestServiceConfig {
    pub target: TargetSpec,
    pub action: Action,
}

/// Which script `completion` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptKind {
    Bash,
    Zsh,
    Fish,
    /// The `kubectl_complete-wsaffinity` helper for kubectl's plugin completion.
    Kubectl,
}

/// Parses a kubectl-style `--request-timeout`: `0` (no timeout), a bare
/// number of seconds, or one or more `<number><unit>` parts with units
/// `ms`, `s`, `m`, `h` (`1m30s`, `500ms`, `1.5s`). Zero is returned as is.
pub fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| format!("{e}; 0 means no timeout"))
}

/// A duration that must be more than zero (`--timeout`).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` must be more than 0"));
    }
    Ok(d)
}

/// Parses `5s`, `1m`, `1h30m`, `250ms`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let hint = || {
        format!(
            "invalid duration `{s}`: use a number of seconds or a value like 5s, 1m, 1h30m, 500ms (at most a year)"
        )
    };
    if s.is_empty() {
        return Err(hint());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| hint());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(hint)?;
        if num_len == 0 {
            return Err(hint());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| hint())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(hint()),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 365.0 * 24.0 * 3600.0 {
        return Err(hint());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Colour decision: only on a terminal, never with `--no-color`, never when
/// `NO_COLOR` is set to a non-empty value (no-color.org).
pub fn color_enabled(
    no_color_flag: bool,
    no_color_env: Option<&OsStr>,
    stdout_is_tty: bool,
) -> bool {
    let env_off = no_color_env.is_some_and(|v| !v.is_empty());
    stdout_is_tty && !no_color_flag && !env_off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_timeout() {
        assert_eq!(parse_request_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_request_timeout("0s"), Ok(Duration::ZERO));
        let err = parse_request_timeout("soon").expect_err("soon");
        assert!(err.ends_with("; 0 means no timeout"), "{err}");
    }

    #[test]
    fn kubectl_durations_parse() {
        for (text, want) in [
            ("5", Duration::from_secs(5)),
            ("5s", Duration::from_secs(5)),
            ("1m", Duration::from_secs(60)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_rejected_with_a_hint() {
        for bad in [
            "",
            "s",
            "5x",
            "-1",
            "5 s",
            "abc",
            "1..2s",
            "m5",
            "99999999999s",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("5s, 1m"), "{bad}: {err}");
            // Said only where 0 means that (--request-timeout), not for --hold.
            assert!(!err.contains("no timeout"), "{bad}: {err}");
        }
        assert_eq!(
            parse_positive_duration("0"),
            Err("`0` must be more than 0".to_string())
        );
    }

    #[test]
    fn colour_only_on_tty_without_opt_out() {
        assert!(color_enabled(false, None, true));
        assert!(!color_enabled(false, None, false));
        assert!(!color_enabled(true, None, true));
        assert!(!color_enabled(false, Some(OsStr::new("1")), true));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(color_enabled(false, Some(OsStr::new("")), true));
    }
}
