//! `logs` without a cluster: `--pattern` validation and flag conflicts are
//! usage errors (exit 2) that name the flag.

mod support;

use std::process::Output;

use support::run_offline;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn invalid_regex_is_a_clear_usage_error() {
    let out = run_offline(&["logs", "--pattern", "Active connections: (\\d+"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("invalid --pattern `Active connections: (\\d+`: unclosed group"),
        "{err}"
    );
    assert!(err.contains("Usage: kubectl wsaffinity logs"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn pattern_needs_exactly_one_capture_group() {
    for (pattern, groups) in [("Active connections: \\d+", "0"), ("(\\w+): (\\d+)", "2")] {
        let out = run_offline(&["logs", "--pattern", pattern]);
        assert_eq!(out.status.code(), Some(2), "{pattern}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "it has {groups} capture groups, it needs exactly one"
            )),
            "{err}"
        );
    }
}

#[test]
fn target_and_selector_conflict_and_limits_are_checked() {
    for args in [
        vec!["logs", "svc/web", "-l", "app=web"],
        vec!["logs", "--tail", "0"],
        vec!["logs", "--max-log-requests", "0"],
        vec!["logs", "--since", "soon"],
        vec!["logs", "--follow-duration", "5s"],
    ] {
        let out = run_offline(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn help_lists_the_flags_and_examples() {
    let out = run_offline(&["logs", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--pattern",
        "--follow",
        "--max-log-requests",
        "--tail",
        "--limit-bytes",
        "--since",
        "--selector",
        "--container",
        "Examples:",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(
        !help.contains("--follow-duration"),
        "hidden flag shown:\n{help}"
    );
}
