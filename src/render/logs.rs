//! `logs` output: the per-pod table with totals (one-shot), the live table
//! redrawn in place or plain `POD active=N` lines (`--follow`). Layout only:
//! the numbers come from the probes, the findings from the diagnose engine.

use std::collections::BTreeMap;
use std::io::{self, Write};

use jiff::Timestamp;
use owo_colors::Style as Paint;

use crate::probe::logs::follow::{FollowEvent, FollowRow, StreamState};
use crate::render::bar;
use crate::render::table::table_with;
use crate::render::text::{finding_list, paint};
use crate::report::Finding;
use crate::snapshot::PodLog;

#[derive(Clone, Copy, Debug, Default)]
pub struct LogsTextOptions {
    pub color: bool,
    /// `-o wide`: the pods' start times too.
    pub wide: bool,
}

/// Totals over the pods that logged a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Pods with a value.
    pub pods: usize,
    pub total: u64,
    pub mean: f64,
    pub max: u64,
    /// max / mean; `None` when the mean is 0.
    pub max_over_mean: Option<f64>,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = u64>) -> Option<Spread> {
        let values: Vec<u64> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        let total = values.iter().fold(0u64, |a, v| a.saturating_add(*v));
        let max = values.iter().copied().max().unwrap_or(0);
        let mean = total as f64 / values.len() as f64;
        let max_over_mean = (mean > 0.0).then(|| max as f64 / mean);
        Some(Spread {
            pods: values.len(),
            total,
            mean,
            max,
            max_over_mean,
        })
    }

    /// max/mean to two decimals, `-` when the mean is 0.
    fn ratio_text(&self) -> String {
        self.max_over_mean
            .map(|r| format!("{r:.2}"))
            .unwrap_or_else(|| "-".into())
    }
}

/// kubectl-style age: `45s`, `3m20s`, `25m`, `5h10m`, `2d4h`, `30d`.
pub fn age(d: jiff::SignedDuration) -> String {
    let s = d.as_secs().max(0);
    let (m, h, day) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        format!("{m}m{}s", s % 60)
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        format!("{h}h{}m", m % 60)
    } else if h < 48 {
        format!("{h}h")
    } else if day < 8 {
        format!("{day}d{}h", h % 24)
    } else {
        format!("{day}d")
    }
}

fn ago(rfc3339: Option<&str>, now: Timestamp) -> Option<String> {
    let t: Timestamp = rfc3339?.parse().ok()?;
    Some(format!("{} ago", age(now.duration_since(t))))
}

/// One-shot: the table, the totals, then the findings.
pub fn write(
    out: &mut dyn Write,
    logs: &[PodLog],
    findings: &[Finding],
    no_line_hint: &str,
    opts: &LogsTextOptions,
    now: Timestamp,
) -> io::Result<()> {
    let mut s = String::new();
    if logs.is_empty() {
        s.push_str("No pods to read.\n");
    } else {
        let mut header = vec!["POD", "NODE", "ACTIVE", "SHARE", "LOGGED"];
        if opts.wide {
            header.push("STARTED");
        }
        let total = active_total(logs.iter().map(|l| l.active));
        let body = logs.iter().map(|l| {
            let (active, logged) = match (&l.error, l.active) {
                (Some(e), _) => ("-".to_string(), format!("error: {e}")),
                (None, Some(n)) => (
                    n.to_string(),
                    ago(l.logged_at.as_deref(), now).unwrap_or_else(|| "-".into()),
                ),
                (None, None) => ("-".to_string(), no_line_hint.to_string()),
            };
            let share = match l.error {
                Some(_) => "-".to_string(),
                None => share_cell(l.active, total, opts.color),
            };
            let mut row = vec![
                l.pod.clone(),
                l.node.clone().unwrap_or_else(|| "-".into()),
                active,
                share,
                logged,
            ];
            if opts.wide {
                row.push(ago(l.started.as_deref(), now).unwrap_or_else(|| "-".into()));
            }
            row
        });
        table(&mut s, &header, body);
        s.push('\n');
        s.push_str(&summary_line(logs));
        s.push('\n');
        notes(&mut s, logs);
    }
    if !findings.is_empty() {
        s.push('\n');
        findings_text(&mut s, findings, opts);
    }
    out.write_all(s.as_bytes())
}

/// A `note pod/NAME: ...` line per count that carries a remark (several
/// series summed), after a blank line; nothing when none does.
pub fn notes(s: &mut String, logs: &[PodLog]) {
    let mut first = true;
    for l in logs {
        let Some(note) = &l.note else { continue };
        if std::mem::take(&mut first) {
            s.push('\n');
        }
        s.push_str(&format!(
            "note pod/{}: {}\n",
            l.pod,
            note.replace('\n', " ")
        ));
    }
}

