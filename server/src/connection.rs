//! One WebSocket connection: hello, echo, keepalive, close codes.
//!
//! Echoes are batched: every message already buffered is answered with
//! `feed`, then the connection is flushed once, so a burst of small messages
//! costs one write instead of one per message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tracing::debug;

use crate::shared::Shared;
use crate::stall_guard::StallGuard;

/// Read buffer per connection. Small on purpose: it is allocated for every
/// open connection, idle or not (tungstenite's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// Frames are collected up to this size before a write is forced; a batch is
/// flushed anyway once nothing more is buffered on the read side.
const WRITE_BUFFER: usize = 64 * 1024;
/// Most messages answered per batch before flushing, so one busy client
/// cannot hold its echoes back for long.
const MAX_BATCH: usize = 256;
/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for a misbehaving client to hang up after our close frame.
const LINGER: Duration = Duration::from_secs(1);

/// The tungstenite settings every connection uses.
pub(crate) fn websocket_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

#[derive(Serialize)]
struct Hello<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    pod: &'a str,
    namespace: &'a str,
    node: &'a str,
    connection: u64,
    active: usize,
}

/// Runs an upgraded connection to its end. The permits hold this
/// connection's place under `--max-connections` and among the server's
/// sockets; `_drain` tells the server this connection is still open.
pub(crate) async fn serve(
    upgraded: Upgraded,
    shared: Arc<Shared>,
    _permits: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
    _drain: mpsc::Sender<()>,
) {
    let config = shared.websocket_config;
    // Unwrap hyper's IO back to the TCP stream: it drops hyper's 8 KiB read
    // buffer and a layer of boxing from every open connection.
    match upgraded.downcast::<TokioIo<StallGuard>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner().into_inner();
            let ws = if parts.read_buf.is_empty() {
                WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
            } else {
                let pre = parts.read_buf.to_vec();
                WebSocketStream::from_partially_read(stream, pre, Role::Server, Some(config)).await
            };
            drop(parts.read_buf);
            Session::new(ws, &shared).run().await;
        }
        Err(upgraded) => {
            // Not reached with hyper's TCP connections; boxed so it costs
            // nothing in the common case.
            let io = TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            Box::pin(Session::new(ws, &shared).run()).await;
        }
    }
}

/// How a session ended, for the debug log.
#[derive(Debug)]
enum End {
    /// The client closed (or the socket went away).
    Client,
    /// We closed with this code and reason.
    Closed(CloseCode, &'static str),
    /// The client went silent for twice the ping interval.
    Idle,
    /// The client stopped reading: our writes blocked for twice the ping interval.
    Stalled,
}

struct Session<'a, S> {
    ws: WebSocketStream<S>,
    shared: &'a Shared,
    shutdown: crate::shutdown::Shutdown,
}

