//! Plain HTTP routes and the WebSocket upgrade decision.
//!
//! `/` and `/ws` upgrade to WebSocket; `/healthz`, `/readyz` and `/metrics`
//! are plain HTTP; anything else is 404.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::{debug, warn};

use crate::connection;
use crate::metrics::{self, RejectReason};
use crate::shared::Shared;

pub(crate) type Body = Full<Bytes>;

/// What a request needs from its TCP connection.
#[derive(Clone)]
pub(crate) struct ConnectionContext {
    pub(crate) shared: Arc<Shared>,
    /// Keeps the server's drain waiting while held.
    pub(crate) drain: mpsc::Sender<()>,
    /// The connection's socket permit; an upgrade carries it into the
    /// WebSocket task so the socket stays counted for its whole life.
    pub(crate) socket: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

/// Answers one HTTP request. Never fails: every problem is a status code.
pub(crate) async fn route(
    req: Request<Incoming>,
    ctx: ConnectionContext,
) -> Result<Response<Body>, Infallible> {
    let shared = &ctx.shared;
    let path = req.uri().path();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let response = match path {
        "/" | "/ws" => upgrade(req, &ctx),
        "/healthz" if get => text(StatusCode::OK, "ok\n"),
        "/readyz" if get => {
            if shared.shutdown.is_shutdown() {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        "/metrics" if get => {
            let mut response = text(StatusCode::OK, shared.metrics.render());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            response
        }
        "/healthz" | "/readyz" | "/metrics" => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: WebSocket on / or /ws; /healthz, /readyz, /metrics\n",
        ),
    };
    Ok(response)
}

/// Why an upgrade request cannot be accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UpgradeProblem {
    /// No upgrade was asked for: a plain HTTP request to a WebSocket path.
    NotAnUpgrade,
    /// An unsupported `Sec-WebSocket-Version`.
    Version,
    /// Anything else that is wrong with the request.
    Malformed(&'static str),
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and returns the client key.
pub(crate) fn check_upgrade(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<HeaderValue, UpgradeProblem> {
    let upgrade_websocket = has_token(headers, header::UPGRADE, "websocket");
    let connection_upgrade = has_token(headers, header::CONNECTION, "upgrade");
    let key = headers.get(header::SEC_WEBSOCKET_KEY);
    if !upgrade_websocket && !connection_upgrade && key.is_none() {
        return Err(UpgradeProblem::NotAnUpgrade);
    }
    if method != Method::GET {
        return Err(UpgradeProblem::Malformed(
            "a WebSocket upgrade must use GET",
        ));
    }
    if version != Version::HTTP_11 {
        return Err(UpgradeProblem::Malformed(
            "a WebSocket upgrade needs HTTP/1.1",
        ));
    }
    if !upgrade_websocket {
        return Err(UpgradeProblem::Malformed("missing `Upgrade: websocket`"));
    }
    if !connection_upgrade {
        return Err(UpgradeProblem::Malformed("missing `Connection: Upgrade`"));
    }
    match headers.get(header::SEC_WEBSOCKET_VERSION) {
        Some(v) if v.as_bytes() == b"13" => {}
        Some(_) => return Err(UpgradeProblem::Version),
        None => {
            return Err(UpgradeProblem::Malformed(
                "missing `Sec-WebSocket-Version: 13`",
            ));
        }
    }
    match key {
        Some(key) if is_websocket_key(key.as_bytes()) => Ok(key.clone()),
        Some(_) => Err(UpgradeProblem::Malformed(
            "`Sec-WebSocket-Key` must be 16 bytes in base64",
        )),
        None => Err(UpgradeProblem::Malformed("missing `Sec-WebSocket-Key`")),
    }
}

/// True if a comma-separated header contains `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// A base64 encoding of 16 bytes: 22 alphabet characters and `==`.
fn is_websocket_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn upgrade(req: Request<Incoming>, ctx: &ConnectionContext) -> Response<Body> {
    let shared = &ctx.shared;
    let key = match check_upgrade(req.method(), req.version(), req.headers()) {
        Ok(key) => key,
        Err(UpgradeProblem::NotAnUpgrade) => {
            let mut response = text(
                StatusCode::UPGRADE_REQUIRED,
                "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)\n",
            );
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            return response;
        }
        Err(UpgradeProblem::Version) => {
            shared.metrics.rejected(RejectReason::BadRequest);
            let mut response = refuse(
                StatusCode::UPGRADE_REQUIRED,
                "unsupported Sec-WebSocket-Version: this server speaks version 13\n",
            );
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return response;
        }
        Err(UpgradeProblem::Malformed(why)) => {
            shared.metrics.rejected(RejectReason::BadRequest);
            debug!("bad upgrade request: {why}");
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("bad WebSocket upgrade: {why}\n"),
            );
        }
    };

    if shared.shutdown.is_shutdown() {
        shared.metrics.rejected(RejectReason::Shutdown);
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n");
    }
    let Ok(permit) = shared.websocket_slots.clone().try_acquire_owned() else {
        shared.metrics.rejected(RejectReason::Limit);
        warn!(
            "rejected connection with 503: limit of {} open connections reached",
            shared.config.max_connections
        );
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "connection limit reached, try again later\n",
        );
    };

    let socket = ctx
        .socket
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let (shared, drain) = (shared.clone(), ctx.drain.clone());
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => connection::serve(upgraded, shared, (permit, socket), drain).await,
            Err(e) => debug!("upgrade did not complete: {e}"),
        }
    });

    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// A refused upgrade: the answer is final, so the connection closes after it.
fn refuse(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    const GOOD: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_proper_upgrade_is_accepted() {
        let key = check_upgrade(&Method::GET, Version::HTTP_11, &headers(&GOOD));
        assert_eq!(
            key,
            Ok(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="))
        );
    }

    #[test]
    fn a_plain_get_is_not_an_upgrade() {
        let problem = check_upgrade(&Method::GET, Version::HTTP_11, &HeaderMap::new());
        assert_eq!(problem, Err(UpgradeProblem::NotAnUpgrade));
    }

    #[test]
    fn broken_upgrades_are_malformed() {
        let post = check_upgrade(&Method::POST, Version::HTTP_11, &headers(&GOOD));
        assert!(matches!(post, Err(UpgradeProblem::Malformed(_))));
        let http10 = check_upgrade(&Method::GET, Version::HTTP_10, &headers(&GOOD));
        assert!(matches!(http10, Err(UpgradeProblem::Malformed(_))));
        let mut bad_key = GOOD;
        bad_key[3].1 = "short";
        let bad = check_upgrade(&Method::GET, Version::HTTP_11, &headers(&bad_key));
        assert!(matches!(bad, Err(UpgradeProblem::Malformed(_))));
        let no_key = check_upgrade(&Method::GET, Version::HTTP_11, &headers(&GOOD[..3]));
        assert!(matches!(no_key, Err(UpgradeProblem::Malformed(_))));
        let mut old = GOOD;
        old[2].1 = "8";
        let version = check_upgrade(&Method::GET, Version::HTTP_11, &headers(&old));
        assert_eq!(version, Err(UpgradeProblem::Version));
    }
}
