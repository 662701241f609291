//! Reliability of the real `websocket-server` binary: connection churn, clients
//! that vanish, handshakes that never finish, and a SIGTERM drain under load.
//! Each test reads the process's own log and `/proc/PID/fd`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures::{StreamExt, future::join_all};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The timing tests must not share the CPU with the 10,000-connection churn.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until `/metrics` reports no open WebSocket connection (bounded).
async fn wait_no_active(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = metric(addr, "websocket_active_connections").await;
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} connections still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no connection is open and the process holds no more than two
/// file descriptors over `before` (bounded).
async fn wait_all_closed(addr: SocketAddr, pid: u32, before: usize) {
    wait_no_active(addr, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while fd_count(pid) > before + 2 {
        assert!(
            Instant::now() < deadline,
            "file descriptors grew from {before} to {}",
            fd_count(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes the socket (EOF or reset), bounded.
async fn until_closed(stream: &mut TcpStream, within: Duration) {
    let mut sink = [0u8; 4096];
    timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the socket open for over {within:?}"));
}

#[tokio::test]
async fn ten_thousand_connections_opened_and_closed_leave_active_0_and_no_fd_growth() {
    let _serial = SERIAL.lock().await;
    const TOTAL: usize = 10_000;
    const BATCH: usize = 100;
    let mut server = Binary::start(&["--report-interval", "3600"], &[]).await;
    let addr = server.addr;
    let pid = server.child.id().expect("running");

    // Warm up (first connection allocates the runtime's lazily built parts).
    let mut ws = connect(addr).await;
    next_text(&mut ws).await;
    ws.close(None).await.expect("close");
    drop(ws);
    wait_no_active(addr, WAIT).await;
    let before = fd_count(pid);

    let started = Instant::now();
    for batch in 0..TOTAL / BATCH {
        let clients = (0..BATCH).map(|i| async move {
            let mut ws = connect(addr).await;
            match (batch + i) % 3 {
                // A proper close handshake.
                0 => {
                    next_text(&mut ws).await;
                    ws.close(None).await.expect("close");
                    while let Some(Ok(_)) = ws.next().await {}
                }
                // Reads the hello, then drops the socket without a close frame.
                1 => {
                    next_text(&mut ws).await;
                }
                // Drops the socket at once, the hello unread.
                _ => {}
            }
        });
        join_all(clients).await;
    }
    let churn = started.elapsed();
    wait_no_active(addr, WAIT).await;
    assert_eq!(
        metric(addr, "websocket_connections_total").await,
        (TOTAL + 1) as u64
    );

    // The log: the start-up baseline (the line after `listening on`), then
    // one `Active connections: N` line per open and per close, the last one 0.
    let mut counts = 0;
    let mut last = None;
    while counts < 1 + 2 * (TOTAL + 1) {
        let line = server.wait_line(|l| active_count(l).is_some()).await;
        last = active_count(&line);
        counts += 1;
    }
    assert_eq!(last, Some(0), "the last logged count");
    server.log.clear();

    let after = fd_count(pid);
    assert!(
        after <= before + 2,
        "file descriptors grew from {before} to {after} over {TOTAL} connections"
    );
    eprintln!("{TOTAL} connections in {churn:?}; fds {before} -> {after}");
}

#[tokio::test]
async fn clients_that_vanish_without_a_close_frame_are_cleaned_up_within_the_keepalive_window() {
    let _serial = SERIAL.lock().await;
    let ping = Duration::from_millis(300);
    let mut server = Binary::start(&["--ping-interval", "0.3", "--no-hello"], &[]).await;
    let addr = server.addr;
    let pid = server.child.id().expect("running");
    let before = fd_count(pid);

    // 10 drop the TCP socket (FIN), 10 reset it (RST), 10 just go silent
    // with the socket still open: none sends a close frame.
    let mut fin = Vec::new();
    let mut rst = Vec::new();
    let mut silent = Vec::new();
    let first_connected = Instant::now();
    for _ in 0..10 {
        fin.push(raw_upgrade(addr).await);
        rst.push(raw_upgrade(addr).await);
        silent.push(raw_upgrade(addr).await);
    }
    let all_connected = Instant::now();
    server.wait_active(30).await;

    let vanished = Instant::now();
    drop(fin);
    for stream in rst {
        // A zero linger makes the drop send RST at once; it never blocks.
        #[allow(deprecated)]
        stream
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(stream);
    }
    server.wait_active(10).await;
    assert!(
        vanished.elapsed() < ping * 2,
        "closed sockets are noticed at once, not at the keepalive"
    );

    // The silent ones are pinged, then dropped twice the interval after they
    // last said something (the upgrade).
    let window = ping * 2 + Duration::from_secs(1);
    for stream in &mut silent {
        until_closed(stream, window).await;
    }
    server.wait_active(0).await;
    assert!(
        first_connected.elapsed() >= ping * 2 && all_connected.elapsed() < window,
        "silent clients dropped {:?} after the last connected, keepalive window {:?}",
        all_connected.elapsed(),
        ping * 2
    );
    drop(silent);
    wait_all_closed(addr, pid, before).await;
}

#[tokio::test]
async fn slow_handshakes_are_dropped_after_the_handshake_timeout_without_blocking_others() {
    let _serial = SERIAL.lock().await;
    let limit = Duration::from_millis(500);
    let server = Binary::start(&["--handshake-timeout", "0.5"], &[]).await;
    let addr = server.addr;
    let pid = server.child.id().expect("running");
    let before = fd_count(pid);

    // 40 connect and say nothing, 20 send half a request and stop.
    let started = Instant::now();
    let mut slow = Vec::new();
    for i in 0..60 {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        if i % 3 == 0 {
            stream
                .write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n")
                .await
                .expect("write half a request");
        }
        slow.push(stream);
    }
    // A well-behaved client is served meanwhile.
    let (mut ws, hello) = connect_hello(addr).await;
    assert_eq!(hello["active"], 1);
    send_text(&mut ws, "not starved").await;
    assert_eq!(next_text(&mut ws).await, "not starved");

    for stream in &mut slow {
        until_closed(stream, limit + Duration::from_secs(2)).await;
    }
    let waited = started.elapsed();
    assert!(
        waited >= limit && waited < limit + Duration::from_secs(2),
        "slow handshakes dropped after {waited:?}, limit {limit:?}"
    );
    assert_eq!(
        metric(
            addr,
            "websocket_rejected_total{reason=\"handshake_timeout\"}"
        )
        .await,
        60
    );
    // Only the real client ever counted as a connection.
    assert_eq!(metric(addr, "websocket_active_connections").await, 1);
    assert_eq!(metric(addr, "websocket_connections_total").await, 1);
    drop(slow);
    ws.close(None).await.expect("close");
    drop(ws);
    wait_all_closed(addr, pid, before).await;
}

/// A numbered-message client (see [`numbered_echoes`]) that reports once it
/// has had 200 echoes.
async fn numbered_client(addr: SocketAddr, started: tokio::sync::mpsc::Sender<()>) -> Drained {
    let (ws, _) = connect_hello(addr).await;
    // One report per client on a channel with room for every client: never full.
    numbered_echoes(ws, 200, move || {
        let _ = started.try_send(());
    })
    .await
}

#[tokio::test]
async fn sigterm_drain_echoes_every_accepted_message_of_every_client_then_1001() {
    let _serial = SERIAL.lock().await;
    const CLIENTS: usize = 4;
    let mut server = Binary::start(&["--drain-timeout", "5"], &[]).await;
    let addr = server.addr;
    // A /metrics request begun before the signal is answered after the drain,
    // with the final counts.
    let mut probe = begin_request(addr, "/metrics").await;

    let (started, mut running) = tokio::sync::mpsc::channel(CLIENTS);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(numbered_client(addr, started.clone())))
        .collect();
    drop(started);
    // Every client has had 200 echoes: the signal lands mid-stream.
    for _ in 0..CLIENTS {
        timeout(WAIT, running.recv())
            .await
            .expect("clients get going in time")
            .expect("a client started");
    }
    server.signal("TERM");

    let mut echoed = 0;
    for client in clients {
        let seen = timeout(WAIT, client)
            .await
            .expect("client done in time")
            .expect("client task");
        assert_eq!(seen.close, Some(1001), "after {} echoes", seen.echoed);
        assert!(seen.echoed >= 200 && seen.sent >= seen.echoed);
        echoed += seen.echoed;
    }
    let (status, body) = finish_request(&mut probe).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        series(&body, "websocket_messages_total{direction=\"in\"}"),
        echoed,
        "every message the server accepted was echoed"
    );
    assert_eq!(
        series(&body, "websocket_messages_total{direction=\"out\"}"),
        echoed + CLIENTS as u64,
        "the echoes and one hello per client"
    );
    server.wait_active(0).await;
    server
        .wait_line(|l| l.contains("shutdown: all connections closed"))
        .await;
    let status = timeout(WAIT, server.child.wait())
        .await
        .expect("exits after the drain")
        .expect("wait for the server");
    assert_eq!(status.code(), Some(0));
}
