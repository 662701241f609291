//! `kubectl wsaffinity check`: resolve → gather → diagnose → render.

use std::io::Write;

use anyhow::{Context, bail};

use crate::client;
use crate::config::{CheckConfig, Config};
use crate::diagnose;
use crate::gather;
use crate::render;
use crate::snapshot::Observations;

pub async fn run(config: &Config, check: &CheckConfig, out: &mut dyn Write) -> anyhow::Result<i32> {
    if let Some(code) = &check.explain {
        return explain(code, out);
    }
    let kube = client::connect(&config.kube).await?;
    let snapshot = gather::snapshot(&kube, &check.target).await?;
    let report = diagnose::diagnose(
        &snapshot,
        &Observations::default(),
        Some(check.target.to_ref()),
    );
    render::report(out, &report, &config.output, config.verbose > 0)
        .context("writing the report")?;
    out.flush().context("writing the report")?;
    Ok(report.exit_code())
}

fn explain(code: &str, out: &mut dyn Write) -> anyhow::Result<i32> {
    let wanted = code.trim().to_ascii_uppercase();
    let Some(text) = diagnose::explain(&wanted) else {
        bail!(
            "unknown finding code `{code}`: codes look like WSA030. Known codes: {}",
            diagnose::catalog()
                .iter()
                .map(|r| r.code)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    render::explanation(out, &text).context("writing the explanation")?;
    Ok(0)
}
