//! One test connection through the Kubernetes port-forward API.
//!
//! As in kube-rs's `pod_portforward_bind` example, every connection gets its
//! own port-forward upgrade (`pods/{pod}/portforward`, through kube's
//! `Client::connect`) and runs in its own task. The frames of the port-forward
//! protocol are read and written by [`PortStream`] itself rather than by
//! kube-rs's `Portforwarder` (see [`Forwarder`] for why). The order of
//! teardown matters (DESIGN.md, "Port-forward details that bite"): finish the
//! WebSocket close handshake, drop the forwarded stream at once, then close
//! the port-forward. Waiting for end-of-stream first lets the far side close
//! first.
//!
//! Errors the kubelet reports arrive as text on the port's error channel;
//! when one arrives it is the message shown to the user.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::websocket::{self, ClientOptions, Hello, human};

/// What opening a connection measured; sent to the coordinator as soon as the
/// connection is open (or has failed), before the hold starts.
#[derive(Clone, Debug, Default)]
pub struct Opened {
    pub handshake: Option<Duration>,
    pub echo: Option<Duration>,
    pub hello: Option<Hello>,
    /// Why it failed; `None` when the connection is open and held.
    pub error: Option<String>,
}

/// The whole life of one connection.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub opened: Opened,
    /// Why the connection failed during the hold or the close, when it did.
    pub error: Option<String>,
    /// A forwarder that did not end cleanly after a clean close (for `-v`).
    pub teardown: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.opened.error.is_none() && self.error.is_none()
    }

    /// The first error, as worded for the user.
    pub fn first_error(&self) -> Option<&str> {
        self.opened.error.as_deref().or(self.error.as_deref())
    }
}

pub use super::cancel::{Cancel, CancelHandle};

/// Everything a connection task needs besides the API handle.
#[derive(Clone, Debug)]
pub struct ConnectionSpec {
    pub pod: String,
    pub port: u16,
    pub client: ClientOptions,
}

/// Runs one connection: port-forward, WebSocket open, report [`Opened`] on
/// `opened`, hold until `release` turns true, close, drop, join.
///
/// Every step is bounded by `spec.client.timeout`; `cancel` cuts any step
/// short and still closes and joins.
pub async fn run_connection(
    api: Api<Pod>,
    spec: ConnectionSpec,
    opened: oneshot::Sender<Opened>,
    release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome {
    let limit = spec.client.timeout;
    let mut opened_tx = Some(opened);
    let mut report = |o: &Opened| {
        if let Some(tx) = opened_tx.take() {
            let _ = tx.send(o.clone());
        }
    };

    // 1. The port-forward upgrade.
    let what = format!("port-forward to pod/{} port {}", spec.pod, spec.port);
    let forwarder = tokio::select! {
        r = tokio::time::timeout(limit, Forwarder::open(&api, &spec.pod, spec.port)) => match r {
            Ok(Ok(pf)) => pf,
            Ok(Err(e)) => return failed_open(&mut report, format!("{what} failed: {}", kube_message(&e))),
            Err(_) => return failed_open(&mut report, format!("{what} got no answer within {}", human(limit))),
        },
        () = cancel.cancelled() => return failed_open(&mut report, "interrupted".to_string()),
    };
    run_over_forwarder(forwarder, spec, &mut report, release, cancel).await
}

fn failed_open(report: &mut impl FnMut(&Opened), error: String) -> Outcome {
    let opened = Opened {
        error: Some(error),
        ..Opened::default()
    };
    report(&opened);
    Outcome {
        opened,
        error: None,
        teardown: None,
    }
}

async fn run_over_forwarder(
    mut forwarder: Forwarder,
    spec: ConnectionSpec,
    report: &mut impl FnMut(&Opened),
    mut release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome {
    let limit = spec.client.timeout;
    let Some((stream, error_rx)) = forwarder.take_stream() else {
        let outcome = failed_open(
            report,
            format!("port-forward has no stream for port {}", spec.port),
        );
        finish(forwarder, limit, false).await;
        return outcome;
    };
    let error_rx = futures::FutureExt::shared(Box::pin(async move { error_rx.await.ok() }));

    // 2. WebSocket handshake, hello, echo — or the error channel, or Ctrl-C.
    let conn = tokio::select! {
        r = websocket::open(stream, &spec.client) => r.map_err(|e| e.to_string()),
        Some(msg) = error_rx.clone() => Err(kubelet_message(&msg)),
        () = cancel.cancelled() => Err("interrupted".to_string()),
    };
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            // The error channel's text explains a broken stream better.
            let e = prefer_error_channel(error_rx.clone(), e).await;
            let outcome = failed_open(report, e);
            finish(forwarder, limit, false).await;
            return outcome;
        }
    };
    let opened = Opened {
        handshake: Some(conn.handshake),
        echo: conn.echo,
        hello: conn.hello.clone(),
        error: None,
    };
    report(&opened);

    // 3. Hold until released (or cancelled), pinging.
    let released = async {
        tokio::select! {
            _ = release.wait_for(|r| *r) => {}
            () = cancel.cancelled() => {}
        }
    };
    let held = tokio::select! {
        r = conn.hold(released) => r.map_err(|e| e.to_string()),
        Some(msg) = error_rx.clone() => Err(kubelet_message(&msg)),
    };
    let mut error = match held {
        Ok(()) => None,
        Err(e) => Some(prefer_error_channel(error_rx.clone(), e).await),
    };

    // 4. Close handshake. `close` consumes the connection, so the forwarded
    //    stream is dropped the moment the server's close frame is in.
    if error.is_none() {
        let closed = tokio::select! {
            r = conn.close() => r.map_err(|e| e.to_string()),
            Some(msg) = error_rx.clone() => Err(kubelet_message(&msg)),
        };
        if let Err(e) = closed {
            error = Some(prefer_error_channel(error_rx.clone(), e).await);
        }
    } else {
        drop(conn);
    }

    // 5. Join the forwarder.
    let teardown = finish(forwarder, limit, error.is_none()).await;
    Outcome {
        opened,
        error,
        teardown,
    }
}

