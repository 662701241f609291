//! `per-pod`: test every pod behind a Service directly over port-forward.
//!
//! For each pod (`parallel` pods at once), read its `Active connections`
//! line and open a stream of its log while one port-forward opens for all
//! its connections, open `connect` WebSocket connections through it, each in
//! its own task, hold them until the log shows them, close them all and end
//! the forward, then wait for the log to show them closed (outside the pod's
//! slot: the next pod starts meanwhile). A pod's failure is recorded in its
//! [`PodProbe`] and never stops the other pods.
//!
//! Progress goes out as [`Event`]s; this module prints nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod count;
mod log_reader;

use super::portforward::{Cancel, ConnectionSpec, Outcome, run_connection, run_shared_connection};
use super::shared_forward::{MAX_CHANNELS, SharedForward};
use super::websocket::{ClientOptions, human};
pub use count::{PodCount, Start};
pub use log_reader::KubeActiveReader;

use crate::ports;
use crate::snapshot::{Identity, Percentiles, PodLog, PodProbe, Snapshot};

/// What to do to each pod (the validated `per-pod` flags).
#[derive(Clone, Debug)]
pub struct PerPodOptions {
    /// `--connect`: connections per pod.
    pub connect: u32,
    /// `--parallel`: pods tested at once.
    pub parallel: usize,
    /// `--hold`: how long all connections stay open together.
    pub hold: Duration,
    /// The WebSocket client's options (`--path`, `--no-echo`, `--timeout`).
    pub client: ClientOptions,
}

impl Default for PerPodOptions {
    fn default() -> Self {
        PerPodOptions {
            connect: 10,
            parallel: 1,
            hold: Duration::from_secs(2),
            client: ClientOptions::default(),
        }
    }
}

/// One pod to test, with its port already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTarget {
    pub name: String,
    pub node: Option<String>,
    pub ready: bool,
    /// The pod port to forward to, or why none could be found.
    pub port: Result<u16, String>,
    /// The container whose log carries `Active connections`.
    pub container: Option<String>,
}

/// Picks the pods to test from the Snapshot: the ready endpoints of the
/// Service's EndpointSlices, in name order; with `all_pods` also the matching
/// pods that are not ready endpoints. The port is `port_override` when given,
/// else the Service's first port's `targetPort` resolved against each pod.
pub fn select_targets(
    snap: &Snapshot,
    all_pods: bool,
    port_override: Option<u16>,
) -> Vec<PodTarget> {
    let ready = ready_endpoint_pods(&snap.endpoint_slices);
    let service_port = snap
        .service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_deref())
        .and_then(|ports| ports.first());

    let mut names: Vec<&str> = ready.iter().map(|(n, _)| n.as_str()).collect();
    if all_pods {
        names.extend(snap.pods.iter().filter_map(|p| p.metadata.name.as_deref()));
    }
    names.sort_unstable();
    names.dedup();

    names
        .into_iter()
        .map(|name| {
            let pod = snap
                .pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name));
            let endpoint = ready.iter().find(|(n, _)| n == name);
            let node = endpoint.and_then(|(_, node)| node.clone()).or_else(|| {
                pod.and_then(|p| p.spec.as_ref())
                    .and_then(|s| s.node_name.clone())
            });
            let (port, container) = resolve_port(name, pod, service_port, port_override);
            PodTarget {
                name: name.to_string(),
                node,
                ready: endpoint.is_some(),
                port,
                container,
            }
        })
        .collect()
}

/// The pod port behind the Service port (`crate::ports`), and the
/// container serving it.
fn resolve_port(
    name: &str,
    pod: Option<&Pod>,
    service_port: Option<&ServicePort>,
    port_override: Option<u16>,
) -> (Result<u16, String>, Option<String>) {
    let serving = |port: i32| {
        pod.and_then(|p| ports::default_container(p, port))
            .map(str::to_string)
    };
    if let Some(p) = port_override {
        return (Ok(p), serving(i32::from(p)));
    }
    let Some(sp) = service_port else {
        return (
            Err("the Service has no ports; pass --port".to_string()),
            serving(0),
        );
    };
    let Some(pod) = pod else {
        return (
            Err(format!(
                "pod `{name}` was not among the Service's pods; pass --port"
            )),
            None,
        );
    };
    match ports::resolve_target_port(sp, pod) {
        Ok(r) => match u16::try_from(r.port) {
            Ok(p) if p > 0 => (Ok(p), r.container),
            _ => (
                Err(format!(
                    "targetPort {} is not a valid port; pass --port",
                    r.port
                )),
                r.container,
            ),
        },
        Err(e) => (Err(format!("{e}; pass --port")), serving(0)),
    }
}

