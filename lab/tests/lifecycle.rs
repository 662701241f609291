//! No pod process outlives the lab: after drop, after shutdown, after Ctrl-C of
//! `wsaffinity-lab up`, and (Linux) after the lab itself is SIGKILLed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wsaffinity_lab::{Lab, LabOptions, Scenario};

/// (pid, state) of live or zombie processes whose parent is `parent` and whose name is the pod server's.
fn server_children(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
        if ppid == parent && comm.starts_with("websocket-serv") {
            out.push((pid, state));
        }
    }
    out
}

/// Whether a pid is still a running (non-zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with(['Z', 'X']))
        })
        .is_some_and(|zombie| !zombie)
}

fn wait_gone(pids: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !pids.iter().any(|&p| alive(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test]
async fn library_drop_and_shutdown_leave_no_child() {
    let me = std::process::id();
    let lab = Lab::start(LabOptions::new(Scenario::DevOverlay))
        .await
        .expect("lab");
    assert_eq!(
        server_children(me).len(),
        2,
        "two pod processes while running"
    );
    drop(lab);
    assert_eq!(
        server_children(me),
        [],
        "no child (not even a zombie) after drop"
    );

    let lab = Lab::start(LabOptions::new(Scenario::DevOverlay))
        .await
        .expect("lab");
    assert_eq!(server_children(me).len(), 2);
    lab.shutdown().await;
    assert_eq!(server_children(me), [], "no child after shutdown");
}

/// Start `wsaffinity-lab up`, wait for it to run, return it, its pod pids
/// and its kubeconfig.
fn start_up() -> (std::process::Child, Vec<u32>, std::path::PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsaffinity-lab"))
        .arg("up")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wsaffinity-lab up starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut kubeconfig = None;
    for line in lines.by_ref().take(50) {
        let line = line.expect("line");
        if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(std::path::PathBuf::from(path.trim()));
        }
        if line.starts_with("Running") {
            break;
        }
    }
    let kubeconfig = kubeconfig.expect("up prints the kubeconfig export line");
    // Keep draining stdout so the lab never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let pods: Vec<u32> = server_children(child.id())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(pods.len(), 2, "up runs the dev overlay's two pods");
    (child, pods, kubeconfig)
}

#[test]
fn binary_stops_children_on_sigint_and_when_killed() {
    let (mut lab, pods, kubeconfig) = start_up();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(lab.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = lab.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "lab exits after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit after Ctrl-C: {status}");
    assert!(wait_gone(&pods), "pod processes stopped after Ctrl-C");
    assert!(!kubeconfig.exists(), "Ctrl-C removes the kubeconfig");

    if cfg!(target_os = "linux") {
        let (mut lab, pods, kubeconfig) = start_up();
        lab.kill().expect("SIGKILL the lab");
        let _ = lab.wait();
        // A SIGKILLed lab cannot remove its kubeconfig directory: the test does.
        if let Some(dir) = kubeconfig.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        assert!(
            wait_gone(&pods),
            "PDEATHSIG takes the pods down with a SIGKILLed lab"
        );
    }
}

#[test]
fn lab_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Lab>();
}

#[test]
fn demo_prints_the_commands_and_stops_its_pods() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsaffinity-lab"))
        .arg("demo")
        .stdin(Stdio::null())
        .output()
        .expect("demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo exits 0:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "TEST DOUBLE",
        "export KUBECONFIG=",
        "kubectl wsaffinity check svc/dev-websocket-server",
        "kubectl wsaffinity per-pod --connect 10",
        "kubectl wsaffinity logs",
        // The printed kubeconfig is gone when it exits: it says how to keep it.
        "The lab has stopped",
        "wsaffinity-lab demo --keep",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let kubeconfig = text
        .lines()
        .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        .expect("export line");
    assert!(
        !std::path::Path::new(kubeconfig).exists(),
        "{kubeconfig} should be removed with the lab"
    );
}
