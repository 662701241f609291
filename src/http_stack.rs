//! The HTTP stack under the kube [`kube::Client`]: kube-rs's default stack
//! (`ClientBuilder::try_from`) with TCP_NODELAY on every connection.
//!
//! kube-rs's connector leaves Nagle's algorithm on. Through a real API
//! server a small write that follows another not yet acknowledged one (the
//! TLS records of a port-forward tunnel, a request right after a handshake)
//! then waits for the peer's delayed ACK, about 40 ms: `per-pod` over 20
//! pods took 1.0 s instead of 0.42 s. Go's net package, and so kubectl and
//! the API server, turns Nagle off on every TCP connection.

use http::{Request, Response};
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
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let client: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, IntoRawFd};
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