/// `(pod name, node)` of every ready endpoint backed by a pod.
fn ready_endpoint_pods(slices: &[EndpointSlice]) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for ep in slices.iter().flat_map(|s| s.endpoints.iter()) {
        let Some(target) = ep.target_ref.as_ref() else {
            continue;
        };
        if target.kind.as_deref().is_some_and(|k| k != "Pod") {
            continue;
        }
        let Some(name) = target.name.clone() else {
            continue;
        };
        // An absent `ready` means unknown and is read as ready (API docs).
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        if ready && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, ep.node_name.clone()));
        }
    }
    out
}

/// A reading's `(error, note)`: why it gave no count, or a remark on it.
pub type Remarks = (Option<String>, Option<String>);

/// Reads a pod's current `Active connections` value.
pub trait ActiveReader: Send + Sync {
    fn active<'a>(&'a self, target: &'a PodTarget) -> BoxFuture<'a, Option<u64>>;

    /// The count before the pod's test, and a feed of the counts logged
    /// after it when the reader has one (else `active` is polled). By
    /// default one reading, no feed.
    fn start<'a>(&'a self, target: &'a PodTarget) -> BoxFuture<'a, Start> {
        Box::pin(async move {
            Start {
                before: self.active(target).await,
                feed: None,
            }
        })
    }

    /// What the pod's last reading said besides the count: why there was
    /// none (`error`), or a remark on it (`note`). `(None, None)` by default.
    fn remarks(&self, _pod: &str) -> Remarks {
        (None, None)
    }
}

/// `per-pod --metric`: the gauge on the pod's metrics endpoint, each reading
/// through its own port-forward (the same scrape and selection as `logs
/// --metric`).
pub struct MetricActiveReader {
    api: Api<Pod>,
    source: crate::probe::metrics::MetricSource,
    /// Each pod's `(port, path)`, resolved before the test.
    endpoints: HashMap<String, (u16, String)>,
    /// Each pod's last `(error, note)`.
    last: Mutex<HashMap<String, Remarks>>,
}

impl MetricActiveReader {
    /// Resolves every pod's metrics endpoint now: a pod that names none
    /// (and no `--metrics-port`) is the same usage error as in `logs --metric`.
    pub fn new(
        api: Api<Pod>,
        source: crate::probe::metrics::MetricSource,
        pods: &[Pod],
    ) -> Result<Self, crate::probe::metrics::read::MetricsError> {
        let mut endpoints = HashMap::new();
        for pod in pods {
            let at = crate::probe::metrics::read::endpoint(pod, &source)?;
            endpoints.insert(pod.metadata.name.clone().unwrap_or_default(), at);
        }
        Ok(MetricActiveReader {
            api,
            source,
            endpoints,
            last: Mutex::new(HashMap::new()),
        })
    }

    fn remember(&self, pod: &str, error: Option<String>, note: Option<String>) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pod.to_string(), (error, note));
    }
}

impl ActiveReader for MetricActiveReader {
    fn active<'a>(&'a self, target: &'a PodTarget) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move {
            use crate::probe::metrics::read::{reading, scrape_pod};
            let Some((port, path)) = self.endpoints.get(&target.name) else {
                self.remember(
                    &target.name,
                    Some("not among the Service's pods, so its metrics port is unknown".into()),
                    None,
                );
                return None;
            };
            let scraped = scrape_pod(&self.api, &target.name, *port, path).await;
            let r = reading(&self.source, scraped);
            self.remember(&target.name, r.error, r.note);
            r.active
        })
    }

    fn remarks(&self, pod: &str) -> Remarks {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pod)
            .cloned()
            .unwrap_or_default()
    }
}

/// Reads nothing: for tests, and servers that log no `Active connections`.
pub struct NoActiveReader;

impl ActiveReader for NoActiveReader {
    fn active<'a>(&'a self, _target: &'a PodTarget) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async { None })
    }
}

