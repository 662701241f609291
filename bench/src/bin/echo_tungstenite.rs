//! Baseline: a stock tokio-tungstenite echo server with the default
//! `WebSocketConfig` (`accept_async`), one task per connection.

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // EMFILE and friends: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(echo(stream));
    }
}

async fn echo(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(msg)) = rx.next().await {
        if (msg.is_text() || msg.is_binary()) && tx.send(msg).await.is_err() {
            break;
        }
    }
}
