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
use super::pattern::{ActivePattern, match_line};
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
    /// The pod LIST failed; the previous pods are kept.
    ListFailed { message: String },
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
    task: Option<JoinHandle<()>>,
    /// Streams opened so far.
    opened: u32,
    /// The last end message reported, so a stream that keeps ending the
    /// same way is reported once.
    last_end: Option<String>,
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
    let mut pods: BTreeMap<String, Followed> = BTreeMap::new();
    let mut poll = tokio::time::interval(opts.poll_interval.max(Duration::from_millis(100)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_not_followed: Vec<String> = Vec::new();
    tokio::pin!(shutdown);

    loop {
        let mut events = Vec::new();
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(msg) = rx.recv() => {
                on_stream_msg(&mut pods, msg, &mut events);
                // Drain what is already queued so one burst is one redraw.
                while let Ok(msg) = rx.try_recv() {
                    on_stream_msg(&mut pods, msg, &mut events);
                }
            }
            _ = poll.tick() => {
                let listed = tokio::time::timeout(
                    Duration::from_secs(10).max(opts.poll_interval * 2),
                    api.list(&ListParams::default().labels(&source.selector)),
                )
                .await;
                match listed {
                    Ok(Ok(list)) => {
                        let targets = log_targets(&list.items, &source.container);
                        reconcile(&api, pattern, opts, &tx, &mut pods, targets, &mut events, &mut last_not_followed);
                    }
                    Ok(Err(e)) => events.push(FollowEvent::ListFailed { message: api_error_text(&e) }),
                    Err(_) => events.push(FollowEvent::ListFailed { message: "listing pods timed out".into() }),
                }
            }
        }
        if !events.is_empty() {
            let rows: BTreeMap<String, FollowRow> = pods
                .iter()
                .map(|(k, f)| (k.clone(), f.row.clone()))
                .collect();
            for e in &events {
                sink(e, &rows);
            }
        }
    }
    close_all(pods).await;
}

/// Aborts every stream task (dropping its HTTP body closes the stream) and
/// waits for them, bounded.
async fn close_all(pods: BTreeMap<String, Followed>) {
    let tasks: Vec<JoinHandle<()>> = pods.into_values().filter_map(|f| f.task).collect();
    for t in &tasks {
        t.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(tasks)).await;
}

fn on_stream_msg(
    pods: &mut BTreeMap<String, Followed>,
    msg: StreamMsg,
    events: &mut Vec<FollowEvent>,
) {
    // Messages from a stream of an earlier pod with the same name are stale.
    let current = |pods: &mut BTreeMap<String, Followed>, pod: &str, uid: &Option<String>| {
        pods.get(pod).is_some_and(|f| &f.row.target.uid == uid)
    };
    match msg {
        StreamMsg::Opened { pod, uid } => {
            if current(pods, &pod, &uid)
                && let Some(f) = pods.get_mut(&pod)
            {
                f.row.state = StreamState::Streaming;
            }
        }
        StreamMsg::Active {
            pod,
            uid,
            active,
            time,
        } => {
            if current(pods, &pod, &uid)
                && let Some(f) = pods.get_mut(&pod)
            {
                f.row.state = StreamState::Streaming;
                f.row.active = Some(active);
                if time.is_some() {
                    f.row.logged_at = time;
                }
                events.push(FollowEvent::Active { pod, active, time });
            }
        }
        StreamMsg::Ended { pod, uid, message } => {
            if current(pods, &pod, &uid)
                && let Some(f) = pods.get_mut(&pod)
            {
                f.task = None;
                f.row.state = StreamState::Ended(message.clone());
                if f.last_end.as_deref() != Some(message.as_str()) {
                    f.last_end = Some(message.clone());
                    events.push(FollowEvent::Ended { pod, message });
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn reconcile(
    api: &Api<Pod>,
    pattern: &ActivePattern,
    opts: &FollowOptions,
    tx: &mpsc::Sender<StreamMsg>,
    pods: &mut BTreeMap<String, Followed>,
    targets: Vec<LogTarget>,
    events: &mut Vec<FollowEvent>,
    last_not_followed: &mut Vec<String>,
) {
    // Gone: not listed any more, or listed again under a new uid.
    let listed: BTreeMap<&str, &LogTarget> = targets.iter().map(|t| (t.pod.as_str(), t)).collect();
    let gone: Vec<String> = pods
        .iter()
        .filter(|(name, f)| {
            listed
                .get(name.as_str())
                .is_none_or(|t| t.uid != f.row.target.uid)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in gone {
        if let Some(f) = pods.remove(&name) {
            if let Some(t) = f.task {
                t.abort();
            }
            if f.row.state != StreamState::NotFollowed {
                events.push(FollowEvent::Gone { pod: name });
            }
        }
    }

    let mut streaming = pods.values().filter(|f| f.task.is_some()).count();
    let mut not_followed = Vec::new();
    for target in targets {
        let name = target.pod.clone();
        let f = pods.entry(name.clone()).or_insert_with(|| Followed {
            row: FollowRow {
                target: target.clone(),
                state: StreamState::NotFollowed,
                ..Default::default()
            },
            task: None,
            opened: 0,
            last_end: None,
        });
        f.row.target.node = target.node.clone();
        if f.task.is_some() {
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
            events.push(FollowEvent::Added { pod: name.clone() });
        }
        // Reopen from the last line seen (no replay of old history); a new
        // stream starts with the bounded tail.
        let params = match f.row.logged_at {
            Some(t) if f.opened > 0 => LogParams {
                container: target.container.clone(),
                follow: true,
                since_time: Some(t),
                timestamps: true,
                ..LogParams::default()
            },
            _ => tail_params(
                target.container.as_deref(),
                opts.tail.tail_lines,
                &opts.tail,
                true,
            ),
        };
        f.opened += 1;
        f.row.state = StreamState::Opening;
        f.task = Some(tokio::spawn(stream_one(
            api.clone(),
            target,
            pattern.clone(),
            params,
            tx.clone(),
        )));
        streaming += 1;
    }
    if !not_followed.is_empty() && not_followed != *last_not_followed {
        events.push(FollowEvent::NotFollowed {
            pods: not_followed.clone(),
            limit: opts.max_streams,
        });
    }
    *last_not_followed = not_followed;
}

/// One pod's log stream: each chunk that arrives is split into lines, and
/// the newest match in it is sent (a burst of history is one message).
async fn stream_one(
    api: Api<Pod>,
    target: LogTarget,
    pattern: ActivePattern,
    params: LogParams,
    tx: mpsc::Sender<StreamMsg>,
) {
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
            if let Some(m) = match_line(&pattern, line) {
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
    splitter.finish(|line| latest = match_line(&pattern, line).or(latest));
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
