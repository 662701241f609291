//! A forward from a free port on the host's 127.0.0.1 to an address inside the
//! cluster's network namespace (the API server, later the Ingress entrypoint).
//! TLS passes through untouched: the serving certificate covers 127.0.0.1.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::netns::Dialer;

pub struct Forward {
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Forward {
    pub async fn start(dialer: Dialer, target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the forward's 127.0.0.1 port")?;
        let local = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let (mut outer, _) = tokio::select! {
                    a = listener.accept() => match a {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("forward accept: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let _ = outer.set_nodelay(true);
                let dialer = dialer.clone();
                let mut stop_conn = stopped.clone();
                tokio::spawn(async move {
                    let mut inner = match dialer.connect(target).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!("forward to {target}: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut outer, &mut inner) => {}
                        _ = stop_conn.changed() => {}
                    }
                });
            }
        });
        Ok(Self { local, stop })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop();
    }
}
