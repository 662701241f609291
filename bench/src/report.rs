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

pub enum Verdict {
    Pass,
    Fail,
    Info,
}

impl Verdict {
    pub fn at_most(v: f64, limit: f64) -> Verdict {
        if v <= limit {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }

    pub fn at_least(v: f64, limit: f64) -> Verdict {
        if v >= limit {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

struct Row {
    metric: String,
    measured: f64,
    baseline_name: String,
    baseline: f64,
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

    pub fn row(
        &mut self,
        metric: impl Display,
        measured: f64,
        baseline_name: &str,
        baseline: f64,
        target: &str,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            metric: metric.to_string(),
            measured,
            baseline_name: baseline_name.to_string(),
            baseline,
            target: target.to_string(),
            verdict,
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
                let ratio = if r.baseline.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.2}x", r.measured / r.baseline)
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
            "target", "measured", "baseline", "value", "ratio", "goal", "result",
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
