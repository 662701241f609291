//! `spread --emit`: the same scenario as `spread` (URL, headers, K clients ×
//! M connections, the hello's `pod` field) for load-testing tools that run at
//! scale — an Artillery scenario, a k6 script, a k6-operator `TestRun`.
//!
//! Generators: options in, text out; nothing here connects or prints. What a
//! tool cannot do the way `spread` does (cookies in Artillery, `--source-ip`)
//! is said in the file's leading comment, and what changes the test itself
//! (cookie affinity in Artillery) is also in [`warnings`], which the caller
//! prints on stderr so a redirected stdout holds just the file.
//!
//! This file dispatches to one file per tool; what the tools share (quoting,
//! the `spread` line, `--resolve`, headers) is in `common.rs`, below them.

pub mod artillery;
mod common;
pub mod k6;

pub use k6::K6_NAME;

use crate::probe::url::UrlOptions;

/// Which file `--emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Artillery YAML, `engine: ws`.
    Artillery,
    /// A k6 script (k6/ws).
    K6,
    /// A k6-operator `TestRun` manifest that runs the k6 script in the cluster.
    K6Operator,
}

/// The file for `format`, from the validated `spread` options. `namespace`
/// (`-n`) goes into the TestRun manifest and its instructions.
pub fn render(format: Format, opts: &UrlOptions, namespace: Option<&str>) -> String {
    match format {
        Format::Artillery => artillery::scenario(opts),
        Format::K6 => k6::script(opts),
        Format::K6Operator => k6::test_run(opts, namespace),
    }
}

/// One-line warnings about what the file for `format` does differently
/// from `spread` with the same options (for stderr, not the file).
pub fn warnings(format: Format, opts: &UrlOptions) -> Vec<String> {
    let mut out = match format {
        Format::Artillery => artillery::warnings(opts),
        Format::K6 | Format::K6Operator => Vec::new(),
    };
    if !opts.settings.seed_cookies.is_empty() {
        out.push(
            "--cookie is not written into the script: each virtual user starts with an empty jar (add the cookie to the script by hand to replay it)".to_string(),
        );
    }
    out
}
