//! One scrape of one pod's metrics endpoint through the Kubernetes
//! port-forward API (as `per-pod` reaches pods: no Service, Ingress or
//! Prometheus needed): an HTTP/1.1 GET with `Connection: close`, the whole
//! answer read, bounded in time and size.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::probe::portforward::kube_message;

/// A metrics page larger than this is cut (a node exporter's is ~100 KiB).
const MAX_BODY: usize = 4 << 20;

/// The body of `GET path` on the pod's `port`, or why it could not be read.
pub async fn scrape(
    api: &Api<Pod>,
    pod: &str,
    port: u16,
    path: &str,
    limit: Duration,
) -> Result<String, String> {
    let what = format!("port-forward to pod/{pod} port {port}");
    let mut forwarder = match tokio::time::timeout(limit, api.portforward(pod, &[port])).await {
        Ok(Ok(pf)) => pf,
        Ok(Err(e)) => return Err(format!("{what} failed: {}", kube_message(&e))),
        Err(_) => return Err(format!("{what} got no answer within {}s", limit.as_secs())),
    };
    let (Some(mut stream), Some(error_rx)) =
        (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        forwarder.abort();
        return Err(format!("{what}: no stream for the port"));
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: kubectl-wsaffinity\r\n\
         Accept: text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5,*/*;q=0.1\r\n\
         Connection: close\r\n\r\n"
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut stream)
            .take(MAX_BODY as u64)
            .read_to_end(&mut buf)
            .await?;
        Ok::<_, std::io::Error>(buf)
    };
    let answer = tokio::select! {
        r = tokio::time::timeout(limit, exchange) => match r {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) => Err(format!("reading http://localhost:{port}{path} on pod/{pod}: {e}")),
            Err(_) => Err(format!("http://localhost:{port}{path} on pod/{pod} did not answer within {}s", limit.as_secs())),
        },
        Some(msg) = error_rx => Err(msg.trim().to_string()),
    };
    drop(stream);
    forwarder.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), forwarder.join()).await;
    let buf = answer?;
    if buf.is_empty() {
        return Err(format!(
            "nothing answered on port {port} of pod/{pod} (is that the metrics port? pass --metrics-port)"
        ));
    }
    body_of(&buf).map_err(|e| format!("GET {path} on port {port} of pod/{pod}: {e}"))
}

/// The body of an HTTP/1.x response, when its status is 200 (chunked bodies decoded).
pub fn body_of(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "not an HTTP response".to_string())?;
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/") {
        return Err(format!(
            "not an HTTP response: {:?}",
            status.chars().take(60).collect::<String>()
        ));
    }
    if code != "200" {
        return Err(format!("answered `{}`", status.trim()));
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("a cut chunked body")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "a bad chunk size".to_string())?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or("a cut chunked body")?;
        out.push_str(chunk);
        rest = after.get(size + 2..).ok_or("a cut chunked body")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies_and_errors() {
        assert_eq!(
            body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nm 1\n").unwrap(),
            "m 1\n"
        );
        assert_eq!(
            body_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nm 1\n\r\n2\r\nx \r\n0\r\n\r\n").unwrap(),
            "m 1\nx "
        );
        assert!(
            body_of(b"HTTP/1.1 404 Not Found\r\n\r\n")
                .unwrap_err()
                .contains("404 Not Found")
        );
        assert!(
            body_of(b"SSH-2.0-OpenSSH\r\n\r\n")
                .unwrap_err()
                .contains("not an HTTP response")
        );
    }
}
