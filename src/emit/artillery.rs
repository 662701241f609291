//! `spread --emit artillery`: an Artillery scenario for its WebSocket engine.
//!
//! Artillery's `ws` engine opens exactly one WebSocket per virtual user, when
//! the scenario starts (the flow runs on that open connection), and keeps no
//! cookies. So K clients × M connections become K·M virtual users arriving
//! within one phase; each waits for the server's hello, captures its `pod`
//! field, logs it, and stays open until every connection has arrived (plus
//! `--hold`), as `spread` holds them.

use super::{host_header, not_carried, quote, resolve_for, secs_at_least, spread_line};
use crate::probe::url::UrlOptions;

/// Virtual users arriving per second of the phase.
const ARRIVALS_PER_SECOND: u64 = 50;

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
        "# WebSocket per virtual user. Each waits for the server's hello, captures its `pod`\n",
    );
    y.push_str(&format!(
        "# field, logs it and stays open {think} s so that all connections are open together.\n"
    ));
    y.push_str("# A server that sends no JSON hello fails the capture: remove the `wait` and `log` steps.\n");
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
    y.push_str("      # The hello: {\"type\":\"hello\",\"pod\":...} (the companion server sends it on connect).\n");
    y.push_str("      - wait:\n");
    y.push_str("          capture:\n");
    y.push_str("            json: \"$.pod\"\n");
    y.push_str("            as: \"pod\"\n");
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
        assert!(!y.contains("headers:"), "{y}");
        assert!(y.contains("no cookies are kept"), "{y}");
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
