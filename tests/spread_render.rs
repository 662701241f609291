//! Golden text of the `spread` section (tests/fixtures/spread/*.txt), from
//! hand-built runs: the layout is checked in, so a change to it shows in review.
//! `UPDATE_GOLDEN=1 cargo test --test spread_render` rewrites the files.

use std::path::PathBuf;

use kubectl_wsaffinity::probe::url::summary::summarize;
use kubectl_wsaffinity::render;
use kubectl_wsaffinity::snapshot::{Attribution, UrlClient, UrlRun};

fn client(i: u32, pods: &[&str], by: Attribution, failed: u32, error: Option<&str>) -> UrlClient {
    UrlClient {
        client: i,
        pods: pods.iter().map(|p| p.to_string()).collect(),
        attributed_by: vec![by; pods.len()],
        failed,
        error: error.map(str::to_string),
        ..UrlClient::default()
    }
}

fn golden(name: &str, run: &UrlRun, known: &[String], ingress: Option<&str>) {
    let spread = summarize(run, known);
    let mut out = Vec::new();
    render::spread::write(&mut out, run, &spread, ingress, false).expect("render");
    let got = String::from_utf8(out).expect("utf-8");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spread")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert_eq!(
        got,
        want,
        "{} differs; UPDATE_GOLDEN=1 to accept",
        path.display()
    );
}

#[test]
fn spread_render_cookie_affinity() {
    let run = UrlRun {
        url: "ws://websocket-dev.example.com/".into(),
        cookies: true,
        connect: 4,
        identity_header: "x-pod-name".into(),
        affinity_cookie: Some("INGRESSCOOKIE".into()),
        clients: vec![
            client(1, &["web-0"; 4], Attribution::Hello, 0, None),
            client(2, &["web-1"; 4], Attribution::Hello, 0, None),
            client(3, &["web-0"; 4], Attribution::Hello, 0, None),
            client(
                4,
                &["web-1"; 3],
                Attribution::Hello,
                1,
                Some("cannot connect to 192.0.2.10:80: Connection refused (os error 111)"),
            ),
        ],
        ..UrlRun::default()
    };
    let known = vec![
        "web-0".to_string(),
        "web-1".to_string(),
        "web-2".to_string(),
    ];
    golden(
        "cookie-affinity",
        &run,
        &known,
        Some("dev-websocket-server"),
    );
}

#[test]
fn spread_render_no_cookies_source_ips_and_unknown() {
    let mut a = client(1, &["s1", "s2", "s1"], Attribution::Cookie, 0, None);
    a.source_ip = Some("127.0.0.2".into());
    let mut b = client(2, &["unknown", "s2", "s2"], Attribution::Cookie, 0, None);
    b.attributed_by[0] = Attribution::Unknown;
    b.source_ip = Some("127.0.0.3".into());
    let run = UrlRun {
        url: "ws://127.0.0.1:8080/ws".into(),
        cookies: false,
        connect: 3,
        resolve: vec!["websocket-dev.example.com:8080:127.0.0.1".into()],
        identity_header: "x-pod-name".into(),
        affinity_cookie: Some("SERVERID".into()),
        clients: vec![a, b],
    };
    golden("no-cookies", &run, &[], None);
}
