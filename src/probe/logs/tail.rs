//! Reading the tail of one pod's log, once: one bounded GET `pods/log`.

use std::time::Duration;

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use super::pattern::{ActiveMatch, ActivePattern, latest_in_chunk};
use super::pods::LogTarget;

/// How much of a log one read may fetch. The API server applies `tailLines`
/// first and then cuts the output after `limitBytes`, so a huge log is never
/// sent whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailLimits {
    /// `--tail`: lines from the end of the log (`tailLines`).
    pub tail_lines: u32,
    /// `--limit-bytes`: at most this many bytes per request (`limitBytes`).
    pub limit_bytes: u32,
    /// `--since`: only lines newer than this (`sinceSeconds`).
    pub since: Option<Duration>,
}

impl TailLimits {
    pub const DEFAULT_TAIL_LINES: u32 = 500;
    pub const DEFAULT_LIMIT_BYTES: u32 = 64 * 1024;
}

impl Default for TailLimits {
    fn default() -> Self {
        Self {
            tail_lines: Self::DEFAULT_TAIL_LINES,
            limit_bytes: Self::DEFAULT_LIMIT_BYTES,
            since: None,
        }
    }
}

/// Bytes read beyond `limitBytes` before the client stops on its own: the
/// API says the limit is approximate, and a server that ignores it must still
/// not make us download a huge log.
const CLIENT_SLACK_BYTES: u64 = 4096;

/// At most this many GETs for one pod: the first, and up to two with fewer
/// lines when `limitBytes` cut the tail before its newest line.
const MAX_ATTEMPTS: u32 = 3;

/// What one tail read found, with the numbers behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TailRead {
    /// The newest matching line.
    pub latest: Option<ActiveMatch>,
    /// Bytes received over all attempts.
    pub bytes: u64,
    /// GET requests made (1..=3).
    pub requests: u32,
    /// The last request was still cut by `limitBytes`, so newer lines may exist.
    pub truncated: bool,
}

/// The `LogParams` for one tail read.
pub fn tail_params(
    container: Option<&str>,
    tail_lines: u32,
    limits: &TailLimits,
    follow: bool,
) -> LogParams {
    LogParams {
        container: container.map(str::to_owned),
        follow,
        limit_bytes: if follow {
            None
        } else {
            Some(i64::from(limits.limit_bytes.max(1)))
        },
        tail_lines: Some(i64::from(tail_lines)),
        since_seconds: limits
            .since
            .map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)),
        timestamps: true,
        ..LogParams::default()
    }
}

/// The `Active connections` of one target from its recent log, as its
/// `PodLog` row: [`read_tail`]'s newest match. A pod without a log yet
/// (Pending) is reported without a request.
///
/// Never fails: an API error is returned in `PodLog.error`, no line found
/// leaves `active` empty.
pub async fn read_latest_active(
    client: &kube::Client,
    namespace: &str,
    target: &LogTarget,
    pattern: &ActivePattern,
    tail: TailLimits,
) -> crate::snapshot::PodLog {
    let mut out = crate::snapshot::PodLog {
        pod: target.pod.clone(),
        node: target.node.clone(),
        started: target.started.clone(),
        ..Default::default()
    };
    if let Some(why) = &target.not_loggable {
        out.error = Some(why.clone());
        return out;
    }
    let container = target.container.as_deref();
    match read_tail(client, namespace, &target.pod, container, pattern, tail).await {
        Ok(read) => {
            if let Some(m) = read.latest {
                out.active = Some(m.active);
                out.logged_at = m.time.map(|t| t.to_string());
            }
        }
        Err(e) => out.error = Some(e),
    }
    tracing::debug!(pod = %target.pod, active = ?out.active, error = ?out.error, "log tail read");
    out
}

