pub mod cancel;
pub mod logs;
pub mod metrics;
pub mod per_pod;
pub mod portforward;
pub mod shared_forward;
pub mod url;
pub mod websocket;
