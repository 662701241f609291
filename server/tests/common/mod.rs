//! Helpers shared by the integration tests: start the server in-process or as
//! the real binary, connect clients, read log lines.
#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use websocket_server::{Config, Identity};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running inside the test process.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(websocket_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        InProcess {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Triggers shutdown without waiting for the drain.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        timeout(WAIT, self.task)
            .await
            .expect("server drains in time")
            .expect("server task did not panic")
            .expect("server returned Ok");
    }
}

/// A config with a fixed identity and the given tweaks applied.
pub fn config() -> Config {
    Config {
        identity: Identity {
            pod: "pod-a".into(),
            namespace: "ns-a".into(),
            node: "node-a".into(),
            ip: "10.0.0.1".into(),
        },
        ..Config::default()
    }
}

pub async fn connect(addr: SocketAddr) -> Client {
    let (ws, _) = timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
    )
    .await
    .expect("connect in time")
    .expect("websocket handshake");
    ws
}

/// Connects and returns the client with its parsed hello.
pub async fn connect_hello(addr: SocketAddr) -> (Client, serde_json::Value) {
    let mut ws = connect(addr).await;
    let hello = next_text(&mut ws).await;
    let hello = serde_json::from_str(&hello).expect("hello is JSON");
    (ws, hello)
}

