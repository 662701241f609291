//! Pod processes, shared by the fake API and the node agent: the real
//! `websocket-server`, one per pod; its stdout and stderr are the pod's log;
//! it dies with the lab (PR_SET_PDEATHSIG).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::logs::{LogBuffer, LogLine, LogQuery};

const SERVER_BIN: &str = "websocket-server";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// `WSAFFINITY_SERVER_BIN`, else beside the current executable (or its parent dir
/// for test binaries in `target/*/deps`), else `PATH`.
pub fn find_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("WSAFFINITY_SERVER_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("WSAFFINITY_SERVER_BIN={} is not a file", p.display());
    }
    let exe_name = format!("{SERVER_BIN}{}", std::env::consts::EXE_SUFFIX);
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(Path::to_path_buf);
        let candidates = dir
            .iter()
            .flat_map(|d| [d.join(&exe_name), d.join("..").join(&exe_name)]);
        for c in candidates {
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join(&exe_name);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    bail!(
        "the pod server binary `{SERVER_BIN}` was not found (looked at $WSAFFINITY_SERVER_BIN, \
         next to the current executable, and on PATH); run `cargo build -p websocket-server` first"
    )
}

/// A started pod process.
pub struct PodProcess {
    pub child: Child,
    pub backend: SocketAddr,
}

/// Make the child die with the lab even if the lab is SIGKILLed (Linux only).
/// PDEATHSIG fires when the *thread* that forked exits, so spawn from a runtime
/// worker or the main thread, never from a short-lived blocking-pool thread.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: getpid is async-signal-safe and has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("lab exited while starting a pod"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// The address in a `... listening on 127.0.0.1:PORT` line.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    logs: Arc<LogBuffer>,
    mut ready: Option<oneshot::Sender<SocketAddr>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    if let Some(addr) = parse_listening(&line)
                        && let Some(tx) = ready.take()
                    {
                        let _ = tx.send(addr);
                    }
                    logs.append(&line);
                }
            }
        }
    })
}

/// Start a pod's server and wait until it reports its address.
pub async fn spawn_listening(
    cmd: Command,
    pod: &str,
    logs: Arc<LogBuffer>,
) -> anyhow::Result<PodProcess> {
    let (child, listening) = start(cmd, pod, logs.clone())?;
    wait_listening(child, listening, pod, &logs).await
}

/// The environment a container starts from: empty, as a kubelet's is, but
/// for the image's usual `PATH` and `HOSTNAME` (the pod's name). Nothing
/// leaks from the lab's own: its `RUST_LOG=warn` once silenced every pod's
/// `Active connections` lines.
pub fn clean_env(cmd: &mut Command, pod: &str) {
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", pod);
}

/// Spawn `cmd` as a pod's container: output into `logs` (closed when both
/// pipes end), killed on drop and when this process dies.
pub fn start(
    mut cmd: Command,
    pod: &str,
    logs: Arc<LogBuffer>,
) -> anyhow::Result<(Child, oneshot::Receiver<SocketAddr>)> {
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the process of pod {pod}"))?;
    let (tx, rx) = oneshot::channel();
    let (tx_err, rx_err) = oneshot::channel();
    let out = child.stdout.take().map(|o| pump(o, logs.clone(), Some(tx)));
    let err = child
        .stderr
        .take()
        .map(|e| pump(e, logs.clone(), Some(tx_err)));
    // When both pipes end the container has exited: followers of its log stop.
    let closer = logs;
    let (first_tx, first_rx) = oneshot::channel();
    tokio::spawn(async move {
        let first = async {
            tokio::select! {
                Ok(a) = rx => Some(a),
                Ok(a) = rx_err => Some(a),
                else => None,
            }
        };
        if let Some(a) = first.await {
            let _ = first_tx.send(a);
        }
    });
    tokio::spawn(async move {
        for h in [out, err].into_iter().flatten() {
            let _ = h.await;
        }
        closer.close();
    });
    Ok((child, first_rx))
}

