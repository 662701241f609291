//! The kubelet side of a SPDY/3.1 port-forward session, as
//! `pkg/kubelet/cri/streaming/portforward/httpstream.go` runs it over
//! `k8s.io/apimachinery/pkg/util/httpstream/spdy` (moby/spdystream):
//!
//! - the client opens streams with SYN_STREAM carrying `streamtype`
//!   (`data` or `error`), `port` and `requestid`; a stream without a valid
//!   port or type is reset, any other gets an empty SYN_REPLY;
//! - the two streams of one request id form a pair; once both are there the
//!   data stream is copied to and from the pod's port; a pair not complete
//!   within the stream creation timeout gets "timed out waiting for streams"
//!   on its error stream;
//! - a forwarding failure is written as text on the error stream ("error
//!   forwarding port P to pod …"); then both streams are closed with an empty
//!   DATA frame carrying FIN;
//! - PINGs from the client are echoed, SETTINGS, WINDOW_UPDATE and HEADERS are
//!   read and ignored (spdystream does no flow control), RST_STREAM ends that
//!   stream's forward, GOAWAY or end of connection ends them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::frame::{
    Codec, FLAG_FIN, Frame, FrameError, HEAD_LEN, MAX_LEN, header, payload_len, status,
};

/// The kubelet's `--streaming-connection-idle-timeout`-independent default for
/// how long a pair may wait for its second stream (`StreamCreationTimeout`).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest DATA frame we send, as the pod's socket gives it.
const CHUNK: usize = 32 * 1024;
/// Inbound DATA waiting for the pod's socket, per stream (spdystream's
/// reader blocks on an unbuffered channel; a little slack here).
const INBOUND_QUEUE: usize = 16;

/// Where a port of the pod is, or the text its error stream gets.
pub type Resolve = Arc<dyn Fn(u16) -> Result<SocketAddr, String> + Send + Sync>;
/// The error stream's text for a dial that failed: `(port, cause) -> message`.
pub type DialError = Arc<dyn Fn(u16, &str) -> String + Send + Sync>;

pub struct Session {
    pub resolve: Resolve,
    pub dial_error: DialError,
    pub idle_timeout: Duration,
    pub creation_timeout: Duration,
}

/// One stream of a pair, as the SYN_STREAM announced it.
struct Opened {
    id: u32,
    port: u16,
}

#[derive(Default)]
struct Pair {
    data: Option<Opened>,
    error: Option<Opened>,
    created: Option<Instant>,
}

/// What the reader knows about a live stream.
enum Live {
    /// A data stream: inbound bytes go to its forward; `None` once the client sent FIN.
    Data {
        inbound: Option<mpsc::Sender<Bytes>>,
        cancel: Option<oneshot::Sender<()>>,
    },
    Error,
}

enum Event {
    PairTimeout(String),
}

