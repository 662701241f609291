//! What the simulated clients do: the settings `spread` validates and the
//! engine (`url.rs`) and the emitters (`emit/`) read.

use std::net::IpAddr;
use std::time::Duration;

use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::parse::{ResolveEntry, WsUrl};

/// What a simulated client does, as the user set it: one owner for the
/// settings that `spread` takes and the engine and the emitters read.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Simulated clients (K), each with its own cookie jar.
    pub clients: u32,
    /// Connections per client (M).
    pub connect: u32,
    pub resolve: Vec<ResolveEntry>,
    pub insecure: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Local addresses to bind, one per client, round-robin.
    pub source_ips: Vec<IpAddr>,
    pub identity_header: HeaderName,
    /// The affinity cookie's name; `None`: detect it from the responses.
    pub affinity_cookie: Option<String>,
    /// `false` with `--no-cookies`: no cookie is ever sent.
    pub cookies: bool,
    /// `--cookie NAME=VALUE`: in every client's jar before its first connection.
    pub seed_cookies: Vec<(String, String)>,
    /// Bound on TCP connect + TLS + WebSocket handshake, per connection.
    pub timeout: Duration,
    /// How long to keep everything open once all connections are up.
    pub hold: Duration,
}

impl Default for ClientSettings {
    /// Defaults of the CLI: 5 clients × 4 connections, 10 s timeout.
    fn default() -> Self {
        ClientSettings {
            clients: 5,
            connect: 4,
            resolve: Vec::new(),
            insecure: false,
            headers: Vec::new(),
            source_ips: Vec::new(),
            identity_header: HeaderName::from_static("x-pod-name"),
            affinity_cookie: None,
            cookies: true,
            seed_cookies: Vec::new(),
            timeout: Duration::from_secs(10),
            hold: Duration::ZERO,
        }
    }
}

/// Validated options; nothing past the CLI sees flags.
#[derive(Clone, Debug)]
pub struct UrlOptions {
    pub url: WsUrl,
    pub settings: ClientSettings,
    /// How long to wait for a hello message after the handshake.
    pub hello_wait: Duration,
    /// Clients opening connections at the same time.
    pub parallel: usize,
}

impl UrlOptions {
    /// The CLI's defaults ([`ClientSettings::default`]) for `url`.
    pub fn new(url: WsUrl) -> Self {
        UrlOptions::with_settings(url, ClientSettings::default())
    }

    /// `settings` for `url`; the hello wait is at most the timeout.
    pub fn with_settings(url: WsUrl, settings: ClientSettings) -> Self {
        UrlOptions {
            url,
            hello_wait: settings.timeout.min(Duration::from_millis(1500)),
            settings,
            parallel: 32,
        }
    }
}