/// What happened, for a progress display.
#[derive(Clone, Debug)]
pub enum Event {
    /// Connections are being opened.
    Started { pod: String, connect: u32 },
    /// One connection finished opening (or failed to); running totals.
    Opened { pod: String, ok: u32, failed: u32 },
    /// All connections are open; held for the hold time.
    Holding { pod: String, ok: u32 },
    /// Closing and joining.
    Closing { pod: String },
    /// The pod's result.
    Done(PodProbe),
}

/// Receives [`Event`]s; implemented by the renderer's progress display.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// Ignores every event (piped output, `-o json`, tests).
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}

/// Tests every target, `opts.parallel` at a time, results in target order.
/// Pods not yet started when `cancel` fires are left out of the result.
///
/// A pod holds one of the `--parallel` slots while its connections live: the
/// log read before, the connections, the read while they are open, the close
/// and the join. The read after (every connection closed and joined by then)
/// runs outside the slot, so the next pod starts meanwhile.
pub async fn run(
    api: Api<Pod>,
    targets: Vec<PodTarget>,
    opts: &PerPodOptions,
    logs: &dyn ActiveReader,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Vec<PodProbe> {
    let parallel = opts.parallel.max(1);
    let slots = Semaphore::new(parallel);
    let slots = &slots;
    futures::stream::iter(targets)
        .map(|t| {
            let api = api.clone();
            async move {
                let slot = slots.acquire().await.ok()?;
                if cancel.is_cancelled() {
                    return None;
                }
                let (mut probe, count) = connect_pod(api, &t, opts, logs, progress, cancel).await;
                drop(slot);
                read_after(&mut probe, count, cancel).await;
                progress.event(Event::Done(probe.clone()));
                Some(probe)
            }
        })
        // Up to `parallel` pods connecting and as many reading their log after.
        .buffered(parallel.saturating_mul(2))
        .filter_map(|p| async move { p })
        .collect()
        .await
}

/// How long the log is watched after closing for the count to come back.
const AFTER_WAIT: Duration = Duration::from_secs(3);
/// How long, at least, the log is watched for the connections held.
const LOG_GRACE: Duration = Duration::from_secs(1);

/// One pod up to the read after: the log before, the connections, the log
/// while they are open, then every connection closed and every forwarder
/// joined. Never fails: errors land in the returned [`PodProbe`].
async fn connect_pod<'a>(
    api: Api<Pod>,
    target: &'a PodTarget,
    opts: &PerPodOptions,
    logs: &'a dyn ActiveReader,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> (PodProbe, Option<PodCount<'a>>) {
    let mut probe = PodProbe {
        pod: target.name.clone(),
        node: target.node.clone(),
        ready: target.ready,
        attempted: opts.connect,
        ..PodProbe::default()
    };
    let port = match &target.port {
        Ok(p) => *p,
        Err(e) => {
            probe.failed = opts.connect;
            probe.error = Some(e.clone());
            return (probe, None);
        }
    };
    probe.port = port;
    let pod = target.name.clone();
    progress.event(Event::Started {
        pod: pod.clone(),
        connect: opts.connect,
    });

    // The log before and the forwards at once: a forward opens no WebSocket
    // connection to the server, so the count read is still the one before.
    // One port-forward per (up to) 128 connections: through a real API
    // server each forward costs a TLS connection and a proxied upgrade. When
    // a shared forward cannot be opened, each of its connections opens its
    // own and reports why.
    let chunks: Vec<usize> = (0..opts.connect as usize)
        .step_by(MAX_CHANNELS)
        .map(|start| (opts.connect as usize - start).min(MAX_CHANNELS))
        .collect();
    let open_all = futures::future::join_all(chunks.iter().map(|&n| {
        let (api, pod) = (&api, &pod);
        async move {
            tokio::select! {
                r = tokio::time::timeout(opts.client.timeout, SharedForward::open(api, pod, port, n)) => match r {
                    Ok(Ok(f)) => Some(f),
                    Ok(Err(e)) => {
                        tracing::debug!("shared port-forward to {pod}: {e}; one forward per connection");
                        None
                    }
                    Err(_) => None,
                },
                () = cancel.cancelled() => None,
            }
        }
    }));
    let (start, shared) = tokio::join!(logs.start(target), open_all);
    let mut count = PodCount::new(logs, target, start);
    probe.logged_active_before = count.before;

    // Every connection in its own task.
    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut opened_rx = Vec::with_capacity(opts.connect as usize);
    let mut forwards = Vec::new();
    for (&n, shared) in chunks.iter().zip(shared) {
        let mut streams = Vec::new();
        if let Some(mut f) = shared {
            streams = std::mem::take(&mut f.streams);
            forwards.push(f);
        }
        for i in 0..n {
            let (tx, rx) = oneshot::channel();
            opened_rx.push(rx);
            let spec = ConnectionSpec {
                pod: pod.clone(),
                port,
                client: opts.client.clone(),
            };
            match streams.get_mut(i).and_then(Option::take) {
                Some((stream, error_rx)) => tasks.spawn(run_shared_connection(
                    stream,
                    error_rx,
                    spec,
                    tx,
                    release_rx.clone(),
                    cancel.clone(),
                )),
                None => tasks.spawn(run_connection(
                    api.clone(),
                    spec,
                    tx,
                    release_rx.clone(),
                    cancel.clone(),
                )),
            };
        }
    }

    // Wait until each has opened or failed. Each task bounds its own steps;
    // this limit only guards against a task that never reports.
    let guard = opts.client.timeout.saturating_mul(2) + Duration::from_secs(5);
    let (mut ok, mut failed) = (0u32, 0u32);
    let mut opened_all = futures::stream::iter(opened_rx).buffer_unordered(1024);
    let wait_opened = async {
        while let Some(r) = opened_all.next().await {
            match r {
                Ok(o) if o.error.is_none() => ok += 1,
                _ => failed += 1,
            }
            progress.event(Event::Opened {
                pod: pod.clone(),
                ok,
                failed,
            });
        }
    };
    let _ = tokio::time::timeout(guard, wait_opened).await;

    // Hold: what opened stays open for `hold`, while the log is read until
    // it shows them all (or the hold ends).
    if ok > 0 && !cancel.is_cancelled() {
        progress.event(Event::Holding {
            pod: pod.clone(),
            ok,
        });
        let expected = count.before.unwrap_or(0) + u64::from(ok);
        let deadline = Instant::now() + opts.hold;
        // A pod that logs its count gets a moment to log the last
        // connections even with `--hold 0s`.
        let log_deadline = match count.before {
            Some(_) => deadline.max(Instant::now() + LOG_GRACE),
            None => deadline,
        };
        let reading = count.readings_until(|r| r.is_some_and(|n| n >= expected), log_deadline);
        probe.logged_active_during = tokio::select! {
            seen = reading => seen.into_iter().flatten().max(),
            () = cancel.cancelled() => None,
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = cancel.cancelled() => {}
        }
    }

    // Release: close every connection and join every forwarder.
    progress.event(Event::Closing { pod: pod.clone() });
    let _ = release_tx.send(true);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(opts.connect as usize);
    let join_all = async {
        while let Some(r) = tasks.join_next().await {
            outcomes.push(r.unwrap_or_else(|e| Outcome {
                error: Some(format!("connection task failed: {e}")),
                ..Outcome::default()
            }));
        }
    };
    if tokio::time::timeout(guard, join_all).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        while outcomes.len() < opts.connect as usize {
            outcomes.push(Outcome {
                error: Some(format!("connection did not finish within {}", human(guard))),
                ..Outcome::default()
            });
        }
    }
    drop(release_tx);
    for f in forwards {
        f.close().await;
    }

    summarise(&mut probe, &outcomes);
    (probe, Some(count))
}

