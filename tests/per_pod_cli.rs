//! `per-pod` flags, without a cluster: usage errors exit 2 before any API call.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-wsaffinity");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the plugin")
}

#[test]
fn help_lists_every_flag() {
    let out = run(&["per-pod", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--connect",
        "--parallel",
        "--all-pods",
        "--port",
        "--path",
        "--no-echo",
        "--hold",
        "--timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [
        ["per-pod", "--connect", "0"],
        ["per-pod", "--parallel", "0"],
        ["per-pod", "--timeout", "0"],
        ["per-pod", "--hold", "soon"],
        ["per-pod", "--port", "70000"],
    ] {
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn no_cluster_is_exit_2_with_a_hint() {
    let out = run(&["per-pod", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kubeconfig"), "{err}");
}
