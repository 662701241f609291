//! The HTTP stack under the kube [`kube::Client`]: kube-rs's default stack
//! (`ClientBuilder::try_from`) with TCP_NODELAY on every connection, and
//! HTTP/2 for every request but upgrades, as kubectl (client-go) does.
//!
//! kube-rs's connector leaves Nagle's algorithm on. Through a real API
//! server a small write that follows another not yet acknowledged one (the
//! TLS records of a port-forward tunnel, a request right after a handshake)
//! then waits for the peer's delayed ACK, about 40 ms: `per-pod` over 20
//! pods took 1.0 s instead of 0.42 s. Go's net package, and so kubectl and
//! the API server, turns Nagle off on every TCP connection.
//!
//! kube-rs speaks HTTP/1.1 only, so every log stream held open (`logs
//! --follow`, `per-pod`'s count feed) takes a TLS connection of its own and
//! closing it early ends that connection. Over HTTP/2 they are streams of
//! one connection, as in kubectl. Upgrades (port-forward) need HTTP/1.1: the
//! API server has no WebSocket over HTTP/2, so they keep their own client.

use http::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use tower::retry::RetryLayer;
use tower::util::BoxService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

/// The service type of kube-rs's default stack, so both paths give one type.
pub type Stack = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// kube-rs's default layers in its order (base URI, retry of 429/503/504,
/// auth, extra headers) over a connector with TCP_NODELAY and kube-rs's
/// timeouts. A proxy in the kubeconfig keeps kube-rs's own builder, which
/// owns proxy support and its errors.
pub fn client_builder(config: kube::Config) -> Result<ClientBuilder<Stack>, kube::Error> {
    if config.proxy_url.is_some() {
        return ClientBuilder::try_from(config);
    }
    let upgrades =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(with_timeouts(
            &config,
            config.rustls_https_connector_with_connector(tcp())?,
        ));
    let requests = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .build(with_timeouts(&config, https_h2_or_h1(&config)?));
    let client = ByUpgrade { upgrades, requests };

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(client)
        .map_response(|res| {
            res.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>
            })
        })
        .boxed();
    Ok(ClientBuilder::new(service, config.default_namespace))
}

/// TCP with Nagle off, for http:// and https:// URLs alike.
fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http
}

/// kube-rs's rustls connector (its TLS config and `tls-server-name`),
/// offering HTTP/2 by ALPN with HTTP/1.1 as the fallback.
fn https_h2_or_h1(config: &kube::Config) -> Result<HttpsConnector<HttpConnector>, kube::Error> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    let builder = match &config.tls_server_name {
        Some(name) => {
            let name = name.clone().try_into().map_err(|e| {
                kube::Error::Service(format!("the kubeconfig's tls-server-name `{name}` is not a valid DNS name or IP address ({e}); fix it in the cluster entry").into())
            })?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Ok(builder.enable_all_versions().wrap_connector(tcp()))
}

/// kube-rs's timeouts around a connector.
fn with_timeouts<C>(config: &kube::Config, inner: C) -> TimeoutConnector<C>
where
    C: tower::Service<http::Uri> + Send + Clone + 'static,
    C::Response: hyper::rt::Read
        + hyper::rt::Write
        + hyper_util::client::legacy::connect::Connection
        + Unpin
        + Send,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    let mut connector = TimeoutConnector::new(inner);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    connector
}

type Pooled<C> = hyper_util::client::legacy::Client<TimeoutConnector<C>, Body>;

/// Sends upgrade requests (`Connection: Upgrade`) over HTTP/1.1 only and
/// everything else over HTTP/2 when the server offers it.
#[derive(Clone)]
struct ByUpgrade {
    upgrades: Pooled<HttpsConnector<HttpConnector>>,
    requests: Pooled<HttpsConnector<HttpConnector>>,
}

