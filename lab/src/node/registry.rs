//! What the node agent knows about the pods it runs, shared between the pod
//! workers (which write it) and the kubelet API (which reads it).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::logs::LogBuffer;

/// One pod on this node.
pub struct PodEntry {
    pub uid: String,
    pub ip: Ipv4Addr,
    pub containers: Vec<String>,
    /// The current container's log, and the one before the last restart.
    pub logs: Mutex<(Arc<LogBuffer>, Option<Arc<LogBuffer>>)>,
    /// A process is running (false: no process, or between restarts).
    pub running: AtomicBool,
    /// Killed by the agent (liveness, deletion): forwards end with a reset.
    pub killed: AtomicBool,
    /// `lab.wsaffinity.dev/portforward-error`: every forward fails with this text.
    pub portforward_error: Option<String>,
}

impl PodEntry {
    pub fn current_logs(&self) -> Arc<LogBuffer> {
        lock(&self.logs).0.clone()
    }

    pub fn previous_logs(&self) -> Option<Arc<LogBuffer>> {
        lock(&self.logs).1.clone()
    }

    /// A new container instance: its log starts empty, the old one becomes `previous`.
    pub fn restart_logs(&self) -> Arc<LogBuffer> {
        let fresh = Arc::new(LogBuffer::default());
        let mut l = lock(&self.logs);
        let old = std::mem::replace(&mut l.0, fresh.clone());
        l.1 = Some(old);
        fresh
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

pub type Key = (String, String);

#[derive(Default, Clone)]
pub struct Registry {
    pods: Arc<Mutex<HashMap<Key, Arc<PodEntry>>>>,
}

impl Registry {
    pub fn insert(&self, ns: &str, name: &str, entry: Arc<PodEntry>) {
        lock(&self.pods).insert((ns.to_string(), name.to_string()), entry);
    }

    pub fn get(&self, ns: &str, name: &str) -> Option<Arc<PodEntry>> {
        lock(&self.pods)
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Remove the entry if it is still the pod with this uid.
    pub fn remove(&self, ns: &str, name: &str, uid: &str) {
        let mut pods = lock(&self.pods);
        let key = (ns.to_string(), name.to_string());
        if pods.get(&key).is_some_and(|e| e.uid == uid) {
            pods.remove(&key);
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
