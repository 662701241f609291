//! Every pod's gauge, read with bounded concurrency, as the same per-pod
//! rows (`PodLog`) the log source produces, so the table, totals, WSA063/064
//! and the verdict are the same whichever source was read.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::MetricSource;
use super::exposition::{self, Selection, closest_names};
use super::port::{DEFAULT_PATH, metrics_endpoint};
use crate::snapshot::PodLog;

const SCRAPE_LIMIT: Duration = Duration::from_secs(10);

/// Why no count could be read at all (exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error(
        "pod {pod} names no metrics port (no container port named `metrics` or `http-metrics`, no `prometheus.io/port` annotation): pass --metrics-port PORT"
    )]
    NoPort { pod: String },
    #[error("no pod exposes `{metric}`{hint}")]
    NoneHasIt { metric: String, hint: String },
    #[error("no pod's metrics could be read: {first}")]
    NoneRead { first: String },
}

/// What one scrape said about the query: the count, or the note saying
/// what was found instead, a remark on the count (several series summed),
/// and every metric name the pod exposes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub active: Option<u64>,
    pub error: Option<String>,
    pub note: Option<String>,
    pub names: BTreeSet<String>,
}

/// The query's value in one scrape (pure).
pub fn reading(source: &MetricSource, scraped: Result<String, String>) -> Reading {
    let mut out = Reading::default();
    let text = match scraped {
        Err(e) => {
            out.error = Some(e);
            return out;
        }
        Ok(text) => text,
    };
    let (samples, bad) = exposition::parse(&text);
    out.names = samples.iter().map(|s| s.name.clone()).collect();
    match source.query.select(&samples) {
        Selection::Found { value, .. } if value.is_finite() && value >= 0.0 => {
            out.active = Some(value.round() as u64);
            out.note = source.query.summed_note(&samples);
        }
        Selection::Found { value, .. } => {
            out.error = Some(format!("`{}` is {value}, not a count", source.query));
        }
        Selection::NoMatchingLabels { series } => {
            out.error = Some(format!(
                "{series} series of `{}`, none with the labels asked for",
                source.query.name
            ));
        }
        Selection::Missing => {
            let close = closest_names(&source.query.name, out.names.iter().map(String::as_str), 3);
            let found = if close.is_empty() {
                format!("{} other metrics", out.names.len())
            } else {
                format!("closest: {}", close.join(", "))
            };
            let unparsed = if bad.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} lines did not parse, the first at line {}: {}",
                    bad.len(),
                    bad[0].0,
                    bad[0].1
                )
            };
            out.error = Some(format!("no `{}` ({found}){unparsed}", source.query.name));
        }
    }
    out
}

/// One pod's row: the value, or the note saying what was found instead.
pub fn row(
    pod: &Pod,
    source: &MetricSource,
    scraped: Result<String, String>,
) -> (PodLog, BTreeSet<String>) {
    let r = reading(source, scraped);
    let log = PodLog {
        pod: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        started: pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string()),
        active: r.active,
        error: r.error,
        note: r.note,
        ..PodLog::default()
    };
    (log, r.names)
}

/// Where this pod's metrics are: `--metrics-port`, else its named `metrics`
/// port or scrape annotation (an error naming the flag when it has none);
/// `--metrics-path`, else the annotation's path, else `/metrics`.
pub fn endpoint(pod: &Pod, source: &MetricSource) -> Result<(u16, String), MetricsError> {
    let found = metrics_endpoint(pod);
    let port = match (source.port, &found) {
        (Some(p), _) => p,
        (None, Some((p, _))) => *p,
        (None, None) => {
            return Err(MetricsError::NoPort {
                pod: pod.metadata.name.clone().unwrap_or_default(),
            });
        }
    };
    let path = source
        .path
        .clone()
        .or_else(|| found.and_then(|(_, path)| path))
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    Ok((port, path))
}

/// One scrape of a pod (its own port-forward), bounded in time.
pub async fn scrape_pod(
    api: &Api<Pod>,
    pod: &str,
    port: u16,
    path: &str,
) -> Result<String, String> {
    super::scrape::scrape(api, pod, port, path, SCRAPE_LIMIT).await
}

