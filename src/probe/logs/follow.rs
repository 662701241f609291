//! `logs --follow`: one log stream per pod (as stern does) and the
//! coordinator that finds pods by polling the pod LIST, starts and stops
//! streams, and hands every change to a sink that prints.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::{AsyncBufRead, AsyncBufReadExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::lines::LineSplitter;
use super::pattern::{ActivePattern, match_after};
use super::pods::{ContainerChoice, LogTarget, log_targets};
use super::tail::{TailLimits, api_error_text, tail_params};

/// How `--follow` runs.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// How often the pod LIST is polled for pods that appear or go away.
    pub poll_interval: Duration,
    /// `--max-log-requests`: streams open at once.
    pub max_streams: usize,
    /// History each new stream starts with (`tailLines`, `sinceSeconds`).
    pub tail: TailLimits,
    /// A stream that ended while its pod is still listed is reopened at most this often.
    pub max_reopen: u32,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            max_streams: 10,
            tail: TailLimits::default(),
            max_reopen: 10,
        }
    }
}

/// The state of one followed pod, for a table that is redrawn in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowRow {
    pub target: LogTarget,
    pub active: Option<u64>,
    pub logged_at: Option<Timestamp>,
    pub state: StreamState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StreamState {
    #[default]
    Opening,
    Streaming,
    /// The stream ended or failed; the message says why.
    Ended(String),
    /// More pods than `--max-log-requests`: not followed.
    NotFollowed,
    /// The pod has no log yet (Pending).
    Waiting(String),
}

/// One change, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowEvent {
    /// A pod was picked up.
    Added { pod: String },
    /// A pod's stream is open.
    Opened { pod: String },
    /// The pod LIST was read (nothing changed necessarily): lets a live table
    /// refresh its ages.
    Polled,
    /// A pod logged a (new or repeated) value.
    Active {
        pod: String,
        active: u64,
        time: Option<Timestamp>,
    },
    /// A pod is no longer in the LIST (deleted): its stream was closed.
    Gone { pod: String },
    /// A pod's stream ended or could not be opened while the pod exists.
    Ended { pod: String, message: String },
    /// More pods than `--max-log-requests`; these are listed but not followed.
    NotFollowed { pods: Vec<String>, limit: usize },
    /// The pod LIST failed; the previous pods are kept. Said once per
    /// outage (an API server restart fails every poll the same way).
    ListFailed { message: String },
    /// The pod LIST works again after failing.
    ListRecovered,
    /// A pod's stream was reopened after it had ended (from its last line).
    Resumed { pod: String },
}

/// Which pods to follow: the LIST of pods matching a selector.
#[derive(Clone, Debug)]
pub struct PodSource {
    pub namespace: String,
    /// `app=web`: the Service's selector or `-l`.
    pub selector: String,
    pub container: ContainerChoice,
}

/// Messages from stream tasks to the coordinator.
#[derive(Debug)]
enum StreamMsg {
    Opened {
        pod: String,
        uid: Option<String>,
    },
    Active {
        pod: String,
        uid: Option<String>,
        active: u64,
        time: Option<Timestamp>,
    },
    Ended {
        pod: String,
        uid: Option<String>,
        message: String,
    },
}

struct Followed {
    row: FollowRow,
    /// A stream task is running for this pod.
    streaming: bool,
    /// Streams opened so far.
    opened: u32,
    /// The last end message reported, so a stream that keeps ending the
    /// same way is reported once.
    last_end: Option<String>,
}

/// The coordinator's bookkeeping without I/O: which pods are followed, and
/// for each LIST which streams to stop and start. Unit-tested.
#[derive(Default)]
struct Tracker {
    pods: BTreeMap<String, Followed>,
    last_not_followed: Vec<String>,
}

/// What one LIST changes.
#[derive(Debug, Default)]
struct Plan {
    events: Vec<FollowEvent>,
    /// Pods whose stream must be closed (gone, or re-created under a new uid).
    stop: Vec<String>,
    /// Streams to open, each with the time of the last line already seen
    /// (a reopened stream replays its second; those lines are skipped).
    start: Vec<(LogTarget, LogParams, Option<Timestamp>)>,
}

