//! The port-forward wire protocol checked with a raw WebSocket client, not kube-rs:
//! subprotocol choice, channel numbering, port prefixes, base64 variant, errors.

mod common;

use std::time::Duration;

use common::{NS, dev_lab};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsaffinity_lab::Lab;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    lab: &Lab,
    pod: &str,
    ports: &str,
    protocols: &str,
) -> Result<(Ws, Option<String>), String> {
    let url = format!(
        "{}/api/v1/namespaces/{NS}/pods/{pod}/portforward?ports={ports}",
        lab.server_url().replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        "Authorization",
        format!("Bearer {}", lab.token())
            .parse()
            .map_err(|_| "header")?,
    );
    if !protocols.is_empty() {
        h.insert(
            "Sec-WebSocket-Protocol",
            protocols.parse().map_err(|_| "header")?,
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, res)) => {
            let proto = res
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            Ok((ws, proto))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            Err(format!("HTTP {}", res.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("frame in time")
        .expect("open")
        .expect("ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_binary_channels_prefixes_and_errors() {
    let lab = dev_lab().await;
    let pod = lab.pods(NS)[0].clone();
    let (mut ws, proto) = connect(
        &lab,
        &pod,
        "8080,9999",
        "v5.channel.k8s.io, v4.channel.k8s.io",
    )
    .await
    .expect("upgrade");
    assert_eq!(
        proto.as_deref(),
        Some("v4.channel.k8s.io"),
        "the first offered protocol the kubelet accepts"
    );
    // Port i: data channel 2i, error channel 2i+1, each opened by the port in little endian.
    let mut inits = Vec::new();
    for _ in 0..4 {
        inits.push(next(&mut ws).await.into_data().to_vec());
    }
    inits.sort();
    assert_eq!(
        inits,
        [
            vec![0, 0x90, 0x1f],
            vec![1, 0x90, 0x1f],
            vec![2, 0x0f, 0x27],
            vec![3, 0x0f, 0x27]
        ]
    );
    // Port 9999 is not served by the pod: text on error channel 3.
    let err = next(&mut ws).await.into_data();
    assert_eq!(err[0], 3);
    let text = String::from_utf8_lossy(&err[1..]).into_owned();
    assert!(
        text.starts_with("error forwarding port 9999 to pod ")
            && text.contains("connection refused"),
        "{text}"
    );
    // Port 8080 reaches the pod: an HTTP request on channel 0 gets its /healthz answer.
    ws.send(Message::binary(
        b"\x00GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ))
    .await
    .expect("send");
    let mut body = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        let d = m.into_data();
        if d.first() == Some(&0) {
            body.extend_from_slice(&d[1..]);
        }
        if body.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    assert!(
        String::from_utf8_lossy(&body).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_variant_and_refusals() {
    let lab = dev_lab().await;
    let pod = lab.pods(NS)[0].clone();
    let (mut ws, proto) = connect(&lab, &pod, "8080", "v4.base64.channel.k8s.io")
        .await
        .expect("upgrade");
    assert_eq!(proto.as_deref(), Some("v4.base64.channel.k8s.io"));
    let first = next(&mut ws).await;
    let text = first.to_text().expect("base64 frames are text");
    assert!(
        text == "0kB8=" || text == "1kB8=",
        "channel digit then base64 of 8080 LE: {text}"
    );

    assert_eq!(
        connect(&lab, &pod, "8080", "v5.channel.k8s.io")
            .await
            .err()
            .as_deref(),
        Some("HTTP 403")
    );
    assert_eq!(
        connect(&lab, &pod, "", "v4.channel.k8s.io")
            .await
            .err()
            .as_deref(),
        Some("HTTP 400")
    );
    assert_eq!(
        connect(&lab, "nope", "8080", "v4.channel.k8s.io")
            .await
            .err()
            .as_deref(),
        Some("HTTP 404")
    );
    lab.shutdown().await;
}
