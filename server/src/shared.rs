//! The state every connection shares. The listener (`server.rs`) builds it
//! once and hands each connection's handler an `Arc` of it; the handlers
//! (`http.rs`, `connection.rs`) only receive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: Shutdown,
    /// One permit per open WebSocket connection.
    pub(crate) websocket_slots: Arc<Semaphore>,
    pub(crate) websocket_config: WebSocketConfig,
    next_id: AtomicU64,
}

impl Shared {
    /// The state of a listener that has just started: no connection yet.
    pub(crate) fn new(
        config: Config,
        websocket_config: WebSocketConfig,
        shutdown: Shutdown,
    ) -> Self {
        Shared {
            websocket_slots: Arc::new(Semaphore::new(config.max_connections)),
            websocket_config,
            metrics: Metrics::with_extra(&config.extra_gauges),
            shutdown,
            next_id: AtomicU64::new(1),
            config,
        }
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
