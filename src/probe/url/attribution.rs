//! Which pod served a connection. In order: the hello message's `pod` field;
//! else the identity response header (`--identity-header`, default
//! `X-Pod-Name`); else the affinity cookie's value; else `unknown`.

pub use crate::snapshot::Attribution as AttributedBy;

/// The label used when nothing names the pod.
pub const UNKNOWN: &str = "unknown";

/// What one handshake revealed about the pod that served it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clues {
    /// The first text message, when it arrived in time.
    pub first_message: Option<String>,
    /// The identity header's value in the handshake response.
    pub identity_header: Option<String>,
    /// The affinity cookie's value: set by this response, else sent with the request.
    pub affinity_cookie: Option<String>,
}

/// The pod name and where it came from.
pub fn attribute(clues: &Clues) -> (String, AttributedBy) {
    if let Some(pod) = clues.first_message.as_deref().and_then(hello_pod) {
        return (pod, AttributedBy::Hello);
    }
    if let Some(h) = clues.identity_header.as_deref().map(str::trim)
        && !h.is_empty()
    {
        return (h.to_string(), AttributedBy::Header);
    }
    if let Some(c) = clues.affinity_cookie.as_deref().map(str::trim)
        && !c.is_empty()
    {
        return (c.to_string(), AttributedBy::Cookie);
    }
    (UNKNOWN.to_string(), AttributedBy::Unknown)
}

/// The `pod` of a hello message (`{"type":"hello","pod":...}`); a JSON object
/// without `type` but with a string `pod` counts too. Anything else: `None`.
pub fn hello_pod(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object()?;
    if let Some(t) = obj.get("type")
        && t.as_str() != Some("hello")
    {
        return None;
    }
    let pod = obj.get("pod")?.as_str()?.trim();
    if pod.is_empty() {
        return None;
    }
    Some(pod.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clues(msg: Option<&str>, header: Option<&str>, cookie: Option<&str>) -> Clues {
        Clues {
            first_message: msg.map(str::to_string),
            identity_header: header.map(str::to_string),
            affinity_cookie: cookie.map(str::to_string),
        }
    }

    #[test]
    fn order_hello_header_cookie_unknown() {
        let hello = r#"{"type":"hello","pod":"ws-0","namespace":"dev"}"#;
        assert_eq!(
            attribute(&clues(Some(hello), Some("hdr"), Some("ck"))),
            ("ws-0".to_string(), AttributedBy::Hello)
        );
        assert_eq!(
            attribute(&clues(Some("not json"), Some("hdr"), Some("ck"))),
            ("hdr".to_string(), AttributedBy::Header)
        );
        assert_eq!(
            attribute(&clues(None, None, Some("s1"))),
            ("s1".to_string(), AttributedBy::Cookie)
        );
        assert_eq!(
            attribute(&clues(None, Some("  "), Some(""))),
            ("unknown".to_string(), AttributedBy::Unknown)
        );
    }

    #[test]
    fn hello_shapes() {
        assert_eq!(hello_pod(r#"{"pod":"p"}"#).as_deref(), Some("p"));
        assert_eq!(hello_pod(r#"{"type":"echo","pod":"p"}"#), None);
        assert_eq!(hello_pod(r#"{"type":"hello","pod":""}"#), None);
        assert_eq!(hello_pod(r#"{"type":"hello","pod":3}"#), None);
        assert_eq!(hello_pod(r#"["hello"]"#), None);
        assert_eq!(hello_pod("hello"), None);
    }
}
