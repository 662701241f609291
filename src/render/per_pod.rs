//! `per-pod` output: a table with a row per pod, the summary line, then the
//! verdict and the pod findings; `-o json`/`-o yaml` print the report with
//! its observations. Also the live progress display (indicatif, stderr, a
//! line per pod), used only on a terminal with text output.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use owo_colors::Style as Paint;
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use crate::config::{OutputFormat, OutputOptions};
use crate::probe::per_pod::{Event, PodTarget, Progress};
use crate::render::text::paint;
use crate::render::{structured, text};
use crate::report::Report;
use crate::snapshot::{Identity, Percentiles, PodProbe};

const INDENT: &str = "  ";

/// Writes the `per-pod` report in the chosen format.
pub fn report(
    out: &mut dyn Write,
    report: &Report,
    opts: &OutputOptions,
    connect: u32,
    interrupted: bool,
) -> io::Result<()> {
    match opts.format {
        OutputFormat::Json => structured::json(out, report),
        OutputFormat::Yaml => structured::yaml(out, report),
        OutputFormat::Text | OutputFormat::Wide => {
            let wide = opts.format == OutputFormat::Wide;
            let probes = report.observations.per_pod.as_deref().unwrap_or(&[]);
            let mut s = String::new();
            let metric = report.observations.active_source.is_some();
            pods(&mut s, probes, wide, metric, opts.color);
            if let Some(logs) = report.observations.logs.as_deref() {
                let mut notes = String::new();
                crate::render::logs::notes(&mut notes, logs);
                for line in notes.lines() {
                    if !line.is_empty() {
                        s.push_str(INDENT);
                    }
                    s.push_str(line);
                    s.push('\n');
                }
            }
            s.push('\n');
            s.push_str(INDENT);
            s.push_str(&summary(probes, connect));
            s.push('\n');
            if interrupted {
                s.push_str(&format!(
                    "{INDENT}interrupted: every opened connection was closed and its port-forward ended\n"
                ));
            }
            s.push('\n');
            out.write_all(s.as_bytes())?;
            // Verdict and findings, laid out as `check` lays them out.
            let rest = Report {
                service: None,
                ..report.clone()
            };
            text::write(
                out,
                &rest,
                &text::TextOptions {
                    wide,
                    color: opts.color,
                    show_skipped: false,
                },
            )
        }
    }
}

/// When every pod passed, "2/2 pods accepted 10/10 connections: 20 total";
/// otherwise how many pods passed and how many connections succeeded,
/// "1/2 pods passed: 10 of 20 connections succeeded (10 failed)", so a run
/// where nothing worked never reads as accepted.
pub fn summary(probes: &[PodProbe], connect: u32) -> String {
    if probes.is_empty() {
        return "no pod was tested".to_string();
    }
    let passed = probes
        .iter()
        .filter(|p| p.ok == p.attempted && p.error.is_none())
        .count();
    let ok: u64 = probes.iter().map(|p| u64::from(p.ok)).sum();
    let attempted: u64 = probes.iter().map(|p| u64::from(p.attempted)).sum();
    let failed: u64 = probes.iter().map(|p| u64::from(p.failed)).sum();
    let pods = if probes.len() == 1 { "pod" } else { "pods" };
    if passed == probes.len() {
        return format!(
            "{passed}/{} {pods} accepted {connect}/{connect} connections: {ok} total",
            probes.len()
        );
    }
    let connections = if attempted == 1 {
        "connection"
    } else {
        "connections"
    };
    format!(
        "{passed}/{} {pods} passed: {ok} of {attempted} {connections} succeeded ({failed} failed)",
        probes.len()
    )
}

fn ms(p: Option<Percentiles>) -> String {
    match p {
        Some(p) => format!("{}/{} ms", short(p.p50), short(p.p95)),
        None => "-".to_string(),
    }
}

