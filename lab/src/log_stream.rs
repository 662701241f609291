//! A pod log as an HTTP response, shared by the fake API (`pods/log`) and the
//! node agent (`/containerLogs`): the kubelet's query options, and
//! `follow=true` streaming until the container exits or the client goes away.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::watch;

use crate::logs::{Limiter, LogBuffer, LogQuery, render};
use crate::portforward::Guard;
use crate::query::Query;
use crate::respond::{self, Body};
use crate::status::ApiError;

fn parse_num<T: std::str::FromStr>(q: &Query, key: &str) -> Result<Option<T>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value {v:?} for {key}"))),
    }
}

pub(crate) fn log_query(q: &Query) -> Result<LogQuery, ApiError> {
    let tail: Option<i64> = parse_num(q, "tailLines")?;
    let limit: Option<i64> = parse_num(q, "limitBytes")?;
    let since: Option<i64> = parse_num(q, "sinceSeconds")?;
    if since.is_some_and(|s| s < 1) {
        return Err(ApiError::bad_request(
            "sinceSeconds: Invalid value: must be greater than 0",
        ));
    }
    if limit.is_some_and(|l| l < 1) {
        return Err(ApiError::bad_request(
            "limitBytes: Invalid value: must be greater than 0",
        ));
    }
    if tail.is_some_and(|t| t < 0) {
        return Err(ApiError::bad_request(
            "tailLines: Invalid value: must be greater than or equal to 0",
        ));
    }
    let since_time = match q.get("sinceTime") {
        None => None,
        Some(t) => Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|_| ApiError::bad_request(format!("invalid value {t:?} for sinceTime")))?,
        ),
    };
    Ok(LogQuery {
        tail_lines: tail.and_then(|t| usize::try_from(t).ok()),
        limit_bytes: limit.and_then(|l| usize::try_from(l).ok()),
        since_seconds: since.and_then(|s| u64::try_from(s).ok()),
        since_time,
        timestamps: q.flag("timestamps"),
        follow: q.flag("follow"),
    })
}

/// The log lines `query` selects as a response; with `follow` the body streams
/// new lines until the container exits, the limit is reached or the client goes.
/// `on_bytes` counts what is sent; `open` stays held while the stream lives.
pub(crate) fn respond_log(
    logs: Arc<LogBuffer>,
    query: &LogQuery,
    on_bytes: impl Fn(usize) + Send + Sync + 'static,
    open: Option<Guard>,
) -> Response<Body> {
    let (lines, next) = logs.select(query, jiff::Timestamp::now());
    let mut limiter = Limiter::new(query.limit_bytes);
    let first = limiter.take(render(&lines, query.timestamps));
    on_bytes(first.len());
    if !query.follow {
        return respond::text(StatusCode::OK, first);
    }
    let follow = Follow {
        _open: open,
        rx: logs.subscribe(),
        logs,
        next,
        limiter,
        timestamps: query.timestamps,
        on_bytes: Box::new(on_bytes),
    };
    let silent = first.is_empty();
    let tail = futures::stream::unfold(follow, Follow::next_chunk);
    let stream = futures::stream::once(async move { first })
        .chain(tail)
        .filter(|b| futures::future::ready(!b.is_empty()))
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut res = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(StreamBody::new(stream).boxed_unsync())
        .unwrap_or_else(|_| respond::text(StatusCode::INTERNAL_SERVER_ERROR, ""));
    if silent {
        res.extensions_mut().insert(HeadersAtFirstByte);
    }
    res
}

/// Marks a follow response with nothing to send yet: see [`headers_at_first_byte`].
#[derive(Clone, Copy, Debug)]
struct HeadersAtFirstByte;

/// A kubelet sends a log response's headers with its first byte (Go's
/// ResponseWriter writes them on the first Write, and `getContainerLogs`
/// never calls WriteHeader), and the API server relays headers only once it
/// has the kubelet's: the follow stream of a container that has logged
/// nothing opens when it first logs, or ends empty when it stops. A marked
/// response is held until then; any other is returned as it is.
pub(crate) async fn headers_at_first_byte(res: Response<Body>) -> Response<Body> {
    use http_body_util::BodyExt;
    if res.extensions().get::<HeadersAtFirstByte>().is_none() {
        return res;
    }
    let (parts, mut body) = res.into_parts();
    let first = body.frame().await;
    let first = futures::stream::iter(first);
    let rest = futures::stream::unfold(body, |mut body| async move {
        body.frame().await.map(|frame| (frame, body))
    });
    Response::from_parts(parts, StreamBody::new(first.chain(rest)).boxed_unsync())
}

/// The state of one `follow=true` stream.
struct Follow {
    logs: Arc<LogBuffer>,
    rx: watch::Receiver<(u64, bool)>,
    next: u64,
    limiter: Limiter,
    timestamps: bool,
    on_bytes: Box<dyn Fn(usize) + Send + Sync>,
    /// Counted open until the stream ends or the response body is dropped.
    _open: Option<Guard>,
}

impl Follow {
    async fn next_chunk(mut self) -> Option<(Bytes, Self)> {
        loop {
            if self.limiter.exhausted() {
                return None;
            }
            // Read `closed` before the lines: lines are appended before the close.
            let closed = self.rx.borrow_and_update().1;
            let (lines, next) = self.logs.since_seq(self.next);
            if !lines.is_empty() {
                self.next = next;
                let chunk = self.limiter.take(render(&lines, self.timestamps));
                (self.on_bytes)(chunk.len());
                return Some((chunk, self));
            }
            if closed || self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}
