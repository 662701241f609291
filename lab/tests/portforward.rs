//! Port-forward through the lab with kube-rs's `Api::<Pod>::portforward`, as the plugin does it.

mod common;

use std::time::{Duration, Instant};

use common::{NS, client, close, dev_lab, echo, eventually, last_active, ws_over};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_hello_and_echo_through_each_pod() {
    let lab = dev_lab().await;
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    for name in lab.pods(NS) {
        let mut pf = pods.portforward(&name, &[8080]).await.expect("portforward");
        let stream = pf.take_stream(8080).expect("stream");
        let (mut ws, hello) = ws_over(stream).await;
        assert_eq!(hello["type"], "hello");
        assert_eq!(
            hello["pod"],
            name.as_str(),
            "the forward reached the pod it named"
        );
        echo(&mut ws, "ping from the lab test").await;
        close(ws).await;
        pf.join().await.expect("forwarder ends cleanly");
    }
    assert_eq!(lab.counts().get("create pods/portforward"), 2);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_error_and_unexposed_port_arrive_on_the_error_channel() {
    let lab = dev_lab().await;
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    let names = lab.pods(NS);

    lab.inject_portforward_error(NS, &names[0], "injected by the test");
    let mut pf = pods
        .portforward(&names[0], &[8080])
        .await
        .expect("portforward");
    let err = pf.take_error(8080).expect("error future");
    let msg = tokio::time::timeout(Duration::from_secs(5), err)
        .await
        .expect("error in time");
    let msg = msg.expect("an error message");
    assert!(
        msg.starts_with("error forwarding port 8080 to pod "),
        "{msg}"
    );
    assert!(msg.contains("injected by the test"), "{msg}");
    drop(pf);

    let mut pf = pods
        .portforward(&names[1], &[9999])
        .await
        .expect("portforward");
    let msg = tokio::time::timeout(
        Duration::from_secs(5),
        pf.take_error(9999).expect("error future"),
    )
    .await
    .expect("error in time")
    .expect("an error message");
    assert!(msg.contains("connection refused"), "{msg}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_forwards_show_in_the_pod_log() {
    let lab = dev_lab().await;
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    let name = lab.pods(NS)[0].clone();
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut pf = pods.portforward(&name, &[8080]).await.expect("portforward");
        let (ws, hello) = ws_over(pf.take_stream(8080).expect("stream")).await;
        assert_eq!(hello["pod"], name.as_str());
        open.push((pf, ws));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = last_active(&pods, &name).await;
        if seen == Some(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        Some(20),
        "the pod's log read through the API shows 20 connections"
    );
    assert_eq!(lab.counts().open_port_forwards, 20, "{:?}", lab.counts());
    for (pf, ws) in open {
        close(ws).await;
        pf.join().await.expect("forwarder ends cleanly");
    }
    eventually(
        "the lab still counts open port-forwards after every client closed",
        Duration::from_secs(5),
        || lab.counts().open_port_forwards == 0,
    )
    .await;
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_pod_ends_an_open_forward_with_an_error() {
    let lab = dev_lab().await;
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    let name = lab.pods(NS)[0].clone();
    let mut pf = pods.portforward(&name, &[8080]).await.expect("portforward");
    let err = pf.take_error(8080).expect("error future");
    let (mut ws, _) = ws_over(pf.take_stream(8080).expect("stream")).await;
    echo(&mut ws, "before").await;

    lab.kill_pod(NS, &name).await;
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the forwarded connection ends within 5 s, not a hang");
    assert!(
        !matches!(end, Some(Ok(ref m)) if m.is_text()),
        "no more data after the kill: {end:?}"
    );
    assert!(
        matches!(end, None | Some(Err(_))),
        "ends with an error, not a clean close: {end:?}"
    );
    let msg = tokio::time::timeout(Duration::from_secs(5), err)
        .await
        .expect("error in time");
    assert!(
        msg.is_some_and(|m| m.contains("error forwarding port 8080")),
        "error text on the error channel"
    );
    drop(ws);
    let _ = pf.join().await;

    let pod = pods.get(&name).await.expect("pod still listed");
    let ready = pod
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status);
    assert_eq!(ready.as_deref(), Some("False"));
    assert!(lab.pod_backend(NS, &name).is_none());
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_forwards_close_unless_the_client_sends_frames() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let lab = dev_lab().await;
    lab.set_portforward_idle_timeout(Some(Duration::from_millis(600)));
    let pods: Api<Pod> = Api::namespaced(client(&lab).await, NS);
    let name = lab.pods(NS)[0].clone();

    let mut quiet_pf = pods.portforward(&name, &[8080]).await.expect("portforward");
    let (mut quiet, _) = ws_over(quiet_pf.take_stream(8080).expect("stream")).await;
    let mut busy_pf = pods.portforward(&name, &[8080]).await.expect("portforward");
    let (mut busy, _) = ws_over(busy_pf.take_stream(8080).expect("stream")).await;

    // The busy client pings every 200 ms for 1.6 s; each ping resets its deadline.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        busy.send(Message::Ping(Vec::new().into()))
            .await
            .expect("ping");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), busy.next())
                .await
                .expect("pong in time")
                .expect("open")
                .expect("ok");
            if m.is_pong() {
                break;
            }
        }
    }
    echo(&mut busy, "still here").await;
    close(busy).await;
    let _ = busy_pf.join().await;

    let end = tokio::time::timeout(Duration::from_secs(3), quiet.next())
        .await
        .expect("the quiet forward was closed by the idle timeout");
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
    drop(quiet);
    let _ = quiet_pf.join().await;
    lab.shutdown().await;
}
