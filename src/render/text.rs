//! Text output: Verdict, Service, Endpoints, Routes, Paths, Findings.
//!
//! Layout only: every word that carries meaning comes from the [`Report`].

use std::io::{self, Write};

use owo_colors::{OwoColorize, Style as Paint};

use crate::render::table::{WIDTH, table, table_fit, wrap};
use crate::report::{EndpointRow, Finding, PathRow, Report, RouteRow, ServiceSummary, Severity};
use crate::snapshot::{SkipReason, Skipped};

const INDENT: &str = "  ";

#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// `-o wide`: more columns and evidence.
    pub wide: bool,
    pub color: bool,
    /// List routing kinds that were skipped (404/403): with `-v`.
    pub show_skipped: bool,
}

/// Writes the whole report.
pub fn write(out: &mut dyn Write, report: &Report, opts: &TextOptions) -> io::Result<()> {
    let mut s = String::new();
    verdict(&mut s, report, opts);
    if let Some(svc) = &report.service {
        service(&mut s, &report.namespace, svc, opts);
        endpoints(&mut s, &report.endpoints, opts);
        routes(&mut s, &report.routes, &report.skipped, opts);
        paths(&mut s, &report.paths, opts);
    }
    findings(&mut s, &report.findings, opts);
    if opts.show_skipped && !report.skipped.is_empty() {
        skipped(&mut s, &report.skipped, opts);
    }
    out.write_all(s.as_bytes())
}

pub(crate) fn paint(text: &str, style: Paint, color: bool) -> String {
    if color {
        text.style(style).to_string()
    } else {
        text.to_string()
    }
}

fn heading(s: &mut String, title: &str, note: &str, opts: &TextOptions) {
    if !s.is_empty() {
        s.push('\n');
    }
    s.push_str(&paint(title, Paint::new().bold(), opts.color));
    if !note.is_empty() {
        s.push_str("  ");
        s.push_str(note);
    }
    s.push('\n');
}

