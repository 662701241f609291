//! The printed result: machine, load, per-run details, and the table.

use std::fmt::Display;

pub fn median(runs: &[f64]) -> f64 {
    let mut v: Vec<f64> = runs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What a row must show: a limit on the measured median, or on the median
/// of the per-run ratios to the baseline (measured in the same run).
#[derive(Clone, Copy)]
pub enum Goal {
    AtMost(f64, &'static str),
    AtLeast(f64, &'static str),
    RatioAtMost(f64, &'static str),
    RatioAtLeast(f64, &'static str),
    Info,
}

enum Verdict {
    Pass,
    Fail,
    Info,
}

impl Goal {
    fn judge(self, measured: f64, ratio: f64) -> Verdict {
        let ok = match self {
            Goal::AtMost(l, _) => measured <= l,
            Goal::AtLeast(l, _) => measured >= l,
            Goal::RatioAtMost(l, _) => ratio <= l,
            Goal::RatioAtLeast(l, _) => ratio >= l,
            Goal::Info => return Verdict::Info,
        };
        if ok { Verdict::Pass } else { Verdict::Fail }
    }

    fn text(self) -> &'static str {
        match self {
            Goal::AtMost(_, t)
            | Goal::AtLeast(_, t)
            | Goal::RatioAtMost(_, t)
            | Goal::RatioAtLeast(_, t) => t,
            Goal::Info => "info",
        }
    }
}

struct Row {
    metric: String,
    measured: f64,
    baseline_name: String,
    baseline: f64,
    ratio: f64,
    target: String,
    verdict: Verdict,
}

pub struct Report {
    header: Vec<String>,
    details: Vec<String>,
    rows: Vec<Row>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "-".to_string()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Report {
    pub fn new(fd_limit: u64, repeat: usize) -> Report {
        let cpuinfo = read("/proc/cpuinfo");
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem = read("/proc/meminfo")
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .and_then(|k| k.parse::<u64>().ok())
            .unwrap_or(0);
        Report {
            header: vec![
                format!(
                    "machine: {cpus} CPUs ({model}), {:.1} GiB RAM, Linux {}, fd limit {fd_limit}",
                    mem as f64 / 1024.0 / 1024.0,
                    read("/proc/sys/kernel/osrelease").trim()
                ),
                format!(
                    "each figure: median of {repeat} runs; client and servers share the machine"
                ),
            ],
            details: vec![],
            rows: vec![],
        }
    }

    /// Notes the load average (other work on the machine) at this point.
    pub fn load(&mut self, when: &str) {
        let avg = read("/proc/loadavg");
        let avg: Vec<&str> = avg.split_whitespace().take(3).collect();
        self.header
            .push(format!("load average at {when}: {}", avg.join(" ")));
        eprintln!("[bench] {when} (load {})", avg.join(" "));
    }

    pub fn detail(&mut self, line: String) {
        eprintln!("[bench] {line}");
        self.details.push(line);
    }

    /// A row from the runs of the measurement and of its baseline (empty:
    /// none; the row is skipped when the baseline was not run at all).
    pub fn row(
        &mut self,
        metric: impl Display,
        measured: &[f64],
        baseline_name: &str,
        baseline: &[f64],
        goal: Goal,
    ) {
        if baseline_name != "-" && baseline.is_empty() {
            return;
        }
        let ratios: Vec<f64> = measured.iter().zip(baseline).map(|(m, b)| m / b).collect();
        let (m, ratio) = (median(measured), median(&ratios));
        self.rows.push(Row {
            metric: metric.to_string(),
            measured: m,
            baseline_name: baseline_name.to_string(),
            baseline: median(baseline),
            ratio,
            target: goal.text().to_string(),
            verdict: goal.judge(m, ratio),
        });
    }

    pub fn print(&self) {
        for h in &self.header {
            println!("{h}");
        }
        println!();
        for d in &self.details {
            println!("  {d}");
        }
        println!();
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|r| {
                let ratio = if r.ratio.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.2}x", r.ratio)
                };
                [
                    r.metric.clone(),
                    num(r.measured),
                    r.baseline_name.clone(),
                    num(r.baseline),
                    ratio,
                    r.target.clone(),
                    match r.verdict {
                        Verdict::Pass => "pass",
                        Verdict::Fail => "FAIL",
                        Verdict::Info => "-",
                    }
                    .to_string(),
                ]
            })
            .collect();
        let head = [
            "target",
            "measured (median)",
            "baseline",
            "baseline (median)",
            "ratio (median of runs)",
            "goal",
            "result",
        ]
        .map(String::from);
        let mut width = [0usize; 7];
        for row in std::iter::once(&head).chain(&cells) {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String; 7]| {
            let parts: Vec<String> = row
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("| {} |", parts.join(" | "))
        };
        println!("{}", line(&head));
        println!(
            "|{}|",
            width
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &cells {
            println!("{}", line(row));
        }
    }
}
