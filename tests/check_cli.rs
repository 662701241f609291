//! `check` without a cluster: usage errors, `--explain`, unreachable API,
//! bad kubeconfig. Exit codes per DESIGN.md: 2 for usage/connection problems.

mod support;

use std::path::PathBuf;

use support::{offline_command, run_offline, text};

#[test]
fn bad_flags_exit_2_with_usage() {
    for args in [
        vec!["check", "--bogus"],
        vec!["check", "-o", "xml"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = run_offline(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains("Usage: kubectl wsaffinity"), "{args:?}: {err}");
    }
}

#[test]
fn bad_target_syntax_exits_2_and_names_the_forms() {
    let out = run_offline(&["check", "pod/web"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("svc/NAME"), "{err}");
}

#[test]
fn bad_request_timeout_exits_2() {
    let out = run_offline(&["check", "--request-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("5s, 1m"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_has_examples_and_kubectl_usage() {
    let out = run_offline(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: kubectl wsaffinity check"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("--request-timeout"), "{help}");
}

#[test]
fn explain_prints_the_long_explanation_without_a_cluster() {
    let out = run_offline(&["check", "--explain", "WSA030"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    assert!(body.contains("WSA030"), "{body}");
    assert!(body.lines().count() > 3, "a long explanation, got:\n{body}");
    // Lower case works as rustc --explain does.
    let lower = run_offline(&["check", "--explain", "wsa030"]);
    assert_eq!(text(&lower.stdout), body);
}

#[test]
fn unknown_explain_code_exits_2() {
    let out = run_offline(&["check", "--explain", "WSA999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("WSA030"),
        "lists known codes: {}",
        text(&out.stderr)
    );
}

fn temp_kubeconfig(name: &str, server: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "wsaffinity-check-cli-{}-{name}.yaml",
        std::process::id()
    ));
    let body = support::token_kubeconfig(server, "t0ps3cret");
    std::fs::write(&path, body).expect("write kubeconfig");
    path
}

#[test]
fn unreachable_api_exits_2_and_names_the_server() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let kc = temp_kubeconfig("unreachable", "http://127.0.0.1:1");
    let out = run_offline(&[
        "check",
        "svc/web",
        "--kubeconfig",
        kc.to_str().expect("utf8 path"),
    ]);
    let _ = std::fs::remove_file(&kc);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("http://127.0.0.1:1"), "{err}");
    assert!(err.contains("cannot reach the Kubernetes API"), "{err}");
    assert!(!err.contains("t0ps3cret"), "{err}");
}

#[test]
fn missing_kubeconfig_exits_2_with_the_flag_to_use() {
    let out = run_offline(&["check", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/kubeconfig") && err.contains("--kubeconfig PATH"),
        "{err}"
    );
}

#[test]
fn unknown_context_exits_2() {
    let kc = temp_kubeconfig("context", "http://127.0.0.1:1");
    let out = run_offline(&[
        "check",
        "--kubeconfig",
        kc.to_str().expect("utf8 path"),
        "--context",
        "nope",
    ]);
    let _ = std::fs::remove_file(&kc);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("kubectl config get-contexts"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_kubeconfig_at_all_exits_2() {
    // No KUBECONFIG, HOME without .kube, not in a cluster.
    let out = offline_command()
        .args(["check"])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--kubeconfig"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn malformed_kubeconfig_exits_2() {
    let path = std::env::temp_dir().join(format!(
        "wsaffinity-check-cli-{}-bad.yaml",
        std::process::id()
    ));
    std::fs::write(&path, "clusters: [this is: not: valid").expect("write");
    let out = run_offline(&["check", "--kubeconfig", path.to_str().expect("utf8 path")]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot use kubeconfig"),
        "{}",
        text(&out.stderr)
    );
}