/// When a stream breaks, the kubelet's message has usually just arrived on
/// the error channel: give it a moment and prefer it.
async fn prefer_error_channel(
    error_rx: impl Future<Output = Option<String>>,
    fallback: String,
) -> String {
    match tokio::time::timeout(Duration::from_millis(200), error_rx).await {
        Ok(Some(msg)) => kubelet_message(&msg),
        _ => fallback,
    }
}

/// Ends the port-forward. After a clean close handshake the forwarded
/// stream has just been dropped: the outer WebSocket is closed (a close
/// frame, then the far side's, within `limit`). After a failure it is
/// dropped at once, so nothing is left running. A close that fails after a
/// clean close is returned for diagnostics only.
async fn finish(forwarder: Forwarder, limit: Duration, clean: bool) -> Option<String> {
    if !clean {
        return None;
    }
    match tokio::time::timeout(limit, forwarder.close()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::debug!("port-forward ended with: {e}");
            Some(e)
        }
        Err(_) => {
            tracing::debug!("port-forward did not end within {}", human(limit));
            Some(format!("port-forward did not end within {}", human(limit)))
        }
    }
}

fn kubelet_message(msg: &str) -> String {
    msg.trim().to_string()
}

fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// One port forwarded over the port-forward WebSocket (`v4.channel.k8s.io`,
/// as kube-rs speaks it): channel 0 carries the port's data and channel 1 its
/// error text, each channel's first frame being the port (2 bytes, little
/// endian), every frame prefixed by its channel byte.
///
/// kube-rs's `Portforwarder` relays the same frames through an in-memory
/// duplex and a task of its own, over a WebSocket with tungstenite's default
/// 128 KiB read buffer, which is zeroed before every read: about a third of
/// per-pod's CPU went there, and 128 KiB of memory per connection. Here the
/// forwarded stream reads and writes the frames itself, with small buffers.
struct Forwarder {
    stream: Option<PortStream>,
    error_rx: Option<oneshot::Receiver<String>>,
    /// The outer WebSocket, back from the forwarded stream when it is dropped.
    back: oneshot::Receiver<Outer>,
}

type Outer = WebSocketStream<Box<dyn Io>>;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Forwarder {
    /// The upgrade: `GET pods/{pod}/portforward?ports={port}`.
    async fn open(api: &Api<Pod>, pod: &str, port: u16) -> Result<Forwarder, kube::Error> {
        let request = kube::core::Request::new(api.resource_url())
            .portforward(pod, &[port])
            .map_err(kube::Error::BuildRequest)?;
        let client = api.clone().into_client();
        let upgraded = client.connect(request).await?.into_stream().into_inner();
        let ws = WebSocketStream::from_raw_socket(
            Box::new(upgraded) as Box<dyn Io>,
            Role::Client,
            Some(outer_config()),
        )
        .await;
        let (stream, error_rx, back) = PortStream::new(ws, port);
        Ok(Forwarder {
            stream: Some(stream),
            error_rx: Some(error_rx),
            back,
        })
    }

    /// The forwarded stream and its error text (once; the text arrives while
    /// the stream is read).
    fn take_stream(&mut self) -> Option<(PortStream, oneshot::Receiver<String>)> {
        Some((self.stream.take()?, self.error_rx.take()?))
    }

    /// Closes the outer WebSocket once the forwarded stream is dropped.
    async fn close(self) -> Result<(), String> {
        drop(self.stream);
        let mut ws = self
            .back
            .await
            .map_err(|_| "the port-forward stream was lost".to_string())?;
        use tokio_tungstenite::tungstenite::Error as WsError;
        match ws.close(None).await {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
            Err(e) => return Err(e.to_string()),
        }
        // The far side's close frame (or the end of the connection).
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(_)) => {}
                Ok(_) => {}
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}

