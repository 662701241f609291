//! One port-forward request carrying many connections to the same pod port.
//!
//! Through a real API server every port-forward is a new TLS connection, an
//! authorization, and a new proxied upgrade to the node's kubelet: tens of
//! milliseconds each, while the lab answered in microseconds. The kubelet's
//! WebSocket protocol takes a list of ports (`ports=8080,8080,…`, repeats
//! allowed) and gives each its own data channel `2i` and error channel
//! `2i+1`, so one upgrade serves all of a pod's connections. kube-rs's
//! `Portforwarder` keys streams by port number and refuses repeats, so the
//! channels are demultiplexed here: each becomes a duplex stream, each error
//! channel a one-shot text.
//!
//! Protocol (`v4.channel.k8s.io`, and `v5` which adds a close signal): every
//! binary message starts with its channel byte; the first message on each
//! channel carries the port as 2 bytes little-endian; `v5` closes a channel
//! with the message `[255, channel]`.

use std::collections::HashMap;

use futures::{Sink, SinkExt, StreamExt};
use http::Request;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// kube-core's own limit on ports per request.
pub const MAX_CHANNELS: usize = 128;
const CLOSE_SIGNAL: u8 = 255;
/// Bytes buffered per direction of one channel.
const DUPLEX: usize = 64 * 1024;

/// The streams of one forward; the demultiplexer runs until [`Self::close`].
pub struct SharedForward {
    pub streams: Vec<Option<(DuplexStream, oneshot::Receiver<String>)>>,
    task: JoinHandle<()>,
}

/// Sends the channels' frames until they all end, every frame that is ready
/// in one flush: one TLS record that the API server relays with one read and
/// one write, where a flush per frame cost each hop a syscall per frame (a
/// pod's connections start, echo and close together).
async fn send_in_bursts<S>(frames: &mut mpsc::Receiver<Message>, sink: &mut S)
where
    S: Sink<Message> + Unpin,
{
    while let Some(first) = frames.recv().await {
        let mut next = Some(first);
        while let Some(frame) = next {
            if sink.feed(frame).await.is_err() {
                return;
            }
            next = frames.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

impl SharedForward {
    /// Opens `n` channels to `port` of `pod` with one request.
    pub async fn open(api: &Api<Pod>, pod: &str, port: u16, n: usize) -> Result<Self, kube::Error> {
        let ports = vec![port.to_string(); n.clamp(1, MAX_CHANNELS)].join(",");
        let url = format!("{}/{pod}/portforward?ports={ports}", api.resource_url());
        let req = Request::get(url)
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        let conn = api.clone().into_client().connect(req).await?;
        let stream_close = conn.supports_stream_close();
        let ws = conn.into_stream();
        let n = n.clamp(1, MAX_CHANNELS);

        let mut streams = Vec::with_capacity(n);
        let mut data_tx: HashMap<u8, WriteHalf<DuplexStream>> = HashMap::with_capacity(n);
        let mut error_tx: HashMap<u8, oneshot::Sender<String>> = HashMap::with_capacity(n);
        let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
        let mut writers = Vec::with_capacity(n);
        for i in 0..n {
            let (ours, theirs) = tokio::io::duplex(DUPLEX);
            let (err_tx, err_rx) = oneshot::channel();
            let data = (2 * i) as u8;
            let (mut read_half, write_half) = tokio::io::split(ours);
            data_tx.insert(data, write_half);
            error_tx.insert(data + 1, err_tx);
            streams.push(Some((theirs, err_rx)));
            // What the caller writes goes out on the data channel.
            let out = out_tx.clone();
            writers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match read_half.read(&mut buf[1..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            buf[0] = data;
                            if out.send(Message::binary(buf[..=k].to_vec())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                if stream_close {
                    let _ = out.send(Message::binary(vec![CLOSE_SIGNAL, data])).await;
                }
            }));
        }
        drop(out_tx);
        let task = tokio::spawn(async move {
            let (mut sink, mut source) = ws.split();
            let send = async {
                send_in_bursts(&mut out_rx, &mut sink).await;
                let _ = sink.close().await;
            };
            let recv = async {
                let mut seen_prefix = [false; 2 * MAX_CHANNELS];
                let mut error_text: HashMap<u8, String> = HashMap::new();
                while let Some(Ok(msg)) = source.next().await {
                    let bytes = match msg {
                        Message::Binary(b) => b,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let Some((&channel, mut rest)) = bytes.split_first() else {
                        continue;
                    };
                    if channel == CLOSE_SIGNAL {
                        if let Some(&closed) = rest.first() {
                            if let Some(mut w) = data_tx.remove(&closed) {
                                let _ = w.shutdown().await;
                            }
                            if let (Some(tx), Some(text)) =
                                (error_tx.remove(&closed), error_text.remove(&closed))
                            {
                                let _ = tx.send(text);
                            }
                        }
                        continue;
                    }
                    let idx = usize::from(channel);
                    if idx < seen_prefix.len() && !seen_prefix[idx] {
                        // The port prefix of the channel's first message.
                        seen_prefix[idx] = true;
                        rest = rest.get(2..).unwrap_or_default();
                    }
                    if rest.is_empty() {
                        continue;
                    }
                    if channel % 2 == 0 {
                        if let Some(w) = data_tx.get_mut(&channel)
                            && w.write_all(rest).await.is_err()
                        {
                            data_tx.remove(&channel);
                        }
                    } else if let Some(tx) = error_tx.remove(&channel) {
                        // v4 sends the kubelet's text in one message.
                        let _ = tx.send(String::from_utf8_lossy(rest).into_owned());
                    }
                }
                // The forward ended: every stream sees end-of-file.
                for (_, mut w) in data_tx.drain() {
                    let _ = w.shutdown().await;
                }
            };
            tokio::join!(send, recv);
            for w in writers {
                w.abort();
            }
        });
        Ok(Self { streams, task })
    }

    /// Ends the forward (after every connection has closed) and waits for it.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Records what reached the wire: the frames of each flush.
    #[derive(Default)]
    struct Wire {
        pending: Vec<Message>,
        flushes: Vec<Vec<Message>>,
    }

    impl Sink<Message> for Wire {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, m: Message) -> Result<(), Self::Error> {
            self.pending.push(m);
            Ok(())
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            let sent = std::mem::take(&mut self.pending);
            self.flushes.push(sent);
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.poll_flush(cx)
        }
    }

    fn frame(channel: u8) -> Message {
        Message::binary(vec![channel, b'x'])
    }

    #[tokio::test]
    async fn frames_ready_together_go_out_in_one_flush_and_later_ones_in_the_next() {
        let (tx, mut rx) = mpsc::channel(64);
        for ch in [0, 2, 4] {
            tx.send(frame(ch)).await.unwrap();
        }
        let mut wire = Wire::default();
        let later = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send(frame(6)).await.unwrap();
        });
        let send = send_in_bursts(&mut rx, &mut wire);
        let ((), joined) = tokio::join!(send, later);
        joined.unwrap();
        assert_eq!(
            wire.flushes,
            vec![vec![frame(0), frame(2), frame(4)], vec![frame(6)]],
            "three ready frames in one flush, the late one in its own"
        );
        assert!(wire.pending.is_empty(), "nothing left unflushed");
    }
}
