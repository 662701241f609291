//! The listener: accept loop, connection limit, shutdown and drain.
//!
//! As in mini-redis, the listener owns the state every connection shares
//! ([`Shared`], built here once) and hands each connection's handler its
//! clone; `http.rs` (routing and the upgrade) and `connection.rs` (one
//! WebSocket) only receive it and never reach back into this file.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::{sleep, timeout};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::connection::websocket_config;
use crate::http::{ConnectionContext, route};
use crate::metrics::RejectReason;
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::stall_guard::StallGuard;

/// Sockets allowed on top of `--max-connections`, so that health checks,
/// metrics and the 503 answers still get through at the limit. Every socket
/// (HTTP or WebSocket) holds one permit from accept to close.
const HTTP_HEADROOM: usize = 256;

/// Serves WebSocket and HTTP on `listener` until `shutdown` resolves, then
/// drains: `/readyz` turns 503, the listener closes, every open connection
/// gets close code 1001, and open connections get up to
/// `config.drain_timeout` to finish. Returns once drained (or timed out).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let (notice_tx, notice_rx) = watch::channel(false);
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    let websocket_config = websocket_config(config.max_message_size);
    let shared = Arc::new(Shared::new(
        config,
        websocket_config,
        Shutdown::new(notice_rx),
    ));
    let sockets = Arc::new(Semaphore::new(
        shared.config.max_connections.saturating_add(HTTP_HEADROOM),
    ));
    let ident = &shared.config.identity;
    info!(
        "websocket-server pod={} namespace={} node={} ip={} max_connections={} max_message_size={}",
        ident.pod,
        ident.namespace,
        ident.node,
        ident.ip,
        shared.config.max_connections,
        shared.config.max_message_size
    );
    for k in history(shared.config.log_history) {
        info!("Active connections: {k}");
    }
    info!("listening on {addr}");
    // A baseline line, so a pod nobody has connected to yet still tells
    // `kubectl wsaffinity logs` its count instead of looking silent. It comes
    // last, so a fresh pod's newest line is a count: per-pod takes the count
    // before its test from that one line instead of reading the log's tail.
    info!("Active connections: 0");

    tokio::spawn(report(shared.clone()));
    // The handshake timeout is hyper's header read timeout: it runs while a
    // request head is awaited, from accept to the first request and again
    // whenever a kept-alive connection goes idle, and never while a request
    // is answered. `HttpConnection::serve` tells the two cases apart.
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.handshake_timeout);

    tokio::pin!(shutdown);
    loop {
        // Permit before accept: the socket limit can never be overshot.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = sockets.clone().acquire_owned() => permit?,
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let conn = HttpConnection {
            shared: shared.clone(),
            shutdown: shared.shutdown.clone(),
            drain: drain_tx.clone(),
            permit,
        };
        tokio::spawn(conn.serve(http.clone(), stream, peer));
    }

    // Readiness fails and every task hears of the shutdown, then the listener closes.
    let _ = notice_tx.send(true);
    drop(listener);
    let open = shared.metrics.active();
    info!("shutdown: /readyz now answers 503; stopped listening on {addr}");
    let drain_timeout = shared.config.drain_timeout;
    info!(
        "shutdown: sending close code 1001 to {open} open connections; waiting up to {:.1}s for them to finish",
        drain_timeout.as_secs_f64()
    );
    drop(drain_tx);
    match timeout(drain_timeout, drain_rx.recv()).await {
        Ok(_) => info!("shutdown: all connections closed"),
        Err(_) => warn!(
            "shutdown: drain timeout after {:.1}s; {} connections still open",
            drain_timeout.as_secs_f64(),
            shared.metrics.active()
        ),
    }
    info!("shutdown complete");
    Ok(())
}

/// Accepts the next connection, riding out errors such as running out of
/// file descriptors.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                error!("accept failed: {e}; retrying in {}ms", backoff.as_millis());
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// A TCP connection in its HTTP phase (before any upgrade).
struct HttpConnection {
    shared: Arc<Shared>,
    shutdown: Shutdown,
    drain: mpsc::Sender<()>,
    /// This socket's permit; moves to the WebSocket task on upgrade.
    permit: OwnedSemaphorePermit,
}

impl HttpConnection {
    async fn serve(self, http: http1::Builder, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let ctx = ConnectionContext {
            shared: self.shared.clone(),
            drain: self.drain.clone(),
            socket: Arc::new(Mutex::new(Some(self.permit))),
        };
        // Set once a whole request head has arrived: from then on this is an
        // HTTP connection that was served, not a handshake that never came.
        let requested = Arc::new(AtomicBool::new(false));
        let seen = requested.clone();
        let service = service_fn(move |req| {
            seen.store(true, Ordering::Relaxed);
            route(req, ctx.clone())
        });
        let io = StallGuard::new(stream, self.shared.config.handshake_timeout);
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutdown = self.shutdown;
        let mut graceful = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    match done {
                        Ok(()) => {}
                        Err(e) if e.is_timeout() && !requested.load(Ordering::Relaxed) => {
                            self.shared.metrics.rejected(RejectReason::HandshakeTimeout);
                            debug!(%peer, "dropping connection: no complete request within the handshake timeout");
                        }
                        Err(e) if e.is_timeout() => {
                            debug!(%peer, "closing idle keep-alive connection");
                        }
                        Err(e) => debug!(%peer, "http connection ended: {e}"),
                    }
                    return;
                }
                _ = shutdown.wait(), if !graceful => {
                    // Finish the request in flight (if any), then close.
                    conn.as_mut().graceful_shutdown();
                    graceful = true;
                }
            }
        }
    }
}

/// The counts of `--log-history`'s past lines: a walk up and down between 0
/// and 96 (never the real count's 0 at the end, so a reader that stops short
/// of the last line is caught).
fn history(lines: u32) -> impl Iterator<Item = u32> {
    (0..lines).map(|i| {
        let k = i % 192;
        1 + if k < 96 { k } else { 191 - k }
    })
}

/// Repeats `Active connections: N` every `--report-interval` while N > 0.
async fn report(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let every = shared.config.report_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                let n = shared.metrics.active();
                if n > 0 {
                    info!("Active connections: {n}");
                }
            }
        }
    }
}
