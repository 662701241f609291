//! A WebSocket test client over any byte stream.
//!
//! `per-pod` runs it over a port-forwarded stream; tests run it over a
//! `tokio::io::duplex` or a TCP socket. One [`Connection`] is one test
//! connection: [`open`] does the handshake (timed), reads the server's hello
//! when it sends one within a short wait, and round-trips one echo message
//! (timed); [`Connection::hold`] keeps it open with periodic pings until told
//! to let go; [`Connection::close`] sends a close frame and waits for the
//! server's reply.

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use crate::snapshot::UpgradeRefusal;

/// How long to wait for a hello before assuming the server sends none.
pub const DEFAULT_HELLO_WAIT: Duration = Duration::from_millis(500);

/// How often a held connection is pinged. The kubelet closes port-forward
/// streams that stay quiet for its streaming idle timeout (often 5 minutes on
/// managed clusters); a ping every 15 s keeps well inside any of them.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);

/// What one test connection does.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Request path, e.g. `/` or `/ws`.
    pub path: String,
    /// `Host` header; the forwarded stream has no real host.
    pub host: String,
    /// Round-trip one echo message after the hello.
    pub echo: bool,
    /// How long to wait for a hello after the handshake.
    pub hello_wait: Duration,
    /// Ping interval while held.
    pub ping_interval: Duration,
    /// Limit for each phase: opening (handshake + hello + echo) and closing.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            path: "/".to_string(),
            host: "localhost".to_string(),
            echo: true,
            hello_wait: DEFAULT_HELLO_WAIT,
            ping_interval: DEFAULT_PING_INTERVAL,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The companion server's first message:
/// `{"type":"hello","pod":..,"namespace":..,"node":..,"connection":..,"active":..}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub connection: Option<u64>,
    pub active: Option<u64>,
}

impl Hello {
    /// Parses a text message as a hello; `None` for anything else.
    pub fn parse(text: &str) -> Option<Hello> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        if value.get("type").and_then(|t| t.as_str()) != Some("hello") {
            return None;
        }
        let string = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let number = |key: &str| value.get(key).and_then(|v| v.as_u64());
        Some(Hello {
            pod: string("pod"),
            namespace: string("namespace"),
            node: string("node"),
            connection: number("connection"),
            active: number("active"),
        })
    }
}

/// Why a test connection failed, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// The server answered the upgrade request with a status other than 101:
    /// it was reached, and said no (wrong path, wrong port, overloaded).
    #[error("{0}")]
    Refused(UpgradeRefusal),
    #[error("no answer within {} while {phase}", human(*.limit))]
    Timeout {
        phase: &'static str,
        limit: Duration,
    },
    #[error("{}", closed_text(phase, frame))]
    Closed {
        phase: &'static str,
        frame: Option<String>,
    },
    #[error("connection failed while {phase}: {source}")]
    Io {
        phase: &'static str,
        #[source]
        source: tungstenite::Error,
    },
}

/// With a close frame the server (or the balancer) chose to close; without
/// one the stream just ended, e.g. a port-forward tunnel cut by the kubelet.
fn closed_text(phase: &str, frame: &Option<String>) -> String {
    match frame {
        Some(f) => format!("the server closed the connection while {phase} ({f})"),
        None => format!(
            "the connection ended without a close frame while {phase} \
             (the server, a proxy or the port-forward tunnel went away)"
        ),
    }
}

/// `10s`, `1500ms`.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An open test connection and what opening it measured.
pub struct Connection<S> {
    ws: WebSocketStream<S>,
    /// Time from the first byte of the upgrade request to the 101 answer.
    pub handshake: Duration,
    /// The server's hello, when it sent one.
    pub hello: Option<Hello>,
    /// Echo round trip, when `echo` was asked for.
    pub echo: Option<Duration>,
    opts: ClientOptions,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("handshake", &self.handshake)
            .field("hello", &self.hello)
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

async fn within<T>(
    deadline: Instant,
    limit: Duration,
    phase: &'static str,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout { phase, limit }),
    }
}

