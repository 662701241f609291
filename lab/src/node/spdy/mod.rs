//! SPDY/3.1 for the kubelet API's `/portForward`: what the API server speaks
//! to a node for `kubectl port-forward` (it tunnels kubectl's WebSocket or
//! SPDY into SPDY/3.1 toward the kubelet). The upgrade handshake is
//! `httpstream.Handshake` plus `spdy.NewResponseUpgrader` from
//! `k8s.io/apimachinery`; framing is in `frame`, the session in `portforward`.

pub mod frame;
pub mod portforward;

use http::HeaderMap;

pub const UPGRADE_SPDY_31: &str = "SPDY/3.1";
pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
pub const ACCEPTED_HEADER: &str = "X-Accepted-Stream-Protocol-Versions";
/// The only port-forward protocol the kubelet serves over SPDY.
pub const PORT_FORWARD_V1: &str = "portforward.k8s.io";

/// True when the request asks to upgrade to SPDY/3.1 (`Connection: Upgrade`
/// and `Upgrade: SPDY/3.1`, case-insensitive, as `UpgradeResponse` checks).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, want: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains(&want.to_ascii_lowercase()))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, UPGRADE_SPDY_31)
}

/// `httpstream.Handshake`: the first protocol the client offers that we serve.
/// `Err((status, message))` is the refusal.
pub fn negotiate(headers: &HeaderMap) -> Result<&'static str, (http::StatusCode, String)> {
    let offered: Vec<String> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Err((
            http::StatusCode::BAD_REQUEST,
            format!("unable to upgrade: {PROTOCOL_HEADER} is required"),
        ));
    }
    if offered.iter().any(|p| p == PORT_FORWARD_V1) {
        return Ok(PORT_FORWARD_V1);
    }
    Err((
        http::StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [\"{PORT_FORWARD_V1}\"]"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn spdy_upgrade_is_recognised_and_websocket_is_not() {
        assert!(is_upgrade(&headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1")
        ])));
        assert!(!is_upgrade(&headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket")
        ])));
    }

    #[test]
    fn handshake_picks_portforward_or_refuses() {
        let ok = headers(&[(PROTOCOL_HEADER_LC, "portforward.k8s.io")]);
        assert_eq!(negotiate(&ok), Ok(PORT_FORWARD_V1));
        let missing = headers(&[]);
        assert_eq!(
            negotiate(&missing).map_err(|e| e.0),
            Err(http::StatusCode::BAD_REQUEST)
        );
        let other = headers(&[(PROTOCOL_HEADER_LC, "v4.channel.k8s.io")]);
        assert_eq!(
            negotiate(&other).map_err(|e| e.0),
            Err(http::StatusCode::FORBIDDEN)
        );
    }

    const PROTOCOL_HEADER_LC: &str = "x-stream-protocol-version";
}
