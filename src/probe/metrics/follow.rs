//! `logs --metric --follow`: poll every pod's gauge at `--interval` and say
//! what changed, as the log follow does (same events, same table). The
//! tracker is pure; `follow` does the polling.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::MetricSource;
use crate::probe::logs::follow::{FollowEvent, FollowRow, StreamState};
use crate::probe::logs::pods::LogTarget;
use crate::snapshot::PodLog;

/// The rows so far; each poll's rows become the events that changed them.
#[derive(Default)]
pub struct Tracker {
    rows: BTreeMap<String, FollowRow>,
    list_failing: Option<String>,
}

impl Tracker {
    pub fn rows(&self) -> &BTreeMap<String, FollowRow> {
        &self.rows
    }

    /// One poll's rows: pods gone, pods added, values changed, values lost.
    pub fn update(&mut self, polled: Vec<PodLog>, now: Timestamp) -> Vec<FollowEvent> {
        let mut events = Vec::new();
        if self.list_failing.take().is_some() {
            events.push(FollowEvent::ListRecovered);
        }
        let names: Vec<String> = polled.iter().map(|l| l.pod.clone()).collect();
        let gone: Vec<String> = self
            .rows
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        for pod in gone {
            self.rows.remove(&pod);
            events.push(FollowEvent::Gone { pod });
        }
        for l in polled {
            let row = self.rows.entry(l.pod.clone()).or_insert_with(|| {
                events.push(FollowEvent::Added { pod: l.pod.clone() });
                FollowRow {
                    target: LogTarget {
                        pod: l.pod.clone(),
                        node: l.node.clone(),
                        started: l.started.clone(),
                        ..LogTarget::default()
                    },
                    ..FollowRow::default()
                }
            });
            match (l.active, l.error) {
                (Some(active), _) => {
                    let was_ended = matches!(row.state, StreamState::Ended(_));
                    row.state = StreamState::Streaming;
                    row.logged_at = Some(now);
                    if was_ended {
                        events.push(FollowEvent::Resumed { pod: l.pod.clone() });
                    }
                    if row.active != Some(active) {
                        row.active = Some(active);
                        events.push(FollowEvent::Active {
                            pod: l.pod,
                            active,
                            time: Some(now),
                        });
                    }
                }
                (None, error) => {
                    let message = error.unwrap_or_else(|| "no value".to_string());
                    if row.state != StreamState::Ended(message.clone()) {
                        row.state = StreamState::Ended(message.clone());
                        events.push(FollowEvent::Ended {
                            pod: l.pod,
                            message,
                        });
                    }
                }
            }
        }
        events.push(FollowEvent::Polled);
        events
    }

    /// The pod LIST failed: said once per outage.
    pub fn list_failed(&mut self, message: String) -> Option<FollowEvent> {
        if self.list_failing.as_deref() == Some(message.as_str()) {
            return None;
        }
        self.list_failing = Some(message.clone());
        Some(FollowEvent::ListFailed { message })
    }
}

/// Poll until `shutdown`; `sink` gets each event and the rows after it.
pub async fn follow<S, F>(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    source: &MetricSource,
    max_concurrent: usize,
    mut sink: S,
    shutdown: F,
) where
    S: FnMut(&FollowEvent, &BTreeMap<String, FollowRow>),
    F: Future<Output = ()>,
{
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(source.interval.max(Duration::from_millis(200)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let poll = async {
            let pods = api
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| crate::probe::logs::tail::api_error_text(&e))?;
            // Mid-follow a pod without a value is its row's note, not the end.
            super::read::read_rows(client, namespace, &pods.items, source, max_concurrent)
                .await
                .map(|rows| rows.into_iter().map(|(l, _)| l).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        let events = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = poll => match r {
                Ok(rows) => tracker.update(rows, Timestamp::now()),
                Err(message) => tracker.list_failed(message).into_iter().collect(),
            },
        };
        for e in &events {
            sink(e, tracker.rows());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(pod: &str, active: Option<u64>, error: Option<&str>) -> PodLog {
        PodLog {
            pod: pod.into(),
            active,
            error: error.map(String::from),
            ..PodLog::default()
        }
    }

    #[test]
    fn polls_become_the_log_follow_events() {
        let now = Timestamp::UNIX_EPOCH;
        let mut t = Tracker::default();
        let e = t.update(vec![log("a", Some(1), None), log("b", Some(0), None)], now);
        assert_eq!(
            e,
            [
                FollowEvent::Added { pod: "a".into() },
                FollowEvent::Active {
                    pod: "a".into(),
                    active: 1,
                    time: Some(now)
                },
                FollowEvent::Added { pod: "b".into() },
                FollowEvent::Active {
                    pod: "b".into(),
                    active: 0,
                    time: Some(now)
                },
                FollowEvent::Polled,
            ]
        );
        // Unchanged values say nothing; a change and a lost value do, once.
        let e = t.update(vec![log("a", Some(1), None), log("b", Some(2), None)], now);
        assert_eq!(
            e,
            [
                FollowEvent::Active {
                    pod: "b".into(),
                    active: 2,
                    time: Some(now)
                },
                FollowEvent::Polled
            ]
        );
        let e = t.update(
            vec![log("a", None, Some("refused")), log("b", Some(2), None)],
            now,
        );
        assert_eq!(
            e,
            [
                FollowEvent::Ended {
                    pod: "a".into(),
                    message: "refused".into()
                },
                FollowEvent::Polled
            ]
        );
        let e = t.update(
            vec![log("a", None, Some("refused")), log("b", Some(2), None)],
            now,
        );
        assert_eq!(e, [FollowEvent::Polled]);
        // A pod gone, and the other's value back.
        let e = t.update(vec![log("a", Some(1), None)], now);
        assert_eq!(
            e,
            [
                FollowEvent::Gone { pod: "b".into() },
                FollowEvent::Resumed { pod: "a".into() },
                FollowEvent::Polled
            ]
        );
        assert_eq!(
            t.list_failed("down".into()),
            Some(FollowEvent::ListFailed {
                message: "down".into()
            })
        );
        assert_eq!(t.list_failed("down".into()), None);
        assert_eq!(
            t.update(vec![log("a", Some(1), None)], now)[0],
            FollowEvent::ListRecovered
        );
    }
}