/// Small buffers: per-pod holds `--connect` × `--parallel` connections at
/// once, and tungstenite's default 128 KiB read buffer each adds up (84 MB
/// peak for 20 pods × 50 connections before, 50 MB after).
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Handshake, hello, echo; all of it within `opts.timeout`.
pub async fn open<S>(stream: S, opts: &ClientOptions) -> Result<Connection<S>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + opts.timeout;
    let path = normalise_path(&opts.path);
    let url = format!("ws://{}{path}", opts.host);

    let started = Instant::now();
    let (ws, _response) = within(
        deadline,
        opts.timeout,
        "waiting for the WebSocket handshake",
        async {
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(ws_config()))
                .await
                .map_err(|e| handshake_error(&path, e))
        },
    )
    .await?;
    let handshake = started.elapsed();

    let mut conn = Connection {
        ws,
        handshake,
        hello: None,
        echo: None,
        opts: opts.clone(),
    };

    // A server may send no hello: wait briefly, never past the deadline.
    // (`next` on the stream is cancel-safe: nothing is lost on timeout.)
    let hello_deadline = (Instant::now() + opts.hello_wait).min(deadline);
    let first =
        tokio::time::timeout_at(hello_deadline, conn.next_data("waiting for a hello")).await;
    if let Ok(first) = first
        && let Message::Text(text) = first?
    {
        conn.hello = Hello::parse(text.as_str());
    }

    if opts.echo {
        let payload = format!("wsaffinity echo {}", echo_token());
        let echo = within(
            deadline,
            opts.timeout,
            "waiting for the echo",
            conn.echo_round_trip(&payload),
        )
        .await?;
        conn.echo = Some(echo);
    }
    Ok(conn)
}

fn normalise_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn handshake_error(path: &str, e: tungstenite::Error) -> ClientError {
    match e {
        tungstenite::Error::Http(resp) => ClientError::Refused(UpgradeRefusal {
            path: path.to_string(),
            status: resp.status().as_u16(),
            status_text: resp.status().to_string(),
            body: resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .filter(|b| !b.is_empty()),
        }),
        other => ClientError::Handshake(handshake_message(other)),
    }
}

fn handshake_message(e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the stream closed before the server answered".to_string()
        }
        tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the stream closed before the server answered".to_string()
        }
        other => other.to_string(),
    }
}