fn short(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn identity(i: &Identity) -> String {
    match i {
        Identity::Matches => "matches".to_string(),
        Identity::Other(pod) => format!("another pod: {pod}"),
        Identity::None => "none".to_string(),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// `0 → 10 → 0` (before, during the hold, after).
fn logged(p: &PodProbe, metric: bool) -> String {
    if p.logged_active_before.is_none()
        && p.logged_active_during.is_none()
        && p.logged_active_after.is_none()
    {
        return if metric { "no value" } else { "no log line" }.to_string();
    }
    let mut s = format!(
        "{} → {}",
        opt(p.logged_active_before),
        opt(p.logged_active_during)
    );
    if p.logged_active_after.is_some() {
        s.push_str(&format!(" → {}", opt(p.logged_active_after)));
    }
    s
}

fn pods(s: &mut String, probes: &[PodProbe], wide: bool, metric: bool, color: bool) {
    s.push_str(&paint("Pods", Paint::new().bold(), color));
    s.push_str("  each tested directly over port-forward\n");
    if probes.is_empty() {
        s.push_str(&format!(
            "{INDENT}none: no ready endpoint to test (--all-pods adds the not-ready pods)\n"
        ));
        return;
    }
    let mut header = vec![
        "POD",
        "NODE",
        "OK",
        "FAILED",
        "HANDSHAKE p50/p95",
        "ECHO p50/p95",
        "IDENTITY",
        // With --metric the counts are the gauge's, not the log's.
        if metric {
            "METRIC ACTIVE"
        } else {
            "LOGGED ACTIVE"
        },
        "HELD",
    ];
    if wide {
        header.insert(2, "PORT");
        header.insert(3, "READY");
    }
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| h.to_string()));
    for p in probes {
        let mut row = vec![
            p.pod.clone(),
            p.node.clone().unwrap_or_else(|| "-".to_string()),
            format!("{}/{}", p.ok, p.attempted),
            p.failed.to_string(),
            ms(p.handshake_ms),
            ms(p.echo_ms),
            identity(&p.identity),
            logged(p, metric),
            p.ok.to_string(),
        ];
        if wide {
            row.insert(
                2,
                if p.port == 0 {
                    "-".to_string()
                } else {
                    p.port.to_string()
                },
            );
            row.insert(3, if p.ready { "yes" } else { "no" }.to_string());
        }
        b.push_record(row);
    }
    let mut t = b.build();
    t.with(Style::blank()).with(Padding::new(0, 2, 0, 0));
    for line in t.to_string().lines() {
        s.push_str(INDENT);
        s.push_str(line.trim_end());
        s.push('\n');
    }
    let failed: Vec<&PodProbe> = probes.iter().filter(|p| p.error.is_some()).collect();
    if !failed.is_empty() {
        s.push('\n');
        for p in failed {
            let label = paint("error", Paint::new().red().bold(), color);
            let err = p.error.as_deref().unwrap_or_default();
            s.push_str(&format!(
                "{INDENT}{label} pod/{}: {}\n",
                p.pod,
                err.replace('\n', " ")
            ));
        }
    }
}

/// A line per pod on stderr: waiting, opening k/N, holding, closing, result.
pub struct ProgressDisplay {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl ProgressDisplay {
    pub fn new(targets: &[PodTarget], connect: u32) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = targets.iter().map(|t| t.name.len()).max().unwrap_or(0);
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        let bars = targets
            .iter()
            .map(|t| {
                let bar = multi.add(ProgressBar::new(u64::from(connect)));
                bar.set_style(style.clone());
                bar.set_prefix(format!("{:<width$}", t.name));
                bar.set_message("waiting");
                (t.name.clone(), bar)
            })
            .collect();
        ProgressDisplay { multi, bars }
    }

    fn bar(&self, pod: &str) -> Option<&ProgressBar> {
        self.bars.get(pod)
    }
}

impl Progress for ProgressDisplay {
    fn event(&self, event: Event) {
        match event {
            Event::Started { pod, connect } => {
                if let Some(b) = self.bar(&pod) {
                    b.enable_steady_tick(Duration::from_millis(120));
                    b.set_message(format!("opening 0/{connect}"));
                }
            }
            Event::Opened { pod, ok, failed } => {
                if let Some(b) = self.bar(&pod) {
                    let total = b.length().unwrap_or(0);
                    let failed = if failed > 0 {
                        format!(", {failed} failed")
                    } else {
                        String::new()
                    };
                    b.set_message(format!("opening {ok}/{total}{failed}"));
                }
            }
            Event::Holding { pod, ok } => {
                if let Some(b) = self.bar(&pod) {
                    b.set_message(format!("holding {ok} open, reading the log"));
                }
            }
            Event::Closing { pod } => {
                if let Some(b) = self.bar(&pod) {
                    b.set_message("closing");
                }
            }
            Event::Done(p) => {
                if let Some(b) = self.bar(&p.pod) {
                    let msg = match &p.error {
                        None => format!("ok {}/{}", p.ok, p.attempted),
                        Some(e) => format!("FAILED {}/{}: {e}", p.ok, p.attempted),
                    };
                    b.finish_with_message(msg);
                }
            }
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        // The table that follows repeats every result: leave no progress
        // lines (or half-drawn spinners after Ctrl-C) above it.
        for b in self.bars.values() {
            b.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(pod: &str, ok: u32, attempted: u32, error: Option<&str>) -> PodProbe {
        PodProbe {
            pod: pod.into(),
            node: Some("n1".into()),
            port: 8080,
            ready: true,
            attempted,
            ok,
            failed: attempted - ok,
            error: error.map(str::to_string),
            refused: None,
            handshake_ms: Some(Percentiles {
                p50: 1.23,
                p95: 4.5,
            }),
            echo_ms: Some(Percentiles { p50: 0.4, p95: 0.9 }),
            identity: Identity::Matches,
            logged_active_before: Some(0),
            logged_active_during: Some(ok.into()),
            logged_active_after: Some(0),
        }
    }

    #[test]
    fn summary_line() {
        let all = [probe("a", 10, 10, None), probe("b", 10, 10, None)];
        assert_eq!(
            summary(&all, 10),
            "2/2 pods accepted 10/10 connections: 20 total"
        );
        let one = [probe("a", 10, 10, None), probe("b", 0, 10, Some("boom"))];
        assert_eq!(
            summary(&one, 10),
            "1/2 pods passed: 10 of 20 connections succeeded (10 failed)"
        );
    }

    #[test]
    fn summary_line_never_says_accepted_when_nothing_succeeded() {
        let none = [
            probe("a", 0, 2, Some("HTTP 404")),
            probe("b", 0, 2, Some("HTTP 404")),
        ];
        let line = summary(&none, 2);
        assert_eq!(
            line,
            "0/2 pods passed: 0 of 4 connections succeeded (4 failed)"
        );
        let partly = [probe("a", 3, 5, Some("closed")), probe("b", 5, 5, None)];
        assert_eq!(
            summary(&partly, 5),
            "1/2 pods passed: 8 of 10 connections succeeded (2 failed)"
        );
        assert_eq!(
            summary(&[probe("a", 0, 1, Some("boom"))], 1),
            "0/1 pod passed: 0 of 1 connection succeeded (1 failed)"
        );
        assert_eq!(summary(&[], 10), "no pod was tested");
    }

    #[test]
    fn table_has_a_row_per_pod_and_the_errors() {
        let mut s = String::new();
        pods(
            &mut s,
            &[
                probe("web-a", 10, 10, None),
                probe("web-b", 0, 10, Some("error forwarding port 8080")),
            ],
            false,
            false,
            false,
        );
        assert!(s.contains("LOGGED ACTIVE"), "{s}");
        assert!(s.contains("web-a"), "{s}");
        assert!(s.contains("1.2/4.5 ms"), "{s}");
        assert!(s.contains("0 → 10 → 0"), "{s}");
        assert!(
            s.contains("error pod/web-b: error forwarding port 8080"),
            "{s}"
        );
    }

    #[test]
    fn with_a_metric_the_column_says_so() {
        let mut silent = probe("web-a", 10, 10, None);
        silent.logged_active_before = None;
        silent.logged_active_during = None;
        silent.logged_active_after = None;
        let mut s = String::new();
        pods(&mut s, &[silent], false, true, false);
        assert!(s.contains("METRIC ACTIVE"), "{s}");
        assert!(s.contains("no value"), "{s}");
        assert!(!s.contains("LOGGED"), "{s}");
    }
}