/// After: with every connection closed, the count should come back to where
/// it was. Waited for up to [`AFTER_WAIT`] when the log was read while the
/// connections were open; a failed reading ends the wait.
async fn read_after(probe: &mut PodProbe, count: Option<PodCount<'_>>, cancel: &Cancel) {
    let Some(mut count) = count else { return };
    if probe.logged_active_during.is_none() || cancel.is_cancelled() {
        return;
    }
    let before = probe.logged_active_before.unwrap_or(0);
    let deadline = Instant::now() + AFTER_WAIT;
    let reading = count.readings_until(|r| r.is_none_or(|n| n <= before), deadline);
    probe.logged_active_after = tokio::select! {
        seen = reading => seen.last().copied().flatten(),
        () = cancel.cancelled() => None,
    };
}

/// Folds the connections' outcomes into the pod's probe.
pub fn summarise(probe: &mut PodProbe, outcomes: &[Outcome]) {
    probe.ok = u32::try_from(outcomes.iter().filter(|o| o.ok()).count()).unwrap_or(u32::MAX);
    probe.failed = probe.attempted.saturating_sub(probe.ok);
    if probe.error.is_none()
        && let Some(first) = outcomes.iter().find(|o| o.first_error().is_some())
    {
        probe.error = first.first_error().map(str::to_string);
        probe.refused = first.refused().cloned().map(Box::new);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let handshakes: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.opened.handshake)
        .map(ms)
        .collect();
    let echoes: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.opened.echo)
        .map(ms)
        .collect();
    probe.handshake_ms = percentiles(&handshakes);
    probe.echo_ms = percentiles(&echoes);
    probe.identity = identity(&probe.pod, outcomes);
}

