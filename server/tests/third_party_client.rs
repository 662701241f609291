//! The real binary against a third-party client: Python's `websockets`.
//! CI installs it (`pip install websockets`); without it this test fails and
//! says so.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_client.py");

fn python(url: &str, mode: &str) -> Command {
    let mut command = Command::new("python3");
    command
        .args([SCRIPT, url, mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run_python(url: &str, mode: &str) -> String {
    let output = timeout(Duration::from_secs(30), python(url, mode).output())
        .await
        .expect("python finishes in time")
        .expect("python3 must be installed to run this test");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() != Some(3),
        "the Python `websockets` client is missing: run `pip install websockets`\n{stderr}"
    );
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn python_websockets_client_gets_hello_echo_and_close_codes() {
    let mut server = Binary::start(&["--max-message-size", "1024"], &[]).await;
    let url = format!("ws://{}/ws", server.addr);

    assert_eq!(run_python(&url, "echo").await.trim(), "closed 1000");
    assert_eq!(run_python(&url, "too-big").await.trim(), "closed 1009");

    let mut waiting = python(&url, "wait").spawn().expect("start python3");
    let stdout = waiting.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = timeout(WAIT, lines.next_line())
        .await
        .expect("python connects in time")
        .expect("read python output");
    if first.as_deref() != Some("ready") {
        let output = waiting.wait_with_output().await.expect("python output");
        panic!(
            "python client did not connect (missing `pip install websockets`?): {first:?}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    server.signal("TERM");
    let last = timeout(WAIT, lines.next_line())
        .await
        .expect("python sees the close in time")
        .expect("read python output");
    assert_eq!(last.as_deref(), Some("closed 1001"));
    let status = timeout(WAIT, server.child.wait())
        .await
        .expect("server exits")
        .expect("wait for server");
    assert_eq!(status.code(), Some(0));
    let _ = timeout(WAIT, waiting.wait()).await;
}
