//! The server in-process over real sockets on 127.0.0.1.

mod common;

use common::*;
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

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

    send_text(&mut ws, "hello, server").await;
    assert_eq!(next_text(&mut ws).await, "hello, server");
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send binary");
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.expect("close");
    server.shutdown().await;
}
