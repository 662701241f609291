//! `spread --emit artillery`: an Artillery scenario for its WebSocket engine.
//!
//! Artillery's `ws` engine opens exactly one WebSocket per virtual user, when
//! the scenario starts (the flow runs on that open connection), and keeps no
//! cookies. So K clients × M connections become K·M virtual users arriving
//! within one phase, as `spread --no-cookies` (with cookies on and M > 1,
//! [`warnings`] says so on stderr); each stays open until every connection
//! has arrived (plus `--hold`), as `spread` holds them.
//!
//! The hello's `pod` is captured where the server sends one, without failing
//! where it does not: the engine can only wait for a message with a fixed
//! timeout that fails the virtual user. So each virtual user first sends
//! [`PROBE`] and captures `$.pod` (not strictly) from the first message back:
//! the hello, which the server sends before any echo, else the echo of
//! [`PROBE`] itself, whose `pod` is `unknown`. The next `send` has no capture,
//! which stops the engine reading: otherwise the echo after a hello would
//! complete the capture step a second time and crash Artillery's worker
//! (`Callback was already called`).

use super::common::{host_header, not_carried, quote, resolve_for, secs_at_least, spread_line};
use crate::probe::url::UrlOptions;

/// Virtual users arriving per second of the phase.
const ARRIVALS_PER_SECOND: u64 = 50;

/// Sent first; an echo server returns it, so `$.pod` reads `unknown`.
pub const PROBE: &str = r#"{"type":"wsaffinity","pod":"unknown"}"#;

/// Sent second, with no capture: the engine stops reading messages.
const STOP_READING: &str = r#"{"type":"wsaffinity","step":"hold"}"#;

/// One-line warnings for stderr about what the scenario cannot reproduce:
/// cookie affinity between one client's connections.
pub fn warnings(opts: &UrlOptions) -> Vec<String> {
    let s = &opts.settings;
    if !s.cookies || s.connect < 2 {
        return Vec::new();
    }
    vec![format!(
        "--emit artillery: Artillery's ws engine keeps no cookies, so {} clients x {} connections become {} independent virtual users (`spread --no-cookies`) and cookie affinity is not exercised; `--emit k6` keeps each client's cookies",
        s.clients,
        s.connect,
        u64::from(s.clients) * u64::from(s.connect)
    )]
}

