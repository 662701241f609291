//! The only code that prints. It lays out a [`Report`] and decides nothing:
//! text (sections and tables, colour only when [`OutputOptions::color`]),
//! `-o wide` (more columns), `-o json` and `-o yaml` (the output contract).

pub mod bar;
pub mod logs;
pub mod per_pod;
pub mod spread;
pub mod structured;
pub mod table;
pub mod test_service;
pub mod text;

use std::io::{self, Write};

use crate::config::{OutputFormat, OutputOptions};
use crate::report::Report;

/// Writes the report in the chosen format.
pub fn report(
    out: &mut dyn Write,
    report: &Report,
    opts: &OutputOptions,
    show_skipped: bool,
) -> io::Result<()> {
    match opts.format {
        OutputFormat::Text => text::write(
            out,
            report,
            &text::TextOptions {
                wide: false,
                color: opts.color,
                show_skipped,
            },
        ),
        OutputFormat::Wide => text::write(
            out,
            report,
            &text::TextOptions {
                wide: true,
                color: opts.color,
                show_skipped,
            },
        ),
        OutputFormat::Json => structured::json(out, report),
        OutputFormat::Yaml => structured::yaml(out, report),
    }
}

/// Prints a long explanation (`--explain`), ending with one newline.
pub fn explanation(out: &mut dyn Write, text: &str) -> io::Result<()> {
    writeln!(out, "{}", text.trim_end())
}
