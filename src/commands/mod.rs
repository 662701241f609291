//! One module per subcommand: each `run` takes the validated [`Config`],
//! writes to `out`, and returns the exit code (0 ok, 1 an `error` finding).
//! Errors (`Err`) are usage or connection problems: the caller exits 2.

pub mod check;
pub mod logs;
pub mod per_pod;
pub mod spread;
pub mod test_service;

use std::io::Write;

use crate::config::{CommandConfig, Config};

/// Runs the chosen subcommand.
pub async fn run(config: &Config, out: &mut dyn Write) -> anyhow::Result<i32> {
    run_command(config, out)
        .await
        .map_err(|err| advise_for_command(err, config))
}

async fn run_command(config: &Config, out: &mut dyn Write) -> anyhow::Result<i32> {
    match &config.command {
        CommandConfig::Check(check) => check::run(config, check, out).await,
        CommandConfig::PerPod(pp) => per_pod::run(config, pp, out).await,
        CommandConfig::Logs(logs) => logs::run(config, logs, out).await,
        CommandConfig::Spread(spread) => spread::run(config, spread, out).await,
        CommandConfig::TestService(ts) => test_service::run(config, ts, out).await,
        CommandConfig::Completion(kind) => {
            crate::completion::write_script(*kind, out)?;
            Ok(0)
        }
        CommandConfig::Complete(words) => {
            crate::completion::complete(&config.kube, words, out).await?;
            Ok(0)
        }
    }
}

/// A target that did not resolve to one Service: its advice names the
/// subcommand that was run (and the `-n` given), so it runs as printed.
fn advise_for_command(err: anyhow::Error, config: &Config) -> anyhow::Error {
    let resolve = err.chain().find_map(|e| {
        e.downcast_ref::<crate::target::ResolveError>()
            .or_else(|| match e.downcast_ref::<crate::gather::GatherError>() {
                Some(crate::gather::GatherError::Resolve(r)) => Some(r),
                _ => None,
            })
    });
    match resolve {
        Some(r) => {
            anyhow::anyhow!(r.message(config.command.name(), config.kube.namespace.as_deref()))
        }
        None => err,
    }
}

/// Is this error (anywhere in its chain) a closed stdout (`| head`)? Not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error for the user: each cause once. Our messages already quote their
/// source, so a cause whose text is already in the message is not repeated.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {0}. Pass --kubeconfig PATH")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::from(Outer(io)).context("loading");
        assert_eq!(
            error_message(&err),
            "loading: cannot read x: no such file. Pass --kubeconfig PATH"
        );
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let err = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
