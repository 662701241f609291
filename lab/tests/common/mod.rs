//! Helpers shared by the lab's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wsaffinity_lab::{Lab, LabOptions, Scenario};

pub const NS: &str = "websocket-app-dev";

/// The dev overlay with real pods (needs `cargo build -p websocket-server`).
pub async fn dev_lab() -> Lab {
    Lab::start(LabOptions::new(Scenario::DevOverlay))
        .await
        .expect("lab starts (run `cargo build -p websocket-server` first)")
}

pub async fn client(lab: &Lab) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::read_from(lab.kubeconfig_path()).expect("kubeconfig readable");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig accepted by kube-rs");
    kube::Client::try_from(config).expect("client")
}

/// A WebSocket client over a forwarded stream, and the hello it received.
pub async fn ws_over<S>(stream: S) -> (WebSocketStream<S>, serde_json::Value)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async("ws://localhost/", stream),
    )
    .await
    .expect("handshake in time")
    .expect("WebSocket handshake through the forward");
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("hello in time")
        .expect("a message")
        .expect("no error");
    let hello: serde_json::Value =
        serde_json::from_str(hello.to_text().expect("text hello")).expect("hello is JSON");
    (ws, hello)
}

pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("echo in time")
            .expect("a message")
            .expect("no error");
        if msg.is_text() {
            assert_eq!(msg.to_text().expect("text"), text);
            return;
        }
    }
}

/// The close handshake, then drop the stream (DESIGN.md: close, drop, then `join()`;
/// waiting for end-of-stream instead lets the pod side close first).
pub async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}

/// The last `Active connections: N` in the pod's log, read through the API.
pub async fn last_active(pods: &Api<Pod>, pod: &str) -> Option<u64> {
    let text = pods
        .logs(
            pod,
            &LogParams {
                tail_lines: Some(50),
                ..Default::default()
            },
        )
        .await
        .ok()?;
    text.lines()
        .rev()
        .find_map(|l| l.split("Active connections: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
}

/// The real `kubectl` against the lab: (succeeded, stdout then stderr), or
/// `None` (the test is skipped) when kubectl cannot be run.
pub fn kubectl(lab: &Lab, args: &[&str]) -> Option<(bool, String)> {
    // A private discovery cache: kubectl keys its cache by host:port, which labs reuse.
    let cache = lab.kubeconfig_path().with_file_name("kubectl-cache");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab.kubeconfig_path())
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .output();
    match out {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            eprintln!("SKIP: kubectl not runnable: {e}");
            None
        }
    }
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `within`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} (waited {within:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
