//! Text output: Verdict, Service, Endpoints, Routes, Paths, Findings.
//!
//! Layout only: every word that carries meaning comes from the [`Report`].

use std::io::{self, Write};

use owo_colors::{OwoColorize, Style as Paint};
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use crate::report::{EndpointRow, Finding, PathRow, Report, RouteRow, ServiceSummary, Severity};
use crate::snapshot::{SkipReason, Skipped};

/// Width that long text (verdict, finding detail) is wrapped to.
pub const WIDTH: usize = 100;
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
        routes(&mut s, &report.routes, opts);
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
    table(s, &header, body);
}

fn routes(s: &mut String, rows: &[RouteRow], opts: &TextOptions) {
    heading(s, "Routes", "", opts);
    if rows.is_empty() {
        s.push_str(&format!(
            "{INDENT}none: no Ingress or route points at this Service\n"
        ));
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
    table(s, &header, body);
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
    table(s, &header, body);
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
    table(s, &["RESOURCE", "REASON", "MESSAGE"], body);
}

/// A kubectl-style table: no borders, upper-case header, two spaces between
/// columns, indented under its heading, no trailing spaces.
fn table(s: &mut String, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    table_with(s, header, rows, INDENT, 2);
}

/// A borderless table, each line after `indent`, `gap` spaces after each
/// column, newlines in cells as spaces, no trailing spaces.
pub(crate) fn table_with(
    s: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    indent: &str,
    gap: usize,
) {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r.into_iter().map(|c| c.replace('\n', " ")));
    }
    let mut t = b.build();
    t.with(Style::blank()).with(Padding::new(0, gap, 0, 0));
    for line in t.to_string().lines() {
        s.push_str(indent);
        s.push_str(line.trim_end());
        s.push('\n');
    }
}

/// Greedy word wrap; a word longer than `width` stays whole on its own line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{PortRow, RouteRow};

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

    #[test]
    fn wrap_keeps_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("toolongword x", 4), vec!["toolongword", "x"]);
    }
}