/// The `Active connections` readings (log or `--metric` gauge) as `logs`
/// observations, one per pod whose count was read (the last reading, with
/// the reader's last error or note), so the same rules apply to them
/// (WSA063 when a pod gave no count).
pub fn log_observations(probes: &[PodProbe], reader: &dyn ActiveReader) -> Vec<PodLog> {
    probes
        .iter()
        .filter(|p| p.port != 0)
        .map(|p| {
            let active = p
                .logged_active_after
                .or(p.logged_active_during)
                .or(p.logged_active_before);
            let (error, note) = reader.remarks(&p.pod);
            PodLog {
                pod: p.pod.clone(),
                node: p.node.clone(),
                active,
                // An error of a later reading does not hide an earlier count.
                error: error.filter(|_| active.is_none()),
                note: note.filter(|_| active.is_some()),
                ..PodLog::default()
            }
        })
        .collect()
}

/// Nearest-rank p50 and p95, rounded to 0.01 ms; `None` for no samples.
pub fn percentiles(samples: &[f64]) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let idx = (p / 100.0 * s.len() as f64).ceil() as usize;
        s[idx.clamp(1, s.len()) - 1]
    };
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    Some(Percentiles {
        p50: round2(rank(50.0)),
        p95: round2(rank(95.0)),
    })
}