/// Writes frames in order; the header compressor lives here.
async fn writer<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Frame>,
    last_activity: Arc<AtomicU64>,
    epoch: Instant,
) {
    let mut codec = Codec::new();
    let mut buf = Vec::with_capacity(CHUNK + HEAD_LEN);
    while let Some(frame) = rx.recv().await {
        buf.clear();
        if let Err(e) = codec.encode(&frame, &mut buf) {
            tracing::warn!("spdy: cannot encode frame: {e}");
            continue;
        }
        // Coalesce what is already queued into one write.
        while buf.len() < CHUNK {
            match rx.try_recv() {
                Ok(next) => {
                    if let Err(e) = codec.encode(&next, &mut buf) {
                        tracing::warn!("spdy: cannot encode frame: {e}");
                    }
                }
                Err(_) => break,
            }
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        last_activity.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    let _ = w.shutdown().await;
}

enum ReadOutcome {
    Frame(Box<[u8; HEAD_LEN]>, Vec<u8>),
    Closed,
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<ReadOutcome> {
    let mut head = [0u8; HEAD_LEN];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(ReadOutcome::Closed),
        Err(e) => return Err(e),
    }
    let len = payload_len(&head);
    let mut payload = vec![0u8; len.min(MAX_LEN)];
    r.read_exact(&mut payload).await?;
    Ok(ReadOutcome::Frame(Box::new(head), payload))
}

/// Runs one upgraded connection until the client goes away.
pub async fn run<S>(io: S, session: Session)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let (out, out_rx) = mpsc::channel::<Frame>(256);
    let epoch = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(writer(w, out_rx, last_activity.clone(), epoch));
    let (events_tx, mut events) = mpsc::channel::<Event>(16);

    let mut codec = Codec::new();
    let mut live: HashMap<u32, Live> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut last_client_stream = 0u32;
    let mut gone_away = false;

    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(session.idle_timeout, read_frame(&mut r)) => read,
            Some(Event::PairTimeout(id)) = events.recv() => {
                if let Some(pair) = pairs.remove(&id) {
                    let msg = format!("timed out waiting for streams (request={id})");
                    tracing::debug!("spdy port-forward: {msg}");
                    if let Some(err) = pair.error {
                        send_text_and_close(&out, err.id, &msg).await;
                        live.remove(&err.id);
                    }
                    if let Some(data) = pair.data {
                        close_stream(&out, data.id).await;
                        live.remove(&data.id);
                    }
                }
                continue;
            }
        };
        let (head, payload) = match read {
            Err(_) => {
                let quiet =
                    epoch.elapsed().as_millis() as u64 - last_activity.load(Ordering::Relaxed);
                if Duration::from_millis(quiet) < session.idle_timeout {
                    continue;
                }
                tracing::debug!("spdy port-forward: idle timeout");
                break;
            }
            Ok(Ok(ReadOutcome::Frame(head, payload))) => (head, payload),
            Ok(Ok(ReadOutcome::Closed)) => break,
            Ok(Err(e)) => {
                tracing::debug!("spdy port-forward: read: {e}");
                break;
            }
        };
        let frame = match codec.decode(&head, &payload) {
            Ok(f) => f,
            Err(e @ FrameError::Compression(_)) => {
                // The header stream is broken for good: nothing later decodes.
                tracing::warn!("spdy port-forward: {e}");
                let _ = out
                    .send(Frame::GoAway {
                        last_good_stream_id: last_client_stream,
                        status: 1,
                    })
                    .await;
                break;
            }
            Err(e) => {
                tracing::debug!("spdy port-forward: dropping frame: {e}");
                continue;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                if gone_away || stream_id % 2 == 0 || stream_id <= last_client_stream {
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: status::PROTOCOL_ERROR,
                        })
                        .await;
                    continue;
                }
                last_client_stream = stream_id;
                let opened = match validate(&headers) {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("spdy port-forward: stream {stream_id} rejected: {e}");
                        let _ = out
                            .send(Frame::RstStream {
                                stream_id,
                                status: status::CANCEL,
                            })
                            .await;
                        continue;
                    }
                };
                let (kind, port) = opened;
                let _ = out
                    .send(Frame::SynReply {
                        stream_id,
                        flags: 0,
                        headers: Vec::new(),
                    })
                    .await;
                let request = request_id(&headers, kind, stream_id);
                let pair = pairs.entry(request.clone()).or_default();
                if pair.created.is_none() {
                    pair.created = Some(Instant::now());
                    let events = events_tx.clone();
                    let timeout = session.creation_timeout;
                    let id = request.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(timeout).await;
                        let _ = events.send(Event::PairTimeout(id)).await;
                    });
                }
                let slot = match kind {
                    Kind::Data => &mut pair.data,
                    Kind::Error => &mut pair.error,
                };
                if slot.is_some() {
                    let what = match kind {
                        Kind::Data => "data",
                        Kind::Error => "error",
                    };
                    let msg = format!(
                        "error processing stream for request {request}: {what} stream already assigned"
                    );
                    tracing::warn!("spdy port-forward: {msg}");
                    if let Some(err) = &pair.error {
                        send_text(&out, err.id, &msg).await;
                    }
                    continue;
                }
                *slot = Some(Opened {
                    id: stream_id,
                    port,
                });
                live.insert(
                    stream_id,
                    match kind {
                        Kind::Data => Live::Data {
                            inbound: None,
                            cancel: None,
                        },
                        Kind::Error => Live::Error,
                    },
                );
                let complete = pair.data.is_some() && pair.error.is_some();
                if complete {
                    let Some(pair) = pairs.remove(&request) else {
                        continue;
                    };
                    let (Some(data), Some(error)) = (pair.data, pair.error) else {
                        continue;
                    };
                    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
                    let (cancel_tx, cancel_rx) = oneshot::channel();
                    let client_done = flags & FLAG_FIN != 0 && stream_id == data.id;
                    if let Some(Live::Data { inbound, cancel }) = live.get_mut(&data.id) {
                        *inbound = (!client_done).then_some(in_tx);
                        *cancel = Some(cancel_tx);
                    }
                    let fwd = Forward {
                        data: data.id,
                        error: error.id,
                        port: data.port,
                        out: out.clone(),
                        resolve: session.resolve.clone(),
                        dial_error: session.dial_error.clone(),
                    };
                    tokio::spawn(fwd.run(in_rx, cancel_rx));
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let fin = flags & FLAG_FIN != 0;
                if let Some(Live::Data { inbound, .. }) = live.get_mut(&stream_id) {
                    if !data.is_empty()
                        && let Some(tx) = inbound
                        && tx.send(data).await.is_err()
                    {
                        *inbound = None;
                    }
                    if fin {
                        *inbound = None;
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                if let Some(Live::Data { cancel, .. }) = live.remove(&stream_id)
                    && let Some(cancel) = cancel
                {
                    let _ = cancel.send(());
                }
            }
            Frame::Ping { id } => {
                // Our own pings would be even; echo the client's.
                if id % 2 == 1 {
                    let _ = out.send(Frame::Ping { id }).await;
                }
            }
            Frame::GoAway { .. } => gone_away = true,
            Frame::SynReply { .. }
            | Frame::Headers { .. }
            | Frame::Settings { .. }
            | Frame::WindowUpdate { .. } => {}
        }
    }
    // The connection is gone: every forward ends.
    for (_, stream) in live.drain() {
        if let Live::Data {
            cancel: Some(cancel),
            ..
        } = stream
        {
            let _ = cancel.send(());
        }
    }
    drop(out);
    drop(events_tx);
    let _ = writer.await;
}