/// Only the findings (e.g. WSA001 when the target does not exist).
pub fn findings(
    out: &mut dyn Write,
    findings: &[Finding],
    opts: &LogsTextOptions,
) -> io::Result<()> {
    let mut s = String::new();
    findings_text(&mut s, findings, opts);
    out.write_all(s.as_bytes())
}

/// `2 of 3 pods logged a count: total 12, mean 6.0, max 10, max/mean 1.67`
pub fn summary_line(logs: &[PodLog]) -> String {
    let n = logs.len();
    let pods = if n == 1 { "pod" } else { "pods" };
    match Spread::of(logs.iter().filter_map(|l| l.active)) {
        None => format!("none of {n} {pods} logged a count"),
        Some(sp) => {
            let ratio = sp.ratio_text();
            format!(
                "{} of {n} {pods} logged a count: total {}, mean {:.1}, max {}, max/mean {ratio}",
                sp.pods, sp.total, sp.mean, sp.max
            )
        }
    }
}

/// The sum of the counts logged (pods without one add nothing).
fn active_total(values: impl Iterator<Item = Option<u64>>) -> u64 {
    values.flatten().fold(0u64, u64::saturating_add)
}

/// A pod's share of the Active connections of all pods as a bar and a
/// percentage (Unicode blocks when `color`, i.e. on a terminal without
/// `--no-color`; ASCII otherwise); `-` without a count or when the total is 0.
fn share_cell(active: Option<u64>, total: u64, color: bool) -> String {
    active.map_or_else(|| "-".to_string(), |n| bar::cell(n, total, color))
}

fn findings_text(s: &mut String, list: &[Finding], opts: &LogsTextOptions) {
    s.push_str(&paint("Findings", Paint::new().bold(), opts.color));
    s.push('\n');
    finding_list(s, list, opts.color, false);
}

/// A kubectl-style table: no borders, upper-case header, two spaces between columns.
fn table(s: &mut String, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    table_with(s, header, rows, "", 1);
}

/// Prints `--follow` progress: on a terminal a table redrawn in place, else
/// one plain line per change (`POD active=N`, `POD gone`, ...).
#[derive(Debug, Default)]
pub struct FollowPrinter {
    tty: bool,
    color: bool,
    /// Lines of the table drawn last, to move the cursor back over.
    drawn: usize,
    /// Last value printed per pod in plain mode: print changes only.
    printed: BTreeMap<String, u64>,
}

impl FollowPrinter {
    pub fn new(tty: bool, color: bool) -> Self {
        Self {
            tty,
            color,
            ..Default::default()
        }
    }

