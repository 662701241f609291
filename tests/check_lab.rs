//! `kubectl wsaffinity check` against the lab (a local stand-in for the
//! Kubernetes API): the plugin binary runs as a subprocess with `--kubeconfig`.
//! Each test starts its own lab without pod processes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use support::codes;
use wsaffinity_lab::{Lab, Scenario};

const DEV_NS: &str = "websocket-app-dev";
const DEV_SVC: &str = "svc/dev-websocket-server";

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

async fn lab(scenario: Scenario) -> Lab {
    support::start_lab(scenario, false, false).await
}

async fn lab_file(name: &str) -> Lab {
    lab(Scenario::File(scenario_path(name))).await
}

type Run = support::Run<i32>;

fn finding<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["code"] == code))
        .unwrap_or_else(|| {
            panic!(
                "no {code} in {}",
                serde_json::to_string_pretty(&report["findings"]).unwrap_or_default()
            )
        })
}

async fn run_env(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = support::command(lab.kubeconfig_path(), args);
    cmd.env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().await.expect("run kubectl-wsaffinity");
    Run::from_output(out, started.elapsed())
}

async fn run(lab: &Lab, args: &[&str]) -> Run {
    run_env(lab, args, &[]).await
}

fn assert_codes(run: &Run, want: &[&str]) {
    let got = run.codes();
    for code in want {
        assert!(
            got.iter().any(|c| c == code),
            "{code} missing; got {got:?}\nstderr: {}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_overlay_is_correct_for_production() {
    let lab = lab(Scenario::DevOverlay).await;
    let r = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_codes(&r, &["WSA010", "WSA013", "WSA020", "WSA030", "WSA040"]);
    let report = r.json();
    let verdict = report["verdict"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(verdict.contains("correct for production"), "{verdict}");
    assert_eq!(report["service"]["sessionAffinity"], "ClientIP");
    assert_eq!(report["endpoints"].as_array().map(Vec::len), Some(2));
    assert!(
        report["routes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["controller"] == "ingress-nginx"))
    );
    assert!(
        report["paths"].as_array().is_some_and(|p| p.len() >= 3),
        "{}",
        report["paths"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_and_no_namespace_use_the_contexts_only_service() {
    let lab = lab(Scenario::DevOverlay).await;
    // The lab's context namespace is the dev overlay's.
    let r = run(&lab, &["check", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["service"]["name"], "dev-websocket-server");
    assert_eq!(r.json()["target"]["name"], "dev-websocket-server");
    assert_eq!(r.json()["namespace"], DEV_NS);
    // ingress/ and deploy/ targets resolve to the same Service.
    for target in [
        "ingress/dev-websocket-server",
        "deploy/dev-websocket-server",
    ] {
        let r = run(&lab, &["check", target, "-n", DEV_NS, "-o", "json"]).await;
        assert_eq!(r.code, 0, "{target}: {}", r.stderr);
        assert_eq!(
            r.json()["service"]["name"],
            "dev-websocket-server",
            "{target}"
        );
    }
}

/// kubectl skips the files a `KUBECONFIG` list names that do not exist
/// (`KUBECONFIG=~/.kube/gone:~/.kube/config` keeps working); so does the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeconfig_list_with_a_missing_file_still_works() {
    let lab = lab(Scenario::DevOverlay).await;
    let list = std::env::join_paths([Path::new("/nonexistent/kubeconfig"), lab.kubeconfig_path()])
        .expect("join KUBECONFIG");
    for extra in [&[][..], &["--context", "wsaffinity-lab"][..]] {
        let mut args = vec!["check", DEV_SVC, "-o", "json"];
        args.extend_from_slice(extra);
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"))
            .args(&args)
            .env("KUBECONFIG", &list)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .expect("run kubectl-wsaffinity");
        let r = Run::from_output(out, std::time::Duration::ZERO);
        assert_eq!(r.code, 0, "{extra:?}: {}", r.stderr);
        assert_eq!(r.json()["namespace"], DEV_NS, "{extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_namespace_comes_from_the_context() {
    let lab = lab_file("one-ready-of-three.yaml").await;
    // The scenario's LabConfig puts namespace `ws` in the kubeconfig context.
    let r = run(&lab, &["check", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["namespace"], "ws");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_mismatch_is_wsa002() {
    let lab = lab_file("selector-mismatch.yaml").await;
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_codes(&r, &["WSA002"]);
    assert_eq!(r.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ready_pod_is_wsa003() {
    let lab = lab_file("no-ready.yaml").await;
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_codes(&r, &["WSA003"]);
    assert_eq!(r.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ready_of_three_is_wsa004_and_wsa005() {
    let lab = lab_file("one-ready-of-three.yaml").await;
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_codes(&r, &["WSA004", "WSA005"]);
    assert_eq!(r.code, 0, "warnings only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_pitfalls_are_named() {
    let lab = lab_file("nginx-pitfalls.yaml").await;
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_codes(&r, &["WSA033", "WSA032", "WSA012", "WSA034"]);
    assert_eq!(r.code, 0, "warnings only: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_ingresses_are_a_note_and_the_check_goes_on() {
    let lab = lab(Scenario::DevOverlay).await;
    lab.forbid("ingresses");
    let r = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_codes(&r, &["WSA037", "WSA010"]);
    let report = r.json();
    assert!(
        report["skipped"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["reason"] == "forbidden")),
        "{}",
        report["skipped"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_service_is_wsa001_with_a_close_name() {
    let lab = lab(Scenario::DevOverlay).await;
    let r = run(
        &lab,
        &[
            "check",
            "svc/dev-websocket-servr",
            "-n",
            DEV_NS,
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    let f = finding(&report, "WSA001");
    let text = format!("{} {}", f["detail"], f["fix"]);
    assert!(
        text.contains("dev-websocket-server"),
        "suggests the close name: {text}"
    );
    // The text output says the same.
    let t = run(&lab, &["check", "svc/dev-websocket-servr", "-n", DEV_NS]).await;
    assert_eq!(t.code, 1);
    assert!(
        t.stdout.contains("WSA001") && t.stdout.contains("dev-websocket-server"),
        "{}",
        t.stdout
    );
}

async fn controller_shows_up(file: &str, controller: &str) {
    let lab = lab_file(file).await;
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert!(r.code == 0 || r.code == 1, "{file}: {}", r.stderr);
    assert_codes(&r, &["WSA036"]);
    let report = r.json();
    let routes = report["routes"].as_array().cloned().unwrap_or_default();
    assert!(
        routes
            .iter()
            .any(|x| x["controller"] == controller && x["affinity"] != "none"),
        "{file}: no {controller} route with affinity in {}",
        serde_json::to_string_pretty(&routes).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_service_sticky_cookie() {
    controller_shows_up("traefik.yaml", "traefik").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_cookie_persistence() {
    controller_shows_up("haproxy.yaml", "haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_alb_target_group_stickiness() {
    controller_shows_up("alb.yaml", "aws-alb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gke_backend_config_session_affinity() {
    controller_shows_up("gke.yaml", "gke").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contour_httpproxy_cookie_policy() {
    controller_shows_up("contour.yaml", "contour").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_destination_rule_consistent_hash() {
    controller_shows_up("istio.yaml", "istio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_httproute_session_persistence() {
    controller_shows_up("gateway-api.yaml", "gateway-api").await;
}

fn scaled(replicas: usize) -> String {
    let text = std::fs::read_to_string(scenario_path("one-ready-of-three.yaml")).expect("scenario");
    text.replace("replicas: 3", &format!("replicas: {replicas}"))
        .replace("not-ready: \"2\"", "not-ready: \"0\"")
}

async fn check_requests(replicas: usize) -> u64 {
    let lab = lab(Scenario::Yaml(scaled(replicas))).await;
    lab.reset_counts();
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["endpoints"].as_array().map(Vec::len),
        Some(replicas)
    );
    let counts = lab.counts();
    eprintln!("{replicas} pods: {counts:?}");
    counts.total()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_count_does_not_depend_on_pods() {
    let two = check_requests(2).await;
    let many = check_requests(200).await;
    assert_eq!(two, many, "requests with 2 pods vs 200 pods");
    assert!(two <= 8, "check made {two} requests");
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/check-dev-overlay.txt")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_text_for_the_dev_overlay() {
    let lab = lab(Scenario::DevOverlay).await;
    let r = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "--no-color"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &r.stdout).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test check_lab",
            path.display()
        )
    });
    if r.stdout != want {
        let (line, got, expected) = r
            .stdout
            .lines()
            .chain(std::iter::repeat("<end of output>"))
            .zip(want.lines().chain(std::iter::repeat("<end of file>")))
            .take(r.stdout.lines().count().max(want.lines().count()))
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .map(|(i, (g, w))| (i + 1, g.to_string(), w.to_string()))
            .unwrap_or((0, "(line endings differ)".into(), String::new()));
        panic!(
            "text output differs from {} at line {line}:\n  got:      {got}\n  expected: {expected}\n\
             If the change is intended, regenerate: UPDATE_GOLDEN=1 cargo test -p kubectl-wsaffinity --test check_lab golden\n\
             --- full output ---\n{}",
            path.display(),
            r.stdout
        );
    }
    assert!(!r.stdout.contains('\u{1b}'));
}

/// Runs the plugin under a pseudo-terminal (util-linux `script`), so colour is allowed.
async fn run_on_tty(lab: &Lab, extra: &str, env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_kubectl-wsaffinity");
    let cmdline = format!(
        "{bin} check {DEV_SVC} -n {DEV_NS} --kubeconfig {} {extra}",
        lab.kubeconfig_path().display()
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qec", &cmdline, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_on_a_tty_unless_no_color() {
    if support::script_missing() {
        return;
    }
    let lab = lab(Scenario::DevOverlay).await;
    let coloured = run_on_tty(&lab, "", &[]).await;
    assert!(
        coloured.contains('\u{1b}'),
        "expected colour on a TTY:\n{coloured}"
    );
    let env_off = run_on_tty(&lab, "", &[("NO_COLOR", "1")]).await;
    assert!(
        env_off.contains("Verdict") && !env_off.contains('\u{1b}'),
        "NO_COLOR ignored:\n{env_off}"
    );
    let flag_off = run_on_tty(&lab, "--no-color", &[]).await;
    assert!(
        flag_off.contains("Verdict") && !flag_off.contains('\u{1b}'),
        "--no-color ignored:\n{flag_off}"
    );
    // Piped output is never coloured.
    let piped = run(&lab, &["check", DEV_SVC, "-n", DEV_NS]).await;
    assert!(!piped.stdout.contains('\u{1b}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_output_parses_back_to_the_json() {
    let lab = lab(Scenario::DevOverlay).await;
    let json = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-o", "json"])
        .await
        .json();
    let yaml = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-o", "yaml"]).await;
    assert_eq!(yaml.code, 0, "{}", yaml.stderr);
    let back: Value = serde_saphyr::from_str(&yaml.stdout).expect("YAML parses");
    assert_eq!(back, json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_adds_columns() {
    let lab = lab(Scenario::DevOverlay).await;
    let text = run(&lab, &["check", DEV_SVC, "-n", DEV_NS]).await.stdout;
    let wide = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-o", "wide"])
        .await
        .stdout;
    for section in [
        "Verdict",
        "Service",
        "Endpoints",
        "Routes",
        "Paths",
        "Findings",
    ] {
        assert!(text.contains(section), "{section}:\n{text}");
    }
    assert!(
        !text.contains("TERMINATING") && wide.contains("TERMINATING"),
        "{wide}"
    );
    assert!(
        wide.contains("TIMEOUTS") && wide.contains("evidence:"),
        "{wide}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_each_api_call_without_the_token() {
    let lab = lab(Scenario::DevOverlay).await;
    let r = run(&lab, &["check", DEV_SVC, "-n", DEV_NS, "-v"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("GET /api/v1/namespaces/websocket-app-dev/services/dev-websocket-server 200"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("/apis/discovery.k8s.io/v1/namespaces/websocket-app-dev/endpointslices"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(lab.token()),
        "token leaked:\n{}",
        r.stderr
    );
    assert!(!r.stderr.to_lowercase().contains("bearer"), "{}", r.stderr);
    // Not-installed routing kinds are listed with -v.
    assert!(
        r.stdout.contains("Skipped") && r.stdout.contains("not installed"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_is_not_an_error() {
    let lab = lab(Scenario::DevOverlay).await;
    for format in ["text", "json", "yaml"] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-wsaffinity"))
            .args(["check", DEV_SVC, "-n", DEV_NS, "-o", format, "--kubeconfig"])
            .arg(lab.kubeconfig_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the read end before the plugin writes (as `| head -0` would).
        drop(child.stdout.take());
        let out = child.wait_with_output().await.expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_services_without_a_target_list_the_candidates() {
    let mut yaml =
        std::fs::read_to_string(scenario_path("one-ready-of-three.yaml")).expect("scenario");
    yaml.push_str("---\napiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: ws}\n");
    yaml.push_str("spec:\n  selector: {app: other}\n  ports: [{port: 80}]\n");
    let lab = lab(Scenario::Yaml(yaml)).await;
    let r = run(&lab, &["check"]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("Services: other, ws"), "{}", r.stderr);
    assert!(
        r.stderr.contains("kubectl wsaffinity check svc/other"),
        "{}",
        r.stderr
    );
    // The advice repeats the subcommand that was run, and the -n given, so it
    // runs as printed.
    for (args, advice) in [
        (&["logs"][..], "Pass one: kubectl wsaffinity logs svc/other"),
        (
            &["per-pod", "-n", "ws"][..],
            "Pass one: kubectl wsaffinity per-pod -n ws svc/other",
        ),
    ] {
        let r = run(&lab, args).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains(advice), "{args:?}: {}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_pods_exit_2_naming_the_permission() {
    let lab = lab(Scenario::DevOverlay).await;
    lab.forbid("pods");
    let r = run(&lab, &["check", DEV_SVC, "-n", DEV_NS]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("cannot list pods in namespace websocket-app-dev"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Ask for `list` on `pods`"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_routing_crd_is_a_note_and_missing_ones_are_skipped_quietly() {
    // HTTPRoute is installed in this scenario (a missing kind answers 404 before RBAC).
    let lab = lab_file("gateway-api.yaml").await;
    lab.forbid("httproutes");
    let r = run(&lab, &["check", "svc/ws", "-o", "json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert!(
        finding(&report, "WSA037")
            .to_string()
            .contains("httproutes"),
        "{}",
        report["findings"]
    );
    let skipped = report["skipped"].as_array().cloned().unwrap_or_default();
    let reason = |res: &str| {
        skipped
            .iter()
            .find(|s| s["resource"].as_str().is_some_and(|x| x.starts_with(res)))
            .map(|s| s["reason"].clone())
    };
    assert_eq!(
        reason("httproutes."),
        Some(Value::from("forbidden")),
        "{skipped:?}"
    );
    assert_eq!(
        reason("destinationrules."),
        Some(Value::from("notInstalled")),
        "{skipped:?}"
    );
    // A CRD that is not installed gives no finding.
    assert_eq!(codes(&report).iter().filter(|c| *c == "WSA037").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_cuts_a_slow_api() {
    let lab = lab(Scenario::DevOverlay).await;
    lab.set_latency(std::time::Duration::from_secs(3));
    let started = std::time::Instant::now();
    let r = run(
        &lab,
        &["check", DEV_SVC, "-n", DEV_NS, "--request-timeout", "200ms"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("--request-timeout"), "{}", r.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
