//! `pods/{name}/portforward` over WebSocket, as the kubelet serves it
//! (`pkg/kubelet/cri/streaming/portforward/websocket.go` on apimachinery's
//! `wsstream`): for the i-th requested port a data channel 2i and an error
//! channel 2i+1; each channel's first frame is the port, 2 bytes little-endian;
//! every frame starts with its channel byte; failures are text on the error channel.
//! Each forwarded stream opens a new TCP connection to the pod's backend.
//! Shared by the fake API and the node agent, which pick the backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The `Sec-WebSocket-Key` of a WebSocket upgrade request; `None` when the
/// request is not one (no `Upgrade: websocket`, or no key).
pub(crate) fn websocket_key(headers: &http::HeaderMap) -> Option<http::HeaderValue> {
    let is_ws = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_ws)
        .cloned()
}

/// The `101 Switching Protocols` answer to a port-forward upgrade.
pub(crate) fn switching_protocols(
    accept: &str,
    protocol: &str,
) -> http::Response<crate::respond::Body> {
    let mut res = http::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    if !protocol.is_empty() {
        res = res.header(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    res.body(crate::respond::full(Bytes::new()))
        .unwrap_or_else(|_| crate::respond::text(http::StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// Held while a connection lives (the fake API counts open forwards with it).
pub type Guard = Box<dyn Send + Sync>;

pub const V4_BINARY: &str = "v4.channel.k8s.io";
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// After the pod side ends, containerd waits this long for the client side.
const GRACE: Duration = Duration::from_secs(1);

/// How frames are encoded for the negotiated subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `v4.channel.k8s.io` (or none): binary frames, first byte the channel.
    Binary,
    /// `v4.base64.channel.k8s.io`: text frames, an ASCII digit channel then base64.
    Base64,
}

impl Codec {
    pub fn encode(self, channel: u8, data: &[u8]) -> Message {
        match self {
            Codec::Binary => {
                let mut v = Vec::with_capacity(data.len() + 1);
                v.push(channel);
                v.extend_from_slice(data);
                Message::binary(v)
            }
            Codec::Base64 => {
                let mut s = String::with_capacity(data.len() * 4 / 3 + 4);
                // Byte arithmetic as wsstream's `'0' + channel` does: past
                // channel 207 (104 ports) it wraps instead of overflowing.
                s.push(char::from(b'0'.wrapping_add(channel)));
                s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
                Message::text(s)
            }
        }
    }

    pub fn decode(self, msg: &Message) -> Option<(u8, Bytes)> {
        match (self, msg) {
            (Codec::Binary, Message::Binary(b)) if !b.is_empty() => Some((b[0], b.slice(1..))),
            (Codec::Base64, Message::Text(t)) if !t.is_empty() => {
                let s = t.as_str();
                let ch = s.as_bytes().first()?.checked_sub(b'0')?;
                // `get` rather than indexing: a non-ASCII first character is not a channel.
                let data = base64::engine::general_purpose::STANDARD
                    .decode(s.get(1..)?)
                    .ok()?;
                Some((ch, Bytes::from(data)))
            }
            _ => None,
        }
    }
}

/// wsstream's handshake: the first protocol the client offers that the server supports.
pub fn negotiate(offered: Option<&str>) -> Result<(&'static str, Codec), String> {
    let protocols: Vec<&str> = offered
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if protocols.is_empty() {
        return Ok(("", Codec::Binary));
    }
    for p in &protocols {
        match *p {
            V4_BINARY => return Ok((V4_BINARY, Codec::Binary)),
            V4_BASE64 => return Ok((V4_BASE64, Codec::Base64)),
            _ => {}
        }
    }
    Err(format!(
        "requested protocol(s) are not supported: [{}]; supports [ {V4_BINARY} {V4_BASE64}]",
        protocols.join(" ")
    ))
}

/// The kubelet's `NewV4Options`: `ports` (repeated or comma-separated), each 1..=65535.
pub fn parse_ports(values: &[&str]) -> Result<Vec<u16>, String> {
    if values.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in value.split(',') {
            let port: u16 = p
                .trim()
                .parse()
                .map_err(|e| format!("unable to parse \"{value}\" as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port \"{value}\" must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Where one forwarded port goes.
pub(crate) struct Target {
    pub port: u16,
    pub backend: Result<SocketAddr, String>,
}

pub(crate) struct PodInfo {
    pub ns: String,
    pub name: String,
    pub sandbox: String,
}

pub(crate) fn forward_error(sandbox: &str, port: u16, cause: &str) -> String {
    format!("error forwarding port {port} to pod {sandbox}, uid : {cause}")
}

pub(crate) fn refused(sandbox: &str, port: u16) -> String {
    forward_error(
        sandbox,
        port,
        &format!(
            "failed to execute portforward in network namespace \"/var/run/netns/cni-{}\": \
             failed to connect to localhost:{port} inside namespace \"{sandbox}\", \
             IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused \
             IPv6 dial tcp6 [::1]:{port}: connect: connection refused ",
            &sandbox[..sandbox.len().min(36)]
        ),
    )
}

/// How a backend connection ended.
enum End {
    Eof,
    Failed(String),
}

/// Serve one upgraded port-forward connection until either side ends.
/// `idle` is wsstream's read timeout; `killed` says whether the pod's process
/// was killed (a backend EOF is then reported as a reset, as containerd does).
pub(crate) async fn run<S>(
    ws: WebSocketStream<S>,
    codec: Codec,
    targets: Vec<Target>,
    pod: PodInfo,
    idle: Duration,
    killed: impl Fn() -> bool + Send,
    open: Option<Guard>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    // The connection lives while either half does: the writer may outlast
    // this function (its wait below is bounded), so it holds the count too.
    let open = Arc::new(open);
    let writer_open = open.clone();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        let _open = writer_open;
        // Feed every frame that is ready, then flush once: one write for a
        // burst (the two port frames at start, a backend reply split in reads)
        // instead of a syscall per frame.
        'write: while let Some(mut msg) = out_rx.recv().await {
            loop {
                let is_close = msg.is_close();
                if sink.feed(msg).await.is_err() {
                    break 'write;
                }
                if is_close {
                    let _ = sink.flush().await;
                    break 'write;
                }
                match out_rx.try_recv() {
                    Ok(next) => msg = next,
                    Err(_) => break,
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut tasks = Vec::new();
    let mut to_backend: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    let (done_tx, mut done_rx) = mpsc::channel::<(usize, End)>(targets.len().max(1));
    let mut active = 0usize;
    let port_nums: Vec<u16> = targets.iter().map(|t| t.port).collect();
    for (i, t) in targets.iter().enumerate() {
        let ch = (2 * i) as u8;
        for c in [ch, ch + 1] {
            let _ = out_tx.send(codec.encode(c, &t.port.to_le_bytes())).await;
        }
    }
    for (i, t) in targets.into_iter().enumerate() {
        let ch = (2 * i) as u8;
        let tcp = match t.backend {
            Ok(addr) => TcpStream::connect(addr)
                .await
                .inspect(|s| {
                    let _ = s.set_nodelay(true);
                })
                .map_err(|_| refused(&pod.sandbox, t.port)),
            Err(msg) => Err(msg),
        };
        match tcp {
            Err(msg) => {
                let _ = out_tx.send(codec.encode(ch + 1, msg.as_bytes())).await;
                to_backend.push(None);
            }
            Ok(tcp) => {
                active += 1;
                let local = tcp.local_addr().ok();
                let (mut rd, mut wr) = tcp.into_split();
                let (tx, mut rx) = mpsc::channel::<Bytes>(64);
                to_backend.push(Some(tx));
                tasks.push(tokio::spawn(async move {
                    while let Some(b) = rx.recv().await {
                        if wr.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    let _ = wr.shutdown().await;
                }));
                let out = out_tx.clone();
                let done = done_tx.clone();
                let port = t.port;
                tasks.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    let end = loop {
                        match rd.read(&mut buf).await {
                            Ok(0) => break End::Eof,
                            Ok(n) => {
                                if out.send(codec.encode(ch, &buf[..n])).await.is_err() {
                                    break End::Eof;
                                }
                            }
                            Err(e) => {
                                let local = local.map(|l| l.to_string()).unwrap_or_default();
                                break End::Failed(format!(
                                    "read tcp4 {local}->127.0.0.1:{port}: read: {e}"
                                ));
                            }
                        }
                    };
                    let _ = done.send((i, end)).await;
                }));
            }
        }
    }
    drop(done_tx);

    // With no backend connection at all (every port failed) the kubelet closes at once.
    let had_backend = active > 0;
    let mut client_closed = false;
    while active > 0 && !client_closed {
        tokio::select! {
            msg = tokio::time::timeout(idle, stream.next()) => match msg {
                Err(_) => {
                    tracing::debug!("port-forward to {} idle for {idle:?}: closing", pod.name);
                    break;
                }
                Ok(msg) => match msg {
                Some(Ok(m)) if m.is_close() => client_closed = true,
                Some(Ok(m)) => {
                    if let Some((ch, data)) = codec.decode(&m)
                        && ch % 2 == 0
                        && let Some(Some(tx)) = to_backend.get(usize::from(ch / 2))
                        && !data.is_empty()
                    {
                        let _ = tx.send(data).await;
                    }
                }
                Some(Err(_)) | None => client_closed = true,
            }},
            Some((i, end)) = done_rx.recv() => {
                active -= 1;
                let killed = killed();
                let ch = (2 * i) as u8;
                let cause = match end {
                    End::Failed(cause) => Some(cause),
                    End::Eof if killed => Some(format!("read tcp4 127.0.0.1->pod: read: connection reset by peer (pod {} was killed)", pod.name)),
                    End::Eof => None,
                };
                if let Some(cause) = cause {
                    let text = forward_error(&pod.sandbox, port_nums.get(i).copied().unwrap_or(0), &cause);
                    let _ = out_tx.send(codec.encode(ch + 1, text.as_bytes())).await;
                }
            }
        }
    }
    // Stop writing to the backends: the client side is done or the pod side ended.
    to_backend.clear();
    if had_backend && !client_closed {
        // Give the client the grace containerd gives it to finish first.
        let _ = tokio::time::timeout(GRACE, async {
            while let Some(Ok(m)) = stream.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
    }
    let _ = out_tx.send(Message::Close(None)).await;
    drop(out_tx);
    // Drain so tungstenite can flush its close reply, bounded.
    let _ = tokio::time::timeout(GRACE, async { while stream.next().await.is_some() {} }).await;
    let _ = tokio::time::timeout(GRACE, writer).await;
    for t in tasks {
        t.abort();
    }
    drop(stream);
    drop(open);
}

/// The kubelet's frames are small; tungstenite's default 128 KiB read buffer
/// (zeroed before each read) was ~12% of the lab's CPU in the per-pod benchmark.
pub(crate) fn small_buffers() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_first_supported() {
        assert_eq!(
            negotiate(Some("v5.channel.k8s.io, v4.channel.k8s.io")).unwrap(),
            (V4_BINARY, Codec::Binary)
        );
        assert_eq!(
            negotiate(Some("v4.base64.channel.k8s.io,v4.channel.k8s.io"))
                .unwrap()
                .1,
            Codec::Base64
        );
        assert_eq!(negotiate(None).unwrap(), ("", Codec::Binary));
        assert!(negotiate(Some("v5.channel.k8s.io")).is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports(&["80,1234"]).unwrap(), [80, 1234]);
        assert_eq!(parse_ports(&["80", "81"]).unwrap(), [80, 81]);
        assert!(parse_ports(&[]).is_err());
        assert!(parse_ports(&["0"]).is_err());
        assert!(parse_ports(&["x"]).is_err());
    }

    #[test]
    fn frames_round_trip() {
        for codec in [Codec::Binary, Codec::Base64] {
            let m = codec.encode(3, b"hello");
            assert_eq!(codec.decode(&m), Some((3, Bytes::from_static(b"hello"))));
        }
        assert_eq!(Codec::Base64.decode(&Message::text("é")), None);
        let init = Codec::Binary.encode(0, &8080u16.to_le_bytes());
        assert_eq!(init.into_data().as_ref(), &[0, 0x90, 0x1f]);
    }
}