/// A process-unique token for echo payloads: no randomness needed, only
/// something a server would not send on its own.
fn echo_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The next text or binary message; pings are answered by tungstenite.
    async fn next_data(&mut self, phase: &'static str) -> Result<Message, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Ok(m),
                Some(Ok(Message::Close(frame))) => {
                    return Err(ClientError::Closed {
                        phase,
                        frame: frame.map(|f| f.to_string()),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(source)) => return Err(io_or_closed(phase, source)),
                None => return Err(ClientError::Closed { phase, frame: None }),
            }
        }
    }

    async fn echo_round_trip(&mut self, payload: &str) -> Result<Duration, ClientError> {
        let phase = "waiting for the echo";
        let started = Instant::now();
        self.ws
            .send(Message::text(payload))
            .await
            .map_err(|source| io_or_closed("sending the echo", source))?;
        // Bounded by the caller's deadline; a late hello is kept, anything
        // else skipped.
        loop {
            if let Message::Text(text) = self.next_data(phase).await? {
                if text.as_str() == payload {
                    return Ok(started.elapsed());
                }
                if self.hello.is_none() {
                    self.hello = Hello::parse(text.as_str());
                }
            }
        }
    }

    /// Keeps the connection open until `release` completes, pinging every
    /// `ping_interval`. An error means the connection broke while held.
    pub async fn hold(&mut self, release: impl Future<Output = ()>) -> Result<(), ClientError> {
        let phase = "holding the connection open";
        tokio::pin!(release);
        let mut ping = tokio::time::interval_at(
            Instant::now() + self.opts.ping_interval,
            self.opts.ping_interval,
        );
        loop {
            tokio::select! {
                () = &mut release => return Ok(()),
                _ = ping.tick() => {
                    self.ws
                        .send(Message::Ping(Bytes::from_static(b"wsaffinity")))
                        .await
                        .map_err(|source| io_or_closed(phase, source))?;
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Close(frame))) => {
                        return Err(ClientError::Closed { phase, frame: frame.map(|f| f.to_string()) });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(source)) => return Err(io_or_closed(phase, source)),
                    None => return Err(ClientError::Closed { phase, frame: None }),
                },
            }
        }
    }

    /// Sends a close frame (1000) and waits for the server's close frame,
    /// within the timeout. The stream is dropped on return, so a
    /// port-forward underneath sees its end right after the close handshake.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let limit = self.opts.timeout;
        let phase = "waiting for the close handshake";
        let fut = async {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "wsaffinity test done".into(),
            };
            match self.ws.close(Some(frame)).await {
                Ok(()) => {}
                // The server closed first: its close frame was already answered.
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(source) => return Err(io_or_closed("sending the close frame", source)),
            }
            loop {
                match self.ws.next().await {
                    // The server's close frame: the handshake is done.
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => {}
                    // The server went away after our close frame: closed too.
                    Some(Err(source)) => match io_or_closed(phase, source) {
                        ClientError::Closed { .. } => return Ok(()),
                        other => return Err(other),
                    },
                }
            }
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout { phase, limit }),
        }
    }
}

fn io_or_closed(phase: &'static str, source: tungstenite::Error) -> ClientError {
    use tungstenite::error::ProtocolError;
    match source {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            ClientError::Closed { phase, frame: None }
        }
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            ClientError::Closed { phase, frame: None }
        }
        source => ClientError::Io { phase, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::http::StatusCode;

    #[test]
    fn parses_the_companion_hello() {
        let h = Hello::parse(
            r#"{"type":"hello","pod":"web-0","namespace":"dev","node":"n1","connection":3,"active":2}"#,
        );
        assert_eq!(
            h,
            Some(Hello {
                pod: Some("web-0".into()),
                namespace: Some("dev".into()),
                node: Some("n1".into()),
                connection: Some(3),
                active: Some(2),
            })
        );
    }

    #[test]
    fn other_messages_are_no_hello() {
        assert_eq!(Hello::parse("hello"), None);
        assert_eq!(Hello::parse(r#"{"type":"echo"}"#), None);
        assert_eq!(Hello::parse(r#"{"pod":"x"}"#), None);
    }

    #[test]
    fn a_refused_upgrade_names_path_status_and_body() {
        let refusal = |path: &str, status: StatusCode, body: Option<&str>| {
            ClientError::Refused(UpgradeRefusal {
                path: path.into(),
                status: status.as_u16(),
                status_text: status.to_string(),
                body: body.map(str::to_string),
            })
            .to_string()
        };
        assert_eq!(
            refusal(
                "/nope",
                StatusCode::NOT_FOUND,
                Some("not found: WebSocket on / or /ws")
            ),
            "the server refused the WebSocket upgrade on /nope with HTTP 404 Not Found: not found: WebSocket on / or /ws"
        );
        assert_eq!(
            refusal("/ws?v=2", StatusCode::UPGRADE_REQUIRED, None),
            "the server refused the WebSocket upgrade on /ws?v=2 with HTTP 426 Upgrade Required"
        );
    }

    #[test]
    fn timeout_message_names_the_phase() {
        let e = ClientError::Timeout {
            phase: "waiting for the echo",
            limit: Duration::from_secs(10),
        };
        assert_eq!(
            e.to_string(),
            "no answer within 10s while waiting for the echo"
        );
    }
}