/// The Artillery YAML (`artillery run test.yml`).
pub fn scenario(opts: &UrlOptions) -> String {
    let total = u64::from(opts.settings.clients) * u64::from(opts.settings.connect);
    let duration = total.div_ceil(ARRIVALS_PER_SECOND).clamp(1, 60);
    // Everyone stays open until the last one has arrived, then for --hold.
    let think = duration + secs_at_least(opts.settings.hold, 0);
    let mut headers: Vec<(String, String)> = opts
        .settings
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let (target, servername) = match resolve_for(opts) {
        Some((_, addr)) => {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
            headers.push(("Host".to_string(), host_header(&opts.url)));
            let scheme = if opts.url.tls { "wss" } else { "ws" };
            (
                format!("{scheme}://{addr}{}", opts.url.path),
                opts.url.tls.then(|| opts.url.host.clone()),
            )
        }
        None => (opts.url.to_string(), None),
    };

    let mut y = String::new();
    y.push_str("# Artillery scenario written by `kubectl wsaffinity spread --emit artillery`:\n");
    y.push_str(&format!("#   {}\n", spread_line(opts)));
    y.push_str(&format!(
        "# {} clients x {} connections = {total} virtual users: Artillery's ws engine opens one\n",
        opts.settings.clients, opts.settings.connect
    ));
    y.push_str(
        "# WebSocket per virtual user. Each sends one message and captures the `pod` field of\n",
    );
    y.push_str(
        "# the first message back: the server's hello where it sends one, else the echo of the\n",
    );
    y.push_str(&format!(
        "# message (pod \"unknown\"). It logs it and stays open {think} s so that all connections\n"
    ));
    y.push_str("# are open together. A server that neither says hello nor answers fails with `response timeout`.\n");
    if let Some((entry, addr)) = resolve_for(opts) {
        y.push_str(&format!(
            "# --resolve {entry}: connects to {addr} and sends `Host: {}`{}.\n",
            host_header(&opts.url),
            if opts.url.tls {
                " (TLS server name and certificate check use the host)"
            } else {
                ""
            }
        ));
    }
    y.push_str(&not_carried(opts, "# Note: ", false));
    y.push_str("# Run:     npx artillery run test.yml\n");
    y.push_str(
        "# Per pod: npx artillery run test.yml | grep -o 'landed on pod .*' | sort | uniq -c\n",
    );
    y.push_str("config:\n");
    y.push_str(&format!("  target: {}\n", quote(&target)));
    y.push_str("  phases:\n");
    y.push_str(&format!(
        "    - name: {}\n",
        quote(&format!(
            "{total} connections ({} clients x {})",
            opts.settings.clients, opts.settings.connect
        ))
    ));
    y.push_str(&format!("      duration: {duration}\n"));
    y.push_str(&format!("      arrivalCount: {total}\n"));
    y.push_str("  ws:\n");
    y.push_str(&format!(
        "    handshakeTimeout: {}\n",
        opts.settings.timeout.as_millis().max(1)
    ));
    if let Some(name) = &servername {
        y.push_str(&format!("    servername: {}\n", quote(name)));
    }
    if !headers.is_empty() {
        y.push_str("    headers:\n");
        for (n, v) in &headers {
            y.push_str(&format!("      {}: {}\n", quote(n), quote(v)));
        }
    }
    if opts.settings.insecure {
        y.push_str("  tls:\n    rejectUnauthorized: false\n");
    }
    y.push_str("scenarios:\n");
    y.push_str("  - name: \"spread\"\n");
    y.push_str("    engine: ws\n");
    y.push_str("    flow:\n");
    y.push_str("      # The first message back: the hello {\"type\":\"hello\",\"pod\":...} where the server\n");
    y.push_str("      # sends one (it comes before any echo), else the echo of this payload.\n");
    y.push_str("      - send:\n");
    y.push_str(&format!("          payload: {}\n", quote(PROBE)));
    y.push_str("          capture:\n");
    y.push_str("            json: \"$.pod\"\n");
    y.push_str("            as: \"pod\"\n");
    y.push_str("            strict: false\n");
    y.push_str(
        "      # No capture: stops reading, so the echo after a hello is not read a second time.\n",
    );
    y.push_str(&format!("      - send: {}\n", quote(STOP_READING)));
    y.push_str("      - log: \"landed on pod {{ pod }}\"\n");
    y.push_str(&format!("      - think: {think}\n"));
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::url::{WsUrl, parse_header, parse_resolve};

    fn opts() -> UrlOptions {
        let mut o = UrlOptions::new(WsUrl::parse("ws://ws.example.com:8080/ws").expect("url"));
        o.settings.clients = 3;
        o.settings.connect = 2;
        o
    }

    #[test]
    fn phases_count_every_connection() {
        let y = scenario(&opts());
        assert!(
            y.contains("  target: \"ws://ws.example.com:8080/ws\"\n"),
            "{y}"
        );
        assert!(y.contains("      arrivalCount: 6\n"), "{y}");
        assert!(y.contains("      duration: 1\n"), "{y}");
        assert!(y.contains("engine: ws"), "{y}");
        assert!(y.contains("json: \"$.pod\""), "{y}");
        assert!(y.contains("            strict: false\n"), "{y}");
        assert!(!y.contains("headers:"), "{y}");
        assert!(y.contains("no cookies are kept"), "{y}");
    }

    #[test]
    fn the_probe_is_captured_then_reading_stops() {
        let y = scenario(&opts());
        let capture = y
            .find("      - send:\n          payload: ")
            .expect("probe step");
        let stop = y
            .find(&format!("      - send: {}\n", quote(STOP_READING)))
            .expect("stop-reading step");
        let log = y.find("      - log: ").expect("log step");
        assert!(capture < stop && stop < log, "{y}");
        assert!(y.contains(&format!("payload: {}\n", quote(PROBE))), "{y}");
        assert!(!y.contains("- wait:"), "{y}");
    }

    #[test]
    fn warns_when_cookie_affinity_is_lost() {
        let w = warnings(&opts());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("3 clients x 2 connections become 6"), "{w:?}");
        assert!(!w[0].contains('\n'), "{w:?}");
        let mut o = opts();
        o.settings.cookies = false;
        assert!(warnings(&o).is_empty());
        let mut o = opts();
        o.settings.connect = 1;
        assert!(warnings(&o).is_empty());
    }

    #[test]
    fn headers_resolve_and_insecure() {
        let mut o = opts();
        o.url = WsUrl::parse("wss://ws.example.com/ws").expect("url");
        o.settings.headers = vec![parse_header("Authorization: Bearer \"t\"").expect("header")];
        o.settings.resolve = vec![parse_resolve("ws.example.com:443:127.0.0.1").expect("resolve")];
        o.settings.insecure = true;
        let y = scenario(&o);
        assert!(y.contains("  target: \"wss://127.0.0.1:443/ws\"\n"), "{y}");
        assert!(
            y.contains("      \"authorization\": \"Bearer \\\"t\\\"\"\n"),
            "{y}"
        );
        assert!(y.contains("      \"Host\": \"ws.example.com\"\n"), "{y}");
        assert!(y.contains("    servername: \"ws.example.com\"\n"), "{y}");
        assert!(y.contains("  tls:\n    rejectUnauthorized: false\n"), "{y}");
        // Header values are not repeated in the comment.
        assert!(
            !y.lines()
                .any(|l| l.starts_with('#') && l.contains("Bearer"))
        );
    }
}
