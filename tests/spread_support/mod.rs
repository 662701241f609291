//! Real peers on loopback for the `spread` tests: companion `websocket-server`
//! instances (in-process, the `websocket_server` library on 127.0.0.1:0) behind
//! a real HAProxy (Debian's `haproxy`) configured per test in a temp dir.
//! Every process is killed when its guard drops; every wait is bounded.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One companion server, shut down when dropped.
pub struct Backend {
    pub pod: String,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts `websocket-server` on 127.0.0.1:0 as pod `pod`; `hello: false`
/// gives a server that never names itself.
pub async fn backend(pod: &str, hello: bool) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let config = websocket_server::Config {
        hello,
        identity: websocket_server::Identity {
            pod: pod.to_string(),
            namespace: "dev".into(),
            node: "node-1".into(),
            ip: addr.ip().to_string(),
        },
        drain_timeout: Duration::from_secs(1),
        ..websocket_server::Config::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = websocket_server::run(listener, config, async {
            let _ = rx.await;
        })
        .await;
    });
    Backend {
        pod: pod.to_string(),
        addr,
        stop: Some(tx),
    }
}

/// Starts `n` hello-sending backends named `ws-0`, `ws-1`, ...
pub async fn backends(n: usize) -> Vec<Backend> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(backend(&format!("ws-{i}"), true).await);
    }
    v
}

/// A free loopback port (bound then released; HAProxy binds it right after).
pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("free port addr").port()
}

/// How the test HAProxy balances.
#[derive(Clone, Copy, Debug)]
pub enum Balance {
    /// `balance roundrobin` + `cookie SERVERID insert indirect nocache`.
    RoundRobinCookie,
    /// `balance roundrobin`, no cookie.
    RoundRobin,
    /// `balance source`: hash of the client address.
    Source,
}

/// A running HAProxy; killed (and reaped) when dropped.
pub struct Haproxy {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Haproxy {
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn haproxy_config(
    port: u16,
    balance: Balance,
    servers: &[(String, SocketAddr)],
    tls_pem: Option<&Path>,
) -> String {
    let mut cfg = String::new();
    cfg.push_str(
        "global\n  maxconn 2000\n  nbthread 1\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 60s\n\n",
    );
    cfg.push_str(&format!(
        "frontend fe\n  bind 127.0.0.1:{port}{}\n  default_backend be\n\nbackend be\n",
        tls_pem
            .map(|p| format!(" ssl crt {}", p.display()))
            .unwrap_or_default()
    ));
    match balance {
        Balance::RoundRobinCookie => {
            cfg.push_str("  balance roundrobin\n  cookie SERVERID insert indirect nocache");
            if tls_pem.is_some() {
                // Over TLS the cookie is `Secure`: the jar must still send it on wss://.
                cfg.push_str(" secure");
            }
            cfg.push('\n');
        }
        Balance::RoundRobin => cfg.push_str("  balance roundrobin\n"),
        Balance::Source => cfg.push_str("  balance source\n  hash-type consistent\n"),
    }
    for (i, (name, addr)) in servers.iter().enumerate() {
        let cookie = match balance {
            Balance::RoundRobinCookie => format!(" cookie s{}", i + 1),
            _ => String::new(),
        };
        cfg.push_str(&format!("  server {name} {addr}{cookie}\n"));
    }
    cfg
}

/// Starts HAProxy in the foreground (`-db`) in front of `backends` and waits
/// (at most 10 s) until its port accepts connections.
pub fn haproxy(balance: Balance, backends: &[Backend]) -> Haproxy {
    haproxy_with(balance, backends, None)
}

/// The same, terminating TLS with `tls_pem` (certificate + key, PEM).
pub fn haproxy_with(balance: Balance, backends: &[Backend], tls_pem: Option<&Path>) -> Haproxy {
    let servers: Vec<(String, SocketAddr)> =
        backends.iter().map(|b| (b.pod.clone(), b.addr)).collect();
    // A port another test grabbed in between makes HAProxy exit: retry.
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config_path,
            haproxy_config(port, balance, &servers, tls_pem),
        )
        .expect("write haproxy.cfg");
        let child = spawn_haproxy(&config_path, dir.path());
        let mut h = Haproxy {
            port,
            child: Some(child),
            _dir: dir,
            config_path,
        };
        if wait_listening(&mut h, Duration::from_secs(10)) {
            return h;
        }
        h.kill();
    }
    panic!("haproxy did not start listening (is Debian's haproxy installed? .ci/run installs it)");
}

fn spawn_haproxy(config: &Path, dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
    Command::new(haproxy_bin())
        .arg("-db")
        .arg("-f")
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start haproxy (Debian package `haproxy`; .ci/run installs it)")
}

fn haproxy_bin() -> PathBuf {
    for p in [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("haproxy")
}

fn wait_listening(h: &mut Haproxy, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let addr: SocketAddr = ([127, 0, 0, 1], h.port).into();
    while Instant::now() < deadline {
        if let Some(child) = h.child.as_mut()
            && let Ok(Some(_status)) = child.try_wait()
        {
            return false;
        }
        if StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A running nginx (Debian's `nginx`, `daemon off`); killed when dropped.
pub struct Nginx {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx proxying WebSockets to `backends` with `hash $remote_addr consistent`
/// (the whole client address, as ClientIP affinity keys on it). `master_process
/// off`: one process, so killing it leaves no worker behind.
pub fn nginx_config(port: u16, dir: &Path, servers: &[SocketAddr]) -> String {
    let d = dir.display();
    let upstreams: String = servers
        .iter()
        .map(|a| format!("    server {a};\n"))
        .collect();
    format!(
        "worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream be {{
    hash $remote_addr consistent;
{upstreams}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 60s;
    }}
  }}
}}
"
    )
}

fn nginx_bin() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("nginx")
}

/// Starts nginx in front of `backends`, waiting (at most 10 s) for its port.
pub fn nginx_hash_remote_addr(backends: &[Backend]) -> Nginx {
    let servers: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("nginx temp dir");
        let port = free_port();
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, nginx_config(port, dir.path(), &servers))
            .expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("nginx log");
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx (Debian package `nginx`; .ci/run must install it)");
        let mut n = Nginx {
            port,
            child: Some(child),
            _dir: dir,
        };
        if wait_port(n.child.as_mut(), port, Duration::from_secs(10)) {
            return n;
        }
        n.kill();
    }
    panic!("nginx did not start listening (is Debian's nginx installed?)");
}

fn wait_port(mut child: Option<&mut Child>, port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < deadline {
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(_)) = c.try_wait()
        {
            return false;
        }
        if StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A self-signed certificate for `host` with its key, as one PEM file (what
/// HAProxy's `crt` takes), written into `dir`.
pub fn self_signed_pem(host: &str, dir: &Path) -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key pair");
    let params = rcgen::CertificateParams::new(vec![host.to_string()]).expect("cert params");
    let cert = params.self_signed(&key).expect("self-signed cert");
    let path = dir.join("site.pem");
    std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).expect("write pem");
    path
}

/// A loopback port that refuses connections and stays ours: the socket is
/// bound but never listens, so no other test can take the port meanwhile.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a refusing port");
    let port = socket.local_addr().expect("refusing port addr").port();
    (socket, port)
}
