//! `kubectl wsaffinity logs`: each pod's latest `Active connections: N`,
//! once (table + totals + WSA063/WSA064) or live with `--follow`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::client::{self, Kube};
use crate::config::{Config, OutputFormat};
use crate::diagnose;
use crate::gather;
use crate::probe::logs::follow::{FollowOptions, PodSource};
use crate::probe::logs::pods::{ContainerChoice, LogTarget, log_targets};
use crate::probe::logs::{
    ActivePattern, LogsConfig, PodSelection, TailLimits, follow, read_all, read_tail,
};
use crate::render;
use crate::render::logs::{FollowPrinter, LogsTextOptions};
use crate::report::Report;
use crate::snapshot::{ActiveSource, Observations, PodLog, Snapshot, TargetRef};

/// The pods to read, found once.
struct Found {
    snapshot: Snapshot,
    /// The label selector the pods were listed with.
    selector: Option<String>,
    target: Option<TargetRef>,
}

pub async fn run(config: &Config, logs: &LogsConfig, out: &mut dyn Write) -> anyhow::Result<i32> {
    if logs.follow.is_some() && !config.output.format.is_text() {
        bail!(
            "--follow prints a live table or plain lines; -o json/yaml is only for the one-shot mode (drop --follow)"
        );
    }
    let kube = client::connect(&config.kube).await?;
    let found = find_pods(&kube, &logs.pods).await?;
    if let PodSelection::Target(_) = logs.pods
        && found.snapshot.service.is_none()
    {
        return target_missing(config, &found, out);
    }
    let Some(selector) = found.selector.clone() else {
        bail!(
            "{} has no pod selector, so it has no pods whose logs could be read; pass -l SELECTOR to pick the pods",
            found.snapshot.requested
        );
    };
    if let Some(name) = logs.container.as_deref() {
        let (pods_of, default) = match &logs.pods {
            PodSelection::Target(_) => (
                format!("the pods of {}", found.snapshot.requested),
                "the container serving the Service's port",
            ),
            PodSelection::Selector(sel) => (
                format!("the pods matching -l {sel}"),
                "each pod's default container",
            ),
        };
        if let Some(have) = containers_without(&found.snapshot.pods, name) {
            bail!(
                "container `{name}` is in none of {pods_of}: {have}. Pass one of them with -c/--container, or drop -c to read {default}"
            );
        }
    }
    let choice = ContainerChoice::new(logs.container.as_deref(), found.snapshot.service.as_ref());
    match &logs.follow {
        Some(f) if let Some(source) = &logs.metric => {
            // Fail fast (exit 2) when no pod gives a value, before following.
            crate::probe::metrics::read::read_all(
                &kube.client,
                &kube.namespace,
                &found.snapshot.pods,
                source,
                logs.max_log_requests,
            )
            .await?;
            let tty = std::io::stdout().is_terminal();
            let mut printer = FollowPrinter::new(tty, config.output.color);
            let mut write_error: Option<std::io::Error> = None;
            let (stop_tx, shutdown) = follow_shutdown(f.duration);
            let mut stop_tx = Some(stop_tx);
            crate::probe::metrics::follow::follow(
                &kube.client,
                &kube.namespace,
                &selector,
                source,
                logs.max_log_requests,
                |event, rows| {
                    if write_error.is_none()
                        && let Err(e) = printer.event(out, event, rows, jiff::Timestamp::now())
                    {
                        write_error = Some(e);
                        if let Some(tx) = stop_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                },
                shutdown,
            )
            .await;
            match write_error {
                Some(e) => Err(anyhow::Error::from(e).context("writing the table")),
                None => Ok(0),
            }
        }
        Some(f) => {
            let targets = log_targets(&found.snapshot.pods, &choice);
            check_log_access(&kube, &targets, &logs.pattern, logs.max_log_requests).await?;
            let source = PodSource {
                namespace: kube.namespace.clone(),
                selector,
                container: choice,
            };
            let opts = FollowOptions {
                poll_interval: f.poll_interval,
                max_streams: logs.max_log_requests,
                tail: logs.tail,
                ..FollowOptions::default()
            };
            let tty = std::io::stdout().is_terminal();
            run_follow(
                &kube,
                &source,
                logs,
                &opts,
                f.duration,
                tty,
                config.output.color,
                out,
            )
            .await
        }
        None => one_shot(config, logs, &kube, found, &choice, out).await,
    }
}

/// `-c NAME` that no listed pod has is a usage error (exit 2): this names the
/// containers the pods do have ("its 2 pods have `a`, `b`"). `None` when a
/// pod has it, or when there is no pod to compare with. (A name only some
/// pods have is each other pod's read error.)
fn containers_without(pods: &[Pod], name: &str) -> Option<String> {
    let mut listed: Vec<(String, Vec<String>)> = Vec::new();
    for pod in pods {
        let names: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| {
                let main = s.containers.iter().map(|c| c.name.clone());
                let init = s.init_containers.iter().flatten().map(|c| c.name.clone());
                let ephemeral = s
                    .ephemeral_containers
                    .iter()
                    .flatten()
                    .map(|c| c.name.clone());
                main.chain(init).chain(ephemeral).collect::<Vec<_>>()
            })
            .collect();
        if names.iter().any(|n| n == name) {
            return None;
        }
        listed.push((pod.metadata.name.clone().unwrap_or_default(), names));
    }
    if listed.is_empty() {
        return None;
    }
    // Pods of one Deployment share their containers: say them once.
    let first = &listed[0].1;
    let have = if listed.len() > 1 && listed.iter().all(|(_, names)| names == first) {
        format!("all {} have {}", listed.len(), diagnose::names(first))
    } else {
        listed
            .iter()
            .map(|(pod, names)| format!("pod `{pod}` has {}", diagnose::names(names)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some(have)
}

/// Every pod's log answered 403: a permission problem, not a finding (exit 2,
/// naming what to grant). Some pods readable and others not stays per pod.
fn all_forbidden(kube: &Kube, pod_logs: &[PodLog]) -> Result<(), gather::error::GatherError> {
    let mut errors = pod_logs.iter().map(|l| l.error.as_deref());
    let first = match errors.next() {
        Some(Some(e)) if gather::error::is_forbidden_message(e) => e,
        _ => return Ok(()),
    };
    if errors.all(|e| e.is_some_and(gather::error::is_forbidden_message)) {
        return Err(logs_forbidden(kube, first));
    }
    Ok(())
}

/// The exit-2 error naming `get pods/log` in the namespace.
fn logs_forbidden(kube: &Kube, message: &str) -> gather::error::GatherError {
    gather::error::GatherError::Forbidden {
        verb: "get",
        resource: "pods/log".to_string(),
        namespace: kube.namespace.clone(),
        message: message.to_string(),
    }
}

/// Before `--follow` starts: the same check as [`all_forbidden`], so a user
/// who may not read pod logs gets exit 2 rather than a table of per-pod
/// errors that never ends. Each pod costs one GET with `tailLines=1` and
/// `limitBytes=1` (the cheapest read that proves access; the body is
/// discarded). The first pod is read alone, so the usual case (allowed) is
/// one request; only while the answers are 403 are the others read, at most
/// `--max-log-requests` at once, stopping at the first that is not (the
/// requests still in flight are dropped with the stream, none outlives this
/// call). A Pending pod, or any error other than 403, is not a permission
/// problem: the follow starts and shows it per pod, as one-shot mode does.
async fn check_log_access(
    kube: &Kube,
    targets: &[LogTarget],
    pattern: &ActivePattern,
    max_concurrent: usize,
) -> Result<(), gather::error::GatherError> {
    use futures::StreamExt;
    let probe = TailLimits {
        tail_lines: 1,
        limit_bytes: 1,
        since: None,
    };
    // The error of one pod's read, if any (tailLines=1: a single request).
    let read = |t: &LogTarget| {
        let client = kube.client.clone();
        let namespace = kube.namespace.clone();
        let t = t.clone();
        async move {
            match t.not_loggable {
                Some(why) => Some(why),
                None => read_tail(
                    &client,
                    &namespace,
                    &t.pod,
                    t.container.as_deref(),
                    pattern,
                    probe,
                )
                .await
                .err(),
            }
        }
    };
    let forbidden = |e: &Option<String>| {
        e.as_deref()
            .is_some_and(gather::error::is_forbidden_message)
    };
    let Some((first, rest)) = targets.split_first() else {
        return Ok(());
    };
    let first_error = read(first).await;
    if !forbidden(&first_error) {
        return Ok(());
    }
    let mut others = futures::stream::iter(rest)
        .map(read)
        .buffer_unordered(max_concurrent.max(1));
    while let Some(error) = others.next().await {
        if !forbidden(&error) {
            return Ok(());
        }
    }
    Err(logs_forbidden(
        kube,
        first_error.as_deref().unwrap_or_default(),
    ))
}

async fn one_shot(
    config: &Config,
    logs: &LogsConfig,
    kube: &Kube,
    found: Found,
    choice: &ContainerChoice,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let targets = log_targets(&found.snapshot.pods, choice);
    let report = match &logs.metric {
        Some(source) => {
            let pod_logs = crate::probe::metrics::read::read_all(
                &kube.client,
                &kube.namespace,
                &found.snapshot.pods,
                source,
                logs.max_log_requests,
            )
            .await?;
            build_report_from(&found, pod_logs, Some(source.active_source()))
        }
        None => {
            let pod_logs = read_all(
                &kube.client,
                &kube.namespace,
                &targets,
                &logs.pattern,
                logs.tail,
                logs.max_log_requests,
            )
            .await;
            all_forbidden(kube, &pod_logs)?;
            none_read(&targets, &pod_logs)?;
            build_report(&found, pod_logs)
        }
    };
    let logs_read = report.observations.logs.as_deref().unwrap_or(&[]);
    match config.output.format {
        OutputFormat::Json | OutputFormat::Yaml => {
            render::report(out, &report, &config.output, false).context("writing the report")?
        }
        OutputFormat::Text | OutputFormat::Wide => {
            let since = logs
                .tail
                .since
                .map(|d| format!(", --since {}s", d.as_secs()))
                .unwrap_or_default();
            let hint = format!("no match in the last {} lines{since}", logs.tail.tail_lines);
            let opts = LogsTextOptions {
                color: config.output.color,
                wide: config.output.format == OutputFormat::Wide,
            };
            render::logs::write(out, logs_read, &[], &hint, &opts, jiff::Timestamp::now())
                .context("writing the table")?;
            // The verdict and the findings, laid out as `check` lays them out.
            writeln!(out).context("writing the report")?;
            let rest = Report {
                service: None,
                ..report.clone()
            };
            let text = render::text::TextOptions {
                wide: opts.wide,
                color: opts.color,
                show_skipped: false,
            };
            render::text::write(out, &rest, &text).context("writing the report")?
        }
    }
    out.flush().context("writing the report")?;
    // Exit codes per DESIGN: 1 only for an error finding. A pod whose log
    // could not be read is its WSA063 note (with the API's text); a run in
    // which no log could be read at all has already returned exit 2.
    Ok(report.exit_code())
}

/// No pod's log could be read (every request that was made failed): a
/// connection problem, exit 2, naming each error once. Pods that have no log
/// yet (Pending) are not failures; with none read, there is nothing to
/// compare and the run goes on to say so.
fn none_read(targets: &[LogTarget], pod_logs: &[PodLog]) -> anyhow::Result<()> {
    let asked: Vec<&PodLog> = pod_logs
        .iter()
        .filter(|l| {
            targets
                .iter()
                .any(|t| t.pod == l.pod && t.not_loggable.is_none())
        })
        .collect();
    if asked.is_empty() || asked.iter().any(|l| l.error.is_none()) {
        return Ok(());
    }
    // One entry per distinct error, with the pods that got it.
    let mut errors: Vec<(&str, Vec<String>)> = Vec::new();
    for l in &asked {
        let e = l.error.as_deref().unwrap_or_default();
        match errors.iter_mut().find(|(text, _)| *text == e) {
            Some((_, pods)) => pods.push(l.pod.clone()),
            None => errors.push((e, vec![l.pod.clone()])),
        }
    }
    let each: Vec<String> = errors
        .iter()
        .map(|(e, pods)| format!("{}: {e}", diagnose::names(pods)))
        .collect();
    bail!(
        "no pod's log could be read ({}). Check the pods with `kubectl get pods` and retry; -v logs each request",
        each.join("; ")
    )
}

/// The Report of a one-shot run: the logs as observations, the findings
/// about them (WSA063, WSA064) and the verdict from the diagnose engine.
/// With a Service (a target, named or the namespace's only one) also its
/// facts, endpoints and paths, and the verdict weighs its routing too; the
/// target names the Service it resolved to. With `-l` there is no Service:
/// the verdict is about the counts alone.
fn build_report(found: &Found, pod_logs: Vec<PodLog>) -> Report {
    build_report_from(found, pod_logs, None)
}

fn build_report_from(found: &Found, pod_logs: Vec<PodLog>, source: Option<ActiveSource>) -> Report {
    let observations = Observations {
        logs: Some(pod_logs),
        active_source: source,
        ..Default::default()
    };
    let mut report = diagnose_logs(&found.snapshot, &observations, found.target.clone());
    report.findings.retain(|f| LOG_CODES.contains(&f.code));
    if found.snapshot.service.is_none() {
        // The `-l` stand-in Service is no fact about the cluster: keep only
        // the counts' findings and verdict.
        report.service = None;
        report.endpoints.clear();
        report.routes.clear();
        report.paths.clear();
        report.skipped.clear();
        report.target = found.target.clone();
    }
    report
}

/// Runs the diagnose engine over the snapshot and the logs; the findings
/// about the logged counts (WSA063 no line, WSA064 uneven) are kept. With
/// `-l` there is no Service: the rules run against a stand-in named after
/// the selector and without a spec, so they see the same logs and the
/// verdict knows that no routing was read.
fn diagnose_logs(
    snapshot: &Snapshot,
    observations: &Observations,
    target: Option<TargetRef>,
) -> Report {
    match &snapshot.service {
        Some(_) => diagnose::diagnose(snapshot, observations, target),
        None => {
            let mut snap = snapshot.clone();
            snap.service = Some(Service {
                metadata: ObjectMeta {
                    name: Some(snapshot.requested.clone()),
                    namespace: Some(snapshot.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            });
            diagnose::diagnose(&snap, observations, None)
        }
    }
}

/// The catalog codes `logs` reports.
const LOG_CODES: &[&str] = &["WSA063", "WSA064"];

/// The target does not exist: the diagnose engine's WSA001 (with close names).
fn target_missing(config: &Config, found: &Found, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut report = diagnose::diagnose(
        &found.snapshot,
        &Observations::default(),
        found.target.clone(),
    );
    report.findings.retain(|f| f.code == "WSA001");
    match config.output.format {
        OutputFormat::Json | OutputFormat::Yaml => {
            render::report(out, &report, &config.output, false)
        }
        OutputFormat::Text | OutputFormat::Wide => {
            let opts = LogsTextOptions {
                color: config.output.color,
                wide: false,
            };
            render::logs::findings(out, &report.findings, &opts)
        }
    }
    .context("writing the report")?;
    out.flush().context("writing the report")?;
    Ok(report.exit_code().max(1))
}

/// Resolves the pods: the target's Service and its selector (a GET and a
/// LIST), or the pods of `-l` (one LIST).
async fn find_pods(kube: &Kube, selection: &PodSelection) -> anyhow::Result<Found> {
    match selection {
        PodSelection::Selector(sel) => {
            let snapshot = Snapshot {
                namespace: kube.namespace.clone(),
                requested: format!("pods -l {sel}"),
                pods: gather::list_pods(kube, Some(sel)).await?,
                ..Default::default()
            };
            Ok(Found {
                snapshot,
                selector: Some(sel.clone()),
                target: None,
            })
        }
        PodSelection::Target(spec) => {
            // The whole snapshot (a bounded number of LISTs): WSA064 names the
            // likely cause of an uneven spread from the routing in front.
            let snapshot = gather::snapshot(kube, spec).await?;
            let selector = snapshot.service.as_ref().and_then(gather::selector_string);
            Ok(Found {
                snapshot,
                selector,
                target: Some(spec.to_ref()),
            })
        }
    }
}

/// Ctrl-C, `--follow-duration`, or the sender (a closed pipe) ends a follow.
fn follow_shutdown(
    duration: Option<std::time::Duration>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let timer = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = timer => {}
            _ = stop_rx => {}
        }
    };
    (stop_tx, shutdown)
}

#[allow(clippy::too_many_arguments)]
async fn run_follow(
    kube: &Kube,
    source: &PodSource,
    logs: &LogsConfig,
    opts: &FollowOptions,
    duration: Option<std::time::Duration>,
    tty: bool,
    color: bool,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut printer = FollowPrinter::new(tty, color);
    let mut write_error: Option<std::io::Error> = None;
    let (stop_tx, shutdown) = follow_shutdown(duration);
    let mut stop_tx = Some(stop_tx);
    follow::follow(
        &kube.client,
        source,
        &logs.pattern,
        opts,
        |event, rows| {
            if write_error.is_some() {
                return;
            }
            if let Err(e) = printer.event(out, event, rows, jiff::Timestamp::now()) {
                // A closed pipe (`| head`) or a broken terminal: stop following.
                write_error = Some(e);
                if let Some(tx) = stop_tx.take() {
                    let _ = tx.send(());
                }
            }
        },
        shutdown,
    )
    .await;
    if let Some(e) = write_error {
        return Err(anyhow::Error::from(e).context("writing the log table"));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod(name: &str, containers: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: containers
                    .iter()
                    .map(|c| Container {
                        name: (*c).into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_no_pod_has_names_what_the_pods_have() {
        let same = [pod("a", &["shipper", "ws"]), pod("b", &["shipper", "ws"])];
        assert_eq!(
            containers_without(&same, "nope").as_deref(),
            Some("all 2 have `shipper`, `ws`")
        );
        let mixed = [pod("a", &["shipper", "ws"]), pod("b", &["ws"])];
        assert_eq!(
            containers_without(&mixed, "nope").as_deref(),
            Some("pod `a` has `shipper`, `ws`; pod `b` has `ws`")
        );
        assert_eq!(
            containers_without(&[pod("a", &["ws"])], "nope").as_deref(),
            Some("pod `a` has `ws`")
        );
    }

    #[test]
    fn a_container_one_pod_has_or_no_pod_at_all_is_not_a_usage_error() {
        let mixed = [pod("a", &["shipper", "ws"]), pod("b", &["ws"])];
        assert_eq!(containers_without(&mixed, "shipper"), None);
        assert_eq!(containers_without(&[], "nope"), None);
    }
}
