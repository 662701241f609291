//! A pod's log: the lines its process printed, with the time each arrived
//! (the kubelet's timestamps), bounded in size, and followable.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use jiff::Timestamp;
use tokio::sync::watch;

/// Keep at most this much log text per pod (the kubelet rotates at 10 MiB too).
pub const MAX_LOG_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LogLine {
    pub seq: u64,
    pub time: Timestamp,
    /// `time` as the kubelet prints it, formatted once when the line arrives
    /// (lines are read far more often than written) and shared by the lines
    /// of one append.
    pub stamp: Arc<str>,
    /// The line including its trailing newline.
    pub text: String,
}

struct Inner {
    lines: VecDeque<LogLine>,
    bytes: usize,
    next_seq: u64,
}

pub struct LogBuffer {
    inner: Mutex<Inner>,
    /// (next sequence number, closed): followers wait on changes.
    tick: watch::Sender<(u64, bool)>,
    max_bytes: usize,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::new(MAX_LOG_BYTES)
    }
}

/// The log query parameters of `GET pods/{name}/log`.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<Timestamp>,
    pub timestamps: bool,
    pub follow: bool,
}

impl LogBuffer {
    pub fn new(max_bytes: usize) -> Self {
        let (tick, _) = watch::channel((0, false));
        Self {
            inner: Mutex::new(Inner {
                lines: VecDeque::new(),
                bytes: 0,
                next_seq: 0,
            }),
            tick,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append text; each line (a trailing partial line too) becomes one entry.
    pub fn append(&self, text: &str) {
        self.append_at(text, Timestamp::now());
    }

    pub fn append_at(&self, text: &str, time: Timestamp) {
        let stamp: Arc<str> = format_rfc3339_nano(time).into();
        let next = {
            let mut inner = self.lock();
            for line in text.split_inclusive('\n') {
                let mut line = line.to_string();
                if !line.ends_with('\n') {
                    line.push('\n');
                }
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.bytes += line.len();
                inner.lines.push_back(LogLine {
                    seq,
                    time,
                    stamp: stamp.clone(),
                    text: line,
                });
            }
            while inner.bytes > self.max_bytes {
                match inner.lines.pop_front() {
                    Some(old) => inner.bytes -= old.text.len(),
                    None => break,
                }
            }
            inner.next_seq
        };
        self.tick.send_modify(|t| t.0 = next);
    }

    /// No more lines will come (the container exited): followers finish.
    pub fn close(&self) {
        self.tick.send_modify(|t| t.1 = true);
    }

    pub fn subscribe(&self) -> watch::Receiver<(u64, bool)> {
        self.tick.subscribe()
    }

    /// Lines selected by since/tail (not limitBytes), plus the next sequence number.
    pub fn select(&self, q: &LogQuery, now: Timestamp) -> (Vec<LogLine>, u64) {
        let inner = self.lock();
        let since = q
            .since_seconds
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok())
            .or(q.since_time);
        // From the end, so a tail of a long log copies only the lines it returns.
        let mut lines: Vec<LogLine> = inner
            .lines
            .iter()
            .rev()
            .filter(|l| since.is_none_or(|t| l.time >= t))
            .take(q.tail_lines.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        lines.reverse();
        (lines, inner.next_seq)
    }

    /// Lines with a sequence number at or after `from`.
    pub fn since_seq(&self, from: u64) -> (Vec<LogLine>, u64) {
        let inner = self.lock();
        let lines = inner
            .lines
            .iter()
            .filter(|l| l.seq >= from)
            .cloned()
            .collect();
        (lines, inner.next_seq)
    }
}

/// Render lines as the kubelet does: optional RFC 3339 nano timestamp and a space.
pub fn render(lines: &[LogLine], timestamps: bool) -> String {
    let mut out = String::new();
    for l in lines {
        if timestamps {
            out.push_str(&l.stamp);
            out.push(' ');
        }
        out.push_str(&l.text);
    }
    out
}

/// Go's `time.RFC3339Nano`: trailing zeros of the fraction are dropped.
pub fn format_rfc3339_nano(t: Timestamp) -> String {
    let base = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.subsec_nanosecond();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Cuts output at limitBytes across several chunks (the kubelet cuts mid-line too).
#[derive(Debug)]
pub struct Limiter {
    left: Option<usize>,
}

impl Limiter {
    pub fn new(limit: Option<usize>) -> Self {
        Self { left: limit }
    }

    pub fn exhausted(&self) -> bool {
        self.left == Some(0)
    }

    pub fn take(&mut self, text: String) -> Bytes {
        let mut bytes = text.into_bytes();
        if let Some(left) = self.left.as_mut() {
            bytes.truncate(*left);
            *left -= bytes.len();
        }
        Bytes::from(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf_with(lines: &[(&str, i64)]) -> LogBuffer {
        let b = LogBuffer::new(1024);
        for (text, secs) in lines {
            b.append_at(text, Timestamp::from_second(*secs).unwrap());
        }
        b
    }

    #[test]
    fn tail_since_and_timestamps() {
        let b = buf_with(&[("a\n", 100), ("b\nc\n", 200), ("d", 300)]);
        let now = Timestamp::from_second(300).unwrap();
        let q = LogQuery {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(render(&b.select(&q, now).0, false), "c\nd\n");
        let q = LogQuery {
            since_seconds: Some(150),
            ..Default::default()
        };
        assert_eq!(render(&b.select(&q, now).0, false), "b\nc\nd\n");
        let q = LogQuery {
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            render(&b.select(&q, now).0, true),
            "1970-01-01T00:05:00Z d\n"
        );
    }

    #[test]
    fn limiter_cuts_across_chunks() {
        let mut l = Limiter::new(Some(5));
        assert_eq!(l.take("abc".into()), "abc");
        assert_eq!(l.take("defg".into()), "de");
        assert!(l.exhausted());
    }

    #[test]
    fn buffer_is_bounded() {
        let b = LogBuffer::new(10);
        b.append("12345\n12345\n12345\n");
        let (lines, next) = b.since_seq(0);
        assert_eq!(lines.len(), 1);
        assert_eq!(next, 3);
    }

    #[test]
    fn nano_format_trims_zeros() {
        let t = Timestamp::new(1, 120_000_000).unwrap();
        assert_eq!(format_rfc3339_nano(t), "1970-01-01T00:00:01.12Z");
    }
}
