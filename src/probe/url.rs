//! `spread`: K simulated clients open M WebSocket connections each through a
//! URL (usually the Ingress), and every connection is attributed to a pod.
//!
//! Each client is a browser-like process: its own cookie jar, connections
//! opened one after another (so a cookie set by the first handshake goes out
//! with the second), all of them held open until every client has opened
//! all of its connections — the balancer sees them at the same time — then
//! closed with a close frame. Clients run concurrently, at most
//! [`UrlOptions::parallel`] opening at once. Nothing here prints.

pub mod attribution;
pub mod cookies;
pub mod derive;
pub mod options;
pub mod parse;
pub mod summary;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::probe::cancel::Cancel;
use crate::snapshot::{Repin, UrlClient, UrlRun};

pub use attribution::{AttributedBy, Clues, attribute};
pub use cookies::CookieJar;
pub use options::{ClientSettings, UrlOptions};
pub use parse::{ParseError, ResolveEntry, WsUrl, parse_header, parse_resolve};

/// Affinity cookie names of common balancers, tried when none is given:
/// ingress-nginx, HAProxy (docs and ingress), Traefik, AWS ALB, GKE, Envoy/Istio.
pub const KNOWN_AFFINITY_COOKIES: [&str; 9] = [
    "INGRESSCOOKIE",
    "SERVERID",
    "SRV",
    "route",
    "_sticky",
    "AWSALB",
    "AWSALBCORS",
    "GCLB",
    "__ISTIO_AFFINITY",
];

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One client's outcome, with its still-open connections.
struct ClientOutcome {
    report: UrlClient,
    open: Vec<Ws>,
    cookie_name: Option<String>,
}

/// Runs the simulated clients and returns what each saw. Connection errors
/// are data (`failed`, `error`), never a panic or an early return.
pub async fn run_clients(opts: &UrlOptions) -> UrlRun {
    let (_never, cancel) = Cancel::new();
    run_clients_until(opts, &cancel).await
}

/// [`run_clients`], stopping early when `cancel` fires: no new connections
/// are opened, the hold ends, and every open connection still gets its close
/// frame, so an interrupted run leaves nothing open on the servers.
pub async fn run_clients_until(opts: &UrlOptions, cancel: &Cancel) -> UrlRun {
    let connector = if opts.url.tls {
        tls::client_config(opts.settings.insecure).map(Connector::Rustls)
    } else {
        Ok(Connector::Plain)
    };
    let mut run = UrlRun {
        url: opts.url.to_string(),
        clients: Vec::new(),
        cookies: opts.settings.cookies,
        connect: opts.settings.connect,
        resolve: opts
            .settings
            .resolve
            .iter()
            .map(ToString::to_string)
            .collect(),
        identity_header: opts.settings.identity_header.as_str().to_string(),
        affinity_cookie: opts.settings.affinity_cookie.clone(),
    };
    let connector = match connector {
        Ok(c) => c,
        Err(e) => {
            run.clients = (0..opts.settings.clients)
                .map(|i| UrlClient {
                    client: i + 1,
                    failed: opts.settings.connect,
                    error: Some(e.clone()),
                    ..UrlClient::default()
                })
                .collect();
            return run;
        }
    };

    let opts = Arc::new(opts.clone());
    let limit = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let mut set = JoinSet::new();
    for i in 0..opts.settings.clients {
        let opts = opts.clone();
        let limit = limit.clone();
        let connector = connector.clone();
        let cancel = cancel.clone();
        set.spawn(async move {
            // The semaphore is never closed; a failed acquire just runs unbounded.
            let _permit = limit.acquire_owned().await.ok();
            run_client(i, &opts, connector, &cancel).await
        });
    }

    let mut outcomes = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(o) => outcomes.push(o),
            Err(e) => outcomes.push(ClientOutcome {
                report: UrlClient {
                    client: 0,
                    failed: opts.settings.connect,
                    error: Some(format!("client task failed: {e}")),
                    ..UrlClient::default()
                },
                open: Vec::new(),
                cookie_name: None,
            }),
        }
    }
    outcomes.sort_by_key(|o| o.report.client);

    let mut open = Vec::new();
    for o in &mut outcomes {
        open.append(&mut o.open);
    }
    if !opts.settings.hold.is_zero() && !cancel.is_cancelled() {
        tokio::select! {
            _ = hold_all(&mut open, opts.settings.hold) => {}
            _ = cancel.cancelled() => {}
        }
    }
    close_all(open, opts.settings.timeout).await;

    if run.affinity_cookie.is_none() {
        run.affinity_cookie = outcomes.iter().find_map(|o| o.cookie_name.clone());
    }
    run.clients = outcomes.into_iter().map(|o| o.report).collect();
    run
}

