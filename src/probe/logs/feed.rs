//! One pod's `Active connections` counts as they are logged, from a single
//! follow stream: what `per-pod` watches while its connections open and
//! close, instead of reading the log's tail again and again.
//!
//! Through a real API server every tail read is a request the API server
//! authorises, looks the pod up for in etcd and proxies to the node; one
//! stream replaces the reads while the connections are held and after they
//! close, and sees each line the moment the pod logs it instead of at the
//! next poll.

use futures::{AsyncBufRead, AsyncBufReadExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::lines::{LineSplitter, MAX_LINE_BYTES};
use super::pattern::{ActivePattern, match_after};
use super::tail::api_error_text;

/// Counts buffered between the stream and the reader; past this the stream
/// is simply not read (TCP holds the rest), so memory stays bounded.
const BUFFERED_COUNTS: usize = 256;

/// `follow=true&tailLines=1&timestamps=true`. One line of history, not
/// none: a kubelet sends no response headers until the first log byte, so
/// with `tailLines=0` opening the stream of a quiet pod would hang.
pub fn feed_params(container: Option<&str>) -> LogParams {
    LogParams {
        container: container.map(str::to_owned),
        follow: true,
        tail_lines: Some(1),
        timestamps: true,
        ..LogParams::default()
    }
}

/// The count in a `timestamps=true` line logged after `after`, if the line
/// has one. A line without a time cannot be placed, so it is left out.
pub fn count_after(pattern: &ActivePattern, line: &str, after: Timestamp) -> Option<u64> {
    match_after(pattern, line, Some(after)).map(|m| m.active)
}

/// An open follow stream of one pod's log, not yet read.
pub struct FeedStream(Box<dyn AsyncBufRead + Send + Unpin>);

impl FeedStream {
    /// Opens the stream ([`feed_params`]); the API's own message on error.
    pub async fn open(api: &Api<Pod>, pod: &str, container: Option<&str>) -> Result<Self, String> {
        let stream = api
            .log_stream(pod, &feed_params(container))
            .await
            .map_err(|e| api_error_text(&e))?;
        Ok(FeedStream::from_reader(Box::pin(stream)))
    }

    /// The stream's first line without its newline: with [`feed_params`]
    /// the log's newest line when the stream opened. At most
    /// [`MAX_LINE_BYTES`] of it are kept; `None` when the stream ends with
    /// nothing. What follows the line stays in the stream.
    pub async fn first_line(&mut self) -> Result<Option<String>, String> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            let buf = self
                .0
                .fill_buf()
                .await
                .map_err(|e| format!("log stream: {e}"))?;
            if buf.is_empty() {
                return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
            }
            let end = buf.iter().position(|&b| b == b'\n');
            let part = &buf[..end.unwrap_or(buf.len())];
            let room = MAX_LINE_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            let used = end.map_or(buf.len(), |i| i + 1);
            self.0.consume_unpin(used);
            if end.is_some() {
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
        }
    }

    /// Any reader as a stream (the API's, or a test's).
    pub(crate) fn from_reader(reader: impl AsyncBufRead + Send + Unpin + 'static) -> Self {
        FeedStream(Box::new(reader))
    }
}

/// The counts of the lines logged after a known one. Dropping it closes
/// the stream.
pub struct CountFeed {
    rx: mpsc::Receiver<u64>,
    task: JoinHandle<()>,
}

impl CountFeed {
    /// Reads `stream` in a task of its own, keeping the counts of lines
    /// logged after `after` (the line the count before was read from).
    pub fn start(stream: FeedStream, pattern: ActivePattern, after: Timestamp) -> Self {
        let (tx, rx) = mpsc::channel(BUFFERED_COUNTS);
        let task = tokio::spawn(read_counts(stream.0, pattern, after, tx));
        CountFeed { rx, task }
    }

    /// The next count logged; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<u64> {
        self.rx.recv().await
    }
}