/// Follows every pod until `shutdown` resolves, calling `sink` with each
/// event and the table after it. Every stream is closed before returning.
pub async fn follow<S, F>(
    client: &kube::Client,
    source: &PodSource,
    pattern: &ActivePattern,
    opts: &FollowOptions,
    mut sink: S,
    shutdown: F,
) where
    S: FnMut(&FollowEvent, &BTreeMap<String, FollowRow>),
    F: Future<Output = ()>,
{
    let api: Api<Pod> = Api::namespaced(client.clone(), &source.namespace);
    let (tx, mut rx) = mpsc::channel::<StreamMsg>(1024);
    let mut tracker = Tracker::default();
    let mut tasks: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut poll = tokio::time::interval(opts.poll_interval.max(Duration::from_millis(100)));
    // The message of the failing LIST, while it fails.
    let mut list_failing: Option<String> = None;
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        let mut events = Vec::new();
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(msg) = rx.recv() => {
                events.extend(tracker.on_msg(msg));
                // Drain what is already queued so one burst is one redraw.
                while let Ok(msg) = rx.try_recv() {
                    events.extend(tracker.on_msg(msg));
                }
            }
            _ = poll.tick() => {
                let listed = tokio::time::timeout(
                    Duration::from_secs(10).max(opts.poll_interval * 2),
                    api.list(&ListParams::default().labels(&source.selector)),
                )
                .await;
                let listed = match listed {
                    Ok(Ok(list)) => Ok(list),
                    Ok(Err(e)) => Err(api_error_text(&e)),
                    Err(_) => Err("listing pods timed out".to_string()),
                };
                match listed {
                    Ok(list) => {
                        if list_failing.take().is_some() {
                            events.push(FollowEvent::ListRecovered);
                        }
                        let plan = tracker.reconcile(log_targets(&list.items, &source.container), opts);
                        for pod in &plan.stop {
                            if let Some(t) = tasks.remove(pod) {
                                t.abort();
                            }
                        }
                        for (target, params, seen) in plan.start {
                            let task = tokio::spawn(stream_one(api.clone(), target.clone(), pattern.clone(), params, seen, tx.clone()));
                            if let Some(old) = tasks.insert(target.pod, task) {
                                old.abort();
                            }
                        }
                        events.extend(plan.events);
                        events.push(FollowEvent::Polled);
                    }
                    Err(message) => {
                        if list_failing.as_deref() != Some(message.as_str()) {
                            events.push(FollowEvent::ListFailed { message: message.clone() });
                        }
                        list_failing = Some(message);
                    }
                }
            }
        }
        if !events.is_empty() {
            let rows = tracker.rows();
            for e in &events {
                sink(e, &rows);
            }
        }
    }
    close_all(tasks).await;
}

/// Aborts every stream task (dropping its HTTP body closes the stream) and
/// waits for them, bounded.
async fn close_all(tasks: BTreeMap<String, JoinHandle<()>>) {
    let tasks: Vec<JoinHandle<()>> = tasks.into_values().collect();
    for t in &tasks {
        t.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(tasks)).await;
}

impl Tracker {
    fn rows(&self) -> BTreeMap<String, FollowRow> {
        self.pods
            .iter()
            .map(|(k, f)| (k.clone(), f.row.clone()))
            .collect()
    }

    /// A message from a stream; messages from a stream of an earlier pod
    /// with the same name (another uid) are stale and ignored.
    fn on_msg(&mut self, msg: StreamMsg) -> Option<FollowEvent> {
        let (pod, uid) = match &msg {
            StreamMsg::Opened { pod, uid }
            | StreamMsg::Active { pod, uid, .. }
            | StreamMsg::Ended { pod, uid, .. } => (pod, uid),
        };
        let f = self
            .pods
            .get_mut(pod)
            .filter(|f| &f.row.target.uid == uid)?;
        match msg {
            StreamMsg::Opened { pod, .. } => {
                f.row.state = StreamState::Streaming;
                // After an end, say that the stream is back (the end was printed).
                if f.last_end.take().is_some() {
                    Some(FollowEvent::Resumed { pod })
                } else {
                    Some(FollowEvent::Opened { pod })
                }
            }
            StreamMsg::Active {
                pod, active, time, ..
            } => {
                f.row.state = StreamState::Streaming;
                f.row.active = Some(active);
                if time.is_some() {
                    f.row.logged_at = time;
                }
                Some(FollowEvent::Active { pod, active, time })
            }
            StreamMsg::Ended { pod, message, .. } => {
                f.streaming = false;
                f.row.state = StreamState::Ended(message.clone());
                if f.last_end.as_deref() == Some(message.as_str()) {
                    return None;
                }
                f.last_end = Some(message.clone());
                Some(FollowEvent::Ended { pod, message })
            }
        }
    }