/// How long a started server gets to log its count after `listening on`.
const BASELINE_WAIT: Duration = Duration::from_secs(1);

/// The companion server logs its `Active connections: 0` baseline right
/// after `listening on`. Waits (bounded) until it is in the log, so a line a
/// test appends once the pod has started is newer than the baseline.
async fn baseline_after_listening(logs: &LogBuffer) {
    let newest_two = LogQuery {
        tail_lines: Some(2),
        ..LogQuery::default()
    };
    let mut ticks = logs.subscribe();
    let logged = async {
        loop {
            let (newest, _) = logs.select(&newest_two, jiff::Timestamp::now());
            if newest_is_baseline(&newest) {
                return;
            }
            if ticks.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(BASELINE_WAIT, logged).await;
}

/// The two newest lines are `listening on …` and then a count.
fn newest_is_baseline(newest: &[LogLine]) -> bool {
    match newest {
        [listening, count] => {
            parse_listening(&listening.text).is_some()
                && count.text.contains("Active connections: ")
        }
        _ => false,
    }
}

async fn wait_listening(
    mut child: Child,
    listening: oneshot::Receiver<SocketAddr>,
    pod: &str,
    logs: &LogBuffer,
) -> anyhow::Result<PodProcess> {
    match tokio::time::timeout(START_TIMEOUT, listening).await {
        Ok(Ok(backend)) => {
            baseline_after_listening(logs).await;
            Ok(PodProcess { child, backend })
        }
        Ok(Err(_)) => {
            let (lines, _) = logs.since_seq(0);
            let tail: String = lines
                .iter()
                .rev()
                .take(5)
                .rev()
                .map(|l| l.text.as_str())
                .collect();
            bail!("pod {pod} server exited before listening; its output:\n{tail}")
        }
        Err(_) => {
            let _ = child.start_kill();
            bail!("pod {pod} server did not print `listening on` within {START_TIMEOUT:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<LogLine> {
        let logs = LogBuffer::default();
        for t in texts {
            logs.append(t);
        }
        logs.since_seq(0).0
    }

    #[test]
    fn the_baseline_is_a_count_right_after_listening() {
        let listening = "2026-12-05T02:00:00Z INFO listening on 10.244.1.2:8080\n";
        let count = "2026-12-05T02:00:00Z INFO Active connections: 0\n";
        assert!(newest_is_baseline(&lines(&[listening, count])));
        assert!(!newest_is_baseline(&lines(&[count, listening])));
        assert!(!newest_is_baseline(&lines(&[listening])));
        assert!(!newest_is_baseline(&lines(&[listening, "INFO other\n"])));
    }

    #[tokio::test]
    async fn a_started_pod_waits_for_its_baseline_but_not_forever() {
        let logs = Arc::new(LogBuffer::default());
        logs.append("INFO listening on 127.0.0.1:4567\n");
        let later = logs.clone();
        let appender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            later.append("INFO Active connections: 0\n");
        });
        baseline_after_listening(&logs).await;
        let (all, _) = logs.since_seq(0);
        assert_eq!(all.len(), 2, "returned once the baseline was logged");
        appender.await.unwrap();

        // A server that logs no count after `listening on` costs one wait.
        let silent = LogBuffer::default();
        silent.append("INFO listening on 127.0.0.1:4568\n");
        let started = std::time::Instant::now();
        baseline_after_listening(&silent).await;
        assert!(
            started.elapsed() >= BASELINE_WAIT,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn parses_listening_lines() {
        assert_eq!(
            parse_listening("2026-11-26T23:40:01.123Z INFO listening on 127.0.0.1:4567"),
            Some("127.0.0.1:4567".parse().unwrap())
        );
        assert_eq!(
            parse_listening("{\"message\":\"listening on 127.0.0.1:80\"}"),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(parse_listening("nothing"), None);
    }
}
