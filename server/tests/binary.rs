//! The real `websocket-server` binary: its log lines, flags, and SIGTERM drain.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::{Instant, timeout};

#[tokio::test]
async fn logs_active_connections_on_every_change_and_says_hello_with_the_env_identity() {
    let env = [
        ("POD_NAME", "websocket-server-7d9f-abcde"),
        ("POD_NAMESPACE", "websocket-app-dev"),
        ("NODE_NAME", "node-1"),
        ("POD_IP", "10.1.2.3"),
    ];
    let mut server = Binary::start(&[], &env).await;
    let mut clients = Vec::new();
    for n in 1..=3 {
        let (ws, hello) = connect_hello(server.addr).await;
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["pod"], "websocket-server-7d9f-abcde");
        assert_eq!(hello["namespace"], "websocket-app-dev");
        assert_eq!(hello["node"], "node-1");
        assert_eq!(hello["connection"], n);
        assert_eq!(hello["active"], n);
        server.wait_active(n).await;
        clients.push(ws);
    }
    for n in (0..3).rev() {
        let mut ws = clients.pop().expect("a client");
        ws.close(None).await.expect("close");
        server.wait_active(n).await;
    }
    let counts: Vec<usize> = server.log.iter().filter_map(|l| active_count(l)).collect();
    assert_eq!(counts, [0, 1, 2, 3, 2, 1, 0]);

    // Text format: `TIMESTAMP INFO Active connections: N`.
    let line = server
        .log
        .iter()
        .find(|l| l.contains("Active connections: 3"))
        .expect("the line for 3");
    let (stamp, rest) = line.split_once(' ').expect("timestamp first");
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{line}"
    );
    assert_eq!(rest, "INFO Active connections: 3");
}

#[tokio::test]
async fn json_logs_keep_the_same_message_text() {
    let mut server = Binary::start(&["--log-format", "json"], &[]).await;
    let (mut ws, _) = connect_hello(server.addr).await;
    server.wait_active(1).await;
    ws.close(None).await.expect("close");
    server.wait_active(0).await;
    for line in &server.log {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["message"].is_string(), "{line}");
    }
    let messages: Vec<&str> = server
        .log
        .iter()
        .filter_map(|l| l.contains("Active connections").then_some(l.as_str()))
        .collect();
    // The start-up baseline, the connect, the disconnect.
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("\"message\":\"Active connections: 0\""));
    assert!(messages[1].contains("\"message\":\"Active connections: 1\""));
    assert!(messages[2].contains("\"message\":\"Active connections: 0\""));
}

#[tokio::test]
async fn log_history_writes_past_counts_then_listening_then_the_real_baseline() {
    let mut server = Binary::start(&["--log-history", "500"], &[]).await;
    let listening = server
        .log
        .iter()
        .position(|l| l.contains("listening on"))
        .expect("a `listening on` line");
    let past: Vec<usize> = server.log[..listening]
        .iter()
        .filter_map(|l| active_count(l))
        .collect();
    assert_eq!(past.len(), 500, "500 past lines before `listening on`");
    assert!(past.iter().all(|&k| (1..=96).contains(&k)), "{past:?}");
    assert_eq!(past.iter().max(), Some(&96), "rises to 96");
    // The real count comes last, right after `listening on`: a fresh pod's
    // newest line is a count.
    let next = server.wait_line(|_| true).await;
    assert_eq!(active_count(&next), Some(0), "{next}");
    // A connection still moves the count from the real 0.
    let (_ws, _) = connect_hello(server.addr).await;
    server.wait_active(1).await;
}

#[tokio::test]
async fn the_count_is_repeated_every_report_interval_while_connections_are_open() {
    let mut server = Binary::start(&["--report-interval", "0.1"], &[]).await;
    let (_ws, _) = connect_hello(server.addr).await;
    server.wait_active(1).await;
    // Two more reports of the same count, with no connection change between.
    server.wait_active(1).await;
    server.wait_active(1).await;
}

#[tokio::test]
async fn no_hello_makes_a_pure_echo_server() {
    let server = Binary::start(&["--no-hello", "--max-message-size", "20000000"], &[]).await;
    let mut ws = connect(server.addr).await;
    send_text(&mut ws, "ping?").await;
    assert_eq!(next_text(&mut ws).await, "ping?");
}

#[tokio::test]
async fn bad_flags_are_refused_with_a_message() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_websocket-server"))
        .args(["--ping-interval", "soon"])
        .output()
        .await
        .expect("run websocket-server");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--ping-interval"), "{stderr}");
}

#[tokio::test]
async fn sigterm_fails_readiness_closes_clients_with_1001_and_exits_0() {
    let drain = Duration::from_secs(5);
    let mut server = Binary::start(&["--drain-timeout", "5"], &[]).await;
    let addr = server.addr;
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (mut a, _) = connect_hello(addr).await;
    let (mut b, _) = connect_hello(addr).await;
    server.wait_active(2).await;
    // A readiness check in flight when the signal arrives.
    let mut probe = begin_request(addr, "/readyz").await;

    let signalled = Instant::now();
    server.signal("TERM");
    server.wait_line(|l| l.contains("received SIGTERM")).await;
    server
        .wait_line(|l| l.contains("/readyz now answers 503"))
        .await;
    let (status, body) = finish_request(&mut probe).await;
    assert_eq!(status, 503, "{body}");

    assert_eq!(close_code(&mut a).await, 1001);
    assert_eq!(close_code(&mut b).await, 1001);
    drop((a, b));
    server.wait_active(0).await;
    server.wait_line(|l| l.contains("shutdown complete")).await;

    let status = timeout(drain + Duration::from_secs(2), server.child.wait())
        .await
        .expect("exits within the drain timeout")
        .expect("wait for the server");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < drain);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after exit"
    );
}

#[tokio::test]
async fn a_client_that_ignores_the_close_does_not_hold_the_exit_past_the_drain_timeout() {
    let mut server = Binary::start(&["--drain-timeout", "0.5"], &[]).await;
    // A raw socket that completes the handshake and then never reads again.
    let mut stuck = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut stuck,
        b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("write upgrade");
    server.wait_active(1).await;
    server.signal("TERM");
    let status = timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("exits soon after the drain timeout")
        .expect("wait for the server");
    assert_eq!(status.code(), Some(0));
    server.wait_line(|l| l.contains("drain timeout")).await;
}

#[tokio::test]
async fn many_connections_opened_and_closed_leave_no_count_and_no_descriptors_behind() {
    let mut server = Binary::start(&[], &[]).await;
    let pid = server.child.id().expect("running");
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 50;
    for _ in 0..ROUNDS {
        let mut clients = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            clients.push(connect_hello(server.addr).await.0);
        }
        // Half say goodbye properly, half just vanish.
        for (i, mut ws) in clients.into_iter().enumerate() {
            if i % 2 == 0 {
                ws.close(None).await.expect("close");
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    while metric(server.addr, "websocket_active_connections").await != 0 {
        assert!(Instant::now() < deadline, "connections left open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metric(server.addr, "websocket_connections_total").await,
        (ROUNDS * PER_ROUND) as u64
    );
    server.wait_line(|l| active_count(l) == Some(0)).await;
    let after = fds();
    assert!(
        after <= before + 2,
        "file descriptors grew from {before} to {after}"
    );
}
