//! One test connection through the Kubernetes port-forward API.
//!
//! Every connection runs in its own task, over a stream of the pod's shared
//! forward (`shared_forward`, one upgrade for all of a pod's connections) or,
//! when that cannot be opened, its own `Api::<Pod>::portforward` call as in
//! kube-rs's `pod_portforward_bind` example. The order of
//! teardown matters (DESIGN.md, "Port-forward details that bite"): finish the
//! WebSocket close handshake, drop the forwarded stream at once, then `join()`
//! the forwarder. Waiting for end-of-stream first lets the far side close
//! first, and `join()` then fails with "Sending after closing is not allowed".
//!
//! Errors the kubelet reports arrive as text on the port's error channel
//! (`take_error`); when one arrives it is the message shown to the user.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::Portforwarder;
use tokio::sync::{oneshot, watch};

use crate::snapshot::UpgradeRefusal;

use super::websocket::{self, ClientError, ClientOptions, Hello, human};

/// What opening a connection measured; sent to the coordinator as soon as the
/// connection is open (or has failed), before the hold starts.
#[derive(Clone, Debug, Default)]
pub struct Opened {
    pub handshake: Option<Duration>,
    pub echo: Option<Duration>,
    pub hello: Option<Hello>,
    /// Why it failed; `None` when the connection is open and held.
    pub error: Option<String>,
    /// When it failed because the pod's server refused the upgrade.
    pub refused: Option<UpgradeRefusal>,
}

/// The whole life of one connection.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub opened: Opened,
    /// Why the connection failed during the hold or the close, when it did.
    pub error: Option<String>,
    /// A forwarder that did not end cleanly after a clean close (for `-v`).
    pub teardown: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.opened.error.is_none() && self.error.is_none()
    }

    /// The first error, as worded for the user.
    pub fn first_error(&self) -> Option<&str> {
        self.opened.error.as_deref().or(self.error.as_deref())
    }

    /// The pod's refusal of the upgrade, when that was why it failed.
    pub fn refused(&self) -> Option<&UpgradeRefusal> {
        self.opened.refused.as_ref()
    }
}

pub use super::cancel::{Cancel, CancelHandle};

/// Everything a connection task needs besides the API handle.
#[derive(Clone, Debug)]
pub struct ConnectionSpec {
    pub pod: String,
    pub port: u16,
    pub client: ClientOptions,
}

