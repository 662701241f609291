//! Shell completion, end to end: `completion bash|zsh|fish|kubectl`, the
//! hidden `__complete` (cobra's format), Service names read from the lab (a
//! local stand-in for the Kubernetes API), and the real `kubectl` (1.26+)
//! running `kubectl_complete-wsaffinity` for `kubectl wsaffinity <TAB>`.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use wsaffinity_lab::{Lab, Scenario};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-wsaffinity");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const SUBCOMMANDS: [&str; 4] = ["check", "per-pod", "logs", "spread"];

fn plugin(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        // No ~/.kube/config of the machine running the tests.
        .env("HOME", std::env::temp_dir().join("wsaffinity-no-home"))
        .stdin(Stdio::null());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.output().expect("run kubectl-wsaffinity")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The candidates of cobra's `__complete` output (without help texts) and the directive.
fn parse_complete(text: &str) -> (Vec<String>, String) {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let directive = lines.pop().unwrap_or("").to_string();
    let values = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect();
    (values, directive)
}

/// What bash offers for `kubectl-wsaffinity WORDS<TAB>` with the generated
/// script sourced: the function `complete -p` names, called as bash calls it.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = stdout(&plugin(&["completion", "bash"], None));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubectl-wsaffinity.bash");
    std::fs::write(&path, script).expect("write script");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().copied().unwrap_or("");
    let previous = words
        .len()
        .checked_sub(2)
        .map_or("kubectl-wsaffinity", |i| words[i]);
    let driver = format!(
        "source '{}'\n\
         fn=$(complete -p kubectl-wsaffinity | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n\
         COMP_WORDS=(kubectl-wsaffinity {})\n\
         COMP_CWORD={}\n\
         \"$fn\" kubectl-wsaffinity '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        path.display(),
        quoted.join(" "),
        words.len(),
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &driver])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// clap_complete's bash script completes nothing after a subcommand when the
/// binary's name has a hyphen (clap-rs/clap#6421); ours must.
#[test]
fn bash_completes_subcommand_flags_and_their_values() {
    assert_eq!(bash_complete(&["ch"]), vec!["check"]);
    assert_eq!(bash_complete(&["check", "--exp"]), vec!["--explain"]);
    assert_eq!(
        bash_complete(&["spread", "--emit", ""]),
        vec!["artillery", "k6", "k6-operator"]
    );
    let per_pod = bash_complete(&["per-pod", "--con"]);
    assert!(per_pod.contains(&"--connect".to_string()), "{per_pod:?}");
}

#[test]
fn completion_scripts_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = plugin(&["completion", shell], None);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = stdout(&out);
        assert!(text.len() > 200, "{shell}: {text}");
        assert!(text.contains("kubectl-wsaffinity"), "{shell}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} script lacks {sub}");
        }
        assert!(
            !text.contains("__complete"),
            "{shell}: hidden subcommand leaked"
        );
    }
    let out = plugin(&["completion", "powershell"], None);
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}

#[test]
fn completion_kubectl_prints_the_checked_in_helper() {
    let out = plugin(&["completion", "kubectl"], None);
    assert!(out.status.success(), "{out:?}");
    let script =
        std::fs::read_to_string(Path::new(REPO).join("scripts/kubectl_complete-wsaffinity"))
            .expect("read the helper script");
    assert_eq!(stdout(&out), script);
    assert!(script.starts_with("#!/usr/bin/env sh\n"));
}

#[test]
fn complete_lists_subcommands() {
    let out = plugin(&["__complete", ""], None);
    assert!(out.status.success(), "{out:?}");
    let (values, directive) = parse_complete(&stdout(&out));
    for sub in SUBCOMMANDS {
        assert!(values.iter().any(|v| v == sub), "{values:?}");
    }
    assert!(!values.iter().any(|v| v == "__complete"), "{values:?}");
    assert_eq!(directive, ":4");
    // Help texts ride along after a tab, as cobra prints them.
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("check\t")),
        "{}",
        stdout(&out)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn complete_lists_flags() {
    let out = plugin(&["__complete", "check", "--"], None);
    let (values, directive) = parse_complete(&stdout(&out));
    for flag in [
        "--explain",
        "--namespace",
        "--context",
        "--kubeconfig",
        "--output",
    ] {
        assert!(values.iter().any(|v| v == flag), "{values:?}");
    }
    assert!(values.iter().all(|v| v.starts_with("--")), "{values:?}");
    assert_eq!(directive, ":4");

    let out = plugin(&["__complete", "check", "-o", ""], None);
    let (values, _) = parse_complete(&stdout(&out));
    assert_eq!(values, ["text", "wide", "json", "yaml"]);
}

#[test]
fn complete_without_a_cluster_is_quietly_empty() {
    let out = plugin(&["__complete", "check", ""], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), ":4\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An API that does not answer: still nothing, within the list timeout.
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .expect("write kubeconfig");
    let started = std::time::Instant::now();
    let out = plugin(&["__complete", "check", ""], Some(&kubeconfig));
    drop(listener);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), ":4\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Every subcommand completion offers has help with examples and the