    /// One LIST: drop the pods that went away, start streams for new pods
    /// (and reopen ended ones), at most `max_streams` at once.
    fn reconcile(&mut self, targets: Vec<LogTarget>, opts: &FollowOptions) -> Plan {
        let mut plan = Plan::default();
        // Gone: not listed any more, or listed again under a new uid.
        let listed: BTreeMap<&str, &LogTarget> =
            targets.iter().map(|t| (t.pod.as_str(), t)).collect();
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(name, f)| {
                listed
                    .get(name.as_str())
                    .is_none_or(|t| t.uid != f.row.target.uid)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(f) = self.pods.remove(&name) {
                if f.streaming {
                    plan.stop.push(name.clone());
                }
                if f.opened > 0 {
                    plan.events.push(FollowEvent::Gone { pod: name });
                }
            }
        }

        let mut streaming = self.pods.values().filter(|f| f.streaming).count();
        let mut not_followed = Vec::new();
        for target in targets {
            let name = target.pod.clone();
            let f = self.pods.entry(name.clone()).or_insert_with(|| Followed {
                row: FollowRow {
                    target: target.clone(),
                    state: StreamState::NotFollowed,
                    ..Default::default()
                },
                streaming: false,
                opened: 0,
                last_end: None,
            });
            f.row.target.node = target.node.clone();
            if f.streaming {
                continue;
            }
            if let Some(why) = &target.not_loggable {
                f.row.state = StreamState::Waiting(why.clone());
                continue;
            }
            // A finished pod's log will not grow: read it once. Others are
            // reopened after their stream ended, a bounded number of times.
            if f.opened > 0 && (target.finished || f.opened > opts.max_reopen) {
                continue;
            }
            if streaming >= opts.max_streams.max(1) {
                f.row.state = StreamState::NotFollowed;
                not_followed.push(name);
                continue;
            }
            if f.opened == 0 {
                plan.events.push(FollowEvent::Added { pod: name.clone() });
            }
            // Reopen from the last line seen (no replay of old history); a new
            // stream starts with the bounded tail.
            let (params, seen) = match f.row.logged_at {
                Some(t) if f.opened > 0 => (
                    LogParams {
                        container: target.container.clone(),
                        follow: true,
                        since_time: Some(resume_from(t)),
                        timestamps: true,
                        ..LogParams::default()
                    },
                    Some(t),
                ),
                _ => (
                    tail_params(
                        target.container.as_deref(),
                        opts.tail.tail_lines,
                        &opts.tail,
                        true,
                    ),
                    None,
                ),
            };
            f.opened += 1;
            f.streaming = true;
            f.row.state = StreamState::Opening;
            plan.start.push((target, params, seen));
            streaming += 1;
        }
        if !not_followed.is_empty() && not_followed != self.last_not_followed {
            plan.events.push(FollowEvent::NotFollowed {
                pods: not_followed.clone(),
                limit: opts.max_streams,
            });
        }
        self.last_not_followed = not_followed;
        plan
    }
}

/// `sinceTime` for a stream reopened after the line logged at `seen`: its
/// whole second. kube-rs rounds `sinceTime` to the nearest second, which
/// could start after `seen` and drop what was logged in between; and a
/// kubelet sends no headers before the first byte, so a stream asking only
/// for lines a quiet pod has not logged yet would not even open. From the
/// whole second the line at `seen` comes again, and is skipped.
fn resume_from(seen: Timestamp) -> Timestamp {
    Timestamp::from_second(seen.as_second()).unwrap_or(seen)
}

