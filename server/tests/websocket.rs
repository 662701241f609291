//! The server in-process over real sockets on 127.0.0.1: hello, echo,
//! metrics, the connection limit, size limit, keepalive, malformed requests,
//! slow handshakes and the shutdown drain.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{self, Message};
use websocket_server::Config;

#[tokio::test]
async fn hello_carries_the_identity_then_text_and_binary_are_echoed() {
    let server = InProcess::start(config()).await;
    let (mut ws, hello) = connect_hello(server.addr).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["pod"], "pod-a");
    assert_eq!(hello["namespace"], "ns-a");
    assert_eq!(hello["node"], "node-a");
    assert_eq!(hello["connection"], 1);
    assert_eq!(hello["active"], 1);

    let (mut second, hello) = connect_hello(server.addr).await;
    assert_eq!(hello["connection"], 2);
    assert_eq!(hello["active"], 2);

    send_text(&mut ws, "hello, server").await;
    assert_eq!(next_text(&mut ws).await, "hello, server");
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send binary");
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
    send_text(&mut second, "ünïcødé ✓").await;
    assert_eq!(next_text(&mut second).await, "ünïcødé ✓");

    ws.close(None).await.expect("close");
    second.close(None).await.expect("close");
    server.shutdown().await;
}

#[tokio::test]
async fn without_hello_the_server_is_a_pure_echo() {
    let server = InProcess::start(Config {
        hello: false,
        ..config()
    })
    .await;
    let mut ws = connect(server.addr).await;
    send_text(&mut ws, "first").await;
    assert_eq!(next_text(&mut ws).await, "first");
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_messages_comes_back_complete_and_in_order() {
    let server = InProcess::start(Config {
        hello: false,
        ..config()
    })
    .await;
    let mut ws = connect(server.addr).await;
    const N: usize = 2000;
    for i in 0..N {
        ws.feed(Message::text(i.to_string())).await.expect("feed");
    }
    ws.flush().await.expect("flush");
    for i in 0..N {
        assert_eq!(next_text(&mut ws).await, i.to_string());
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn large_messages_up_to_the_limit_are_echoed() {
    let limit = 17 << 20; // above 16 MiB, as conformance suites need
    let server = InProcess::start(Config {
        max_message_size: limit,
        hello: false,
        ..config()
    })
    .await;
    let mut ws = connect(server.addr).await;
    let payload: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    ws.send(Message::binary(payload.clone()))
        .await
        .expect("send 16 MiB");
    match next_data(&mut ws).await {
        Message::Binary(echo) => assert!(echo == payload, "16 MiB echo differs"),
        other => panic!("expected binary, got {other:?}"),
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_follow_connections_and_messages() {
    let server = InProcess::start(config()).await;
    let addr = server.addr;
    assert_eq!(metric(addr, "websocket_active_connections").await, 0);

    let (mut a, _) = connect_hello(addr).await;
    let (mut b, _) = connect_hello(addr).await;
    for text in ["one", "two", "three"] {
        send_text(&mut a, text).await;
        assert_eq!(next_text(&mut a).await, text);
    }
    assert_eq!(metric(addr, "websocket_active_connections").await, 2);
    assert_eq!(metric(addr, "websocket_connections_total").await, 2);
    assert_eq!(
        metric(addr, "websocket_messages_total{direction=\"in\"}").await,
        3
    );
    // Two hellos and three echoes.
    assert_eq!(
        metric(addr, "websocket_messages_total{direction=\"out\"}").await,
        5
    );

    b.close(None).await.expect("close");
    wait_metric(addr, "websocket_active_connections", 1).await;
    a.close(None).await.expect("close");
    wait_metric(addr, "websocket_active_connections", 0).await;
    assert_eq!(metric(addr, "websocket_connections_total").await, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_limit_upgrades_get_503_until_a_client_leaves() {
    let server = InProcess::start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let addr = server.addr;
    let (mut a, _) = connect_hello(addr).await;
    let (b, _) = connect_hello(addr).await;

    match tokio_tungstenite::connect_async(format!("ws://{addr}/")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Err(e) => panic!("expected HTTP 503, got error {e}"),
        Ok(_) => panic!("a third connection was accepted over the limit of 2"),
    }
    assert_eq!(
        metric(addr, "websocket_rejected_total{reason=\"limit\"}").await,
        1
    );
    assert_eq!(metric(addr, "websocket_active_connections").await, 2);
    // Health and metrics still answer at the limit.
    assert_eq!(get(addr, "/healthz").await.0, 200);

    a.close(None).await.expect("close");
    wait_metric(addr, "websocket_active_connections", 1).await;
    let (c, hello) = connect_hello(addr).await;
    assert_eq!(hello["active"], 2);
    drop(b);
    drop(c);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let server = InProcess::start(Config {
        max_message_size: 1024,
        ..config()
    })
    .await;
    let (mut ws, _) = connect_hello(server.addr).await;
    let fits = "x".repeat(1024);
    send_text(&mut ws, &fits).await;
    assert_eq!(next_text(&mut ws).await, fits);
    ws.send(Message::binary(vec![7u8; 4096]))
        .await
        .expect("send oversized");
    assert_eq!(close_code(&mut ws).await, 1009);
    drop(ws);

    // Fragmented: each frame fits, the message does not.
    let mut stream = accepted_upgrade(server.addr).await;
    let _hello = read_frame(&mut stream).await;
    for (i, fin) in [(0, false), (1, false), (2, true)] {
        let opcode = if i == 0 { 0x2 } else { 0x0 };
        stream
            .write_all(&masked_frame(fin, opcode, &[1u8; 600]))
            .await
            .expect("write fragment");
    }
    let (opcode, payload) = read_frame(&mut stream).await;
    assert_eq!(opcode, 0x8, "expected a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_pinged_then_closed_after_twice_the_interval() {
    let interval = Duration::from_millis(200);
    let server = InProcess::start(Config {
        ping_interval: interval,
        ..config()
    })
    .await;

    // A responsive client stays connected: it keeps reading, and tungstenite
    // answers every ping while it reads.
    let (mut alive, _) = connect_hello(server.addr).await;
    let alive = tokio::spawn(async move {
        let until = Instant::now() + interval * 5;
        while let Ok(message) = tokio::time::timeout_at(until, alive.next()).await {
            let message = message.expect("still open").expect("no error");
            assert!(message.is_ping(), "only pings while idle, got {message:?}");
        }
        send_text(&mut alive, "still here").await;
        assert_eq!(next_text(&mut alive).await, "still here");
    });

    // A raw client that completes the handshake and then never says a word.
    let started = Instant::now();
    let mut silent = accepted_upgrade(server.addr).await;
    let (opcode, _) = read_frame(&mut silent).await;
    assert_eq!(opcode, 0x1, "hello first");
    let mut pings = 0;
    let code = loop {
        let (opcode, payload) = read_frame(&mut silent).await;
        match opcode {
            0x9 => pings += 1,
            0x8 => break u16::from_be_bytes([payload[0], payload[1]]),
            other => panic!("unexpected opcode {other}"),
        }
    };
    let waited = started.elapsed();
    assert!(pings >= 1, "the server pings before giving up");
    assert_eq!(code, 1001);
    assert!(
        waited >= interval * 2 && waited < interval * 2 + Duration::from_secs(2),
        "closed after {waited:?}, expected about {:?}",
        interval * 2
    );
    // The server hangs up.
    let mut rest = Vec::new();
    timeout(WAIT, silent.read_to_end(&mut rest))
        .await
        .expect("server closes the socket")
        .ok();

    timeout(WAIT, alive)
        .await
        .expect("responsive client done in time")
        .expect("responsive client kept its connection");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_sends_but_never_reads_is_dropped() {
    let interval = Duration::from_millis(200);
    let server = InProcess::start(Config {
        ping_interval: interval,
        hello: false,
        ..config()
    })
    .await;
    let mut stream = accepted_upgrade(server.addr).await;
    let frame = masked_frame(true, 0x2, &[0u8; 64 * 1024]);
    let started = Instant::now();
    // Echoes pile up unread until the server gives up and resets the socket.
    let outcome = timeout(WAIT, async {
        for _ in 0..100_000 {
            if stream.write_all(&frame).await.is_err() {
                return true;
            }
        }
        false
    })
    .await
    .expect("the server drops the stalled client in time");
    assert!(
        outcome,
        "the server kept accepting data from a client that never reads"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_metric(server.addr, "websocket_active_connections", 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_plain_requests_get_4xx() {
    let server = InProcess::start(config()).await;
    let addr = server.addr;

    let (status, body) = get(addr, "/").await;
    assert_eq!(status, 426, "{body}");
    assert!(body.to_lowercase().contains("websocket client"), "{body}");
    assert_eq!(get(addr, "/ws").await.0, 426);
    assert_eq!(get(addr, "/nope").await.0, 404);
    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 200);

    let upgrade = |extra: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        )
    };
    let no_key = upgrade("Sec-WebSocket-Version: 13\r\n");
    assert_eq!(raw_http(addr, &no_key).await.0, 400);
    let bad_key = upgrade("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n");
    assert_eq!(raw_http(addr, &bad_key).await.0, 400);
    let old =
        upgrade("Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    let (status, response) = raw_http(addr, &old).await;
    assert_eq!(status, 426);
    assert!(
        response
            .to_lowercase()
            .contains("sec-websocket-version: 13")
    );
    let post = "POST /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Content-Length: 0\r\n\r\n";
    assert_eq!(raw_http(addr, post).await.0, 400);
    let (status, _) = raw_http(addr, "HELLO THERE\r\n\r\n").await;
    assert!((400..500).contains(&status), "garbage got {status}");
    let (status, _) = raw_http_bytes(addr, b"GET /\x01\x02 HTTP/1.1\r\nHost: \xff\r\n\r\n").await;
    assert!((400..500).contains(&status), "binary junk got {status}");

    // Invalid frames after a good handshake: a protocol error closes with 1002
    // and the server keeps serving others.
    let mut stream = accepted_upgrade(addr).await;
    let _hello = read_frame(&mut stream).await;
    stream
        .write_all(&[0x83, 0x80, 0, 0, 0, 0]) // reserved opcode 3
        .await
        .expect("write");
    let (opcode, payload) = read_frame(&mut stream).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
    drop(stream);
    let mut stream = accepted_upgrade(addr).await;
    let _hello = read_frame(&mut stream).await;
    stream
        .write_all(&masked_frame(true, 0x1, &[0xff, 0xfe]))
        .await
        .expect("write");
    let (opcode, payload) = read_frame(&mut stream).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1007);
    drop(stream);

    assert!(metric(addr, "websocket_rejected_total{reason=\"bad_request\"}").await >= 4);
    let (mut ws, _) = connect_hello(addr).await;
    send_text(&mut ws, "fine").await;
    assert_eq!(next_text(&mut ws).await, "fine");
    drop(ws);
    server.shutdown().await;
}

/// A server whose handshake timeout is `limit`.
async fn with_handshake_timeout(limit: Duration) -> InProcess {
    InProcess::start(Config {
        handshake_timeout: limit,
        ..config()
    })
    .await
}

/// Connections the server refused for not finishing a request in time.
async fn handshake_timeouts(addr: std::net::SocketAddr) -> u64 {
    metric(
        addr,
        "websocket_rejected_total{reason=\"handshake_timeout\"}",
    )
    .await
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_dropped() {
    let server = with_handshake_timeout(Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n")
        .await
        .expect("write half a request");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("dropped within the timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(handshake_timeouts(server.addr).await, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_scrapes_that_go_idle_are_closed_without_counting_a_rejection() {
    // A Prometheus-style scraper: one keep-alive connection, requests spread
    // over longer than the handshake timeout, then silence.
    let limit = Duration::from_millis(400);
    let server = with_handshake_timeout(limit).await;
    let (mut ws, _) = connect_hello(server.addr).await;
    let mut scraper = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    for path in ["/metrics", "/healthz", "/metrics", "/healthz"] {
        let (status, response) = keep_alive_get(&mut scraper, path).await;
        assert_eq!(
            status, 200,
            "{path} on the kept-alive connection: {response}"
        );
        tokio::time::sleep(limit * 2 / 3).await;
    }
    assert!(
        started.elapsed() > limit * 2,
        "the requests spanned the timeout"
    );
    // Idle now: the server may close it, but that is not a refused client.
    closed_within(&mut scraper, limit + WAIT).await;
    // The WebSocket that was upgraded meanwhile is untouched.
    send_text(&mut ws, "still here").await;
    assert_eq!(next_text(&mut ws).await, "still here");
    let (status, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    for reason in ["handshake_timeout", "bad_request", "limit", "shutdown"] {
        let name = format!("websocket_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(series(&body, &name), 0, "{body}");
    }
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn only_clients_that_never_finish_a_request_count_as_handshake_timeouts() {
    let limit = Duration::from_millis(300);
    let server = with_handshake_timeout(limit).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n")
        .await
        .expect("write half a request");
    let mut scraper = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(keep_alive_get(&mut scraper, "/healthz").await.0, 200);
    for stream in [&mut silent, &mut slow, &mut scraper] {
        let waited = closed_within(stream, limit + Duration::from_secs(3)).await;
        assert!(waited < limit + Duration::from_secs(3));
    }
    assert_eq!(
        handshake_timeouts(server.addr).await,
        2,
        "the silent and the slow client, not the scraper"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_responses_is_dropped_without_counting() {
    let limit = Duration::from_millis(300);
    let server = with_handshake_timeout(limit).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(server.addr).await.expect("connect");
    // Pipelined requests whose answers are never read: the server's writes
    // stall, then its reads; it gives up on the socket instead of holding it.
    let requests = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(256);
    let written = timeout(WAIT, async {
        let mut sent = 0usize;
        while stream.write_all(requests.as_bytes()).await.is_ok() {
            sent += 256;
        }
        sent
    })
    .await
    .expect("the server drops a client that does not read");
    assert!(
        written > 256,
        "the stall came after some answers ({written} sent)"
    );
    assert_eq!(handshake_timeouts(server.addr).await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_echoes_every_accepted_message_then_closes_with_1001() {
    let mut server = InProcess::start(config()).await;
    let addr = server.addr;
    let (ws, _) = connect_hello(addr).await;
    // A request begun before shutdown and finished after it reads the final counts.
    let mut probe = begin_request(addr, "/metrics").await;

    let seen = numbered_echoes(ws, 500, || server.begin_shutdown()).await;
    let echoed = seen.echoed;
    assert_eq!(seen.close, Some(1001), "close code after {echoed} echoes");
    assert!(echoed >= 500);
    assert!(seen.sent >= echoed);

    let (status, body) = finish_request(&mut probe).await;
    assert_eq!(status, 200, "{body}");
    let accepted = series(&body, "websocket_messages_total{direction=\"in\"}");
    assert_eq!(
        accepted, echoed,
        "every accepted message was echoed:\n{body}"
    );
    assert_eq!(
        series(&body, "websocket_messages_total{direction=\"out\"}"),
        echoed + 1
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_turns_readyz_to_503_and_refuses_new_connections() {
    let mut server = InProcess::start(config()).await;
    let addr = server.addr;
    // A readiness check in flight when shutdown begins.
    let mut probe = begin_request(addr, "/readyz").await;
    let (mut ws, _) = connect_hello(addr).await;
    server.begin_shutdown();
    assert_eq!(close_code(&mut ws).await, 1001);
    let (status, body) = finish_request(&mut probe).await;
    assert_eq!(status, 503, "{body}");
    drop(ws);
    server.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener is closed"
    );
}

/// [`raw_upgrade`], checking the server's accept key too.
async fn accepted_upgrade(addr: std::net::SocketAddr) -> TcpStream {
    let (stream, head) = raw_upgrade_head(addr).await;
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    stream
}

/// Reads one unmasked server frame: (opcode, payload).
async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    timeout(WAIT, async {
        let b0 = stream.read_u8().await.expect("frame byte 0");
        let b1 = stream.read_u8().await.expect("frame byte 1");
        assert_eq!(b1 & 0x80, 0, "server frames are not masked");
        let len = match b1 & 0x7f {
            126 => u64::from(stream.read_u16().await.expect("len16")),
            127 => stream.read_u64().await.expect("len64"),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).expect("length fits")];
        stream.read_exact(&mut payload).await.expect("payload");
        (b0 & 0x0f, payload)
    })
    .await
    .expect("a frame in time")
}

/// A masked client frame.
fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn a_hand_made_frame_is_echoed_unmasked() {
    let server = InProcess::start(Config {
        hello: false,
        ..config()
    })
    .await;
    let mut stream = accepted_upgrade(server.addr).await;
    stream
        .write_all(&masked_frame(true, 0x1, b"raw"))
        .await
        .expect("write");
    assert_eq!(read_frame(&mut stream).await, (0x1, b"raw".to_vec()));
    drop(stream);
    server.shutdown().await;
}