/// The newest `Active connections` line of one pod's log, with the byte
/// and request counts: one GET
/// `pods/log?tailLines=..&limitBytes=..&timestamps=true` (a second or third
/// smaller one only when `limitBytes` cut off the newest lines).
pub async fn read_tail(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    pattern: &ActivePattern,
    tail: TailLimits,
) -> Result<TailRead, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut read = TailRead::default();
    let mut tail_lines = tail.tail_lines.max(1);
    loop {
        let params = tail_params(container, tail_lines, &tail, false);
        let chunk = fetch_bounded(&api, pod, &params, u64::from(tail.limit_bytes)).await?;
        read.requests += 1;
        read.bytes += chunk.len() as u64;
        let cut = chunk.len() as u64 >= u64::from(tail.limit_bytes);
        let text = String::from_utf8_lossy(&chunk);
        let complete_lines = u32::try_from(text.matches('\n').count()).unwrap_or(u32::MAX);
        let latest = latest_in_chunk(pattern, &text);
        if latest.is_some() || read.latest.is_none() {
            // A cut retry that finds nothing keeps the older match.
            read.latest = latest.or(read.latest);
        }
        read.truncated = cut;
        match next_tail_lines(cut, tail_lines, complete_lines) {
            Some(next) if read.requests < MAX_ATTEMPTS => tail_lines = next,
            _ => return Ok(read),
        }
    }
}

/// Reads every target's tail ([`read_latest_active`]), at most
/// `max_concurrent` requests at once (`--max-log-requests`), in the
/// targets' order.
pub async fn read_all(
    client: &kube::Client,
    namespace: &str,
    targets: &[LogTarget],
    pattern: &ActivePattern,
    tail: TailLimits,
    max_concurrent: usize,
) -> Vec<crate::snapshot::PodLog> {
    use futures::StreamExt;
    futures::stream::iter(targets)
        .map(|t| read_latest_active(client, namespace, t, pattern, tail))
        .buffered(max_concurrent.max(1))
        .collect()
        .await
}

/// When `limitBytes` cut the response, the newest lines were dropped (the
/// server counts `tailLines` from the end, then stops after `limitBytes`).
/// Ask again for fewer lines: what fitted, minus a quarter for longer lines.
pub fn next_tail_lines(cut: bool, asked: u32, complete_lines: u32) -> Option<u32> {
    if !cut || asked <= 1 {
        return None;
    }
    let fitted = complete_lines.min(asked.saturating_sub(1));
    Some((fitted - fitted / 4).clamp(1, asked.saturating_sub(1).max(1)))
}

/// One GET, reading at most `limit + slack` bytes even if the server sends more.
async fn fetch_bounded(
    api: &Api<Pod>,
    pod: &str,
    params: &LogParams,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let stream = api
        .log_stream(pod, params)
        .await
        .map_err(|e| api_error_text(&e))?;
    let mut buf = Vec::with_capacity(usize::try_from(limit.min(1 << 20)).unwrap_or(0));
    let mut bounded = stream.take(limit.saturating_add(CLIENT_SLACK_BYTES));
    bounded
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("reading the log of pod `{pod}`: {e}"))?;
    Ok(buf)
}

/// The API's own message (`container "x" is not valid for pod "y"`), not
/// kube-rs's debug dump of the Status.
pub fn api_error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bounded() {
        let d = TailLimits::default();
        assert_eq!(d.tail_lines, 500);
        assert_eq!(d.limit_bytes, 65536);
        let p = tail_params(Some("server"), d.tail_lines, &d, false);
        assert_eq!(p.tail_lines, Some(500));
        assert_eq!(p.limit_bytes, Some(65536));
        assert!(p.timestamps);
        assert!(!p.follow);
        assert_eq!(p.container.as_deref(), Some("server"));
        assert_eq!(p.since_seconds, None);
    }

    #[test]
    fn since_becomes_seconds() {
        let l = TailLimits {
            since: Some(Duration::from_secs(300)),
            ..TailLimits::default()
        };
        assert_eq!(tail_params(None, 10, &l, false).since_seconds, Some(300));
        let l = TailLimits {
            since: Some(Duration::from_millis(10)),
            ..TailLimits::default()
        };
        assert_eq!(tail_params(None, 10, &l, false).since_seconds, Some(1));
    }

    #[test]
    fn follow_has_no_byte_limit() {
        let p = tail_params(None, 5, &TailLimits::default(), true);
        assert!(p.follow);
        assert_eq!(p.limit_bytes, None);
    }

    #[test]
    fn retry_only_when_cut() {
        assert_eq!(next_tail_lines(false, 500, 100), None);
        assert_eq!(next_tail_lines(true, 1, 0), None);
        // 500 asked, 400 fitted: ask for 300.
        assert_eq!(next_tail_lines(true, 500, 400), Some(300));
        // Nothing complete fitted: one line.
        assert_eq!(next_tail_lines(true, 500, 0), Some(1));
        // Always fewer than asked.
        assert_eq!(next_tail_lines(true, 2, 5), Some(1));
    }
}