/// Keeps every connection open for `hold`, reading so that the server's
/// keepalive pings are answered (a silent client would be cut).
async fn hold_all(open: &mut [Ws], hold: Duration) {
    let deadline = tokio::time::Instant::now() + hold;
    let reads = open.iter_mut().map(|ws| async move {
        let read = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout_at(deadline, read).await;
    });
    futures::future::join_all(reads).await;
}

/// Sends a close frame on every connection and waits (bounded) for the replies.
async fn close_all(open: Vec<Ws>, timeout: Duration) {
    let closes = open.into_iter().map(|mut ws| async move {
        let _ = tokio::time::timeout(timeout, async {
            if ws.close(None).await.is_err() {
                return;
            }
            // Read until the server's close frame (or the end of the stream).
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    });
    futures::future::join_all(closes).await;
}

async fn run_client(
    index: u32,
    opts: &UrlOptions,
    connector: Connector,
    cancel: &Cancel,
) -> ClientOutcome {
    let source = if opts.settings.source_ips.is_empty() {
        None
    } else {
        let n = opts.settings.source_ips.len();
        opts.settings.source_ips.get(index as usize % n).copied()
    };
    let mut outcome = ClientOutcome {
        report: UrlClient {
            client: index + 1,
            source_ip: source.map(|s| s.to_string()),
            ..UrlClient::default()
        },
        open: Vec::new(),
        cookie_name: None,
    };
    let mut jar = CookieJar::new();
    if opts.settings.cookies {
        let url = &opts.url;
        for (name, value) in &opts.settings.seed_cookies {
            jar.store(
                &format!("{name}={value}; Path=/"),
                &url.host,
                url.path_only(),
                SystemTime::now(),
            );
        }
    }
    for _ in 0..opts.settings.connect {
        let opened = tokio::select! {
            r = open_one(opts, &connector, source, &mut jar) => r,
            _ = cancel.cancelled() => break,
        };
        match opened {
            Ok(conn) => {
                if let Some((from, to)) = conn.repinned {
                    outcome.report.repins.push(Repin {
                        connection: outcome.report.pods.len() as u32 + 1,
                        from,
                        to,
                    });
                }
                if conn.cookie_value.is_some() {
                    outcome.report.affinity_cookie_value = conn.cookie_value;
                }
                outcome.report.pods.push(conn.pod);
                outcome.report.attributed_by.push(conn.by);
                if outcome.cookie_name.is_none() {
                    outcome.cookie_name = conn.cookie_name;
                }
                outcome.open.push(conn.ws);
            }
            Err(e) => {
                outcome.report.failed += 1;
                if outcome.report.error.is_none() {
                    outcome.report.error = Some(e);
                }
            }
        }
    }
    outcome
}

struct Opened {
    ws: Ws,
    pod: String,
    by: AttributedBy,
    cookie_name: Option<String>,
    cookie_value: Option<String>,
    /// (sent, set) when the proxy replaced the affinity cookie the client sent.
    repinned: Option<(String, String)>,
}

/// Opens one connection: TCP (bound to `source`), TLS, WebSocket handshake
/// with the jar's cookies, then waits briefly for the hello.
async fn open_one(
    opts: &UrlOptions,
    connector: &Connector,
    source: Option<IpAddr>,
    jar: &mut CookieJar,
) -> Result<Opened, String> {
    let url = &opts.url;
    let now = SystemTime::now();
    let sent_cookies = if opts.settings.cookies {
        jar.header_for(&url.host, url.path_only(), url.tls, now)
    } else {
        None
    };
    let request = build_request(opts, sent_cookies.as_deref())?;

    let handshake = async {
        let tcp = connect_tcp(opts, source).await?;
        tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            Some(ws_config()),
            Some(connector.clone()),
        )
        .await
        .map_err(|e| handshake_error(&opts.url, e))
    };
    let (mut ws, response) = tokio::time::timeout(opts.settings.timeout, handshake)
        .await
        .map_err(|_| {
            format!(
                "no WebSocket handshake with {} within {} s (raise --timeout?)",
                url,
                opts.settings.timeout.as_secs_f64()
            )
        })??;

    let set_cookies: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    if opts.settings.cookies {
        for sc in &set_cookies {
            jar.store(sc, &url.host, url.path_only(), now);
        }
    }
    let identity_header = response
        .headers()
        .get(&opts.settings.identity_header)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (cookie_name, cookie_value) = affinity_cookie(
        opts.settings.affinity_cookie.as_deref(),
        &set_cookies,
        sent_cookies.as_deref(),
    );
    let repinned = cookie_name
        .as_deref()
        .and_then(|name| replaced_cookie(name, sent_cookies.as_deref(), &set_cookies));

    let first_message = read_first_text(&mut ws, opts.hello_wait.min(opts.settings.timeout)).await;
    let (pod, by) = attribute(&Clues {
        first_message,
        identity_header,
        affinity_cookie: cookie_value.clone(),
    });
    Ok(Opened {
        ws,
        pod,
        by,
        cookie_name,
        cookie_value,
        repinned,
    })
}

/// Small buffers: many connections are held at once.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

fn build_request(
    opts: &UrlOptions,
    cookies: Option<&str>,
) -> Result<tungstenite::handshake::client::Request, String> {
    let mut request = opts
        .url
        .to_string()
        .into_client_request()
        .map_err(|e| format!("invalid URL {}: {e}", opts.url))?;
    let headers = request.headers_mut();
    for (name, value) in &opts.settings.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some(jar) = cookies {
        // One Cookie header, as RFC 6265 asks: the user's --header first.
        let combined = match headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
            Some(user) if !user.is_empty() => format!("{user}; {jar}"),
            _ => jar.to_string(),
        };
        let value = HeaderValue::from_str(&combined)
            .map_err(|_| format!("a cookie set by {} cannot be sent back", opts.url))?;
        headers.insert(header::COOKIE, value);
    }
    Ok(request)
}