impl Drop for CountFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_counts(
    mut stream: Box<dyn AsyncBufRead + Send + Unpin>,
    pattern: ActivePattern,
    after: Timestamp,
    tx: mpsc::Sender<u64>,
) {
    let mut splitter = LineSplitter::default();
    loop {
        let chunk = match stream.fill_buf().await {
            Ok([]) => break,
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                tracing::debug!("count feed: {e}");
                break;
            }
        };
        stream.consume_unpin(chunk.len());
        let mut counts = Vec::new();
        splitter.push(&chunk, |line| {
            counts.extend(count_after(&pattern, line, after))
        });
        for c in counts {
            if tx.send(c).await.is_err() {
                return;
            }
        }
    }
    let mut last = None;
    splitter.finish(|line| last = count_after(&pattern, line, after));
    if let Some(c) = last {
        let _ = tx.send(c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::logs::pattern::ts;

    #[test]
    fn only_lines_logged_after_the_known_one_count() {
        let p = ActivePattern::default();
        let after = ts("2026-12-04T10:00:00.000000500Z");
        // The line the count before came from, and one older: not counted.
        let same = "2026-12-04T10:00:00.000000500Z INFO Active connections: 3";
        let older = "2026-12-04T09:59:59.999999999Z INFO Active connections: 9";
        let newer = "2026-12-04T10:00:00.000000501Z INFO Active connections: 4";
        assert_eq!(count_after(&p, same, after), None);
        assert_eq!(count_after(&p, older, after), None);
        assert_eq!(count_after(&p, newer, after), Some(4));
        // A newer line without a count, and a count without a time.
        assert_eq!(
            count_after(&p, "2026-12-04T10:00:01Z INFO client from 10.0.0.9", after),
            None
        );
        assert_eq!(count_after(&p, "INFO Active connections: 5", after), None);
    }

    #[tokio::test]
    async fn the_first_line_is_taken_and_the_rest_stays_for_the_feed() {
        // Delivered in pieces that split the first line.
        let chunks: Vec<std::io::Result<Vec<u8>>> = vec![
            Ok(b"2026-12-04T10:00:00Z INFO Active ".to_vec()),
            Ok(b"connections: 3\n2026-12-04T10:00:01Z INFO Active connections: 4\n".to_vec()),
        ];
        use futures::TryStreamExt;
        let mut stream = FeedStream::from_reader(futures::stream::iter(chunks).into_async_read());
        let first = stream.first_line().await.expect("read");
        assert_eq!(
            first.as_deref(),
            Some("2026-12-04T10:00:00Z INFO Active connections: 3")
        );
        let mut feed =
            CountFeed::start(stream, ActivePattern::default(), ts("2026-12-04T10:00:00Z"));
        assert_eq!(feed.next().await, Some(4));
        assert_eq!(feed.next().await, None);

        let mut empty = FeedStream::from_reader(futures::io::Cursor::new(Vec::new()));
        assert_eq!(empty.first_line().await, Ok(None));
        // A huge line is cut, not kept whole.
        let long = vec![b'x'; MAX_LINE_BYTES * 2];
        let mut huge = FeedStream::from_reader(futures::io::Cursor::new(long));
        let line = huge.first_line().await.expect("read").expect("a line");
        assert_eq!(line.len(), MAX_LINE_BYTES);
    }

    #[test]
    fn params_follow_with_one_line_of_history() {
        let p = feed_params(Some("server"));
        assert!(p.follow && p.timestamps);
        assert_eq!(p.tail_lines, Some(1));
        assert_eq!(p.limit_bytes, None);
        assert_eq!(p.container.as_deref(), Some("server"));
    }

    #[tokio::test]
    async fn counts_arrive_in_order_and_the_feed_ends_with_the_stream() {
        let text = "2026-12-04T10:00:00Z INFO Active connections: 1\n\
                    2026-12-04T10:00:01Z INFO Active connections: 2\n\
                    2026-12-04T10:00:02Z INFO client closed\n\
                    2026-12-04T10:00:03Z INFO Active connections: 1";
        let stream = FeedStream::from_reader(futures::io::Cursor::new(text.as_bytes().to_vec()));
        let mut feed =
            CountFeed::start(stream, ActivePattern::default(), ts("2026-12-04T10:00:00Z"));
        let mut got = Vec::new();
        while let Some(c) = feed.next().await {
            got.push(c);
        }
        // The known line is left out; the last one has no newline.
        assert_eq!(got, [2, 1]);
    }
}
