//! `-o json` and `-o yaml`: the [`Report`] serialised as is (camelCase fields).

use std::io::{self, Write};

use crate::report::Report;

pub fn json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    // Keep the io error's kind, so a closed pipe stays a BrokenPipe.
    serde_json::to_writer_pretty(&mut *out, report).map_err(|e| match e.io_error_kind() {
        Some(kind) => io::Error::new(kind, e),
        None => io::Error::other(e),
    })?;
    writeln!(out)
}

pub fn yaml(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let text = serde_saphyr::to_string(report).map_err(io::Error::other)?;
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}