    /// Handles one event with the table as it is after it.
    pub fn event(
        &mut self,
        out: &mut dyn Write,
        event: &FollowEvent,
        rows: &BTreeMap<String, FollowRow>,
        now: Timestamp,
    ) -> io::Result<()> {
        if self.tty {
            if let FollowEvent::NotFollowed { .. }
            | FollowEvent::ListFailed { .. }
            | FollowEvent::ListRecovered = event
            {
                // Above the table, so it stays visible: clear the table first.
                self.clear(out)?;
                writeln!(out, "{}", plain_line(event).unwrap_or_default())?;
            }
            return self.redraw(out, rows, now);
        }
        if let FollowEvent::Active { pod, active, .. } = event {
            if self.printed.get(pod) == Some(active) {
                return Ok(());
            }
            self.printed.insert(pod.clone(), *active);
        }
        if let FollowEvent::Gone { pod } = event {
            self.printed.remove(pod);
        }
        if let Some(line) = plain_line(event) {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }

    fn clear(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.drawn > 0 {
            // Up to the first line of the table, then clear to the end of the screen.
            write!(out, "\x1b[{}A\r\x1b[J", self.drawn)?;
            self.drawn = 0;
        }
        Ok(())
    }

    /// Redraws the whole table in place (ANSI cursor up + clear).
    pub fn redraw(
        &mut self,
        out: &mut dyn Write,
        rows: &BTreeMap<String, FollowRow>,
        now: Timestamp,
    ) -> io::Result<()> {
        let text = follow_table(rows, now, self.color);
        self.clear(out)?;
        out.write_all(text.as_bytes())?;
        self.drawn = text.lines().count();
        out.flush()
    }
}

/// The plain (piped) line for an event; `None` for events that print nothing.
pub fn plain_line(event: &FollowEvent) -> Option<String> {
    Some(match event {
        FollowEvent::Opened { .. } | FollowEvent::Polled => return None,
        FollowEvent::Added { pod } => format!("{pod} following"),
        FollowEvent::Active { pod, active, .. } => format!("{pod} active={active}"),
        FollowEvent::Gone { pod } => format!("{pod} gone"),
        FollowEvent::Ended { pod, message } => format!("{pod} ended: {message}"),
        FollowEvent::NotFollowed { pods, limit } => format!(
            "not following {} (more pods than --max-log-requests={limit}; use --max-log-requests to increase the limit)",
            pods.join(", ")
        ),
        FollowEvent::ListFailed { message } => {
            format!("listing pods failed (will retry): {message}")
        }
        FollowEvent::ListRecovered => "listing pods works again".to_string(),
        FollowEvent::Resumed { pod } => format!("{pod} following again"),
    })
}

/// The live table: pods, their values, and totals.
pub fn follow_table(rows: &BTreeMap<String, FollowRow>, now: Timestamp, color: bool) -> String {
    let mut s = String::new();
    let total = active_total(rows.values().map(|r| r.active));
    let body = rows.values().map(|r| {
        let state = match &r.state {
            StreamState::Opening => "opening".to_string(),
            StreamState::Streaming => "following".to_string(),
            StreamState::Ended(m) => format!("ended: {m}"),
            StreamState::NotFollowed => "not followed (--max-log-requests)".to_string(),
            StreamState::Waiting(m) => m.clone(),
        };
        vec![
            r.target.pod.clone(),
            r.target.node.clone().unwrap_or_else(|| "-".into()),
            r.active
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            share_cell(r.active, total, color),
            r.logged_at
                .map(|t| format!("{} ago", age(now.duration_since(t))))
                .unwrap_or_else(|| "-".into()),
            state,
        ]
    });
    table(
        &mut s,
        &["POD", "NODE", "ACTIVE", "SHARE", "LOGGED", "STREAM"],
        body,
    );
    let n = rows.len();
    let summary = match Spread::of(rows.values().filter_map(|r| r.active)) {
        None => format!("{n} pods, no count logged yet"),
        Some(sp) => {
            let ratio = sp.ratio_text();
            format!(
                "total {} on {} of {n} pods, mean {:.1}, max/mean {ratio}",
                sp.total, sp.pods, sp.mean
            )
        }
    };
    s.push_str(&paint(&summary, Paint::new().bold(), color));
    s.push_str("\n(Ctrl-C to stop)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::logs::pods::LogTarget;

    fn now() -> Timestamp {
        "2026-11-26T23:40:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn log(pod: &str, active: Option<u64>, at: Option<&str>) -> PodLog {
        PodLog {
            pod: pod.into(),
            node: Some("node-1".into()),
            active,
            logged_at: at.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn spread_numbers() {
        let sp = Spread::of([10, 2, 0]).unwrap_or_else(|| panic!("some"));
        assert_eq!(sp.total, 12);
        assert_eq!(sp.max, 10);
        assert!((sp.mean - 4.0).abs() < 1e-9);
        assert_eq!(sp.max_over_mean, Some(2.5));
        assert_eq!(Spread::of([0, 0]).and_then(|s| s.max_over_mean), None);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn ages_like_kubectl() {
        let d = jiff::SignedDuration::from_secs;
        assert_eq!(age(d(5)), "5s");
        assert_eq!(age(d(200)), "3m20s");
        assert_eq!(age(d(25 * 60)), "25m");
        assert_eq!(age(d(5 * 3600 + 600)), "5h10m");
        assert_eq!(age(d(20 * 3600)), "20h");
        assert_eq!(age(d(2 * 86400 + 4 * 3600)), "2d4h");
        assert_eq!(age(d(30 * 86400)), "30d");
        assert_eq!(age(d(-3)), "0s");
    }

    #[test]
    fn one_shot_table() {
        let logs = vec![
            log("web-a", Some(7), Some("2026-11-26T23:39:57Z")),
            log("web-b", Some(1), Some("2026-11-26T23:38:00Z")),
            log("web-c", None, None),
            PodLog {
                pod: "web-d".into(),
                error: Some("container \"x\" is not valid".into()),
                ..Default::default()
            },
            PodLog {
                note: Some("2 series of `m` summed".into()),
                ..log("web-e", Some(0), None)
            },
        ];
        let mut out = Vec::new();
        write(
            &mut out,
            &logs,
            &[],
            "no matching line",
            &LogsTextOptions::default(),
            now(),
        )
        .unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        let expected = "\
POD    NODE    ACTIVE  SHARE                      LOGGED
web-a  node-1  7       ##################..  88%  3s ago
web-b  node-1  1       ###.................  13%  2m0s ago
web-c  node-1  -       -                          no matching line
web-d  -       -       -                          error: container \"x\" is not valid
web-e  node-1  0       ....................   0%  -

3 of 5 pods logged a count: total 8, mean 2.7, max 7, max/mean 2.62

note pod/web-e: 2 series of `m` summed
";
        assert_eq!(text, expected);
    }

    #[test]
    fn one_shot_bars_are_blocks_on_a_terminal_and_ascii_otherwise() {
        let logs = vec![
            log("web-a", Some(3), Some("2026-11-26T23:39:57Z")),
            log("web-b", Some(1), Some("2026-11-26T23:39:57Z")),
        ];
        let text = |color| {
            let mut out = Vec::new();
            let opts = LogsTextOptions { color, wide: false };
            write(&mut out, &logs, &[], "-", &opts, now()).unwrap_or_default();
            String::from_utf8_lossy(&out).to_string()
        };
        let plain = text(false);
        assert!(plain.is_ascii(), "{plain}");
        assert!(
            plain.contains(&format!(
                "web-a  node-1  3       {}  75%",
                "#".repeat(15) + "....."
            )),
            "{plain}"
        );
        let tty = text(true);
        assert!(
            tty.contains(&format!("{}       75%", "█".repeat(15))),
            "{tty}"
        );
        assert!(
            tty.contains(&format!("{}{}  25%", "█".repeat(5), " ".repeat(15))),
            "{tty}"
        );
    }

    #[test]
    fn follow_table_shares_the_active_connections() {
        let row = |pod: &str, active| FollowRow {
            target: LogTarget {
                pod: pod.into(),
                ..Default::default()
            },
            active,
            state: StreamState::Streaming,
            ..Default::default()
        };
        let rows: BTreeMap<String, FollowRow> = [
            ("web-a".to_string(), row("web-a", Some(2))),
            ("web-b".to_string(), row("web-b", Some(2))),
            ("web-c".to_string(), row("web-c", None)),
        ]
        .into_iter()
        .collect();
        let plain = follow_table(&rows, now(), false);
        let lines: Vec<&str> = plain.lines().collect();
        assert!(
            lines[0].starts_with("POD    NODE  ACTIVE  SHARE  "),
            "{plain}"
        );
        let half = format!("{}{}  50%", "#".repeat(10), ".".repeat(10));
        assert!(lines[1].contains(&half), "{plain}");
        assert!(lines[2].contains(&half), "{plain}");
        assert_eq!(lines[3].split_whitespace().nth(3), Some("-"), "{plain}");
        let tty = follow_table(&rows, now(), true);
        assert!(
            tty.contains(&format!("{}{}  50%", "█".repeat(10), " ".repeat(10))),
            "{tty}"
        );
        // No count anywhere yet: no share either.
        let none: BTreeMap<String, FollowRow> = [("web-c".to_string(), row("web-c", None))]
            .into_iter()
            .collect();
        let text = follow_table(&none, now(), false);
        assert!(!text.contains('#'), "{text}");
    }

    #[test]
    fn plain_lines_print_changes_only() {
        let mut p = FollowPrinter::new(false, false);
        let rows = BTreeMap::new();
        let mut out = Vec::new();
        let active = |n| FollowEvent::Active {
            pod: "web-a".into(),
            active: n,
            time: None,
        };
        for e in [
            FollowEvent::Added {
                pod: "web-a".into(),
            },
            active(1),
            active(1),
            active(2),
            FollowEvent::Gone {
                pod: "web-a".into(),
            },
        ] {
            p.event(&mut out, &e, &rows, now()).unwrap_or_default();
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "web-a following\nweb-a active=1\nweb-a active=2\nweb-a gone\n"
        );
    }

    #[test]
    fn tty_redraw_moves_the_cursor_back() {
        let mut p = FollowPrinter::new(true, false);
        let mut rows = BTreeMap::new();
        rows.insert(
            "web-a".to_string(),
            FollowRow {
                target: LogTarget {
                    pod: "web-a".into(),
                    ..Default::default()
                },
                active: Some(3),
                state: StreamState::Streaming,
                ..Default::default()
            },
        );
        let mut out = Vec::new();
        let e = FollowEvent::Active {
            pod: "web-a".into(),
            active: 3,
            time: None,
        };
        p.event(&mut out, &e, &rows, now()).unwrap_or_default();
        let first = String::from_utf8_lossy(&out).to_string();
        assert!(!first.contains('\x1b'), "{first:?}");
        assert!(first.contains("web-a  -     3"), "{first}");
        p.event(&mut out, &e, &rows, now()).unwrap_or_default();
        let all = String::from_utf8_lossy(&out).to_string();
        assert!(
            all[first.len()..].starts_with(&format!("\x1b[{}A\r\x1b[J", first.lines().count())),
            "{all:?}"
        );
    }
}
