//! The one load client every server is driven with: idle WebSocket
//! connections (setup rate, memory) and pipelined echo (throughput).
//! Frames are pre-encoded and handshakes written by hand, so the client
//! costs the same whatever the server.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::process::Server;
use crate::wsframe::{PayloadCounter, client_frame};

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Source addresses 127.0.0.2 … 127.0.0.(1+n): each has its own 28k
/// ephemeral ports, so 18,000 connections stay clear of exhaustion.
pub fn sources(n: u8) -> Vec<Ipv4Addr> {
    (0..n.max(1))
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
        .collect()
}

async fn connect_from(src: Ipv4Addr, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(src, 0)))?;
    let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr))
        .await
        .context("connect timed out")??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes the upgrade request and reads the 101 response; returns the bytes
/// read past the headers (the start of the first frame, if any).
async fn handshake(stream: &mut TcpStream, addr: SocketAddr) -> anyhow::Result<Vec<u8>> {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed during the handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                if !buf.starts_with(b"HTTP/1.1 101") {
                    let status = String::from_utf8_lossy(&buf[..buf.len().min(40)]).to_string();
                    bail!("upgrade refused: {status}");
                }
                return Ok(buf.split_off(end + 4));
            }
            if buf.len() > 16 * 1024 {
                bail!("response headers too long");
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, read)
        .await
        .context("handshake timed out")?
}

/// Result of opening `n` idle WebSocket connections to one server.
pub struct Idle {
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub setup_per_sec: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

impl Idle {
    pub fn kib_per_conn(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.opened.max(1) as f64
    }
}

/// Opens `n` WebSocket connections (`in_flight` handshakes at once, over
/// `workers` tasks), holds them idle, reads the server's RSS after `settle`.
/// The streams are returned so the caller can stop the server first (its
/// side then takes the TIME_WAIT, not the client's source ports).
pub async fn idle(
    server: &Server,
    n: usize,
    sources: &[Ipv4Addr],
    in_flight: usize,
    settle: Duration,
) -> anyhow::Result<(Idle, Vec<TcpStream>)> {
    let workers = 4usize;
    let rss_before_kib = server.rss_kib()?;
    let addr = server.addr;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for w in 0..workers {
        let srcs = sources.to_vec();
        let per = in_flight.div_ceil(workers).max(1);
        set.spawn(async move {
            futures::stream::iter((w..n).step_by(workers))
                .map(|i| {
                    let src = srcs[i % srcs.len()];
                    async move {
                        let mut s = connect_from(src, addr).await?;
                        handshake(&mut s, addr).await?;
                        Ok::<_, anyhow::Error>(s)
                    }
                })
                .buffer_unordered(per)
                .collect::<Vec<_>>()
                .await
        });
    }
    let mut streams = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        for c in r? {
            match c {
                Ok(s) => streams.push(s),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let rss_after_kib = server.rss_kib()?;
    let opened = streams.len();
    let idle = Idle {
        opened,
        failed,
        first_error,
        setup_per_sec: opened as f64 / secs,
        rss_before_kib,
        rss_after_kib,
    };
    Ok((idle, streams))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Upgrade first, then frames.
    WebSocket,
    /// Frames straight away (to a raw TCP echo server, which echoes them).
    Tcp,
}

/// Echo throughput: messages per second and payload bytes per second.
pub struct Echo {
    pub msgs_per_sec: f64,
    pub bytes_per_sec: f64,
}

/// An echo load: `conns` connections each keep up to `window` messages of
/// `size` bytes in flight (written in batches of up to 64 KiB); echoed
/// payload bytes are counted for `duration` after `warmup`.
#[derive(Clone, Copy)]
pub struct EchoSpec {
    pub wire: Wire,
    pub conns: usize,
    pub size: usize,
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

pub async fn echo(addr: SocketAddr, spec: EchoSpec, sources: &[Ipv4Addr]) -> anyhow::Result<Echo> {
    let EchoSpec {
        wire,
        conns,
        size,
        window,
        warmup,
        duration,
    } = spec;
    let payload = vec![b'x'; size];
    // The raw TCP server gets (and echoes back) the very same masked frames,
    // so the client does the same work whatever the server.
    let frame = client_frame(&payload);
    let per_batch = (64 * 1024 / frame.len()).max(1);
    let batch: Arc<Vec<u8>> = Arc::new(frame.repeat(per_batch));
    let frame_len = frame.len();
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let window_bytes = (window * size) as u64;

    let mut tasks = JoinSet::new();
    for i in 0..conns {
        let mut stream = connect_from(sources[i % sources.len()], addr).await?;
        let leftover = match wire {
            Wire::WebSocket => handshake(&mut stream, addr).await?,
            Wire::Tcp => Vec::new(),
        };
        let (mut rd, mut wr) = stream.into_split();
        let received = Arc::new(AtomicU64::new(0));
        let notify = Arc::new(Notify::new());
        {
            let (received, notify, total) = (received.clone(), notify.clone(), total.clone());
            tasks.spawn(async move {
                let mut counter = PayloadCounter::default();
                counter.feed(&leftover);
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let got = counter.feed(&buf[..n]);
                    received.fetch_add(got, Ordering::Relaxed);
                    total.fetch_add(got, Ordering::Relaxed);
                    notify.notify_one();
                }
            });
        }
        let (batch, stop) = (batch.clone(), stop.clone());
        tasks.spawn(async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let inflight = sent.saturating_sub(received.load(Ordering::Relaxed));
                let room = (window_bytes.saturating_sub(inflight) / size as u64) as usize;
                if room == 0 {
                    notify.notified().await;
                    continue;
                }
                let k = room.min(per_batch);
                if wr.write_all(&batch[..k * frame_len]).await.is_err() {
                    return;
                }
                sent += (k * size) as u64;
            }
        });
    }
    tokio::time::sleep(warmup).await;
    let t0 = total.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let bytes = total.load(Ordering::Relaxed) - t0;
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if bytes == 0 {
        bail!("no echoes from {addr}");
    }
    let bytes_per_sec = bytes as f64 / secs;
    Ok(Echo {
        msgs_per_sec: bytes_per_sec / size as f64,
        bytes_per_sec,
    })
}