/// The next data message as text (pings are skipped).
pub async fn next_text(ws: &mut Client) -> String {
    match next_data(ws).await {
        Message::Text(t) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The next message that is not a ping or pong.
pub async fn next_data(ws: &mut Client) -> Message {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("connection still open")
            .expect("no protocol error");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// Reads until the server's close frame and returns its code.
pub async fn close_code(ws: &mut Client) -> u16 {
    loop {
        match timeout(WAIT, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

pub async fn send_text(ws: &mut Client, text: &str) {
    ws.send(Message::text(text.to_string()))
        .await
        .expect("send text");
}

/// A raw HTTP/1.1 exchange: returns the status code and the whole response.
pub async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    raw_http_bytes(addr, request.as_bytes()).await
}

/// Like [`raw_http`] for requests that are not valid UTF-8.
pub async fn raw_http_bytes(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    stream.write_all(request).await.expect("write request");
    read_response(&mut stream).await
}

/// Reads a response to the end (bounded): (status, whole response).
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut response = Vec::new();
    let _ = timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time");
    let response = String::from_utf8_lossy(&response).to_string();
    (status_of(&response), response)
}

pub fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// `GET path` with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// The value of one Prometheus series from `/metrics`.
pub async fn metric(addr: SocketAddr, series: &str) -> u64 {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    self::series(&body, series)
}

/// The value of one Prometheus series in a `/metrics` body.
pub fn series(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {name} in {body}"))
}

/// Polls `/metrics` until the series reaches `want` (bounded).
pub async fn wait_metric(addr: SocketAddr, series: &str, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = metric(addr, series).await;
        if value == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} stayed at {value}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real `websocket-server` binary, with its stdout as a line stream.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Binary {
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_websocket-server"));
        command
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(args)
            .env_remove("PORT")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start websocket-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut binary = Binary {
            child,
            addr: "127.0.0.1:0".parse().expect("placeholder address"),
            lines,
            log: Vec::new(),
        };
        let line = binary.wait_line(|l| l.contains("listening on ")).await;
        let addr = line
            .rsplit("listening on ")
            .next()
            .and_then(|rest| rest.split(|c: char| c == '"' || c.is_whitespace()).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        binary.addr = addr;
        binary
    }

    /// Waits for the next line matching `pred` (bounded), keeping all lines.
    pub async fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no matching log line; log so far:\n{}", self.log.join("\n"))
                })
                .unwrap_or_else(|| panic!("server exited; log:\n{}", self.log.join("\n")));
            self.log.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits for the line `Active connections: n`.
    pub async fn wait_active(&mut self, n: usize) {
        let want = format!("Active connections: {n}");
        self.wait_line(|l| {
            active_count(l).is_some_and(|_| l.contains(&want) && active_count(l) == Some(n))
        })
        .await;
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("server still running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }
}

/// N from a line containing `Active connections: N`.
pub fn active_count(line: &str) -> Option<usize> {
    let rest = line.split("Active connections: ").nth(1)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Sends the first line of a GET, so the request is in flight.
pub async fn begin_request(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\n").as_bytes())
        .await
        .expect("write request line");
    // Let the server read it before anything else happens (a connection
    // that has sent nothing is simply closed on shutdown); generous for busy CI.
    tokio::time::sleep(Duration::from_millis(250)).await;
    stream
}

/// Finishes a request from [`begin_request`]: (status, whole response).
pub async fn finish_request(stream: &mut TcpStream) -> (u16, String) {
    stream
        .write_all(b"Host: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write rest of request");
    read_response(stream).await
}

/// Reads a response head byte by byte up to its blank line (bounded by
/// [`WAIT`]), leaving what follows (a body, a hello frame) unread.
pub async fn read_head(stream: &mut TcpStream, what: &str) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = timeout(WAIT, stream.read_u8())
            .await
            .unwrap_or_else(|_| panic!("{what} answered in time"))
            .unwrap_or_else(|e| panic!("server closed during {what} ({e}): {head:?}"));
        head.push(byte);
    }
    String::from_utf8_lossy(&head).to_string()
}

/// Completes the WebSocket upgrade on a raw socket: the socket and the
/// server's response head (status 101 checked; the hello may follow).
pub async fn raw_upgrade_head(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .expect("write upgrade");
    let head = read_head(&mut stream, "the upgrade").await;
    assert_eq!(status_of(&head), 101, "{head}");
    (stream, head)
}

/// [`raw_upgrade_head`] without the head.
pub async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    raw_upgrade_head(addr).await.0
}

/// What a numbered-message client saw before the server closed it.
pub struct Drained {
    pub echoed: u64,
    pub sent: u64,
    pub close: Option<u16>,
}

/// Sends numbered text messages on `ws` as fast as it can and checks that the
/// echoes come back complete and in order until the server's close frame
/// (bounded by [`WAIT`]). `at_echo` runs once, when `mark` echoes are in.
pub async fn numbered_echoes(ws: Client, mark: u64, at_echo: impl FnOnce()) -> Drained {
    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if sink.send(Message::text(sent.to_string())).await.is_err() {
                break;
            }
            sent += 1;
            if sent.is_multiple_of(32) {
                tokio::task::yield_now().await;
            }
        }
        sent
    });
    let mut at_echo = Some(at_echo);
    let mut echoed = 0u64;
    let mut close = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(message)) = timeout(WAIT, stream.next()).await else {
            break;
        };
        match message {
            Ok(Message::Text(text)) => {
                assert_eq!(text.as_str(), echoed.to_string(), "echoes in order, no gap");
                echoed += 1;
                if echoed == mark {
                    at_echo.take().expect("one mark")();
                }
            }
            Ok(Message::Close(frame)) => {
                close = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("connection failed before the close frame after {echoed} echoes: {e}"),
        }
    }
    let sent = sender.await.expect("sender task");
    Drained {
        echoed,
        sent,
        close,
    }
}

/// One `GET path` on a keep-alive connection (no `Connection: close`): reads
/// exactly one response (head plus `Content-Length` body) and leaves the
/// connection open. Returns (status, whole response).
pub async fn keep_alive_get(stream: &mut TcpStream, path: &str) -> (u16, String) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("write request");
    let head = read_head(stream, "the response").await;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    let mut body = vec![0; length];
    timeout(WAIT, stream.read_exact(&mut body))
        .await
        .expect("body in time")
        .expect("whole body");
    (
        status_of(&head),
        format!("{head}{}", String::from_utf8_lossy(&body)),
    )
}

/// Waits (bounded by `within`) for the server to close `stream`; returns how
/// long that took. Anything the server still sends is discarded.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut sink = Vec::new();
    match timeout(within, stream.read_to_end(&mut sink)).await {
        Ok(_) => started.elapsed(),
        Err(_) => panic!("still open after {within:?}"),
    }
}