/// Runs one connection: port-forward, WebSocket open, report [`Opened`] on
/// `opened`, hold until `release` turns true, close, drop, join.
///
/// Every step is bounded by `spec.client.timeout`; `cancel` cuts any step
/// short and still closes and joins.
pub async fn run_connection(
    api: Api<Pod>,
    spec: ConnectionSpec,
    opened: oneshot::Sender<Opened>,
    release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome {
    let limit = spec.client.timeout;
    let mut report = reporter(opened);

    // 1. The port-forward upgrade.
    let ports = [spec.port];
    let what = format!("port-forward to pod/{} port {}", spec.pod, spec.port);
    let forwarder = tokio::select! {
        r = tokio::time::timeout(limit, api.portforward(&spec.pod, &ports)) => match r {
            Ok(Ok(pf)) => pf,
            Ok(Err(e)) => return failed_open(&mut report, format!("{what} failed: {}", kube_message(&e))),
            Err(_) => return failed_open(&mut report, format!("{what} got no answer within {}", human(limit))),
        },
        () = cancel.cancelled() => return failed_open(&mut report, "interrupted".to_string()),
    };
    run_over_forwarder(forwarder, spec, &mut report, release, cancel).await
}

/// Sends the first [`Opened`] it is given to `opened`, then nothing.
fn reporter(opened: oneshot::Sender<Opened>) -> impl FnMut(&Opened) {
    let mut opened = Some(opened);
    move |o: &Opened| {
        if let Some(tx) = opened.take() {
            let _ = tx.send(o.clone());
        }
    }
}

fn failed_open(report: &mut impl FnMut(&Opened), error: String) -> Outcome {
    refused_open(report, error, None)
}

/// [`failed_open`], with the pod's refusal of the upgrade when that was why.
fn refused_open(
    report: &mut impl FnMut(&Opened),
    error: String,
    refused: Option<UpgradeRefusal>,
) -> Outcome {
    let opened = Opened {
        error: Some(error),
        refused,
        ..Opened::default()
    };
    report(&opened);
    Outcome {
        opened,
        error: None,
        teardown: None,
    }
}

async fn run_over_forwarder(
    mut forwarder: Portforwarder,
    spec: ConnectionSpec,
    report: &mut impl FnMut(&Opened),
    release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome {
    let limit = spec.client.timeout;
    let port = spec.port;
    let (Some(stream), Some(error_rx)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        let outcome = failed_open(
            report,
            format!("port-forward has no stream for port {port}"),
        );
        finish(forwarder, limit, false).await;
        return outcome;
    };
    let mut outcome = run_over_stream(stream, error_rx, spec, report, release, cancel).await;
    let clean = outcome.ok();
    let teardown = finish(forwarder, limit, clean).await;
    if clean {
        outcome.teardown = teardown;
    }
    outcome
}

/// Runs one connection over a stream of a forward shared by the pod's
/// connections ([`super::shared_forward`]); the caller ends the forward once
/// every connection is done.
pub async fn run_shared_connection(
    stream: tokio::io::DuplexStream,
    error_rx: oneshot::Receiver<String>,
    spec: ConnectionSpec,
    opened: oneshot::Sender<Opened>,
    release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome {
    let mut report = reporter(opened);
    let error_rx = async move { error_rx.await.ok() };
    run_over_stream(stream, error_rx, spec, &mut report, release, cancel).await
}

/// Steps 2–4 of a connection over a forwarded stream and its error text.
async fn run_over_stream<S>(
    stream: S,
    error_rx: impl Future<Output = Option<String>> + Send + 'static,
    spec: ConnectionSpec,
    report: &mut impl FnMut(&Opened),
    mut release: watch::Receiver<bool>,
    cancel: Cancel,
) -> Outcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let error_rx = futures::FutureExt::shared(Box::pin(error_rx));

    // 2. WebSocket handshake, hello, echo — or the error channel, or Ctrl-C.
    //    An HTTP answer other than 101 proves the pod was reached: its
    //    refusal is the message. Any other failure is a broken stream, which
    //    the error channel's text explains better.
    let conn = tokio::select! {
        r = websocket::open(stream, &spec.client) => r.map_err(|e| match e {
            ClientError::Refused(refusal) => (refusal.to_string(), Some(refusal)),
            other => (other.to_string(), None),
        }),
        Some(msg) = error_rx.clone() => Err((kubelet_message(&msg), None)),
        () = cancel.cancelled() => Err(("interrupted".to_string(), None)),
    };
    let mut conn = match conn {
        Ok(conn) => conn,
        Err((e, refused)) => {
            let e = if refused.is_some() {
                e
            } else {
                prefer_error_channel(error_rx.clone(), e).await
            };
            return refused_open(report, e, refused);
        }
    };
    let opened = Opened {
        handshake: Some(conn.handshake),
        echo: conn.echo,
        hello: conn.hello.clone(),
        error: None,
        refused: None,
    };
    report(&opened);

    // 3. Hold until released (or cancelled), pinging.
    let released = async {
        tokio::select! {
            _ = release.wait_for(|r| *r) => {}
            () = cancel.cancelled() => {}
        }
    };
    let held = tokio::select! {
        r = conn.hold(released) => r.map_err(|e| e.to_string()),
        Some(msg) = error_rx.clone() => Err(kubelet_message(&msg)),
    };
    let mut error = match held {
        Ok(()) => None,
        Err(e) => Some(prefer_error_channel(error_rx.clone(), e).await),
    };

    // 4. Close handshake. `close` consumes the connection, so the forwarded
    //    stream is dropped the moment the server's close frame is in.
    if error.is_none() {
        let closed = tokio::select! {
            r = conn.close() => r.map_err(|e| e.to_string()),
            Some(msg) = error_rx.clone() => Err(kubelet_message(&msg)),
        };
        if let Err(e) = closed {
            error = Some(prefer_error_channel(error_rx.clone(), e).await);
        }
    } else {
        drop(conn);
    }

    Outcome {
        opened,
        error,
        teardown: None,
    }
}

/// When a stream breaks, the kubelet's message has usually just arrived on
/// the error channel: give it a moment and prefer it.
async fn prefer_error_channel(
    error_rx: impl Future<Output = Option<String>>,
    fallback: String,
) -> String {
    match tokio::time::timeout(Duration::from_millis(200), error_rx).await {
        Ok(Some(msg)) => kubelet_message(&msg),
        _ => fallback,
    }
}

/// Ends the forwarder. After a clean close handshake it ends on its own once
/// the stream is dropped, so it is joined (within `limit`); after a failure
/// it is aborted first so nothing is left running. A join that fails after a
/// clean close is returned for diagnostics only.
async fn finish(forwarder: Portforwarder, limit: Duration, clean: bool) -> Option<String> {
    if !clean {
        forwarder.abort();
        let _ = tokio::time::timeout(limit, forwarder.join()).await;
        return None;
    }
    match tokio::time::timeout(limit, forwarder.join()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::debug!("port-forward ended with: {e}");
            Some(e.to_string())
        }
        Err(_) => {
            tracing::debug!("port-forward did not end within {}", human(limit));
            Some(format!("port-forward did not end within {}", human(limit)))
        }
    }
}

fn kubelet_message(msg: &str) -> String {
    msg.trim().to_string()
}

pub(crate) fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