fn verdict(s: &mut String, report: &Report, opts: &TextOptions) {
    heading(s, "Verdict", "", opts);
    let text = if report.verdict.is_empty() {
        "(no verdict)"
    } else {
        report.verdict.as_str()
    };
    for line in wrap(text, WIDTH - INDENT.len()) {
        s.push_str(INDENT);
        s.push_str(&paint(&line, Paint::new().bold(), opts.color));
        s.push('\n');
    }
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

fn service(s: &mut String, namespace: &str, svc: &ServiceSummary, opts: &TextOptions) {
    heading(s, "Service", &format!("{namespace}/{}", svc.name), opts);
    let affinity = match svc.timeout_seconds {
        Some(t) if svc.session_affinity == "ClientIP" => {
            format!("{} (timeout {t} s)", svc.session_affinity)
        }
        _ => svc.session_affinity.clone(),
    };
    let mut fields = vec![
        ("type", svc.type_.clone()),
        ("sessionAffinity", affinity),
        (
            "externalTrafficPolicy",
            or_dash(svc.external_traffic_policy.as_deref()).to_string(),
        ),
    ];
    if opts.wide {
        fields.push(("clusterIP", or_dash(svc.cluster_ip.as_deref()).to_string()));
        fields.push((
            "internalTrafficPolicy",
            or_dash(svc.internal_traffic_policy.as_deref()).to_string(),
        ));
        fields.push((
            "trafficDistribution",
            or_dash(svc.traffic_distribution.as_deref()).to_string(),
        ));
    }
    for (k, v) in fields {
        s.push_str(&format!("{INDENT}{k:<22} {v}\n"));
    }
    let ports: Vec<String> = svc
        .ports
        .iter()
        .map(|p| {
            let name = p
                .name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default();
            let container = match p.container_port {
                Some(c) if c.to_string() != p.target_port => format!(" (containerPort {c})"),
                _ => String::new(),
            };
            let node = p
                .node_port
                .map(|n| format!(", nodePort {n}"))
                .unwrap_or_default();
            format!(
                "{name}{}/{} -> targetPort {}{container}{node}",
                p.port, p.protocol, p.target_port
            )
        })
        .collect();
    let ports = if ports.is_empty() {
        "-".to_string()
    } else {
        ports.join("; ")
    };
    s.push_str(&format!("{INDENT}{:<22} {ports}\n", "ports"));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn endpoints(s: &mut String, rows: &[EndpointRow], opts: &TextOptions) {
    let ready = rows.iter().filter(|r| r.ready).count();
    heading(
        s,
        "Endpoints",
        &format!("{ready} ready of {}", rows.len()),
        opts,
    );
    if rows.is_empty() {
        s.push_str(&format!(
            "{INDENT}none: no EndpointSlice lists an address for this Service\n"
        ));
        return;
    }
    let mut header = vec!["POD", "NODE", "IP", "READY"];
    if opts.wide {
        header.extend(["ZONE", "SERVING", "TERMINATING"]);
    }
    let body = rows.iter().map(|r| {
        let mut row = vec![
            or_dash(r.pod.as_deref()).to_string(),
            or_dash(r.node.as_deref()).to_string(),
            r.ip.clone(),
            yes_no(r.ready).to_string(),
        ];
        if opts.wide {
            row.extend([
                or_dash(r.zone.as_deref()).to_string(),
                yes_no(r.serving).to_string(),
                yes_no(r.terminating).to_string(),
            ]);
        }
        row
    });
    table(s, &header, body, INDENT);
}

fn routes(s: &mut String, rows: &[RouteRow], skipped: &[Skipped], opts: &TextOptions) {
    heading(s, "Routes", "", opts);
    // A kind that could not be read may hide a route: never claim "none" then.
    let forbidden: Vec<&str> = skipped
        .iter()
        .filter(|k| k.reason == SkipReason::Forbidden)
        .map(|k| k.resource.as_str())
        .collect();
    if rows.is_empty() {
        if forbidden.is_empty() {
            s.push_str(&format!(
                "{INDENT}none: no Ingress or route points at this Service\n"
            ));
        } else {
            s.push_str(&format!(
                "{INDENT}none found, but {} could not be read (forbidden, see WSA037)\n",
                forbidden.join(", ")
            ));
        }
        return;
    }
    let mut header = vec!["KIND", "NAME", "CONTROLLER", "HOSTS", "AFFINITY"];
    if opts.wide {
        header.push("TIMEOUTS");
    }
    let body = rows.iter().map(|r| {
        let hosts = if r.hosts.is_empty() {
            "*".to_string()
        } else {
            r.hosts.join(",")
        };
        let mut row = vec![
            r.kind.clone(),
            r.name.clone(),
            r.controller.clone(),
            hosts,
            r.affinity.clone(),
        ];
        if opts.wide {
            row.push(if r.timeouts.is_empty() {
                "-".to_string()
            } else {
                r.timeouts.join(" ")
            });
        }
        row
    });
    // HOSTS and AFFINITY wrap; in wide mode nothing does.
    table_fit(s, &header, body, &[3, 4], INDENT, opts.wide);
}

fn paths(s: &mut String, rows: &[PathRow], opts: &TextOptions) {
    heading(s, "Paths", "where a new connection lands", opts);
    if rows.is_empty() {
        s.push_str(&format!("{INDENT}none\n"));
        return;
    }
    let header = ["PATH", "PODS", "DECIDED BY", "ONE CLIENT SEES"];
    let body = rows.iter().map(|r| {
        vec![
            r.path.clone(),
            r.pods_reachable.to_string(),
            r.decided_by.clone(),
            r.one_client_sees.clone(),
        ]
    });
    // PATH, DECIDED BY and ONE CLIENT SEES wrap; PODS stays one number.
    table_fit(s, &header, body, &[0, 2, 3], INDENT, opts.wide);
}

fn severity_word(sev: Severity) -> &'static str {
    match sev {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn severity_paint(sev: Severity) -> Paint {
    match sev {
        Severity::Error => Paint::new().red().bold(),
        Severity::Warning => Paint::new().yellow().bold(),
        Severity::Info => Paint::new().cyan(),
    }
}

fn findings(s: &mut String, list: &[Finding], opts: &TextOptions) {
    let count = |sev| list.iter().filter(|f| f.severity == sev).count();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let note = format!(
        "{}, {}, {} note",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        count(Severity::Info)
    );
    let note = if count(Severity::Info) == 1 {
        note
    } else {
        format!("{note}s")
    };
    heading(s, "Findings", &note, opts);
    if list.is_empty() {
        s.push_str(&format!("{INDENT}none\n"));
        return;
    }
    finding_list(s, list, opts.color, opts.wide);
}

/// Findings one after another, a blank line between: severity, code and
/// title, then the wrapped detail, the evidence when `wide`, and the fix.
pub(crate) fn finding_list(s: &mut String, list: &[Finding], color: bool, wide: bool) {
    let body_indent = "    ";
    let width = WIDTH - body_indent.len();
    for (i, f) in list.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let sev = severity_word(f.severity);
        let sev = paint(&format!("{sev:<7}"), severity_paint(f.severity), color);
        let code = paint(f.code, Paint::new().bold(), color);
        s.push_str(&format!("{INDENT}{sev} {code}  {}\n", f.title));
        for para in f.detail.split('\n') {
            for line in wrap(para, width) {
                s.push_str(body_indent);
                s.push_str(&line);
                s.push('\n');
            }
        }
        if wide && !f.evidence.is_empty() {
            for e in &f.evidence {
                for (j, line) in wrap(e, width - 12).into_iter().enumerate() {
                    let label = if j == 0 { "evidence: " } else { "          " };
                    s.push_str(&format!("{body_indent}{label}{line}\n"));
                }
            }
        }
        for (j, line) in wrap(&f.fix, width - 5).into_iter().enumerate() {
            let label = if j == 0 {
                paint("fix:", Paint::new().green(), color)
            } else {
                "    ".to_string()
            };
            s.push_str(&format!("{body_indent}{label} {line}\n"));
        }
    }
}

fn skipped(s: &mut String, list: &[Skipped], opts: &TextOptions) {
    heading(s, "Skipped", "routing kinds that were not read", opts);
    let body = list.iter().map(|k| {
        let reason = match k.reason {
            SkipReason::NotInstalled => "not installed (404)",
            SkipReason::Forbidden => "forbidden (403)",
        };
        vec![k.resource.clone(), reason.to_string(), k.message.clone()]
    });
    table_fit(
        s,
        &["RESOURCE", "REASON", "MESSAGE"],
        body,
        &[2],
        INDENT,
        opts.wide,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{PathRow, PortRow, RouteRow};

    fn sample() -> Report {
        Report {
            namespace: "dev".into(),
            service: Some(ServiceSummary {
                name: "web".into(),
                type_: "ClusterIP".into(),
                session_affinity: "ClientIP".into(),
                timeout_seconds: Some(10800),
                ports: vec![PortRow {
                    name: Some("ws".into()),
                    port: 80,
                    target_port: "ws".into(),
                    container_port: Some(8080),
                    node_port: None,
                    protocol: "TCP".into(),
                }],
                ..Default::default()
            }),
            endpoints: vec![EndpointRow {
                pod: Some("web-0".into()),
                ip: "10.0.0.1".into(),
                node: Some("n1".into()),
                ready: true,
                serving: true,
                ..Default::default()
            }],
            routes: vec![RouteRow {
                kind: "Ingress".into(),
                name: "web".into(),
                controller: "ingress-nginx".into(),
                hosts: vec!["ws.example.com".into()],
                affinity: "cookie".into(),
                timeouts: vec!["proxy-read-timeout=3600s".into()],
            }],
            findings: vec![Finding {
                code: "WSA010",
                severity: Severity::Info,
                title: "ClientIP affinity".into(),
                detail: "one client IP, one pod".into(),
                evidence: vec!["service/web spec.sessionAffinity=ClientIP".into()],
                fix: "none needed".into(),
            }],
            verdict: "Correct for production.".into(),
            ..Default::default()
        }
    }

    fn render(r: &Report, opts: TextOptions) -> String {
        let mut out = Vec::new();
        write(&mut out, r, &opts).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn plain_text_has_every_section_and_no_escape_codes() {
        let text = render(&sample(), TextOptions::default());
        for section in [
            "Verdict",
            "Service  dev/web",
            "Endpoints  1 ready of 1",
            "Routes",
            "Paths",
            "Findings",
        ] {
            assert!(text.contains(section), "{section} missing:\n{text}");
        }
        assert!(text.contains("web-0"), "{text}");
        assert!(
            text.contains("ws 80/TCP -> targetPort ws (containerPort 8080)"),
            "{text}"
        );
        assert!(text.contains("info    WSA010  ClientIP affinity"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            !text.contains("evidence:"),
            "evidence is for -o wide:\n{text}"
        );
        assert!(
            text.lines().all(|l| l == l.trim_end()),
            "trailing spaces:\n{text}"
        );
    }

    #[test]
    fn no_routes_is_none_only_when_every_kind_was_read() {
        let mut r = sample();
        r.routes.clear();
        let text = render(&r, TextOptions::default());
        assert!(
            text.contains("none: no Ingress or route points at this Service"),
            "{text}"
        );
        r.skipped = vec![
            Skipped {
                resource: "ingresses.networking.k8s.io".into(),
                reason: SkipReason::Forbidden,
                message: "forbidden".into(),
            },
            Skipped {
                resource: "httproutes.gateway.networking.k8s.io".into(),
                reason: SkipReason::NotInstalled,
                message: "not found".into(),
            },
        ];
        let text = render(&r, TextOptions::default());
        assert!(!text.contains("none: no Ingress"), "{text}");
        assert!(
            text.contains(
                "none found, but ingresses.networking.k8s.io could not be read (forbidden, see WSA037)"
            ),
            "{text}"
        );
    }

    #[test]
    fn wide_adds_columns_and_evidence() {
        let text = render(
            &sample(),
            TextOptions {
                wide: true,
                ..Default::default()
            },
        );
        assert!(text.contains("TERMINATING"), "{text}");
        assert!(text.contains("TIMEOUTS"), "{text}");
        assert!(text.contains("proxy-read-timeout=3600s"), "{text}");
        assert!(text.contains("evidence: service/web"), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let text = render(
            &sample(),
            TextOptions {
                color: true,
                ..Default::default()
            },
        );
        assert!(text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn missing_service_prints_findings_only() {
        let r = Report {
            verdict: "v".into(),
            ..Default::default()
        };
        let text = render(&r, TextOptions::default());
        assert!(!text.contains("Endpoints"), "{text}");
        assert!(
            text.contains("Findings  0 errors, 0 warnings, 0 notes"),
            "{text}"
        );
    }

    fn long_paths() -> Report {
        let mut r = sample();
        r.paths = vec![
            PathRow {
                path: "kubectl port-forward svc/a-rather-long-service-name-for-the-test".into(),
                pods_reachable: 1,
                decided_by: "kubectl: the first ready pod, chosen once when the forward \
                             starts and kept until it stops"
                    .into(),
                one_client_sees: "every connection on that one pod, whatever the number of \
                                  clients behind the forward"
                    .into(),
            },
            PathRow {
                path: "ClusterIP 10.96.172.131:8080".into(),
                pods_reachable: 12,
                decided_by: "kube-proxy, per connection, ClientIP affinity for 10800 s".into(),
                one_client_sees: "all its connections on one pod for 10800 s after its last one"
                    .into(),
            },
            PathRow {
                path: "Ingress web (ws.example.com)".into(),
                pods_reachable: 12,
                decided_by: "ingress-nginx cookie ws-affinity".into(),
                one_client_sees: "one cookie jar on one pod; separate clients spread".into(),
            },
        ];
        r.routes[0].affinity =
            "cookie ws-affinity max-age=10800 mode=balanced path=/ samesite=Lax secure".into();
        r.routes[0].hosts = vec![
            "ws.example.com".into(),
            "ws-eu.example.com".into(),
            "ws-us.example.com".into(),
        ];
        r
    }

    /// The lines under one section's heading, up to the next heading.
    fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.starts_with(title))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect::<Vec<_>>();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        assert!(!lines.is_empty(), "{title} missing:\n{text}");
        lines
    }

    /// Each column's text read down the table (header line first), split
    /// into words: what a reader sees in that column.
    fn column_words(lines: &[&str], header: &[&str]) -> Vec<Vec<String>> {
        let starts: Vec<usize> = header
            .iter()
            .map(|h| lines[0].find(h).expect("header"))
            .collect();
        (0..header.len())
            .map(|c| {
                lines[1..]
                    .iter()
                    .flat_map(|l| {
                        let chars: Vec<char> = l.chars().collect();
                        let from = starts[c].min(chars.len());
                        let to = starts
                            .get(c + 1)
                            .map_or(chars.len(), |&e| e.min(chars.len()));
                        chars[from..to]
                            .iter()
                            .collect::<String>()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .collect()
    }

    fn words(cells: impl Iterator<Item = String>) -> Vec<String> {
        cells
            .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn long_paths_wrap_to_the_width_in_their_columns() {
        let r = long_paths();
        let text = render(&r, TextOptions::default());
        let too_long: Vec<&str> = text.lines().filter(|l| l.chars().count() > WIDTH).collect();
        assert!(
            too_long.is_empty(),
            "lines over {WIDTH}: {too_long:#?}\n{text}"
        );

        let paths = section(&text, "Paths");
        let header = ["PATH", "PODS", "DECIDED BY", "ONE CLIENT SEES"];
        let got = column_words(&paths, &header);
        let want = [
            words(r.paths.iter().map(|p| p.path.clone())),
            words(r.paths.iter().map(|p| p.pods_reachable.to_string())),
            words(r.paths.iter().map(|p| p.decided_by.clone())),
            words(r.paths.iter().map(|p| p.one_client_sees.clone())),
        ];
        for (c, h) in header.iter().enumerate() {
            assert_eq!(got[c], want[c], "column {h}:\n{text}");
        }
        assert!(paths.len() > 1 + r.paths.len(), "nothing wrapped:\n{text}");

        let routes = section(&text, "Routes");
        let header = ["KIND", "NAME", "CONTROLLER", "HOSTS", "AFFINITY"];
        let got = column_words(&routes, &header);
        assert_eq!(
            got[4],
            words(std::iter::once(r.routes[0].affinity.clone())),
            "{text}"
        );
        // Hosts are broken after a comma, never inside a name.
        assert_eq!(
            got[3].concat(),
            "ws.example.com,ws-eu.example.com,ws-us.example.com",
            "{text}"
        );
    }

    #[test]
    fn wide_keeps_one_line_per_row() {
        let r = long_paths();
        let text = render(
            &r,
            TextOptions {
                wide: true,
                ..Default::default()
            },
        );
        let paths = section(&text, "Paths");
        assert_eq!(paths.len(), 1 + r.paths.len(), "{text}");
        for (line, p) in paths[1..].iter().zip(&r.paths) {
            for cell in [&p.path, &p.decided_by, &p.one_client_sees] {
                assert!(
                    line.contains(cell.as_str()),
                    "{cell} not on one line:\n{text}"
                );
            }
        }
        let routes = section(&text, "Routes");
        assert_eq!(routes.len(), 2, "{text}");
        assert!(routes[1].contains(&r.routes[0].affinity), "{text}");
        assert!(text.lines().any(|l| l.chars().count() > WIDTH), "{text}");
    }

    #[test]
    fn a_table_that_fits_is_not_wrapped() {
        let mut r = sample();
        r.paths = vec![PathRow {
            path: "ClusterIP 10.0.0.1:80".into(),
            pods_reachable: 1,
            decided_by: "kube-proxy, per connection".into(),
            one_client_sees: "connections spread".into(),
        }];
        let text = render(&r, TextOptions::default());
        let paths = section(&text, "Paths");
        assert_eq!(paths.len(), 2, "{text}");
        assert!(
            paths[1].contains("kube-proxy, per connection   connections spread"),
            "{text}"
        );
    }
}
