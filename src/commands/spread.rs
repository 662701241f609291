//! `kubectl wsaffinity spread`: K simulated clients through a URL (usually
//! the Ingress), each connection attributed to a pod, then explained with a
//! `check` snapshot of the target when the cluster can be read.
//!
//! Flow: URL (given, or derived from the target's Ingress) → snapshot
//! (optional with `--url`) → [`run_clients`](crate::probe::url::run_clients) → diagnose → render.
//! Errors (`Err`, exit 2): no URL can be derived, or not one connection
//! succeeded (the first error names the cause).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::client;
use crate::commands::per_pod::EXIT_INTERRUPTED;
use crate::config::{Config, OutputFormat, SpreadConfig};
use crate::diagnose;
use crate::gather;
use crate::probe::cancel::Cancel;
use crate::probe::url::derive::{port_from_resolve, url_from_ingresses};
use crate::probe::url::run_clients_until;
use crate::probe::url::summary::summarize;
use crate::render;
use crate::snapshot::{Observations, Snapshot};
use crate::target::TargetSpec;

/// With `--url`, the cluster is optional: this bounds the attempt to read it.
const OPTIONAL_SNAPSHOT_BUDGET: Duration = Duration::from_secs(5);

pub async fn run(
    config: &Config,
    spread: &SpreadConfig,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let target = spread.target.clone().unwrap_or(TargetSpec::OnlyService);
    if let Some(format) = spread.emit {
        return emit(config, spread, &target, format, out).await;
    }
    let (url, snapshot, ingress, cluster_note) = match &spread.url {
        Some(url) => {
            let budget = config
                .kube
                .request_timeout
                .map_or(OPTIONAL_SNAPSHOT_BUDGET, |t| {
                    t.min(OPTIONAL_SNAPSHOT_BUDGET)
                });
            let snap = match tokio::time::timeout(budget, read_snapshot(config, &target)).await {
                Ok(Ok(s)) if s.service.is_some() => Ok(s),
                Ok(Ok(s)) => Err(format!(
                    "`{}` was not found in namespace {}",
                    s.requested, s.namespace
                )),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", budget.as_secs())),
            };
            match snap {
                Ok(s) => (url.clone(), Some(s), None, None),
                Err(why) => (url.clone(), None, None, Some(why)),
            }
        }
        None => {
            let snap = read_snapshot(config, &target)
                .await
                .context("without --url the URL comes from the target's Ingress, so the cluster must be readable")?;
            let mut derived = url_from_ingresses(&snap).map_err(anyhow::Error::msg)?;
            port_from_resolve(&mut derived.url, &spread.settings.resolve);
            (derived.url, Some(snap), Some(derived.ingress), None)
        }
    };

    let opts = spread.options(url);
    // Ctrl-C stops opening, ends the hold and still closes every connection.
    let (interrupt, cancel) = Cancel::new();
    let on_ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt.cancel();
        }
    });
    let run = run_clients_until(&opts, &cancel).await;
    on_ctrl_c.abort();
    if cancel.is_cancelled() {
        let opened: usize = run.clients.iter().map(|c| c.pods.len()).sum();
        eprintln!("interrupted: closed all {opened} connections that were open");
        return Ok(EXIT_INTERRUPTED);
    }
    let succeeded: usize = run.clients.iter().map(|c| c.pods.len()).sum();
    if succeeded == 0 {
        let first = run
            .clients
            .iter()
            .find_map(|c| c.error.clone())
            .unwrap_or_else(|| "no connection was attempted (--clients or --connect is 0)".into());
        bail!("no connection through {} succeeded: {first}", run.url);
    }

    let known_pods: Vec<String> = snapshot.as_ref().map(ready_pods).unwrap_or_default();
    let spread_summary = summarize(&run, &known_pods);
    let observations = Observations {
        url: Some(run.clone()),
        ..Observations::default()
    };
    let report = match &snapshot {
        Some(s) => diagnose::diagnose(s, &observations, Some(target.to_ref())),
        None => diagnose::diagnose_observations(&observations, None),
    };

    match config.output.format {
        OutputFormat::Json | OutputFormat::Yaml => {
            render::report(out, &report, &config.output, config.verbose > 0)
                .context("writing the report")?;
        }
        OutputFormat::Text | OutputFormat::Wide => {
            render::spread::write(
                out,
                &run,
                &spread_summary,
                ingress.as_deref(),
                config.output.color,
            )
            .context("writing the report")?;
            if let (None, Some(why)) = (&snapshot, &cluster_note) {
                let note = format!(
                    "Cluster not read ({why}): the findings below come from the test alone. Pass TARGET and -n/--context to have their causes named."
                );
                writeln!(out).context("writing the report")?;
                for line in crate::render::table::wrap(&note, crate::render::table::WIDTH - 2) {
                    writeln!(out, "  {line}").context("writing the report")?;
                }
            }
            writeln!(out).context("writing the report")?;
            render::report(out, &report, &config.output, config.verbose > 0)
                .context("writing the report")?;
        }
    }
    out.flush().context("writing the report")?;
    Ok(report.exit_code())
}

/// `--emit`: the scenario as a file for another tool; nothing connects. The
/// cluster is read only when the URL must come from the target's Ingress.
async fn emit(
    config: &Config,
    spread: &SpreadConfig,
    target: &TargetSpec,
    format: crate::emit::Format,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let url = match &spread.url {
        Some(url) => url.clone(),
        None => {
            let snap = read_snapshot(config, target)
                .await
                .context("without --url the URL comes from the target's Ingress, so the cluster must be readable")?;
            url_from_ingresses(&snap).map_err(anyhow::Error::msg)?.url
        }
    };
    let opts = spread.options(url);
    for warning in crate::emit::warnings(format, &opts) {
        eprintln!("warning: {warning}");
    }
    let text = crate::emit::render(format, &opts, config.kube.namespace.as_deref());
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the script")?;
    Ok(0)
}

async fn read_snapshot(config: &Config, target: &TargetSpec) -> anyhow::Result<Snapshot> {
    let kube = client::connect(&config.kube).await?;
    Ok(gather::snapshot(&kube, target).await?)
}

/// Names of the ready endpoint pods, for the zero columns of the matrix.
fn ready_pods(s: &Snapshot) -> Vec<String> {
    let mut v: Vec<String> = s
        .endpoint_slices
        .iter()
        .flat_map(|sl| sl.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.target_ref.as_ref().and_then(|t| t.name.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}
