//! `kubectl wsaffinity per-pod`: gather → port-forward every pod → diagnose → render.
//!
//! Reads the target once (the same bounded gather as `check`: no LIST per
//! pod), tests each pod with `--connect` WebSocket connections over its own
//! port-forwards, and reports per pod. Ctrl-C closes every connection and
//! joins every forwarder before exiting (130); a second Ctrl-C exits at once.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::client;
use crate::config::{Config, PerPodConfig};
use crate::gather;
use crate::gather::error::GatherError;
use crate::probe::logs::{ActivePattern, DEFAULT_PATTERN};
use crate::probe::metrics::MetricSource;
use crate::probe::per_pod::{
    self, ActiveReader, KubeActiveReader, MetricActiveReader, NoProgress, PerPodOptions, PodTarget,
    Progress,
};
use crate::probe::portforward::Cancel;
use crate::probe::websocket::ClientOptions;
use crate::render;
use crate::report::Report;
use crate::snapshot::{Observations, PodProbe};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

pub async fn run(config: &Config, pp: &PerPodConfig, out: &mut dyn Write) -> anyhow::Result<i32> {
    let kube = client::connect(&config.kube).await?;
    let snapshot = gather::snapshot(&kube, &pp.target).await?;
    let targets = per_pod::select_targets(&snapshot, pp.all_pods, pp.port);

    let api: Api<Pod> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let reader: Box<dyn ActiveReader> = match &pp.metric {
        Some(source) => metric_reader(&kube, &api, &snapshot.pods, &targets, source).await?,
        None => Box::new(KubeActiveReader::new(
            kube.client.clone(),
            kube.namespace.clone(),
            ActivePattern::new(DEFAULT_PATTERN).context("the Active connections pattern")?,
        )),
    };
    let opts = options(pp);

    let show_progress = config.output.format.is_text()
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    let progress: Box<dyn Progress> = if show_progress {
        Box::new(render::per_pod::ProgressDisplay::new(
            &targets,
            opts.connect,
        ))
    } else {
        Box::new(NoProgress)
    };

    let (cancel_handle, cancel) = Cancel::new();
    let (probes, interrupted): (Vec<PodProbe>, bool) = {
        let probes = per_pod::run(
            api,
            targets,
            &opts,
            reader.as_ref(),
            progress.as_ref(),
            &cancel,
        );
        tokio::pin!(probes);
        tokio::select! {
            p = &mut probes => (p, false),
            _ = tokio::signal::ctrl_c() => {
                cancel_handle.cancel();
                // Every step is bounded by --timeout; a second Ctrl-C gives up.
                tokio::select! {
                    p = &mut probes => (p, true),
                    _ = tokio::signal::ctrl_c() => return Ok(EXIT_INTERRUPTED),
                }
            }
        }
    };
    drop(progress);
    if !interrupted {
        all_forbidden(&kube, &probes)?;
    }

    let observations = Observations {
        logs: Some(per_pod::log_observations(&probes, reader.as_ref())),
        per_pod: Some(probes),
        active_source: pp.metric.as_ref().map(MetricSource::active_source),
        ..Observations::default()
    };
    let mut report = crate::diagnose::diagnose(&snapshot, &observations, Some(pp.target.to_ref()));
    keep_per_pod_findings(&mut report);

    render::per_pod::report(out, &report, &config.output, pp.connect, interrupted)
        .context("writing the report")?;
    out.flush().context("writing the report")?;
    Ok(exit_code(&report, interrupted))
}

/// Pods read at once by `--metric`'s check before the test.
const METRIC_READS: usize = 10;

/// `--metric`: the gauge reader for the pods under test. Before any
/// connection is opened, every pod's gauge is read once, so that a pod
/// naming no metrics port, a metric no pod exposes, or metrics no pod
/// serves are the same usage errors (exit 2) as in `logs --metric`.
async fn metric_reader(
    kube: &client::Kube,
    api: &Api<Pod>,
    pods: &[Pod],
    targets: &[PodTarget],
    source: &MetricSource,
) -> anyhow::Result<Box<dyn ActiveReader>> {
    let tested: Vec<Pod> = pods
        .iter()
        .filter(|p| {
            targets
                .iter()
                .any(|t| t.port.is_ok() && p.metadata.name.as_deref() == Some(t.name.as_str()))
        })
        .cloned()
        .collect();
    let reader = MetricActiveReader::new(api.clone(), source.clone(), &tested)?;
    crate::probe::metrics::read::read_all(
        &kube.client,
        &kube.namespace,
        &tested,
        source,
        METRIC_READS,
    )
    .await?;
    Ok(Box::new(reader))
}

/// No pod could be reached because every port-forward answered 403: a
/// permission problem (exit 2, naming what to grant), not a pod finding.
fn all_forbidden(kube: &client::Kube, probes: &[PodProbe]) -> Result<(), GatherError> {
    let forbidden = |p: &PodProbe| {
        p.ok == 0
            && p.error
                .as_deref()
                .is_some_and(gather::error::is_forbidden_message)
    };
    match probes.first() {
        Some(first) if probes.iter().all(forbidden) => Err(GatherError::Forbidden {
            verb: "create",
            resource: "pods/portforward".to_string(),
            namespace: kube.namespace.clone(),
            message: first.error.clone().unwrap_or_default(),
        }),
        _ => Ok(()),
    }
}

fn options(pp: &PerPodConfig) -> PerPodOptions {
    PerPodOptions {
        connect: pp.connect,
        parallel: pp.parallel,
        hold: pp.hold,
        client: ClientOptions {
            path: pp.path.clone(),
            echo: pp.echo,
            timeout: pp.timeout,
            ..ClientOptions::default()
        },
    }
}

/// `per-pod` reports on the pods: endpoint health (WSA001–WSA005) and what
/// the port-forward test saw (WSA060–WSA063). Routing and balance findings
/// are `check`'s and `spread`'s.
fn keep_per_pod_findings(report: &mut Report) {
    const CODES: [&str; 9] = [
        "WSA001", "WSA002", "WSA003", "WSA004", "WSA005", "WSA060", "WSA061", "WSA062", "WSA063",
    ];
    report.findings.retain(|f| CODES.contains(&f.code));
}

/// 130 after Ctrl-C; 1 when any pod failed or any finding is an error; else 0.
pub fn exit_code(report: &Report, interrupted: bool) -> i32 {
    if interrupted {
        return EXIT_INTERRUPTED;
    }
    let pod_failed = report
        .observations
        .per_pod
        .iter()
        .flatten()
        .any(|p| p.ok < p.attempted || p.error.is_some());
    if pod_failed { 1 } else { report.exit_code() }
}