#[derive(Clone, Copy)]
enum Kind {
    Data,
    Error,
}

/// The checks of `httpStreamReceived`.
fn validate(headers: &Vec<(String, String)>) -> Result<(Kind, u16), String> {
    let port = header(headers, "port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    let port: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse \"{port}\" as a port: {e}"))?;
    if port < 1 {
        return Err(format!("port \"{port}\" must be > 0"));
    }
    match header(headers, "streamtype").unwrap_or("") {
        "" => Err("\"streamType\" header is required".into()),
        "data" => Ok((Kind::Data, port)),
        "error" => Ok((Kind::Error, port)),
        other => Err(format!("invalid stream type \"{other}\"")),
    }
}

/// `requestID`, or for clients too old to send it, the kubelet's guess from
/// the stream ids (error = id, data = id - 2).
fn request_id(headers: &Vec<(String, String)>, kind: Kind, stream_id: u32) -> String {
    match header(headers, "requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => match kind {
            Kind::Error => stream_id.to_string(),
            Kind::Data => (i64::from(stream_id) - 2).to_string(),
        },
    }
}

async fn send_text(out: &mpsc::Sender<Frame>, stream_id: u32, text: &str) {
    let _ = out
        .send(Frame::Data {
            stream_id,
            flags: 0,
            data: Bytes::copy_from_slice(text.as_bytes()),
        })
        .await;
}

async fn close_stream(out: &mpsc::Sender<Frame>, stream_id: u32) {
    let _ = out
        .send(Frame::Data {
            stream_id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await;
}

async fn send_text_and_close(out: &mpsc::Sender<Frame>, stream_id: u32, text: &str) {
    send_text(out, stream_id, text).await;
    close_stream(out, stream_id).await;
}

/// One complete pair: the data stream to and from the pod's port.
struct Forward {
    data: u32,
    error: u32,
    port: u16,
    out: mpsc::Sender<Frame>,
    resolve: Resolve,
    dial_error: DialError,
}

impl Forward {
    async fn run(self, inbound: mpsc::Receiver<Bytes>, cancel: oneshot::Receiver<()>) {
        let failure = match (self.resolve)(self.port) {
            Err(msg) => Some(msg),
            Ok(addr) => match TcpStream::connect(addr).await {
                Err(e) => Some((self.dial_error)(self.port, &e.to_string())),
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::select! {
                        () = copy(tcp, self.data, &self.out, inbound) => {}
                        _ = cancel => {}
                    }
                    None
                }
            },
        };
        if let Some(msg) = failure {
            tracing::debug!("spdy port-forward: {msg}");
            send_text(&self.out, self.error, &msg).await;
        }
        // The kubelet's deferred Close on both streams.
        close_stream(&self.out, self.error).await;
        close_stream(&self.out, self.data).await;
    }
}

async fn copy(
    tcp: TcpStream,
    data: u32,
    out: &mpsc::Sender<Frame>,
    mut inbound: mpsc::Receiver<Bytes>,
) {
    let (mut pod_r, mut pod_w) = tcp.into_split();
    let upstream = tokio::spawn(async move {
        while let Some(bytes) = inbound.recv().await {
            if pod_w.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The client's FIN: half-close toward the pod, which may still answer.
        let _ = pod_w.shutdown().await;
    });
    // Done when the pod closes its side.
    let mut buf = vec![0u8; CHUNK];
    loop {
        match pod_r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let frame = Frame::Data {
                    stream_id: data,
                    flags: 0,
                    data: Bytes::copy_from_slice(&buf[..n]),
                };
                if out.send(frame).await.is_err() {
                    break;
                }
            }
        }
    }
    upstream.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn streams_need_a_port_and_a_known_type() {
        assert!(matches!(
            validate(&h(&[("port", "8080"), ("streamtype", "data")])),
            Ok((Kind::Data, 8080))
        ));
        assert_eq!(
            validate(&h(&[("streamtype", "data")])).err().as_deref(),
            Some("\"port\" header is required")
        );
        assert!(validate(&h(&[("port", "0"), ("streamtype", "data")])).is_err());
        assert!(validate(&h(&[("port", "x"), ("streamtype", "data")])).is_err());
        assert_eq!(
            validate(&h(&[("port", "80"), ("streamtype", "stdin")]))
                .err()
                .as_deref(),
            Some("invalid stream type \"stdin\"")
        );
    }

    #[test]
    fn old_clients_pair_by_stream_id() {
        assert_eq!(request_id(&h(&[("requestid", "7")]), Kind::Data, 3), "7");
        assert_eq!(request_id(&h(&[]), Kind::Error, 1), "1");
        assert_eq!(request_id(&h(&[]), Kind::Data, 3), "1");
    }
}
