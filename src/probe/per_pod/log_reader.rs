//! `per-pod`'s reader of each pod's `Active connections` log line, over the
//! kube API: a [`CountFeed`] per pod from one follow stream, and one tail
//! read only when the stream's first line holds no count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::{ActiveReader, PodTarget, Start};
use crate::probe::logs::feed::{CountFeed, FeedStream};
use crate::probe::logs::pattern::match_line;
use crate::probe::logs::{ActiveMatch, ActivePattern, TailLimits, read_tail};

/// How long the log stream may take to open before the log is polled
/// instead: a kubelet sends the headers with the first line, at once for a
/// pod that has logged anything.
const FEED_OPEN: Duration = Duration::from_secs(5);

/// How long the stream's first line is waited for before the tail is read
/// as well: a kubelet holds back the stream of a log with no line at all.
const TAIL_AFTER: Duration = Duration::from_millis(250);

/// Reads pods' logs through the API server (`pods/log`).
pub struct KubeActiveReader {
    client: kube::Client,
    namespace: String,
    pattern: ActivePattern,
    /// Some pod's stream gave no line within [`TAIL_AFTER`]: the Service's
    /// pods may log nothing, so later pods read the tail at once.
    slow_streams: AtomicBool,
}

impl KubeActiveReader {
    pub fn new(client: kube::Client, namespace: String, pattern: ActivePattern) -> Self {
        KubeActiveReader {
            client,
            namespace,
            pattern,
            slow_streams: AtomicBool::new(false),
        }
    }

    async fn tail(&self, target: &PodTarget) -> Option<ActiveMatch> {
        let read = read_tail(
            &self.client,
            &self.namespace,
            &target.name,
            target.container.as_deref(),
            &self.pattern,
            TailLimits::default(),
        )
        .await;
        match read {
            Ok(read) => read.latest,
            Err(e) => {
                tracing::debug!("log of pod/{}: {e}", target.name);
                None
            }
        }
    }
}

/// The count and time of a match, when the line had a time.
fn timed(m: ActiveMatch) -> Option<(u64, Timestamp)> {
    Some((m.active, m.time?))
}

/// The count and time of a `timestamps=true` line, when it has both.
fn timed_count(pattern: &ActivePattern, line: Option<&str>) -> Option<(u64, Timestamp)> {
    timed(match_line(pattern, line?)?)
}

/// The newer of two timed counts.
fn newer(a: Option<(u64, Timestamp)>, b: Option<(u64, Timestamp)>) -> Option<(u64, Timestamp)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
        (a, b) => a.or(b),
    }
}

type Opened = Result<Result<(FeedStream, Option<String>), String>, tokio::time::error::Elapsed>;

