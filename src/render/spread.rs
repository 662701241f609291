//! Text layout of a `spread` run: the client × pod matrix, per-pod totals,
//! imbalance and which clients stayed on one pod. Decides nothing: every
//! number comes from [`Spread`] and [`UrlRun`].

use std::io::{self, Write};

use owo_colors::{OwoColorize, Style as Paint};
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use crate::probe::url::summary::Spread;
use crate::render::bar;
use crate::render::table::table;
use crate::snapshot::{Attribution, UrlRun};

const INDENT: &str = "  ";

/// Writes the spread section. `ingress` names where the URL came from, when
/// it was derived rather than given.
pub fn write(
    out: &mut dyn Write,
    run: &UrlRun,
    spread: &Spread,
    ingress: Option<&str>,
    color: bool,
) -> io::Result<()> {
    let mut s = String::new();
    let bold = |t: &str| {
        if color {
            t.style(Paint::new().bold()).to_string()
        } else {
            t.to_string()
        }
    };
    s.push_str(&bold("Spread"));
    s.push_str(&format!(
        "  {}  {} client{} × {} connection{}, cookies {}\n",
        run.url,
        run.clients.len(),
        plural(run.clients.len()),
        run.connect,
        plural(run.connect as usize),
        if run.cookies {
            "on"
        } else {
            "off (--no-cookies)"
        }
    ));
    if let Some(i) = ingress {
        s.push_str(&format!("{INDENT}URL from ingress/{i}\n"));
    }
    for r in &run.resolve {
        s.push_str(&format!("{INDENT}--resolve {r}\n"));
    }

    let with_source = spread.clients.iter().any(|c| c.source_ip.is_some());
    let mut header = vec!["CLIENT".to_string()];
    if with_source {
        header.push("SOURCE".into());
    }
    header.extend(spread.pods.iter().cloned());
    header.push("FAILED".into());
    header.push("ONE POD".into());
    let mut b = Builder::default();
    b.push_record(header);
    for c in &spread.clients {
        let mut row = vec![c.client.to_string()];
        if with_source {
            row.push(c.source_ip.clone().unwrap_or_else(|| "-".into()));
        }
        row.extend(c.counts.iter().map(ToString::to_string));
        row.push(c.failed.to_string());
        row.push(
            if c.one_pod {
                "yes"
            } else if c.counts.iter().all(|n| *n == 0) {
                "-"
            } else {
                "no"
            }
            .to_string(),
        );
        b.push_record(row);
    }
    let mut total = vec!["TOTAL".to_string()];
    if with_source {
        total.push(String::new());
    }
    total.extend(spread.totals.iter().map(ToString::to_string));
    total.push(spread.failed.to_string());
    total.push(String::new());
    b.push_record(total);
    let mut t = b.build();
    t.with(Style::blank()).with(Padding::new(0, 2, 0, 0));
    s.push('\n');
    for line in t.to_string().lines() {
        s.push_str(INDENT);
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push('\n');
    pod_shares(&mut s, spread, color);

    let real_pods = spread
        .pods
        .iter()
        .filter(|p| p.as_str() != "unknown")
        .count();
    match spread.imbalance {
        Some(x) => s.push_str(&format!(
            "{INDENT}Imbalance        {x:.2} (busiest pod over the mean of {real_pods} pod{}; 1.00 is even)\n",
            plural(real_pods)
        )),
        None => s.push_str(&format!("{INDENT}Imbalance        - (no connection was attributed to a pod)\n")),
    }
    s.push_str(&format!(
        "{INDENT}Pods reached     {}\n{INDENT}One pod          {} of {} client{} stayed on one pod\n",
        spread.pods_reached,
        spread.clients_on_one_pod,
        spread.clients_with_connections,
        plural(spread.clients_with_connections as usize)
    ));
    let by: Vec<String> = spread
        .attributed_by
        .iter()
        .map(|(a, n)| {
            let how = match a {
                Attribution::Hello => "hello message".to_string(),
                Attribution::Header => format!("{} header", run.identity_header),
                Attribution::Cookie => format!(
                    "{} cookie",
                    run.affinity_cookie.as_deref().unwrap_or("affinity")
                ),
                Attribution::Unknown => "unknown".to_string(),
            };
            format!("{how} {n}")
        })
        .collect();
    if !by.is_empty() {
        s.push_str(&format!("{INDENT}Attributed by    {}\n", by.join(", ")));
    }
    if let Some(c) = &run.affinity_cookie {
        s.push_str(&format!("{INDENT}Affinity cookie  {c}\n"));
    }
    for c in &run.clients {
        for r in &c.repins {
            let pod = c
                .pods
                .get(r.connection as usize - 1)
                .map_or("unknown", String::as_str);
            s.push_str(&format!(
                "{INDENT}Re-pinned        client {}: the proxy replaced its cookie at connection {} (its pod is gone); now on {pod}\n",
                c.client, r.connection
            ));
        }
    }
    for c in spread.clients.iter().filter(|c| c.error.is_some()) {
        s.push_str(&format!(
            "{INDENT}client {}: {} failed: {}\n",
            c.client,
            c.failed,
            c.error.as_deref().unwrap_or("")
        ));
    }
    out.write_all(s.as_bytes())
}

/// One row per matrix column: the connections the pod received and its
/// share of all the attributed ones, as a bar (Unicode blocks when `color`,
/// i.e. on a terminal without `--no-color`; ASCII otherwise), then a blank
/// line. Nothing when no pod column exists.
fn pod_shares(s: &mut String, spread: &Spread, color: bool) {
    if spread.pods.is_empty() {
        return;
    }
    let total: u64 = spread.totals.iter().map(|n| u64::from(*n)).sum();
    let rows = spread.pods.iter().zip(&spread.totals).map(|(pod, n)| {
        vec![
            pod.clone(),
            n.to_string(),
            bar::cell(u64::from(*n), total, color),
        ]
    });
    table(s, &["POD", "CONNECTIONS", "SHARE"], rows, INDENT);
    s.push('\n');
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