impl<'a, S> Session<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn new(ws: WebSocketStream<S>, shared: &'a Shared) -> Self {
        Session {
            ws,
            shared,
            shutdown: shared.shutdown.clone(),
        }
    }

    async fn run(mut self) {
        let shared = self.shared;
        let active = shared.metrics.open();
        let id = shared.next_connection_id();
        debug!(connection = id, "connection opened");

        let end = match Box::pin(self.hello(id, active.active_after_open())).await {
            Ok(()) => self.echo().await,
            Err(_) => End::Client,
        };
        let end = match end {
            End::Closed(code, reason) => Box::pin(self.close(code, reason)).await,
            End::Idle => {
                // Say why, but do not wait for an answer from a silent client.
                let frame = CloseFrame {
                    code: CloseCode::Away,
                    reason: "idle timeout".into(),
                };
                let _ = timeout(LINGER, self.ws.close(Some(frame))).await;
                End::Idle
            }
            End::Client | End::Stalled => end,
        };
        debug!(connection = id, ?end, "connection closed");
        drop(active);
    }

    async fn hello(&mut self, id: u64, active: usize) -> Result<(), WsError> {
        if !self.shared.config.hello {
            return Ok(());
        }
        let ident = &self.shared.config.identity;
        let hello = Hello {
            kind: "hello",
            pod: &ident.pod,
            namespace: &ident.namespace,
            node: &ident.node,
            connection: id,
            active,
        };
        let text = serde_json::to_string(&hello).unwrap_or_default();
        self.ws.send(Message::text(text)).await?;
        self.shared.metrics.sent(1);
        Ok(())
    }

    /// Echoes until the client leaves, goes silent, misbehaves, or the
    /// server shuts down.
    async fn echo(&mut self) -> End {
        let ping_every = self.shared.config.ping_interval;
        let silence_limit = ping_every.saturating_mul(2);
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + ping_every;
        let timer = sleep_until(next_ping);
        tokio::pin!(timer);

        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.wait() => {
                    return End::Closed(CloseCode::Away, "server shutting down");
                }
                _ = &mut timer => {
                    let now = Instant::now();
                    if now >= last_heard + silence_limit {
                        return End::Idle;
                    }
                    if now >= next_ping {
                        if self.ws.send(Message::Ping(Bytes::new())).await.is_err() {
                            return End::Client;
                        }
                        next_ping = now + ping_every;
                    }
                    timer.as_mut().reset(next_ping.min(last_heard + silence_limit));
                }
                first = self.ws.next() => {
                    last_heard = Instant::now();
                    // A client that stops reading blocks our writes; give it
                    // as long as a silent one before dropping it.
                    // Boxed: an idle connection should not carry this future's
                    // space in its task for its whole life.
                    match Box::pin(timeout(silence_limit, self.answer_batch(first))).await {
                        Ok(None) => {}
                        Ok(Some(end)) => return end,
                        Err(_) => return End::Stalled,
                    }
                    timer.as_mut().reset(next_ping.min(last_heard + silence_limit));
                }
            }
        }
    }

    /// Answers `first` and every further message that is already buffered,
    /// then flushes once. Returns how the session ends, if it does.
    async fn answer_batch(&mut self, first: Option<Result<Message, WsError>>) -> Option<End> {
        let mut next = first;
        let mut received = 0u64;
        let mut end = None;
        let mut answered = 0;
        loop {
            match next {
                None => {
                    end = Some(End::Client);
                    break;
                }
                Some(Err(e)) => {
                    end = Some(end_for(&e));
                    break;
                }
                Some(Ok(message)) => match message {
                    Message::Text(_) | Message::Binary(_) => {
                        received += 1;
                        if self.ws.feed(message).await.is_err() {
                            end = Some(End::Client);
                            break;
                        }
                    }
                    // tungstenite queues the pong (or the close reply) itself;
                    // the flush below sends it.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    Message::Close(_) => {
                        end = Some(End::Client);
                        break;
                    }
                },
            }
            answered += 1;
            if answered == MAX_BATCH {
                break;
            }
            // Take the next message only if it is already here. A message
            // taken here is always answered in the next round of this loop.
            match self.ws.next().now_or_never() {
                Some(message) => next = message,
                None => break,
            }
        }
        let metrics = &self.shared.metrics;
        metrics.received(received);
        // After a close from the client this sends the close reply and
        // reports ConnectionClosed, which is the normal end.
        let flushed = self.ws.flush().await;
        if flushed.is_ok() || end.is_some() {
            // Echoes fed before an error were flushed (or the socket is gone).
            metrics.sent(received);
        }
        match (end, flushed) {
            (Some(end), _) => Some(end),
            (None, Ok(())) => None,
            (None, Err(_)) => Some(End::Client),
        }
    }

    /// Sends our close frame and waits (briefly) for the client's answer.
    async fn close(&mut self, code: CloseCode, reason: &'static str) -> End {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // A client that does not read could block the close frame forever.
        if !matches!(
            timeout(CLOSE_WAIT, self.ws.close(Some(frame))).await,
            Ok(Ok(()))
        ) {
            return End::Closed(code, reason);
        }
        let clean = matches!(code, CloseCode::Away | CloseCode::Normal);
        if clean {
            // Wait for the client's close frame; data that arrives after our
            // close is not accepted (and not counted).
            let answered = timeout(CLOSE_WAIT, async {
                while let Some(Ok(message)) = self.ws.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            });
            let _ = answered.await;
        } else {
            // After a protocol or size error the frame stream cannot be
            // trusted: say goodbye on the raw socket and wait for the hang-up.
            let stream = self.ws.get_mut();
            let _ = stream.shutdown().await;
            let mut sink = [0u8; 1024];
            let _ = timeout(LINGER, async {
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
        End::Closed(code, reason)
    }
}

/// The close code for an error from the client's side, if any.
fn end_for(error: &WsError) -> End {
    match error {
        WsError::Capacity(_) => End::Closed(CloseCode::Size, "message too big"),
        WsError::Utf8(_) => End::Closed(CloseCode::Invalid, "invalid UTF-8 in a text message"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Client,
        WsError::Protocol(_) => End::Closed(CloseCode::Protocol, "protocol error"),
        _ => End::Client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffers_stay_small() {
        let config = websocket_config(16 << 20);
        assert_eq!(config.read_buffer_size, READ_BUFFER);
        assert!(config.read_buffer_size <= 4096);
        assert_eq!(config.max_message_size, Some(16 << 20));
        assert_eq!(config.max_frame_size, Some(16 << 20));
    }
}
