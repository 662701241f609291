//! One pod's life on a node, as the kubelet lives it: an address from the
//! node's range, the container started as a process, probes run, status
//! written (phase, IPs, conditions, containerStatuses), restarts per
//! `restartPolicy`, and graceful deletion (preStop, SIGTERM, the grace period,
//! SIGKILL, then the final delete with grace 0).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use tokio::process::Child;
use tokio::sync::watch;

use super::container;
use super::probe::{self, Tracker};
use super::registry::{PodEntry, Registry, lock};
use crate::logs::LogBuffer;

/// Pod annotation: `"false"` runs the pod without a process (Ready at once,
/// empty log, forwards refused): for benchmarks with thousands of pods.
pub const NO_PROCESS: &str = "lab.wsaffinity.dev/processes";
/// Pod annotation: every port-forward to the pod fails with this text.
pub const PORTFORWARD_ERROR: &str = "lab.wsaffinity.dev/portforward-error";
/// The kubelet's first crash-loop back-off.
const RESTART_BACKOFF: Duration = Duration::from_secs(10);

pub struct NodeCtx {
    pub client: kube::Client,
    pub node: String,
    pub node_index: usize,
    pub node_ip: Ipv4Addr,
    pub server_bin: PathBuf,
    pub registry: Registry,
    pub ips: Mutex<Vec<bool>>,
}

impl NodeCtx {
    /// The next free pod address of this node's range (10.244.N.2–254).
    fn allocate_ip(&self) -> Option<Ipv4Addr> {
        let mut used = lock(&self.ips);
        let i = (2..255usize).find(|&i| !used[i])?;
        used[i] = true;
        Some(Ipv4Addr::new(10, 244, self.node_index as u8, i as u8))
    }

    fn release_ip(&self, ip: Ipv4Addr) {
        lock(&self.ips)[usize::from(ip.octets()[3])] = false;
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The pod's `Ready` condition as the API has it.
fn api_ready(pod: &Pod) -> Option<bool> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status == "True")
}

/// What the status says about the container right now.
enum ContainerState {
    Waiting(&'static str),
    Running {
        since: String,
    },
    Terminated {
        code: i32,
        reason: &'static str,
        started: String,
        finished: String,
    },
}

struct Status {
    pod_ip: Ipv4Addr,
    host_ip: Ipv4Addr,
    start_time: String,
    container: String,
    image: String,
    container_id: String,
    state: ContainerState,
    last_state: Option<Value>,
    restarts: i32,
    ready: bool,
    /// lastTransitionTime of Ready/ContainersReady.
    ready_since: String,
    last_sent: Option<Value>,
}

impl Status {
    fn state_json(&self) -> Value {
        match &self.state {
            ContainerState::Waiting(reason) => json!({"waiting": {"reason": reason}}),
            ContainerState::Running { since } => json!({"running": {"startedAt": since}}),
            ContainerState::Terminated {
                code,
                reason,
                started,
                finished,
            } => json!({
                "terminated": {"exitCode": code, "reason": reason, "startedAt": started,
                               "finishedAt": finished, "containerID": self.container_id}
            }),
        }
    }

    fn to_json(&self, phase: &str) -> Value {
        let running = matches!(self.state, ContainerState::Running { .. });
        let ready = if self.ready { "True" } else { "False" };
        let cond = |t: &str, s: &str, since: &str| {
            let mut c =
                json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": since});
            if s == "False" && (t == "Ready" || t == "ContainersReady") {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    self.container
                ));
            }
            c
        };
        let mut cs = json!({
            "name": self.container,
            "image": self.image,
            "imageID": format!("wsaffinity-lab://{}", self.image),
            "containerID": self.container_id,
            "ready": self.ready,
            "started": running,
            "restartCount": self.restarts,
            "state": self.state_json(),
        });
        if let Some(last) = &self.last_state {
            cs["lastState"] = last.clone();
        }
        json!({"status": {
            "phase": phase,
            "hostIP": self.host_ip.to_string(),
            "hostIPs": [{"ip": self.host_ip.to_string()}],
            "podIP": self.pod_ip.to_string(),
            "podIPs": [{"ip": self.pod_ip.to_string()}],
            "startTime": self.start_time,
            "conditions": [
                cond("PodReadyToStartContainers", "True", &self.start_time),
                cond("Initialized", "True", &self.start_time),
                cond("Ready", ready, &self.ready_since),
                cond("ContainersReady", ready, &self.ready_since),
                cond("PodScheduled", "True", &self.start_time),
            ],
            "containerStatuses": [cs],
        }})
    }
}

struct Worker {
    ctx: Arc<NodeCtx>,
    api: Api<Pod>,
    ns: String,
    name: String,
    uid: String,
    pod: Pod,
    container: Container,
    entry: Arc<PodEntry>,
    status: Status,
    child: Option<Child>,
    process: bool,
}