/// One pod's log stream: each chunk that arrives is split into lines, and
/// the newest match in it is sent (a burst of history is one message).
/// Matches logged at or before `seen` were reported already.
async fn stream_one(
    api: Api<Pod>,
    target: LogTarget,
    pattern: ActivePattern,
    params: LogParams,
    seen: Option<Timestamp>,
    tx: mpsc::Sender<StreamMsg>,
) {
    let new = |line: &str| match_after(&pattern, line, seen);
    let pod = target.pod.clone();
    let uid = target.uid.clone();
    let stream = match api.log_stream(&pod, &params).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx
                .send(StreamMsg::Ended {
                    pod,
                    uid,
                    message: api_error_text(&e),
                })
                .await;
            return;
        }
    };
    if tx
        .send(StreamMsg::Opened {
            pod: pod.clone(),
            uid: uid.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let mut stream = std::pin::pin!(stream);
    let mut splitter = LineSplitter::default();
    let message = loop {
        let chunk = match stream.as_mut().fill_buf().await {
            Ok([]) => break "log stream ended (container stopped or pod deleted)".to_owned(),
            Ok(bytes) => bytes.to_vec(),
            Err(e) => break format!("log stream failed: {e}"),
        };
        stream.as_mut().consume(chunk.len());
        let mut latest = None;
        splitter.push(&chunk, |line| {
            if let Some(m) = new(line) {
                latest = Some(m);
            }
        });
        if let Some(m) = latest {
            let msg = StreamMsg::Active {
                pod: pod.clone(),
                uid: uid.clone(),
                active: m.active,
                time: m.time,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    };
    let mut latest = None;
    splitter.finish(|line| latest = new(line).or(latest));
    if let Some(m) = latest {
        let _ = tx
            .send(StreamMsg::Active {
                pod: pod.clone(),
                uid: uid.clone(),
                active: m.active,
                time: m.time,
            })
            .await;
    }
    let _ = tx.send(StreamMsg::Ended { pod, uid, message }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pod: &str, uid: &str) -> LogTarget {
        LogTarget {
            pod: pod.into(),
            uid: Some(uid.into()),
            container: Some("server".into()),
            ..Default::default()
        }
    }

    fn opts(max_streams: usize) -> FollowOptions {
        FollowOptions {
            max_streams,
            max_reopen: 2,
            ..FollowOptions::default()
        }
    }

    fn started(plan: &Plan) -> Vec<&str> {
        plan.start.iter().map(|(t, _, _)| t.pod.as_str()).collect()
    }

    #[test]
    fn new_pods_are_picked_up_and_gone_pods_dropped() {
        let mut t = Tracker::default();
        let plan = t.reconcile(vec![target("a", "1"), target("b", "2")], &opts(10));
        assert_eq!(started(&plan), ["a", "b"]);
        assert_eq!(
            plan.events,
            [
                FollowEvent::Added { pod: "a".into() },
                FollowEvent::Added { pod: "b".into() }
            ]
        );
        let (_, params, _) = &plan.start[0];
        assert!(params.follow && params.timestamps);
        assert_eq!(params.tail_lines, Some(500));
        assert_eq!(params.limit_bytes, None);

        // The same LIST again: nothing to do.
        let plan = t.reconcile(vec![target("a", "1"), target("b", "2")], &opts(10));
        assert!(
            plan.start.is_empty() && plan.stop.is_empty() && plan.events.is_empty(),
            "{plan:?}"
        );

        // b goes away, c appears later.
        let plan = t.reconcile(vec![target("a", "1"), target("c", "3")], &opts(10));
        assert_eq!(plan.stop, ["b"]);
        assert_eq!(started(&plan), ["c"]);
        assert_eq!(
            plan.events,
            [
                FollowEvent::Gone { pod: "b".into() },
                FollowEvent::Added { pod: "c".into() }
            ]
        );
        assert_eq!(t.rows().keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn a_pod_recreated_under_the_same_name_is_a_new_pod() {
        let mut t = Tracker::default();
        let _ = t.reconcile(vec![target("a", "1")], &opts(10));
        let _ = t.on_msg(StreamMsg::Active {
            pod: "a".into(),
            uid: Some("1".into()),
            active: 4,
            time: None,
        });
        let plan = t.reconcile(vec![target("a", "2")], &opts(10));
        assert_eq!(plan.stop, ["a"]);
        assert_eq!(started(&plan), ["a"]);
        assert_eq!(
            plan.events,
            [
                FollowEvent::Gone { pod: "a".into() },
                FollowEvent::Added { pod: "a".into() }
            ]
        );
        assert_eq!(t.rows()["a"].active, None);
        // A late message of the old stream is ignored.
        let stale = StreamMsg::Active {
            pod: "a".into(),
            uid: Some("1".into()),
            active: 9,
            time: None,
        };
        assert_eq!(t.on_msg(stale), None);
        assert_eq!(t.rows()["a"].active, None);
    }

    #[test]
    fn values_update_the_row_and_ended_streams_are_reopened_from_the_last_line() {
        let mut t = Tracker::default();
        let _ = t.reconcile(vec![target("a", "1")], &opts(10));
        let at: Timestamp = "2026-11-26T23:40:01Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let e = t.on_msg(StreamMsg::Active {
            pod: "a".into(),
            uid: Some("1".into()),
            active: 3,
            time: Some(at),
        });
        assert_eq!(
            e,
            Some(FollowEvent::Active {
                pod: "a".into(),
                active: 3,
                time: Some(at)
            })
        );
        assert_eq!(t.rows()["a"].state, StreamState::Streaming);
        assert_eq!(t.rows()["a"].logged_at, Some(at));

        let ended = || StreamMsg::Ended {
            pod: "a".into(),
            uid: Some("1".into()),
            message: "log stream ended".into(),
        };
        assert!(matches!(t.on_msg(ended()), Some(FollowEvent::Ended { .. })));
        let plan = t.reconcile(vec![target("a", "1")], &opts(10));
        assert_eq!(started(&plan), ["a"]);
        assert!(
            plan.events.is_empty(),
            "a reopen is not a new pod: {plan:?}"
        );
        let (_, params, seen) = &plan.start[0];
        assert_eq!(params.since_time, Some(at));
        assert_eq!(*seen, Some(at));
        assert_eq!(params.tail_lines, None);

        // The same end again is not reported twice; reopening is bounded.
        assert_eq!(t.on_msg(ended()), None);
        // The reopened stream says it is back, once (the end was printed).
        let opened = || StreamMsg::Opened {
            pod: "a".into(),
            uid: Some("1".into()),
        };
        assert_eq!(
            t.on_msg(opened()),
            Some(FollowEvent::Resumed { pod: "a".into() })
        );
        assert_eq!(
            t.on_msg(opened()),
            Some(FollowEvent::Opened { pod: "a".into() })
        );
        let plan = t.reconcile(vec![target("a", "1")], &opts(10));
        assert_eq!(started(&plan), ["a"]);
        let _ = t.on_msg(ended());
        let plan = t.reconcile(vec![target("a", "1")], &opts(10));
        assert!(
            plan.start.is_empty(),
            "opened 3 times with max_reopen 2: {plan:?}"
        );
    }

    #[test]
    fn a_reopened_stream_starts_at_the_whole_second_of_the_last_line() {
        let seen: Timestamp = "2026-12-05T00:19:24.506496992Z".parse().expect("time");
        let from = resume_from(seen);
        // Not rounded up past the line (kube-rs rounds sinceTime to the
        // nearest second: 24.5 would become 25 and skip what followed).
        assert_eq!(
            from,
            "2026-12-05T00:19:24Z".parse::<Timestamp>().expect("time")
        );
        assert!(from <= seen);
        assert_eq!(resume_from(from), from);
    }

    #[test]
    fn finished_pods_are_read_once_and_pending_pods_wait() {
        let mut t = Tracker::default();
        let mut done = target("a", "1");
        done.finished = true;
        let mut pending = target("b", "2");
        pending.not_loggable = Some("pod is Pending".into());
        let plan = t.reconcile(vec![done.clone(), pending.clone()], &opts(10));
        assert_eq!(started(&plan), ["a"]);
        assert_eq!(
            t.rows()["b"].state,
            StreamState::Waiting("pod is Pending".into())
        );
        let _ = t.on_msg(StreamMsg::Ended {
            pod: "a".into(),
            uid: Some("1".into()),
            message: "ended".into(),
        });
        // b starts running: picked up then.
        pending.not_loggable = None;
        let plan = t.reconcile(vec![done, pending], &opts(10));
        assert_eq!(started(&plan), ["b"]);
        assert_eq!(plan.events, [FollowEvent::Added { pod: "b".into() }]);
    }

    #[test]
    fn at_most_max_streams_and_the_rest_named_once() {
        let mut t = Tracker::default();
        let pods = || vec![target("a", "1"), target("b", "2"), target("c", "3")];
        let plan = t.reconcile(pods(), &opts(2));
        assert_eq!(started(&plan), ["a", "b"]);
        assert!(plan.events.contains(&FollowEvent::NotFollowed {
            pods: vec!["c".into()],
            limit: 2
        }));
        let plan = t.reconcile(pods(), &opts(2));
        assert!(plan.events.is_empty(), "named once: {plan:?}");
        // a goes away: c gets its slot; a never-followed pod going away is silent.
        let plan = t.reconcile(vec![target("b", "2"), target("c", "3")], &opts(2));
        assert_eq!(plan.stop, ["a"]);
        assert_eq!(started(&plan), ["c"]);
    }
}
