//! `pods/{name}/portforward` on the fake API: the pod's backend (or an
//! injected error) for each port, then the kubelet's WebSocket protocol
//! (`crate::portforward`).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::fake_api::faults::Open;
use crate::fake_api::request::ResourcePath;
use crate::fake_api::state::{State, lock};
use crate::portforward::{
    PodInfo, Target, forward_error, negotiate, parse_ports, refused, run, small_buffers,
    switching_protocols,
};
use crate::query::Query;
use crate::respond::{self, Body};
use crate::status::ApiError;

pub async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
    p: ResourcePath,
    q: Query,
) -> Response<Body> {
    let ns = p.namespace.clone().unwrap_or_default();
    let name = p.name.clone().unwrap_or_default();
    if lock(&state.store).get("", "pods", &ns, &name).is_none() {
        return respond::error(&ApiError::not_found("", "pods", &name));
    }
    let headers = req.headers();
    let Some(key) = crate::portforward::websocket_key(headers) else {
        return respond::error(&ApiError::bad_request(
            "Upgrade request required (the wsaffinity lab serves port-forward over WebSocket only)",
        ));
    };
    let mut values = q.all("ports");
    values.extend(q.all("port"));
    let ports = match parse_ports(&values) {
        Ok(p) => p,
        Err(e) => return respond::error(&ApiError::bad_request(e)),
    };
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let (protocol, codec) = match negotiate(offered) {
        Ok(x) => x,
        Err(e) => return respond::text(StatusCode::FORBIDDEN, e),
    };

    let (info, targets) = {
        let pods = lock(&state.pods);
        let rt = pods.get(&(ns.clone(), name.clone()));
        let sandbox = rt
            .map(|r| r.sandbox.clone())
            .unwrap_or_else(|| crate::names::hex_id(&[&ns, &name]));
        let injected = state.faults.portforward_error(&ns, &name);
        let targets = ports
            .iter()
            .map(|&port| {
                let backend = match (&injected, rt) {
                    (Some(msg), _) => Err(forward_error(&sandbox, port, msg)),
                    (None, Some(r)) if !r.killed && r.plan.ports.contains(&port) => {
                        r.backend.ok_or_else(|| refused(&sandbox, port))
                    }
                    _ => Err(refused(&sandbox, port)),
                };
                Target { port, backend }
            })
            .collect::<Vec<_>>();
        (PodInfo { ns, name, sandbox }, targets)
    };

    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Counted open from the 101 answer until `run` and its writer let go.
    let open = state.counters.open(Open::PortForward);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(small_buffers()),
                )
                .await;
                // wsstream's idle timeout: the read deadline is reset by each frame from the client.
                let idle = state
                    .faults
                    .idle_timeout()
                    .unwrap_or(Duration::from_secs(4 * 3600));
                let key = (info.ns.clone(), info.name.clone());
                let pods = state.clone();
                let killed = move || lock(&pods.pods).get(&key).is_some_and(|r| r.killed);
                run(ws, codec, targets, info, idle, killed, Some(Box::new(open))).await;
            }
            Err(e) => tracing::debug!("port-forward upgrade failed: {e}"),
        }
    });
    switching_protocols(&accept, protocol)
}