/// The addresses to try for the URL's host: the `--resolve` entry, else DNS.
pub async fn target_addrs(opts: &UrlOptions) -> Result<Vec<SocketAddr>, String> {
    let url = &opts.url;
    if let Some(entry) = opts
        .settings
        .resolve
        .iter()
        .find(|r| r.matches(&url.host, url.port))
    {
        return Ok(entry.socket_addrs());
    }
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let lookup = tokio::net::lookup_host((url.host.as_str(), url.port));
    match tokio::time::timeout(opts.settings.timeout, lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("`{}` resolves to no address", url.host))
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(format!(
            "cannot resolve `{}`: {e} (use --resolve {}:{}:ADDR to test without DNS)",
            url.host, url.host, url.port
        )),
        Err(_) => Err(format!("resolving `{}` timed out", url.host)),
    }
}

async fn connect_tcp(opts: &UrlOptions, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let addrs = target_addrs(opts).await?;
    let mut last = String::new();
    let mut tried = 0;
    for addr in addrs {
        if source.is_some_and(|src| src.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        tried += 1;
        match connect_addr(addr, source).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    if tried == 0 {
        return Err(format!(
            "no address of `{}` has the family of --source-ip {}",
            opts.url.host,
            source.map(|s| s.to_string()).unwrap_or_default()
        ));
    }
    Err(last)
}

async fn connect_addr(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("cannot create a socket: {e}"))?;
    if let Some(src) = source {
        socket.bind(SocketAddr::new(src, 0)).map_err(|e| {
            format!(
                "cannot bind to --source-ip {src}: {e} (is the address configured on this machine?)"
            )
        })?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    // Handshakes are tiny; do not let Nagle delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn handshake_error(url: &WsUrl, e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status();
            format!(
                "{url} answered HTTP {} {} instead of upgrading to WebSocket",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string()
        }
        tungstenite::Error::Tls(t) => format!(
            "TLS handshake with {url} failed: {t}{}",
            if url.tls {
                " (for a self-signed certificate pass --insecure)"
            } else {
                ""
            }
        ),
        other => {
            let text = other.to_string();
            // tokio-rustls reports certificate problems as I/O errors.
            let hint = if url.tls && text.contains("certificate") {
                " (for a self-signed certificate pass --insecure)"
            } else {
                ""
            };
            format!("WebSocket handshake with {url} failed: {text}{hint}")
        }
    }
}

/// Waits up to `wait` for the first text message, skipping pings and pongs.
async fn read_first_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    let read = async {
        // Bounded: a handful of control frames at most before giving up.
        for _ in 0..8 {
            match ws.next().await? {
                Ok(Message::Text(t)) => return Some(t.as_str().to_string()),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            }
        }
        None
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

/// `(sent, set)` when the response sets cookie `name` to another value than
/// the request sent: the proxy pinned the client again.
pub fn replaced_cookie(
    name: &str,
    sent: Option<&str>,
    set_cookies: &[String],
) -> Option<(String, String)> {
    let sent = sent?
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().to_string())?;
    let set = set_cookies.iter().find_map(|sc| {
        let (n, v) = sc.split(';').next()?.split_once('=')?;
        (n.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })?;
    (sent != set).then_some((sent, set))
}

/// The affinity cookie's name and value for one connection: a cookie set by
/// this response, else one sent with the request. With `name` given only that
/// cookie counts; otherwise a known balancer cookie, else the only cookie.
pub fn affinity_cookie(
    name: Option<&str>,
    set_cookies: &[String],
    sent: Option<&str>,
) -> (Option<String>, Option<String>) {
    let set: Vec<(String, String)> = set_cookies
        .iter()
        .filter_map(|sc| {
            let first = sc.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            Some((n.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .filter(|(n, _)| !n.is_empty())
        .collect();
    let sent: Vec<(String, String)> = sent
        .unwrap_or("")
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .filter(|(n, _)| !n.is_empty())
        .collect();
    for pairs in [&set, &sent] {
        let pick = match name {
            Some(name) => pairs.iter().find(|(n, _)| n == name),
            None => pairs
                .iter()
                .find(|(n, _)| {
                    KNOWN_AFFINITY_COOKIES
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(n))
                })
                .or(if pairs.len() == 1 {
                    pairs.first()
                } else {
                    None
                }),
        };
        if let Some((n, v)) = pick {
            return (Some(n.clone()), Some(v.clone()));
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_cookie_the_proxy_replaces_is_a_repin() {
        let set = s(&["_49ac9=e7d579bb1f6d0408; Path=/; HttpOnly"]);
        assert_eq!(
            replaced_cookie("_49ac9", Some("a=1; _49ac9=17ebd1d5c2ef67ac"), &set),
            Some(("17ebd1d5c2ef67ac".into(), "e7d579bb1f6d0408".into()))
        );
        // Set again with the same value, first set, or another cookie: no repin.
        let same = s(&["_49ac9=17ebd1d5c2ef67ac; Path=/"]);
        assert_eq!(
            replaced_cookie("_49ac9", Some("_49ac9=17ebd1d5c2ef67ac"), &same),
            None
        );
        assert_eq!(replaced_cookie("_49ac9", None, &set), None);
        assert_eq!(replaced_cookie("other", Some("other=1"), &set), None);
    }

    #[test]
    fn affinity_cookie_from_response_then_request() {
        assert_eq!(
            affinity_cookie(None, &s(&["SERVERID=s2; path=/"]), None),
            (Some("SERVERID".into()), Some("s2".into()))
        );
        // Known name wins among several.
        assert_eq!(
            affinity_cookie(None, &s(&["a=1", "INGRESSCOOKIE=abc|def; Path=/"]), None),
            (Some("INGRESSCOOKIE".into()), Some("abc|def".into()))
        );
        // Several unknown cookies: none is guessed.
        assert_eq!(
            affinity_cookie(None, &s(&["a=1", "b=2"]), None),
            (None, None)
        );
        // Nothing set (HAProxy `indirect`): the cookie sent counts.
        assert_eq!(
            affinity_cookie(None, &[], Some("SERVERID=s1; other=x")),
            (Some("SERVERID".into()), Some("s1".into()))
        );
        // A given name only matches that name.
        assert_eq!(
            affinity_cookie(Some("route"), &s(&["SERVERID=s1"]), Some("route=r9")),
            (Some("route".into()), Some("r9".into()))
        );
        assert_eq!(
            affinity_cookie(Some("route"), &s(&["SERVERID=s1"]), None),
            (None, None)
        );
    }

    #[test]
    fn request_carries_headers_and_one_cookie_header() {
        let mut opts = UrlOptions::new(WsUrl::parse("ws://h.example.com:8080/ws").unwrap());
        opts.settings
            .headers
            .push(parse_header("Cookie: user=1").unwrap());
        opts.settings
            .headers
            .push(parse_header("X-Test: a").unwrap());
        let req = build_request(&opts, Some("SERVERID=s1")).unwrap();
        let cookies: Vec<_> = req.headers().get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1);
        assert_eq!(cookies[0], "user=1; SERVERID=s1");
        assert_eq!(req.headers()["x-test"], "a");
        assert_eq!(req.headers()[header::HOST], "h.example.com:8080");
    }

    #[tokio::test]
    async fn resolve_override_wins_over_dns() {
        let mut opts =
            UrlOptions::new(WsUrl::parse("ws://websocket-dev.example.com:8081/").unwrap());
        opts.settings
            .resolve
            .push(parse_resolve("websocket-dev.example.com:8081:127.0.0.9").unwrap());
        assert_eq!(
            target_addrs(&opts).await.unwrap(),
            vec!["127.0.0.9:8081".parse::<SocketAddr>().unwrap()]
        );
    }
}
