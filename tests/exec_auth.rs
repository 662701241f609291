//! Kubeconfigs whose user runs an exec credential plugin (as EKS, GKE and AKS
//! kubeconfigs do): the plugin runs the command, sends the token it returns,
//! and says clearly when the command fails. The lab (a local stand-in for the
//! Kubernetes API) serves TLS here, where a request without a token is 401.

#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::Run;
use wsaffinity_lab::{Lab, Scenario};

const SVC: &str = "svc/dev-websocket-server";

async fn tls_lab() -> Lab {
    support::start_lab(Scenario::DevOverlay, true, false).await
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    path
}

/// The lab's kubeconfig with its user replaced by an exec plugin.
fn exec_kubeconfig(lab: &Lab, dir: &Path, command: &Path, args: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(lab.kubeconfig_path()).expect("read kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    config["users"][0]["user"] = json!({
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": command,
            "args": args,
            "env": [{"name": "WSA_TEST", "value": "1"}],
            "interactiveMode": "Never",
            "provideClusterInfo": false,
        }
    });
    let path = dir.join("kubeconfig-exec");
    // JSON is YAML: kubeconfig readers accept it.
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("JSON")).expect("write");
    path
}

async fn plugin(kubeconfig: &Path, args: &[&str]) -> Run {
    support::run(kubeconfig, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_plugin_token_is_used() {
    let lab = tls_lab().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let calls = dir.path().join("calls");
    let body = format!(
        "[ \"$WSA_TEST\" = 1 ] || {{ echo 'env not passed' >&2; exit 1; }}\n\
         echo \"$1\" >> '{}'\n\
         cat <<'EOF'\n\
         {{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}\n\
         EOF\n",
        calls.display(),
        lab.token()
    );
    let script = write_script(dir.path(), "get-token", &body);
    let kubeconfig = exec_kubeconfig(&lab, dir.path(), &script, &["token", "--cluster=lab"]);

    let r = plugin(&kubeconfig, &["check", SVC, "-o", "json"]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).expect("JSON report");
    assert_eq!(report["service"]["sessionAffinity"], "ClientIP");
    let ran = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        ran.lines().any(|l| l == "token"),
        "the exec plugin ran with its args: {ran:?}"
    );

    // The same kubeconfig with no token at all is refused: the token above did the work.
    let text = std::fs::read_to_string(&kubeconfig).expect("read");
    let mut config: Value = serde_json::from_str(&text).expect("JSON");
    config["users"][0]["user"] = json!({});
    let anonymous = dir.path().join("kubeconfig-anonymous");
    std::fs::write(&anonymous, config.to_string()).expect("write");
    let r = plugin(&anonymous, &["check", SVC]).await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("401"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_exec_plugin_is_a_clear_error() {
    let lab = tls_lab().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let script = write_script(
        dir.path(),
        "get-token",
        "echo 'error: the SSO session has expired; run aws sso login' >&2\nexit 1\n",
    );
    let kubeconfig = exec_kubeconfig(&lab, dir.path(), &script, &[]);
    let r = plugin(&kubeconfig, &["check", SVC]).await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    let err = r.stderr.trim();
    assert!(err.starts_with("error:"), "{err}");
    assert!(
        err.contains(&format!("credential plugin `{}`", script.display())),
        "names the credential plugin: {err}"
    );
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(
        err.contains("SSO session has expired"),
        "shows its stderr: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one message: {err}");

    // A command that does not exist.
    let kubeconfig = exec_kubeconfig(&lab, dir.path(), &dir.path().join("no-such-helper"), &[]);
    let r = plugin(&kubeconfig, &["check", SVC]).await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no-such-helper"), "{}", r.stderr);
    assert!(r.stderr.contains("could not be started"), "{}", r.stderr);
}