impl ActiveReader for KubeActiveReader {
    fn active<'a>(&'a self, target: &'a PodTarget) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move { self.tail(target).await.map(|m| m.active) })
    }

    /// Opens the follow stream (`tailLines=1`) while the port-forward
    /// opens. Its first line is the log's newest: when that is a timed
    /// count, it is the count before, and the stream's later counts are the
    /// readings: one request. Otherwise (a server that logs other lines
    /// too, or none at all) the tail is read for the newest count as well.
    /// Without any timed count the stream is dropped and the log is polled.
    fn start<'a>(&'a self, target: &'a PodTarget) -> BoxFuture<'a, Start> {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
            let name = target.name.as_str();
            let mut open = std::pin::pin!(tokio::time::timeout(FEED_OPEN, async {
                let mut stream = FeedStream::open(&api, name, target.container.as_deref()).await?;
                let first = stream.first_line().await?;
                Ok((stream, first))
            }));

            let mut opened: Option<Opened> = None;
            if !self.slow_streams.load(Ordering::Relaxed) {
                tokio::select! {
                    o = &mut open => opened = Some(o),
                    () = tokio::time::sleep(TAIL_AFTER) => {
                        self.slow_streams.store(true, Ordering::Relaxed);
                    }
                }
            }
            let first = |o: &Option<Opened>| match o {
                Some(Ok(Ok((_, line)))) => timed_count(&self.pattern, line.as_deref()),
                _ => None,
            };
            if let Some((before, after)) = first(&opened)
                && let Some(Ok(Ok((stream, _)))) = opened
            {
                let feed = CountFeed::start(stream, self.pattern.clone(), after);
                return Start {
                    before: Some(before),
                    feed: Some(feed),
                };
            }

            // The tail as well, while the stream goes on opening.
            let mut tail = std::pin::pin!(self.tail(target));
            let latest = loop {
                tokio::select! {
                    t = &mut tail => break t,
                    o = &mut open, if opened.is_none() => opened = Some(o),
                }
            };
            let from_tail = latest.and_then(timed);
            let Some((before, after)) = newer(from_tail, first(&opened)) else {
                return Start {
                    before: latest.map(|m| m.active),
                    feed: None,
                };
            };
            let opened = match opened {
                Some(o) => o,
                None => open.await,
            };
            let feed = match opened {
                Ok(Ok((stream, _))) => Some(CountFeed::start(stream, self.pattern.clone(), after)),
                Ok(Err(e)) => {
                    tracing::debug!("log stream of pod/{name}: {e}; polling");
                    None
                }
                Err(_) => {
                    tracing::debug!("log stream of pod/{name} did not open; polling");
                    None
                }
            };
            Start {
                before: Some(before),
                feed,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::logs::pattern::ts;

    #[test]
    fn only_a_timed_count_starts_the_feed() {
        let p = ActivePattern::default();
        assert_eq!(
            timed_count(&p, Some("2026-12-04T10:00:00Z INFO Active connections: 3")),
            Some((3, ts("2026-12-04T10:00:00Z")))
        );
        assert_eq!(
            timed_count(
                &p,
                Some("2026-12-04T10:00:00Z INFO listening on 0.0.0.0:8080")
            ),
            None
        );
        assert_eq!(timed_count(&p, Some("INFO Active connections: 3")), None);
        assert_eq!(timed_count(&p, None), None);
    }

    /// An API server whose pods have logged nothing, as a kubelet serves
    /// them: a tail read is answered with an empty body, a follow stream
    /// not at all (no headers before the first byte).
    async fn silent_api() -> String {
        use hyper_util::rt::TokioIo;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            if req.uri().query().is_some_and(|q| q.contains("follow=true")) {
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(hyper::body::Bytes::new()),
                            ))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        url
    }

    fn pod(name: &str) -> PodTarget {
        PodTarget {
            name: name.into(),
            node: None,
            ready: true,
            port: Ok(8080),
            container: None,
        }
    }

    #[tokio::test]
    async fn a_silent_log_is_polled_and_only_the_first_pod_waits_for_its_stream() {
        let config = kube::Config::new(silent_api().await.parse().expect("url"));
        let client = crate::http_stack::client_builder(config)
            .expect("client")
            .build();
        let reader = KubeActiveReader::new(client, "ns".into(), ActivePattern::default());

        let started = std::time::Instant::now();
        let first = reader.start(&pod("web-0")).await;
        let waited = started.elapsed();
        assert!(first.before.is_none() && first.feed.is_none());
        assert!(
            waited >= TAIL_AFTER && waited < FEED_OPEN,
            "the stream was given {waited:?}"
        );

        // The next pod reads its tail at once: no wait for a stream that
        // will not answer.
        let started = std::time::Instant::now();
        let second = reader.start(&pod("web-1")).await;
        assert!(second.before.is_none() && second.feed.is_none());
        assert!(
            started.elapsed() < TAIL_AFTER,
            "the second pod waited {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_newer_count_wins() {
        let old = Some((5, ts("2026-12-04T10:00:00Z")));
        let new = Some((2, ts("2026-12-04T10:00:01Z")));
        assert_eq!(newer(old, new), new);
        assert_eq!(newer(new, old), new);
        assert_eq!(newer(None, old), old);
        assert_eq!(newer(old, None), old);
        assert_eq!(newer(None, None), None);
    }
}
