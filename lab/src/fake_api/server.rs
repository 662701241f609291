//! The listener: HTTP/1.1 (optionally TLS) on loopback, one task per connection,
//! with upgrades for port-forward; stops on the shutdown signal.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::fake_api::api;
use crate::fake_api::faults::Open;
use crate::fake_api::state::State;

pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Go's net package (the real API server, the kubelet) sets TCP_NODELAY;
        // without it small port-forward frames wait ~40 ms for delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => connection(stream, state, shutdown).await,
                    Err(e) => tracing::debug!("TLS handshake: {e}"),
                },
                None => connection(tcp, state, shutdown).await,
            }
        });
    }
}

async fn connection<S>(io: S, state: Arc<State>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Until the connection ends, or is upgraded: the upgraded IO then belongs
    // to the port-forward, which counts itself.
    let _open = state.counters.open(Open::Connection);
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move {
            let res = api::handle(state, req).await;
            // pods/log follow of a silent container: headers with the first byte.
            Ok::<_, Infallible>(crate::log_stream::headers_at_first_byte(res).await)
        }
    });
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::select! {
        r = conn => if let Err(e) = r { tracing::debug!("connection: {e}") },
        _ = shutdown.changed() => {}
    }
}