/// Read every pod (running ones; others get a note) through port-forward;
/// exit 2 when none gave a value (naming the closest metric names).
pub async fn read_all(
    client: &kube::Client,
    namespace: &str,
    pods: &[Pod],
    source: &MetricSource,
    max_concurrent: usize,
) -> Result<Vec<PodLog>, MetricsError> {
    let rows = read_rows(client, namespace, pods, source, max_concurrent).await?;
    none_gave_a_value(&rows, source)?;
    Ok(rows.into_iter().map(|(l, _)| l).collect())
}

/// Each pod's row and the metric names it exposes; only a pod without any
/// metrics port is an error.
pub async fn read_rows(
    client: &kube::Client,
    namespace: &str,
    pods: &[Pod],
    source: &MetricSource,
    max_concurrent: usize,
) -> Result<Vec<(PodLog, BTreeSet<String>)>, MetricsError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut endpoints = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let (port, path) = endpoint(pod, source)?;
        endpoints.push((pod, name, port, path));
    }
    let rows: Vec<(PodLog, BTreeSet<String>)> = futures::stream::iter(endpoints)
        .map(|(pod, name, port, path)| {
            let api = api.clone();
            async move {
                let running =
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                let scraped = if running {
                    scrape_pod(&api, &name, port, &path).await
                } else {
                    Err("not running, so nothing to scrape".to_string())
                };
                row(pod, source, scraped)
            }
        })
        .buffered(max_concurrent.max(1))
        .collect()
        .await;
    Ok(rows)
}

fn none_gave_a_value(
    rows: &[(PodLog, BTreeSet<String>)],
    source: &MetricSource,
) -> Result<(), MetricsError> {
    if !rows.is_empty() && rows.iter().all(|(l, _)| l.active.is_none()) {
        let any_read = rows.iter().any(|(_, names)| !names.is_empty());
        if !any_read {
            let first = rows
                .iter()
                .find_map(|(l, _)| l.error.clone())
                .unwrap_or_default();
            return Err(MetricsError::NoneRead { first });
        }
        let all: BTreeSet<&str> = rows
            .iter()
            .flat_map(|(_, n)| n.iter().map(String::as_str))
            .collect();
        let close = closest_names(&source.query.name, all.iter().copied(), 5);
        let hint = if close.is_empty() {
            format!(" among the {} metrics the pods do expose", all.len())
        } else {
            format!("; the closest names they do expose: {}", close.join(", "))
        };
        return Err(MetricsError::NoneHasIt {
            metric: source.query.to_string(),
            hint,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::metrics::MetricQuery;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}
        }))
        .unwrap()
    }

    fn source(q: &str) -> MetricSource {
        MetricSource {
            query: MetricQuery::parse(q).unwrap(),
            port: Some(8080),
            path: None,
            interval: Duration::from_secs(2),
        }
    }

    #[test]
    fn a_value_a_missing_metric_and_an_unreachable_pod_are_rows() {
        let text = "websocket_active_connections 7\nws_other 1\n".to_string();
        let (l, _) = row(
            &pod(),
            &source("websocket_active_connections"),
            Ok(text.clone()),
        );
        assert_eq!((l.active, l.node.as_deref()), (Some(7), Some("n1")));
        let (l, names) = row(&pod(), &source("websocket_connections"), Ok(text));
        assert_eq!(l.active, None);
        assert!(
            l.error
                .as_deref()
                .is_some_and(|e| e.contains("closest: websocket_active_connections")),
            "{l:?}"
        );
        assert_eq!(names.len(), 2);
        assert_eq!(l.note, None);
        let (l, _) = row(&pod(), &source("x"), Err("connection refused".into()));
        assert_eq!(l.error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn several_series_are_summed_and_the_row_notes_it() {
        let text = "ws_connections{route=\"/chat\"} 3\nws_connections{route=\"/feed\"} 2\n";
        let (l, _) = row(&pod(), &source("ws_connections"), Ok(text.into()));
        assert_eq!(l.active, Some(5));
        assert!(
            l.note
                .as_deref()
                .is_some_and(|n| n.starts_with("2 series of `ws_connections` summed")),
            "{l:?}"
        );
        let (l, _) = row(
            &pod(),
            &source(r#"ws_connections{route="/feed"}"#),
            Ok(text.into()),
        );
        assert_eq!((l.active, l.note), (Some(2), None));
    }
}