/// Run one pod until it is deleted. `rx` carries the latest object, `None` once it is gone.
pub async fn run(ctx: Arc<NodeCtx>, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow_and_update().clone() else {
        return;
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(container) = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .cloned()
    else {
        return;
    };
    let Some(ip) = ctx.allocate_ip() else {
        tracing::error!("node {} has no free pod address for {ns}/{name}", ctx.node);
        return;
    };
    let containers = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    let entry = Arc::new(PodEntry {
        uid: uid.clone(),
        ip,
        containers,
        logs: Mutex::new((Arc::new(LogBuffer::default()), None)),
        running: AtomicBool::new(false),
        killed: AtomicBool::new(false),
        portforward_error: annotation(&pod, PORTFORWARD_ERROR).map(String::from),
    });
    ctx.registry.insert(&ns, &name, entry.clone());
    let t = now();
    let process = annotation(&pod, NO_PROCESS) != Some("false");
    let mut w = Worker {
        api: Api::namespaced(ctx.client.clone(), &ns),
        status: Status {
            pod_ip: ip,
            host_ip: ctx.node_ip,
            start_time: t.clone(),
            container: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            container_id: String::new(),
            state: ContainerState::Waiting("ContainerCreating"),
            last_state: None,
            restarts: 0,
            ready: false,
            ready_since: t,
            last_sent: None,
        },
        ctx,
        ns,
        name,
        uid,
        pod,
        container,
        entry,
        child: None,
        process,
    };
    w.live(&mut rx).await;
    w.ctx.release_ip(ip);
    w.ctx.registry.remove(&w.ns, &w.name, &w.uid);
}

impl Worker {
    fn deleting(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    async fn write_status(&mut self) {
        let body = self.status.to_json("Running");
        if self.status.last_sent.as_ref() == Some(&body) {
            return;
        }
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => self.status.last_sent = Some(body),
            Err(e) => tracing::warn!("status of {}/{}: {e}", self.ns, self.name),
        }
    }

    /// As the kubelet's status manager reconciles: when another writer
    /// changed the pod's readiness (the node lifecycle controller marks every
    /// pod of a node NotReady once its lease lapses, e.g. while the API
    /// server was down), the node's own status is written again.
    async fn reconcile_status(&mut self) {
        // Nothing written yet: the first write is still to come.
        if self.status.last_sent.is_none() {
            return;
        }
        if api_ready(&self.pod).is_some_and(|theirs| theirs != self.status.ready) {
            self.status.last_sent = None;
            self.write_status().await;
        }
    }

    fn set_ready(&mut self, ready: bool) {
        if self.status.ready != ready {
            self.status.ready = ready;
            self.status.ready_since = now();
        }
    }

    fn start_process(&mut self) {
        self.entry.killed.store(false, Ordering::SeqCst);
        let logs = if self.status.restarts > 0 {
            self.entry.restart_logs()
        } else {
            self.entry.current_logs()
        };
        self.status.container_id = format!(
            "wsaffinity-lab://{}",
            crate::names::hex_id(&[&self.uid, &self.status.restarts.to_string()])
        );
        if !self.process {
            logs.close();
            self.status.state = ContainerState::Running { since: now() };
            return;
        }
        let cmd = container::command(
            &self.ctx.server_bin,
            &self.pod,
            &self.container,
            self.entry.ip,
        );
        match crate::process::start(cmd, &self.name, logs) {
            Ok((child, _listening)) => {
                self.child = Some(child);
                self.entry.running.store(true, Ordering::SeqCst);
                self.status.state = ContainerState::Running { since: now() };
            }
            Err(e) => {
                tracing::error!("{e:#}");
                self.status.state = ContainerState::Waiting("RunContainerError");
            }
        }
    }

    /// The container ended (exit or kill): record it as lastState.
    fn record_exit(&mut self, code: i32, reason: &'static str) {
        self.entry.running.store(false, Ordering::SeqCst);
        let started = match &self.status.state {
            ContainerState::Running { since } => since.clone(),
            _ => now(),
        };
        self.status.state = ContainerState::Terminated {
            code,
            reason,
            started,
            finished: now(),
        };
        self.status.last_state = Some(self.status.state_json());
        self.set_ready(false);
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    async fn live(&mut self, rx: &mut watch::Receiver<Option<Pod>>) {
        if self.deleting() {
            self.terminate(true).await;
            return;
        }
        self.start_process();
        let readiness = self
            .container
            .readiness_probe
            .as_ref()
            .map(|p| probe::spec(&self.container, p));
        let liveness = self
            .container
            .liveness_probe
            .as_ref()
            .map(|p| probe::spec(&self.container, p));
        // No readiness probe: ready as soon as it runs. A process-less pod is always ready.
        let mut ready = readiness
            .filter(|_| self.process)
            .map(|s| Tracker::new(s, false));
        let mut live = liveness
            .filter(|_| self.process)
            .map(|s| Tracker::new(s, true));
        let mut started_at = Instant::now();
        let mut next_ready = started_at
            + ready
                .as_ref()
                .map_or(Duration::ZERO, |t| t.spec.initial_delay);
        let mut next_live = started_at
            + live
                .as_ref()
                .map_or(Duration::ZERO, |t| t.spec.initial_delay);
        let mut restart_at: Option<Instant> = None;
        let running = matches!(self.status.state, ContainerState::Running { .. });
        self.set_ready(running && ready.is_none());
        self.write_status().await;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    let latest = rx.borrow_and_update().clone();
                    match (changed, latest) {
                        (Ok(()), Some(pod)) => {
                            self.pod = pod;
                            if self.deleting() {
                                self.terminate(true).await;
                                return;
                            }
                            self.reconcile_status().await;
                        }
                        _ => {
                            // Gone from the API (force-deleted): stop at once.
                            self.terminate(false).await;
                            return;
                        }
                    }
                }
                _ = tick.tick() => {
                    let now_i = Instant::now();
                    let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                    if let Some(status) = exited {
                        self.child = None;
                        let code = status.code().unwrap_or(137);
                        let killed = self.entry.killed.load(Ordering::SeqCst);
                        self.record_exit(code, if code == 0 && !killed { "Completed" } else { "Error" });
                        let again = match self.restart_policy() {
                            "Never" => false,
                            "OnFailure" => code != 0,
                            _ => true,
                        };
                        if again {
                            // A liveness kill restarts at once; a crash waits out the back-off.
                            restart_at = Some(now_i + if killed { Duration::ZERO } else { RESTART_BACKOFF });
                        }
                        self.write_status().await;
                        continue;
                    }
                    if restart_at.is_some_and(|at| now_i >= at) {
                        restart_at = None;
                        self.status.restarts += 1;
                        self.start_process();
                        started_at = Instant::now();
                        if let Some(t) = ready.as_mut() {
                            *t = Tracker::new(t.spec.clone(), false);
                            next_ready = started_at + t.spec.initial_delay;
                        }
                        if let Some(t) = live.as_mut() {
                            *t = Tracker::new(t.spec.clone(), true);
                            next_live = started_at + t.spec.initial_delay;
                        }
                        let running = matches!(self.status.state, ContainerState::Running { .. });
                        self.set_ready(running && ready.is_none());
                        self.write_status().await;
                        continue;
                    }
                    if self.child.is_none() {
                        continue;
                    }
                    if let Some(t) = ready.as_mut().filter(|_| now_i >= next_ready) {
                        next_ready = now_i + t.spec.period;
                        let ok = probe::run(&t.spec.action, self.entry.ip, t.spec.timeout).await;
                        t.record(ok);
                        let passing = t.passing;
                        self.set_ready(passing);
                        self.write_status().await;
                    }
                    if let Some(t) = live.as_mut().filter(|_| now_i >= next_live) {
                        next_live = now_i + t.spec.period;
                        let ok = probe::run(&t.spec.action, self.entry.ip, t.spec.timeout).await;
                        if t.record(ok) && !t.passing {
                            tracing::info!("{}/{}: liveness probe failed; restarting the container", self.ns, self.name);
                            self.kill(Duration::from_secs(2)).await;
                        }
                    }
                }
            }
        }
    }

    /// SIGTERM, then SIGKILL once `grace` has passed.
    async fn kill(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        self.entry.killed.store(true, Ordering::SeqCst);
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Graceful deletion: preStop, SIGTERM, wait out the grace period, SIGKILL;
    /// then (when the pod still exists) the final delete with grace 0.
    async fn terminate(&mut self, delete: bool) {
        let grace = Duration::from_secs(
            self.pod
                .metadata
                .deletion_grace_period_seconds
                .and_then(|g| u64::try_from(g).ok())
                .unwrap_or(30),
        );
        let deadline = Instant::now() + grace;
        if delete && self.child.is_some() {
            self.set_ready(false);
            self.write_status().await;
            if let Some(sleep) = self
                .container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
                .and_then(|h| h.sleep.as_ref())
            {
                let d = Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0));
                tokio::time::sleep(d.min(grace)).await;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let was_running = self.child.is_some();
        self.kill(if delete { left } else { Duration::ZERO }).await;
        if was_running {
            self.record_exit(0, "Completed");
        }
        self.child = None;
        if !delete {
            return;
        }
        self.write_status().await;
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = self.api.delete(&self.name, &params).await {
            tracing::warn!("final delete of {}/{}: {e}", self.ns, self.name);
        }
    }
}
