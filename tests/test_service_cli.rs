//! `test-service` without a cluster: help with examples, usage errors (exit
//! 2), and a missing kubeconfig explained (exit 2, nothing written).

mod support;

use std::process::{Command, Output, Stdio};

use support::text;

fn plugin(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp home");
    Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"))
        .args(args)
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-wsaffinity")
}

#[test]
fn test_service_help_has_examples() {
    let out = plugin(&["test-service", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for want in [
        "Usage: kubectl wsaffinity test-service [OPTIONS] [TARGET]",
        "--apply",
        "--delete",
        "Examples:",
        "kubectl wsaffinity test-service svc/dev-websocket-server -n dev --apply",
        "kubectl wsaffinity per-pod svc/dev-websocket-server-affinity-test",
        "kubectl wsaffinity spread svc/dev-websocket-server-affinity-test",
        "app.kubernetes.io/managed-by=kubectl-wsaffinity",
    ] {
        assert!(help.contains(want), "missing `{want}`:\n{help}");
    }
    let top = text(&plugin(&["--help"]).stdout);
    assert!(top.contains("test-service"), "{top}");
    let spread = text(&plugin(&["spread", "--help"]).stdout);
    assert!(spread.contains("--emit <TOOL>"), "{spread}");
    assert!(spread.contains("k6-operator"), "{spread}");
}

#[test]
fn test_service_usage_errors_exit_2() {
    for args in [
        vec!["test-service", "--apply", "--delete"],
        vec!["test-service", "pod/x"],
        vec!["test-service", "--bogus"],
    ] {
        let out = plugin(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            text(&out.stderr).contains("kubectl wsaffinity test-service"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn test_service_without_a_kubeconfig_exits_2() {
    let out = plugin(&["test-service", "svc/web", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.contains("kubeconfig"), "{err}");
}