/// `kubectl wsaffinity SUB` usage; `--version` prints the Cargo version.
#[test]
fn every_subcommand_has_examples_and_the_kubectl_usage() {
    let out = plugin(&["__complete", ""], None);
    let (subs, _) = parse_complete(&stdout(&out));
    assert!(subs.len() >= SUBCOMMANDS.len(), "{subs:?}");
    for sub in subs.iter().filter(|s| *s != "help") {
        let out = plugin(&[sub, "--help"], None);
        assert!(out.status.success(), "{sub}: {out:?}");
        let help = stdout(&out);
        assert!(
            help.contains("Examples:\n  # "),
            "{sub} --help has no examples:\n{help}"
        );
        assert!(
            help.contains(&format!("Usage: kubectl wsaffinity {sub}")),
            "{sub}: {help}"
        );
    }
    let out = plugin(&["--version"], None);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("kubectl-wsaffinity {}", env!("CARGO_PKG_VERSION"))
    );
}

async fn lab() -> Lab {
    support::start_lab(Scenario::DevOverlay, false, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_target_lists_the_namespaces_services() {
    let lab = lab().await;
    let kubeconfig = lab.kubeconfig_path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        plugin(&["__complete", "check", ""], Some(&kubeconfig))
    })
    .await
    .expect("join");
    let (values, directive) = parse_complete(&stdout(&out));
    assert!(
        values.iter().any(|v| v == "dev-websocket-server"),
        "{values:?}"
    );
    assert!(
        values.iter().any(|v| v == "svc/dev-websocket-server"),
        "{values:?}"
    );
    assert_eq!(directive, ":4");
    assert_eq!(lab.counts().get("list services"), 1, "one LIST");

    // The typed -n and --kubeconfig are used; svc/ narrows to that form.
    let kubeconfig = lab.kubeconfig_path().display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        plugin(
            &[
                "__complete",
                "--kubeconfig",
                &kubeconfig,
                "logs",
                "-n",
                "websocket-app-dev",
                "svc/d",
            ],
            None,
        )
    })
    .await
    .expect("join");
    let (values, _) = parse_complete(&stdout(&out));
    assert_eq!(values, ["svc/dev-websocket-server"]);

    // Another namespace has no Services.
    let kubeconfig = lab.kubeconfig_path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        plugin(
            &["__complete", "per-pod", "-n", "empty", ""],
            Some(&kubeconfig),
        )
    })
    .await
    .expect("join");
    assert_eq!(stdout(&out), ":4\n");
}

/// The real kubectl: `kubectl __complete wsaffinity ...` is what its shell
/// completion runs; it finds `kubectl_complete-wsaffinity` on PATH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_plugin_completion_uses_our_helper() {
    let version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| stdout(&o));
    let Some(version) = version else {
        eprintln!("kubectl not found: skipping");
        return;
    };
    // Plugin completion (`kubectl_complete-<plugin>`) came with kubectl 1.26;
    // Debian's kubernetes-client is older.
    let minor = version
        .split("v1.")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse::<u32>().ok());
    if minor.is_some_and(|m| m < 26) {
        eprintln!("kubectl older than 1.26 has no plugin completion: skipping ({version})");
        return;
    }
    let lab = lab().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("kubectl-wsaffinity");
    std::fs::copy(BIN, &bin).expect("copy the plugin");
    let helper = dir.path().join("kubectl_complete-wsaffinity");
    std::fs::copy(
        Path::new(REPO).join("scripts/kubectl_complete-wsaffinity"),
        &helper,
    )
    .expect("copy the helper");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let version_path = path.clone();
    let kubeconfig = lab.kubeconfig_path().to_path_buf();
    let run = move |words: &[&str]| {
        let out = Command::new("kubectl")
            .arg("__complete")
            .arg("wsaffinity")
            .args(words)
            .env("PATH", &path)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl __complete");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (subs, svcs) = tokio::task::spawn_blocking(move || (run(&[""]), run(&["check", "svc/"])))
        .await
        .expect("join");
    let version = Command::new("kubectl")
        .args(["wsaffinity", "--version"])
        .env("PATH", &version_path)
        .output()
        .expect("kubectl wsaffinity --version");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("kubectl-wsaffinity {}", env!("CARGO_PKG_VERSION"))
    );

    let (values, directive) = parse_complete(&subs);
    for sub in SUBCOMMANDS {
        assert!(values.iter().any(|v| v == sub), "kubectl printed: {subs}");
    }
    assert_eq!(directive, ":4", "{subs}");
    let (values, directive) = parse_complete(&svcs);
    assert_eq!(
        values,
        ["svc/dev-websocket-server"],
        "kubectl printed: {svcs}"
    );
    assert_eq!(directive, ":4");
}