/// Small buffers: the frames are a few hundred bytes.
fn outer_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// The forwarded port as a byte stream (channel 0), noting the error text
/// (channel 1) as it arrives.
struct PortStream {
    ws: Option<Outer>,
    port: u16,
    /// Channel 0 bytes received and not yet read.
    pending: Bytes,
    data_started: bool,
    error_started: bool,
    error_tx: Option<oneshot::Sender<String>>,
    back: Option<oneshot::Sender<Outer>>,
}

impl PortStream {
    /// The stream of `port` over `ws`, the receiver of its error text, and
    /// the receiver of `ws` once the stream is dropped.
    fn new(
        ws: Outer,
        port: u16,
    ) -> (
        PortStream,
        oneshot::Receiver<String>,
        oneshot::Receiver<Outer>,
    ) {
        let (error_tx, error_rx) = oneshot::channel();
        let (back_tx, back_rx) = oneshot::channel();
        let stream = PortStream {
            ws: Some(ws),
            port,
            pending: Bytes::new(),
            data_started: false,
            error_started: false,
            error_tx: Some(error_tx),
            back: Some(back_tx),
        };
        (stream, error_rx, back_rx)
    }

    fn ws(&mut self) -> io::Result<&mut Outer> {
        self.ws
            .as_mut()
            .ok_or_else(|| io::Error::other("port-forward already closed"))
    }

    /// Takes in one frame from the pod.
    fn frame(&mut self, mut bytes: Bytes) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let channel = bytes.split_to(1)[0];
        let started = match channel {
            0 => &mut self.data_started,
            1 => &mut self.error_started,
            _ => return Ok(()),
        };
        if !*started {
            // The channel's first frame: its port.
            if bytes.len() != 2 || u16::from_le_bytes([bytes[0], bytes[1]]) != self.port {
                return Err(io::Error::other(format!(
                    "port-forward: unexpected first frame on channel {channel}"
                )));
            }
            *started = true;
            return Ok(());
        }
        if channel == 0 {
            self.pending = bytes;
        } else if let Some(tx) = self.error_tx.take() {
            // A port sends at most one error: it is unusable after it.
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        }
        Ok(())
    }
}

impl Drop for PortStream {
    fn drop(&mut self) {
        if let (Some(ws), Some(back)) = (self.ws.take(), self.back.take()) {
            let _ = back.send(ws);
        }
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            let ws = this.ws()?;
            match ready!(ws.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(bytes))) => this.frame(bytes)?,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ws = self.ws()?;
        ready!(ws.poll_ready_unpin(cx)).map_err(io::Error::other)?;
        let mut frame = Vec::with_capacity(buf.len() + 1);
        frame.push(0);
        frame.extend_from_slice(buf);
        ws.start_send_unpin(Message::binary(frame))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws()?.poll_flush_unpin(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The protocol has no half-close: flush only.
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A forwarded stream for port 8080 and the far side (the kubelet).
    async fn pair() -> (
        PortStream,
        oneshot::Receiver<String>,
        oneshot::Receiver<Outer>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(
            Box::new(a) as Box<dyn Io>,
            Role::Client,
            Some(outer_config()),
        )
        .await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        let (stream, error_rx, back) = PortStream::new(client, 8080);
        (stream, error_rx, back, server)
    }

    fn frame(channel: u8, data: &[u8]) -> Message {
        let mut v = vec![channel];
        v.extend_from_slice(data);
        Message::binary(v)
    }

    #[tokio::test]
    async fn data_and_error_channels() {
        let (mut stream, error_rx, back, mut kubelet) = pair().await;
        let port = 8080u16.to_le_bytes();
        for m in [
            frame(0, &port),
            frame(1, &port),
            frame(0, b"hello"),
            frame(1, b"connection refused"),
            frame(0, b" world"),
        ] {
            kubelet.send(m).await.expect("send");
        }
        let mut got = vec![0u8; 11];
        stream.read_exact(&mut got).await.expect("read");
        assert_eq!(got, b"hello world");
        assert_eq!(error_rx.await.as_deref(), Ok("connection refused"));

        stream.write_all(b"hi").await.expect("write");
        stream.flush().await.expect("flush");
        let m = kubelet.next().await.expect("frame").expect("ok");
        assert_eq!(m.into_data().as_ref(), b"\0hi");

        // Dropped, the stream hands the WebSocket back for the close.
        drop(stream);
        let mut ws = back.await.expect("back");
        ws.close(None).await.expect("close");
        assert!(matches!(kubelet.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn wrong_port_and_end_of_stream() {
        let (mut stream, _error_rx, _back, mut kubelet) = pair().await;
        kubelet
            .send(frame(0, &9090u16.to_le_bytes()))
            .await
            .expect("send");
        let mut buf = [0u8; 4];
        let err = stream.read(&mut buf).await.expect_err("wrong port");
        assert!(err.to_string().contains("unexpected first frame"), "{err}");

        let (mut stream, _error_rx, _back, mut kubelet) = pair().await;
        kubelet
            .send(frame(0, &8080u16.to_le_bytes()))
            .await
            .expect("send");
        kubelet.close(None).await.expect("close");
        assert_eq!(stream.read(&mut buf).await.expect("eof"), 0);
    }
}