impl tower::Service<Request<Body>> for ByUpgrade {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // hyper's pooled clients are always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.headers().contains_key(http::header::UPGRADE) {
            self.upgrades.request(req)
        } else {
            self.requests.request(req)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// TCP_NODELAY of this process's sockets connected to `port`.
    fn nodelay_of_sockets_to(port: u16) -> Vec<bool> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            if !is_socket {
                continue;
            }
            // SAFETY: borrowed for two getsockopt calls and handed back with
            // into_raw_fd, so the descriptor is never closed here.
            let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
            if stream.peer_addr().is_ok_and(|a| a.port() == port) {
                out.push(stream.nodelay().unwrap_or(false));
            }
            let _ = stream.into_raw_fd();
        }
        out
    }

    /// An API server on TLS that offers HTTP/2 and HTTP/1.1 by ALPN, as
    /// kube-apiserver does: `GET /version` answers with the HTTP version it
    /// came over; a WebSocket upgrade is accepted (HTTP/1.1 only) and its
    /// stream says the same.
    async fn alpn_api_server() -> (u16, Vec<u8>) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        let der = cert.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("key");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone().into()], key)
            .expect("server config");
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        |mut req: Request<hyper::body::Incoming>| async move {
                            let version = format!("{:?}", req.version());
                            let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
                                let body = format!(
                                    r#"{{"major":"1","minor":"37","gitVersion":"{version}"}}"#
                                );
                                return Ok::<_, std::convert::Infallible>(Response::new(
                                    http_body_util::Full::new(hyper::body::Bytes::from(body)),
                                ));
                            };
                            let protocol = req
                                .headers()
                                .get("sec-websocket-protocol")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.split(',').next())
                                .unwrap_or("")
                                .trim()
                                .to_string();
                            let on_upgrade = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                if let Ok(up) = on_upgrade.await {
                                    let mut io = TokioIo::new(up);
                                    // One unmasked binary frame: the version.
                                    let mut frame = vec![0x82, version.len() as u8];
                                    frame.extend_from_slice(version.as_bytes());
                                    let _ = io.write_all(&frame).await;
                                    let _ = io.flush().await;
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            });
                            let accept =
                                tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                                    key.as_bytes(),
                                );
                            let res = Response::builder()
                                .status(101)
                                .header("connection", "Upgrade")
                                .header("upgrade", "websocket")
                                .header("sec-websocket-accept", accept)
                                .header("sec-websocket-protocol", protocol)
                                .body(http_body_util::Full::new(hyper::body::Bytes::new()))
                                .expect("response");
                            Ok(res)
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        (port, der)
    }

    #[tokio::test]
    async fn requests_go_over_http2_and_upgrades_over_http1() {
        use futures::StreamExt;
        let (port, ca) = alpn_api_server().await;
        let mut config =
            kube::Config::new(format!("https://127.0.0.1:{port}").parse().expect("url"));
        config.root_cert = Some(vec![ca]);
        let client = client_builder(config).expect("builds").build();

        let version = client.apiserver_version().await.expect("GET /version");
        assert_eq!(version.git_version, "HTTP/2.0", "plain requests use HTTP/2");

        let req = Request::get("/api/v1/namespaces/ns/pods/p/portforward?ports=80")
            .body(Vec::new())
            .expect("request");
        let mut ws = client
            .connect(req)
            .await
            .expect("the upgrade succeeds over HTTP/1.1")
            .into_stream();
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("a frame")
            .expect("a valid frame");
        assert_eq!(msg.into_data().as_ref(), b"HTTP/1.1");
    }

    #[tokio::test]
    async fn connections_to_the_api_server_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // An API server that answers one request and keeps the connection.
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = r#"{"major":"1","minor":"37"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
            let _ = held_rx.await;
        });
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().expect("url"));
        let client = client_builder(config).expect("builds").build();
        client
            .apiserver_version()
            .await
            .expect("the fake answers /version");

        let sockets = nodelay_of_sockets_to(port);
        drop(held_tx);
        assert_eq!(sockets, [true], "one pooled connection, Nagle off");
    }
}
