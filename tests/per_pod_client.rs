//! The `per-pod` WebSocket client (`probe::websocket`) over real byte streams:
//! a TCP socket to the companion server running in-process, and in-memory
//! duplex pipes to small hand-written servers for the awkward cases
//! (silent, hung, closing early).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kubectl_wsaffinity::probe::websocket::{self, ClientError, ClientOptions};
use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use websocket_server::{Config, Identity};

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(hello: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let config = Config {
            hello,
            identity: Identity {
                pod: "web-0".into(),
                namespace: "dev".into(),
                node: "node-1".into(),
                ip: "10.0.0.1".into(),
            },
            ..Config::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(websocket_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stream(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = timeout(WAIT, self.task).await;
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn companion_server_hello_echo_hold_close() {
    let server = Server::start(true).await;
    let mut conn = websocket::open(server.stream().await, &opts())
        .await
        .expect("open");
    let hello = conn.hello.clone().expect("a hello");
    assert_eq!(hello.pod.as_deref(), Some("web-0"));
    assert_eq!(hello.node.as_deref(), Some("node-1"));
    assert_eq!(hello.active, Some(1));
    assert!(conn.echo.is_some(), "echo timed");
    assert!(conn.handshake < WAIT);
    conn.hold(tokio::time::sleep(Duration::from_millis(100)))
        .await
        .expect("held");
    timeout(WAIT, conn.close())
        .await
        .expect("close in time")
        .expect("clean close");
    server.shutdown().await;
}

#[tokio::test]
async fn many_connections_are_counted_by_the_server() {
    let server = Server::start(true).await;
    let mut conns = Vec::new();
    for _ in 0..5 {
        conns.push(
            websocket::open(server.stream().await, &opts())
                .await
                .expect("open"),
        );
    }
    let actives: Vec<u64> = conns
        .iter()
        .filter_map(|c| c.hello.as_ref()?.active)
        .collect();
    assert_eq!(actives, [1, 2, 3, 4, 5]);
    for c in conns {
        c.close().await.expect("close");
    }
    // After the close handshakes the server counts down again.
    let c = websocket::open(server.stream().await, &opts())
        .await
        .expect("open");
    assert_eq!(c.hello.as_ref().and_then(|h| h.active), Some(1));
    c.close().await.expect("close");
    server.shutdown().await;
}

#[tokio::test]
async fn server_without_hello_still_works() {
    let server = Server::start(false).await;
    let o = ClientOptions {
        hello_wait: Duration::from_millis(200),
        ..opts()
    };
    let started = Instant::now();
    let conn = websocket::open(server.stream().await, &o)
        .await
        .expect("open");
    assert_eq!(conn.hello, None);
    assert!(conn.echo.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "only the short hello wait"
    );
    conn.close().await.expect("close");
    server.shutdown().await;
}

/// A server over a duplex pipe: accepts the upgrade, then runs `behave`.
fn duplex_server<F, Fut>(behave: F) -> DuplexStream
where
    F: FnOnce(tokio_tungstenite::WebSocketStream<DuplexStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(ws) = tokio_tungstenite::accept_async(server).await {
            behave(ws).await;
        }
    });
    client
}

#[tokio::test]
async fn no_echo_for_a_silent_server() {
    // Reads everything, answers nothing (but the close).
    let silent = || {
        duplex_server(|mut ws| async move {
            // Reading on until the end also sends the reply to a close.
            while let Some(Ok(_)) = ws.next().await {}
        })
    };
    let o = ClientOptions {
        echo: false,
        hello_wait: Duration::from_millis(100),
        ..opts()
    };
    let conn = websocket::open(silent(), &o)
        .await
        .expect("open without echo");
    assert_eq!(conn.echo, None);
    conn.close().await.expect("close");

    // With the echo asked for, the same server times out, within the limit.
    let o = ClientOptions {
        timeout: Duration::from_millis(600),
        hello_wait: Duration::from_millis(100),
        ..opts()
    };
    let started = Instant::now();
    let err = websocket::open(silent(), &o)
        .await
        .expect_err("no echo comes back");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "no answer within 600ms while waiting for the echo"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn hung_handshake_gives_up_after_the_timeout() {
    // Nobody answers the upgrade request.
    let (client, _keep_open) = tokio::io::duplex(1024);
    let o = ClientOptions {
        timeout: Duration::from_millis(300),
        ..opts()
    };
    let started = Instant::now();
    let err = websocket::open(client, &o).await.expect_err("hangs");
    assert_eq!(
        err.to_string(),
        "no answer within 300ms while waiting for the WebSocket handshake"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn http_error_instead_of_an_upgrade() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 2048];
        let _ = server.read(&mut buf).await;
        let _ = server
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\n\r\ntoo many connections")
            .await;
        let _ = server.shutdown().await;
    });
    let err = websocket::open(client, &opts()).await.expect_err("503");
    assert!(matches!(err, ClientError::Refused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the server refused the WebSocket upgrade on / with HTTP 503 Service Unavailable: too many connections"
    );
}

#[tokio::test]
async fn wrong_path_is_a_refused_upgrade_naming_the_path() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 2048];
        let _ = server.read(&mut buf).await;
        let _ = server
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
        let _ = server.shutdown().await;
    });
    let o = ClientOptions {
        path: "nope".into(),
        ..opts()
    };
    let err = websocket::open(client, &o).await.expect_err("404");
    let ClientError::Refused(refusal) = err else {
        panic!("a refused upgrade: {err:?}");
    };
    assert_eq!(refusal.path, "/nope");
    assert_eq!(refusal.status, 404);
    assert_eq!(refusal.body, None);
}

#[tokio::test]
async fn server_closing_during_the_hold_is_an_error() {
    let client = duplex_server(|mut ws| async move {
        let _ = ws
            .send(Message::text(r#"{"type":"hello","pod":"web-1"}"#))
            .await;
        // Echo once, then go away with 1001.
        if let Some(Ok(m)) = ws.next().await {
            let _ = ws.send(m).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
                reason: "draining".into(),
            }))
            .await;
    });
    let mut conn = websocket::open(client, &opts()).await.expect("open");
    assert_eq!(
        conn.hello.as_ref().and_then(|h| h.pod.as_deref()),
        Some("web-1")
    );
    let err = conn
        .hold(tokio::time::sleep(WAIT))
        .await
        .expect_err("closed early");
    assert!(
        err.to_string()
            .contains("closed the connection while holding"),
        "{err}"
    );
    assert!(err.to_string().contains("draining"), "{err}");
}

#[tokio::test]
async fn held_connections_are_pinged() {
    let (pings_tx, pings_rx) = oneshot::channel::<u32>();
    let client = duplex_server(|mut ws| async move {
        let mut pings = 0;
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Ping(_) => pings += 1,
                Message::Text(_) => {
                    let _ = ws.send(m).await;
                }
                _ => {}
            }
        }
        let _ = pings_tx.send(pings);
    });
    let o = ClientOptions {
        ping_interval: Duration::from_millis(50),
        hello_wait: Duration::from_millis(50),
        ..opts()
    };
    let mut conn = websocket::open(client, &o).await.expect("open");
    conn.hold(tokio::time::sleep(Duration::from_millis(330)))
        .await
        .expect("held");
    conn.close().await.expect("close");
    let pings = timeout(WAIT, pings_rx)
        .await
        .expect("in time")
        .expect("count");
    assert!((4..=8).contains(&pings), "{pings} pings in 330 ms at 50 ms");
}
