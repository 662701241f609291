//! The kubelet API the API server proxies `pods/log` and `pods/portforward` to,
//! over TLS on the node's InternalIP (`pkg/kubelet/server/server.go`):
//! `GET /containerLogs/{ns}/{pod}/{container}`, `/portForward/{ns}/{pod}[/{uid}]`
//! (WebSocket `v4.channel.k8s.io`, or SPDY/3.1 `portforward.k8s.io` as the API
//! server sends for `kubectl port-forward`), `/healthz`. Anything else is 404, as on a
//! kubelet without the debugging handlers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::registry::{PodEntry, Registry};
use super::spdy;
use crate::log_stream::{log_query, respond_log};
use crate::portforward::{self, PodInfo, Target, negotiate, parse_ports};
use crate::query::Query;
use crate::respond::{self, Body};

/// The kubelet's streaming idle timeout default (`--streaming-connection-idle-timeout`).
const STREAM_IDLE: Duration = Duration::from_secs(4 * 3600);

pub async fn serve(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, registry: Registry) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("kubelet API accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |req| {
                let registry = registry.clone();
                async move {
                    let res = route(registry, req);
                    Ok::<_, Infallible>(crate::log_stream::headers_at_first_byte(res).await)
                }
            });
            // HTTP/2 when the client offers it (the API server does for
            // pods/log, as to a kubelet), HTTP/1.1 for the upgrades.
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            if let Err(e) = conn.await {
                tracing::debug!("kubelet API connection: {e}");
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond::text(status, body)
}

fn route(registry: Registry, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["healthz"] => text(StatusCode::OK, "ok"),
        ["containerLogs", ns, pod, container] => {
            container_logs(&registry, ns, pod, container, &query)
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
            let entry = registry.get(ns, pod);
            port_forward(entry, ns, pod, req, &query)
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

fn container_logs(
    registry: &Registry,
    ns: &str,
    pod: &str,
    container: &str,
    q: &Query,
) -> Response<Body> {
    let Some(entry) = registry.get(ns, pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" not found on this node"),
        );
    };
    if !entry.containers.iter().any(|c| c == container) {
        return text(
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" not found in pod \"{pod}\""),
        );
    }
    let query = match log_query(q) {
        Ok(query) => query,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.message),
    };
    let logs = if q.flag("previous") {
        match entry.previous_logs() {
            Some(l) => l,
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                    ),
                );
            }
        }
    } else {
        entry.current_logs()
    };
    // What the API server relays to the client, for benchmarks that compare
    // log readers by bytes moved (`RUST_LOG=node_agent::log_bytes=debug`).
    let what = format!("{ns}/{pod}/{container}");
    respond_log(
        logs,
        &query,
        move |n| tracing::debug!(target: "node_agent::log_bytes", "pods/log {what}: {n} bytes sent"),
        None,
    )
}

fn port_forward(
    entry: Option<Arc<PodEntry>>,
    ns: &str,
    pod: &str,
    mut req: Request<Incoming>,
    q: &Query,
) -> Response<Body> {
    let Some(entry) = entry else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" not found on this node"),
        );
    };
    let sandbox = crate::names::hex_id(&[ns, pod, &entry.uid]);
    if spdy::is_upgrade(req.headers()) {
        return spdy_port_forward(entry, sandbox, req);
    }
    let headers = req.headers();
    let Some(key) = crate::portforward::websocket_key(headers) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Upgrade request required: port-forward needs a WebSocket (v4.channel.k8s.io) or SPDY/3.1 upgrade",
        );
    };
    let mut values = q.all("port");
    values.extend(q.all("ports"));
    let ports = match parse_ports(&values) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let (protocol, codec) = match negotiate(offered) {
        Ok(x) => x,
        Err(e) => return text(StatusCode::FORBIDDEN, e),
    };
    let targets = ports
        .iter()
        .map(|&port| {
            let backend = match &entry.portforward_error {
                Some(msg) => Err(portforward::forward_error(&sandbox, port, msg)),
                None if entry.is_running() => Ok(SocketAddr::from((entry.ip, port))),
                None => Err(portforward::refused(&sandbox, port)),
            };
            Target { port, backend }
        })
        .collect::<Vec<_>>();
    let info = PodInfo {
        ns: ns.to_string(),
        name: pod.to_string(),
        sandbox,
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(portforward::small_buffers()),
                )
                .await;
                let killed = move || entry.killed.load(Ordering::SeqCst);
                portforward::run(ws, codec, targets, info, STREAM_IDLE, killed, None).await;
            }
            Err(e) => tracing::debug!("port-forward upgrade failed: {e}"),
        }
    });
    portforward::switching_protocols(&accept, protocol)
}

/// SPDY/3.1 port-forward: the handshake of `httpstream.Handshake` and
/// `spdy.NewResponseUpgrader`, then one session; ports come per stream.
fn spdy_port_forward(
    entry: Arc<PodEntry>,
    sandbox: String,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let protocol = match spdy::negotiate(req.headers()) {
        Ok(p) => p,
        Err((status, msg)) => {
            let mut resp = text(status, msg);
            if status == StatusCode::FORBIDDEN {
                resp.headers_mut().insert(
                    spdy::ACCEPTED_HEADER,
                    http::HeaderValue::from_static(spdy::PORT_FORWARD_V1),
                );
            }
            return resp;
        }
    };
    let resolve_entry = entry.clone();
    let resolve_sandbox = sandbox.clone();
    let resolve: spdy::portforward::Resolve =
        Arc::new(move |port| match &resolve_entry.portforward_error {
            Some(msg) => Err(portforward::forward_error(&resolve_sandbox, port, msg)),
            None if resolve_entry.is_running() => Ok(SocketAddr::from((resolve_entry.ip, port))),
            None => Err(portforward::refused(&resolve_sandbox, port)),
        });
    let dial_sandbox = sandbox;
    let dial_error =
        Arc::new(move |port: u16, _cause: &str| portforward::refused(&dial_sandbox, port));
    let session = spdy::portforward::Session {
        resolve,
        dial_error,
        idle_timeout: STREAM_IDLE,
        creation_timeout: spdy::portforward::STREAM_CREATION_TIMEOUT,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => spdy::portforward::run(TokioIo::new(upgraded), session).await,
            Err(e) => tracing::debug!("spdy port-forward upgrade failed: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, spdy::UPGRADE_SPDY_31)
        .header(spdy::PROTOCOL_HEADER, protocol)
        .body(respond::full(Bytes::new()))
        .unwrap_or_else(|_| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the upgrade response",
            )
        })
}
