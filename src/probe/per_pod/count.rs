//! One pod's `Active connections` over its test: the count before any test
//! connection, then the readings while they are held and after they close.
//!
//! Readings come either from a [`CountFeed`] (one log stream, each line as
//! it is logged) or by polling the reader (`--metric`, or a log that gave
//! no timed count to start the stream from).

use std::time::Duration;

use tokio::time::Instant;

use super::{ActiveReader, PodTarget};
use crate::probe::logs::feed::CountFeed;

/// Between two polled readings.
pub const POLL: Duration = Duration::from_millis(250);

/// Where a pod's later readings come from.
enum Source<'a> {
    Polled {
        reader: &'a dyn ActiveReader,
        target: &'a PodTarget,
    },
    Fed {
        feed: CountFeed,
        /// The latest count: the one before, then each one logged since.
        current: Option<u64>,
    },
}

/// What [`ActiveReader::start`] read: the count before the test, and the
/// counts logged since, when the reader streams them.
pub struct Start {
    pub before: Option<u64>,
    pub feed: Option<CountFeed>,
}

/// One pod's count, from before its test to after it.
pub struct PodCount<'a> {
    /// The count before any test connection was opened.
    pub before: Option<u64>,
    source: Source<'a>,
}

impl<'a> PodCount<'a> {
    /// Fed when `start` brought a feed and a count to start it from, else
    /// polled through `reader`.
    pub fn new(reader: &'a dyn ActiveReader, target: &'a PodTarget, start: Start) -> Self {
        match (start.before, start.feed) {
            (Some(before), Some(feed)) => PodCount::fed(before, feed),
            (before, _) => PodCount::polled(reader, target, before),
        }
    }

    /// Later readings by calling `reader.active` again, every [`POLL`].
    fn polled(reader: &'a dyn ActiveReader, target: &'a PodTarget, before: Option<u64>) -> Self {
        PodCount {
            before,
            source: Source::Polled { reader, target },
        }
    }

    /// Later readings from `feed`, which holds the counts logged since the
    /// one `before` was read from.
    fn fed(before: u64, feed: CountFeed) -> Self {
        PodCount {
            before: Some(before),
            source: Source::Fed {
                feed,
                current: Some(before),
            },
        }
    }

    /// Readings until one satisfies `done` or `deadline` passes, in order.
    /// Polled: at least one reading, even past the deadline. Fed: the
    /// current count first, then each one logged, and nothing more once the
    /// stream has ended.
    pub async fn readings_until(
        &mut self,
        done: impl Fn(Option<u64>) -> bool,
        deadline: Instant,
    ) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        match &mut self.source {
            Source::Polled { reader, target } => loop {
                let reading = reader.active(target).await;
                out.push(reading);
                // Bounded by the deadline.
                if done(reading) || Instant::now() + POLL >= deadline {
                    break;
                }
                tokio::time::sleep(POLL).await;
            },
            Source::Fed { feed, current } => {
                out.push(*current);
                if done(*current) {
                    return out;
                }
                loop {
                    let next = tokio::select! {
                        n = feed.next() => n,
                        () = tokio::time::sleep_until(deadline) => None,
                    };
                    let Some(n) = next else { break };
                    *current = Some(n);
                    out.push(Some(n));
                    if done(Some(n)) {
                        break;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::logs::ActivePattern;
    use crate::probe::logs::feed::FeedStream;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    /// Hands out its readings one per call, then `None`.
    struct Script(Mutex<Vec<Option<u64>>>);

    impl ActiveReader for Script {
        fn active<'a>(&'a self, _t: &'a PodTarget) -> BoxFuture<'a, Option<u64>> {
            let mut left = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let next = if left.is_empty() {
                None
            } else {
                left.remove(0)
            };
            Box::pin(async move { next })
        }
    }

    fn target() -> PodTarget {
        PodTarget {
            name: "web-0".into(),
            node: None,
            ready: true,
            port: Ok(8080),
            container: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polled_stops_at_the_first_reading_that_is_done() {
        let reader = Script(Mutex::new(vec![Some(1), Some(5), Some(11), Some(12)]));
        let t = target();
        let mut count = PodCount::polled(&reader, &t, Some(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = count
            .readings_until(|r| r.is_some_and(|n| n >= 11), deadline)
            .await;
        assert_eq!(got, [Some(1), Some(5), Some(11)]);
    }

    #[tokio::test(start_paused = true)]
    async fn polled_reads_once_even_past_the_deadline() {
        let reader = Script(Mutex::new(vec![Some(3), Some(4)]));
        let t = target();
        let mut count = PodCount::polled(&reader, &t, None);
        let got = count.readings_until(|_| false, Instant::now()).await;
        assert_eq!(got, [Some(3)]);
    }

    fn feed(lines: &str) -> CountFeed {
        let stream = FeedStream::from_reader(futures::io::Cursor::new(lines.as_bytes().to_vec()));
        let after = "2026-12-04T10:00:00Z".parse().expect("time");
        CountFeed::start(stream, ActivePattern::default(), after)
    }

    #[tokio::test]
    async fn fed_starts_from_the_count_before_and_keeps_the_latest() {
        let mut count = PodCount::fed(
            1,
            feed(
                "2026-12-04T10:00:01Z Active connections: 2\n\
                 2026-12-04T10:00:02Z Active connections: 3\n\
                 2026-12-04T10:00:03Z Active connections: 2\n\
                 2026-12-04T10:00:04Z Active connections: 1\n",
            ),
        );
        assert!(matches!(count.source, Source::Fed { .. }));
        let far = Instant::now() + Duration::from_secs(10);
        let during = count
            .readings_until(|r| r.is_some_and(|n| n >= 3), far)
            .await;
        assert_eq!(during, [Some(1), Some(2), Some(3)]);
        // After picks up where during stopped.
        let after = count
            .readings_until(|r| r.is_some_and(|n| n <= 1), far)
            .await;
        assert_eq!(after, [Some(3), Some(2), Some(1)]);
    }

    #[tokio::test]
    async fn fed_returns_when_the_stream_ends_before_the_deadline() {
        let mut count = PodCount::fed(1, feed("2026-12-04T10:00:01Z Active connections: 2\n"));
        let started = std::time::Instant::now();
        let got = count
            .readings_until(|_| false, Instant::now() + Duration::from_secs(30))
            .await;
        assert_eq!(got, [Some(1), Some(2)]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn fed_gives_up_at_the_deadline_on_a_quiet_pod() {
        use futures::TryStreamExt;
        let quiet = futures::stream::pending::<std::io::Result<Vec<u8>>>().into_async_read();
        let stream = FeedStream::from_reader(quiet);
        let after = "2026-12-04T10:00:00Z".parse().expect("time");
        let mut count = PodCount::fed(4, CountFeed::start(stream, ActivePattern::default(), after));
        let got = count
            .readings_until(|_| false, Instant::now() + Duration::from_secs(1))
            .await;
        assert_eq!(got, [Some(4)]);
    }
}