/// Another pod's name in any hello wins (that is WSA061's case); else
/// `Matches` when a hello named this pod; else `None`.
fn identity(pod: &str, outcomes: &[Outcome]) -> Identity {
    let named: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.opened.hello.as_ref())
        .filter_map(|h| h.pod.as_deref())
        .collect();
    if let Some(other) = named.iter().find(|n| **n != pod) {
        return Identity::Other((*other).to_string());
    }
    if named.is_empty() {
        Identity::None
    } else {
        Identity::Matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::portforward::Opened;
    use crate::probe::websocket::Hello;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, Service, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn outcome(handshake_ms: u64, hello_pod: Option<&str>, error: Option<&str>) -> Outcome {
        Outcome {
            opened: Opened {
                handshake: Some(Duration::from_millis(handshake_ms)),
                echo: Some(Duration::from_millis(1)),
                hello: hello_pod.map(|p| Hello {
                    pod: Some(p.to_string()),
                    ..Hello::default()
                }),
                error: None,
                refused: None,
            },
            error: error.map(str::to_string),
            teardown: None,
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(
            percentiles(&s),
            Some(Percentiles {
                p50: 10.0,
                p95: 19.0
            })
        );
        assert_eq!(
            percentiles(&[3.0]),
            Some(Percentiles { p50: 3.0, p95: 3.0 })
        );
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn summary_counts_and_identity() {
        let mut probe = PodProbe {
            pod: "web-0".into(),
            attempted: 3,
            ..PodProbe::default()
        };
        let outcomes = vec![
            outcome(2, Some("web-0"), None),
            outcome(4, Some("web-0"), None),
            outcome(
                6,
                None,
                Some("the server closed the connection while holding the connection open"),
            ),
        ];
        summarise(&mut probe, &outcomes);
        assert_eq!((probe.ok, probe.failed), (2, 1));
        assert_eq!(probe.identity, Identity::Matches);
        assert!(probe.error.as_deref().is_some_and(|e| e.contains("closed")));
        assert_eq!(probe.handshake_ms.map(|p| p.p50), Some(4.0));
    }

    #[test]
    fn another_pods_hello_wins() {
        let mut probe = PodProbe {
            pod: "web-0".into(),
            attempted: 2,
            ..PodProbe::default()
        };
        summarise(
            &mut probe,
            &[
                outcome(1, Some("web-0"), None),
                outcome(1, Some("web-1"), None),
            ],
        );
        assert_eq!(probe.identity, Identity::Other("web-1".into()));
        let mut none = PodProbe {
            pod: "web-0".into(),
            attempted: 1,
            ..PodProbe::default()
        };
        summarise(&mut none, &[outcome(1, None, None)]);
        assert_eq!(none.identity, Identity::None);
    }

    #[test]
    fn log_observations_for_pods_whose_log_was_read() {
        let read = PodProbe {
            pod: "web-a".into(),
            port: 8080,
            logged_active_before: Some(1),
            logged_active_during: Some(11),
            logged_active_after: Some(1),
            ..PodProbe::default()
        };
        let silent = PodProbe {
            pod: "web-b".into(),
            port: 8080,
            ..PodProbe::default()
        };
        let no_port = PodProbe {
            pod: "web-c".into(),
            error: Some("no port".into()),
            ..PodProbe::default()
        };
        let logs = log_observations(&[read, silent, no_port], &NoActiveReader);
        let got: Vec<(&str, Option<u64>)> =
            logs.iter().map(|l| (l.pod.as_str(), l.active)).collect();
        // A server that logs nothing gives `None`: WSA063's note.
        assert_eq!(got, [("web-a", Some(1)), ("web-b", None)]);
    }

    fn pod(name: &str, node: &str, port_name: &str, port: i32) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                containers: vec![
                    Container {
                        name: "sidecar".into(),
                        ..Default::default()
                    },
                    Container {
                        name: "server".into(),
                        ports: Some(vec![ContainerPort {
                            name: Some(port_name.into()),
                            container_port: port,
                            ..Default::default()
                        }]),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn endpoint(pod: &str, node: &str, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec!["10.0.0.1".into()],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            node_name: Some(node.into()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn snapshot(target_port: IntOrString) -> Snapshot {
        Snapshot {
            service: Some(Service {
                spec: Some(ServiceSpec {
                    ports: Some(vec![ServicePort {
                        port: 80,
                        target_port: Some(target_port),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pods: vec![
                pod("web-b", "n2", "ws", 8080),
                pod("web-a", "n1", "ws", 9090),
                pod("web-c", "n1", "ws", 8080),
            ],
            endpoint_slices: vec![EndpointSlice {
                address_type: "IPv4".into(),
                endpoints: vec![
                    endpoint("web-b", "n2", Some(true)),
                    endpoint("web-a", "n1", None),
                    endpoint("web-c", "n1", Some(false)),
                ],
                ..Default::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn ready_pods_by_default_named_port_per_pod() {
        let t = select_targets(&snapshot(IntOrString::String("ws".into())), false, None);
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web-a", "web-b"]);
        assert_eq!(t[0].port, Ok(9090));
        assert_eq!(t[1].port, Ok(8080));
        assert_eq!(t[0].container.as_deref(), Some("server"));
        assert_eq!(t[1].node.as_deref(), Some("n2"));
        assert!(t.iter().all(|t| t.ready));
    }

    #[test]
    fn all_pods_adds_the_not_ready_ones() {
        let t = select_targets(&snapshot(IntOrString::Int(8080)), true, None);
        let names: Vec<(&str, bool)> = t.iter().map(|t| (t.name.as_str(), t.ready)).collect();
        assert_eq!(names, [("web-a", true), ("web-b", true), ("web-c", false)]);
        assert!(t.iter().all(|t| t.port == Ok(8080)));
        assert_eq!(t[2].node.as_deref(), Some("n1"));
    }

    #[test]
    fn port_override_and_unknown_names() {
        let t = select_targets(&snapshot(IntOrString::String("nope".into())), false, None);
        assert!(
            t[0].port
                .as_ref()
                .is_err_and(|e| e.contains("`nope`") && e.contains("--port"))
        );
        let t = select_targets(
            &snapshot(IntOrString::String("nope".into())),
            false,
            Some(7000),
        );
        assert_eq!(t[0].port, Ok(7000));
    }
}
