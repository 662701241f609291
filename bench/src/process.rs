//! Servers under test as child processes: start, learn the address, read
//! the resident memory, kill on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A server child process; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// The stdout file, removed on drop.
    log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// A fresh file name in the temp directory for a child's stdout.
fn tempfile_path(program: &Path) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("server");
    std::env::temp_dir().join(format!(
        "wsaffinity-bench-{}-{}-{name}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Server {
    /// Starts `program args…` with stdout to a file (nobody pays for reading
    /// it) and waits (at most 20 s) for its `listening on ADDR` line.
    pub async fn start(program: &Path, args: &[&str]) -> anyhow::Result<Server> {
        let log = tempfile_path(program);
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("no pid")?;
        for _ in 0..2000 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("");
                let addr: SocketAddr = addr.parse().context("bad `listening on` address")?;
                return Ok(Server {
                    child,
                    addr,
                    pid,
                    log: Some(log),
                });
            }
            if child.try_wait()?.is_some() {
                let _ = std::fs::remove_file(&log);
                bail!("{} exited before `listening on`", program.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = std::fs::remove_file(&log);
        bail!("{} printed no `listening on` in 20 s", program.display())
    }

    /// Starts a server that prints nothing (websocat) on a known address and
    /// waits (at most 20 s) until it accepts TCP connections.
    pub async fn start_at(
        program: &Path,
        args: &[&str],
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("no pid")?;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                // Let the server drop that probe connection.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(Server {
                    child,
                    addr,
                    pid,
                    log: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} did not accept on {addr} within 20 s", program.display())
    }

    /// VmRSS from /proc/PID/status, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// A free port on 127.0.0.1 (for servers that cannot report theirs).
pub fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}
