//! The fake API's `Lab`: start it from a scenario, drive it from tests
//! (scale, delete, faults, counts), stop it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::watch;

use crate::fake_api::faults::Counts;
use crate::fake_api::scenario::{self, LabConfig, Scenario};
use crate::fake_api::{kubeconfig, server, state, tls, types, workloads};
use crate::{names, process};

use crate::fake_api::faults::{Counters, Faults, Tokens};
use crate::fake_api::state::{PodRuntime, State, lock, refresh_slices};
use crate::fake_api::store::Store;
use crate::logs::LogBuffer;

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub scenario: Scenario,
    /// Serve HTTPS with a generated CA (the kubeconfig carries it).
    pub tls: bool,
    /// Run real pod processes (default true); false makes every pod process-less.
    pub processes: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::DevOverlay,
            tls: false,
            processes: true,
        }
    }
}

impl LabOptions {
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            ..Self::default()
        }
    }
}

/// A running lab. Dropping it stops the server and kills every pod process.
pub struct Lab {
    state: Arc<State>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    url: String,
    token: String,
    namespace: String,
    source: String,
    ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// `LabOptions::processes`: whether new pods get a real process.
    processes: bool,
    /// Serialises `add_pod`, so two scale-ups never pick the same name.
    scaling: tokio::sync::Mutex<()>,
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The kubeconfig's default namespace: the LabConfig's, else the first workload's.
fn default_namespace(cfg: &LabConfig, objects: &[Value]) -> String {
    if let Some(ns) = &cfg.namespace {
        return ns.clone();
    }
    objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "Service" | "Pod")))
        .find_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
        .unwrap_or("default")
        .to_string()
}

impl Lab {
    pub async fn start(opts: LabOptions) -> anyhow::Result<Lab> {
        let loaded = scenario::load(&opts.scenario)?;
        let created = now_rfc3339();
        let namespace = default_namespace(&loaded.config, &loaded.objects);
        let world = workloads::expand(loaded.objects, &created, opts.processes);

        let mut store = Store::new(created.clone());
        for crd in world
            .objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
        {
            for t in types::types_from_crd(crd) {
                store.add_type(t);
            }
        }
        let mut user_slices: BTreeSet<(String, String)> = BTreeSet::new();
        for obj in &world.objects {
            if obj["kind"] == "EndpointSlice"
                && let Some(svc) = obj
                    .pointer("/metadata/labels/kubernetes.io~1service-name")
                    .and_then(Value::as_str)
            {
                let ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                user_slices.insert((ns.to_string(), svc.to_string()));
            }
        }
        for obj in world.objects {
            store.put(obj)?;
        }
        let managed: BTreeSet<(String, String)> = store
            .list("", "services", None)
            .iter()
            .map(|s| {
                let m = &s["metadata"];
                (
                    m["namespace"].as_str().unwrap_or("").to_string(),
                    m["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .filter(|k| !user_slices.contains(k))
            .collect();
        refresh_slices(&mut store, &managed, &created);

        let runtimes = start_pods(&world.pods).await?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the lab API port")?;
        let addr = listener.local_addr()?;
        let tls = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        let token = names::token();
        let faults = Faults::default();
        for r in &loaded.config.forbidden {
            faults.forbid(r);
        }
        faults.set_latency(Duration::from_millis(loaded.config.latency_ms));
        faults.set_idle_timeout(
            loaded
                .config
                .port_forward_idle_timeout_ms
                .map(Duration::from_millis),
        );
        for (key, msg) in &loaded.config.port_forward_errors {
            let pod = resolve_pod_key(key, &world.pods).unwrap_or_else(|| key.clone());
            faults.inject_portforward_error("", &pod, msg);
        }
        let state = Arc::new(State {
            store: Mutex::new(store),
            pods: Mutex::new(runtimes),
            faults,
            counters: Counters::default(),
            tokens: Tokens::new(&token, &loaded.config.tokens),
            admin_token: token.clone(),
            tls: opts.tls,
            server_addr: addr.to_string(),
            managed_services: managed,
        });

        let dir = tempfile::Builder::new()
            .prefix("wsaffinity-lab-")
            .tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        std::fs::write(
            &kubeconfig,
            kubeconfig::render(&url, &token, &namespace, ca_pem.as_deref()),
        )
        .context("writing the kubeconfig")?;
        let (shutdown, rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(
            listener,
            tls.map(|t| t.acceptor),
            state.clone(),
            rx,
        ));
        Ok(Lab {
            state,
            _dir: dir,
            kubeconfig,
            url,
            token,
            namespace,
            source: loaded.source,
            ca_pem,
            shutdown,
            server: Some(server),
            processes: opts.processes,
            scaling: tokio::sync::Mutex::new(()),
        })
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server_url(&self) -> String {
        self.url.clone()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The kubeconfig context's default namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where the scenario came from (e.g. `kubectl kustomize …/k8s/overlays/dev`).
    pub fn scenario_source(&self) -> &str {
        &self.source
    }

    /// PEM of the CA when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Write a kubeconfig for another bearer token (e.g. a limited one from LabConfig.tokens).
    pub fn write_kubeconfig_for_token(&self, token: &str) -> anyhow::Result<PathBuf> {
        let path = self
            ._dir
            .path()
            .join(format!("kubeconfig-{}", names::fnv1a(&[token])));
        std::fs::write(
            &path,
            kubeconfig::render(&self.url, token, &self.namespace, self.ca_pem.as_deref()),
        )?;
        Ok(path)
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }

    pub fn reset_counts(&self) {
        self.state.counters.reset();
    }

    /// Pod names in a namespace, sorted.
    pub fn pods(&self, ns: &str) -> Vec<String> {
        lock(&self.state.store)
            .list("", "pods", Some(ns))
            .iter()
            .filter_map(|p| {
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect()
    }

    /// The loopback address of the pod's real server.
    pub fn pod_backend(&self, ns: &str, pod: &str) -> Option<SocketAddr> {
        lock(&self.state.pods)
            .get(&(ns.to_string(), pod.to_string()))
            .filter(|r| !r.killed)
            .and_then(|r| r.backend)
    }

    /// Set a pod's Ready condition; its EndpointSlice conditions follow.
    pub fn set_ready(&self, ns: &str, pod: &str, ready: bool) {
        lock(&self.state.store).update("", "pods", ns, pod, |p| state::set_pod_ready(p, ready));
        self.state.refresh_endpointslices();
    }

    /// Make every port-forward to this pod fail with `message` on the error channel.
    pub fn inject_portforward_error(&self, ns: &str, pod: &str, message: &str) {
        self.state.faults.inject_portforward_error(ns, pod, message);
    }

    /// Answer 403 for a resource: `ingresses`, `pods/log`, `httproutes.gateway.networking.k8s.io`.
    pub fn forbid(&self, resource: &str) {
        self.state.faults.forbid(resource);
    }

    /// Delay every API response.
    pub fn set_latency(&self, d: Duration) {
        self.state.faults.set_latency(d);
    }

    /// Close port-forwards that get no frame from the client for this long, like
    /// the kubelet's streaming idle timeout (None: the kubelet default, 4 h).
    pub fn set_portforward_idle_timeout(&self, d: Option<Duration>) {
        self.state.faults.set_idle_timeout(d);
    }

    /// Kill the pod's process (SIGKILL) and mark the pod not ready.
    pub async fn kill_pod(&self, ns: &str, pod: &str) {
        let child = {
            let mut pods = lock(&self.state.pods);
            pods.get_mut(&(ns.to_string(), pod.to_string()))
                .and_then(|r| {
                    r.killed = true;
                    r.child.take()
                })
        };
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
        let at = now_rfc3339();
        lock(&self.state.store).update("", "pods", ns, pod, |p| state::set_pod_killed(p, &at));
        self.state.refresh_endpointslices();
    }

    /// Delete the pod at once, as `kubectl delete pod --force --grace-period=0`
    /// does: its process is killed and the object leaves the API, so GET and
    /// port-forward answer 404 NotFound. Nothing re-creates it.
    pub async fn delete_pod(&self, ns: &str, pod: &str) {
        let runtime = lock(&self.state.pods).remove(&(ns.to_string(), pod.to_string()));
        if let Some(mut child) = runtime.and_then(|mut r| r.child.take()) {
            let _ = child.kill().await;
        }
        lock(&self.state.store).remove_where("", "pods", |p| {
            p.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                && p.pointer("/metadata/name").and_then(Value::as_str) == Some(pod)
        });
        self.state.refresh_endpointslices();
    }

    /// Scale the Deployment up by one, as its ReplicaSet would: a new pod
    /// `<deploy>-<same hash>-<5 new chars>` on a fake node (a new `lab-node-N`,
    /// or the next of `lab.wsaffinity.dev/nodes`), Ready, backed by its own
    /// `websocket-server` started as at lab start (log captured, PDEATHSIG;
    /// none under `processes: false` or the processes annotation). The process
    /// is listening before the Pod enters the API with a newer
    /// resourceVersion; the Deployment's and ReplicaSet's replicas grow by one
    /// and the Service's EndpointSlices include the pod. The counterpart of
    /// [`Lab::delete_pod`]. Returns the new pod's name.
    pub async fn add_pod(&self, ns: &str, deployment: &str) -> anyhow::Result<String> {
        let _one_at_a_time = self.scaling.lock().await;
        let up = {
            let store = lock(&self.state.store);
            let deploy = store
                .get("apps", "deployments", ns, deployment)
                .with_context(|| {
                    format!("deployments.apps \"{deployment}\" not found in namespace {ns}")
                })?;
            let pods = store.list("", "pods", None);
            let nodes = store.list("", "nodes", None);
            workloads::scale_up(deploy, &pods, &nodes, &now_rfc3339(), self.processes)
        };
        let name = up.plan.name.clone();
        let bin = if up.plan.process {
            Some(process::find_server_binary()?)
        } else {
            None
        };
        let runtime = start_pod(bin.as_deref(), &up.plan).await?;
        lock(&self.state.pods).insert((ns.to_string(), name.clone()), runtime);
        {
            let mut store = lock(&self.state.store);
            if let Some(node) = up.new_node {
                store.put(node)?;
            }
            store.update("apps", "deployments", ns, deployment, |d| {
                workloads::set_replicas(d, up.replicas);
            });
            store.update("apps", "replicasets", ns, &up.replicaset, |rs| {
                workloads::set_replicas(rs, up.replicas);
            });
            store.put(up.pod)?;
        }
        self.state.refresh_endpointslices();
        Ok(name)
    }

    /// Append lines to a pod's log, as if its process had printed them.
    pub fn append_log(&self, ns: &str, pod: &str, lines: &str) {
        let mut pods = lock(&self.state.pods);
        let key = (ns.to_string(), pod.to_string());
        if let Some(r) = pods.get(&key) {
            r.logs.append(lines);
            return;
        }
        // A process-less pod gets a log buffer on first use.
        let exists = lock(&self.state.store).get("", "pods", ns, pod).is_some();
        if exists {
            let logs = Arc::new(LogBuffer::default());
            logs.append(lines);
            pods.insert(key, process_less_runtime(ns, pod, logs));
        }
    }

    /// Stop the server and every pod process, waiting for them to exit.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let children: Vec<_> = lock(&self.state.pods)
            .values_mut()
            .filter_map(|r| r.child.take())
            .collect();
        for mut c in children {
            let _ = c.kill().await;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let mut children: Vec<_> = lock(&self.state.pods)
            .values_mut()
            .filter_map(|r| r.child.take())
            .collect();
        for c in &mut children {
            let _ = c.start_kill();
        }
        // Reap them so no zombie outlives the lab; SIGKILL makes this quick. Bounded.
        for c in &mut children {
            for _ in 0..200 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A LabConfig pod key: a pod name, or `DEPLOYMENT[i]` for the i-th pod of a
/// Deployment (pod names carry generated hashes, so scenarios can't spell them).
fn resolve_pod_key(key: &str, plans: &[workloads::PodPlan]) -> Option<String> {
    let (deploy, index) = key.strip_suffix(']')?.split_once('[')?;
    let index: usize = index.parse().ok()?;
    plans
        .iter()
        .filter(|p| {
            p.name
                .strip_prefix(deploy)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| {
                    matches!(r.split('-').map(str::len).collect::<Vec<_>>()[..], [10, 5])
                })
        })
        .nth(index)
        .map(|p| p.name.clone())
}

fn process_less_runtime(ns: &str, pod: &str, logs: Arc<LogBuffer>) -> PodRuntime {
    PodRuntime {
        plan: workloads::PodPlan {
            namespace: ns.to_string(),
            name: pod.to_string(),
            node: String::new(),
            pod_ip: String::new(),
            ports: Vec::new(),
            process: false,
            server_args: Vec::new(),
        },
        logs,
        backend: None,
        child: None,
        killed: false,
        sandbox: names::hex_id(&[ns, pod, "sandbox"]),
    }
}

/// Start one pod's process (when it has one and `bin` is given) and wait
/// until it listens.
async fn start_pod(bin: Option<&Path>, plan: &workloads::PodPlan) -> anyhow::Result<PodRuntime> {
    let logs = Arc::new(LogBuffer::default());
    let sandbox = names::hex_id(&[&plan.namespace, &plan.name, "sandbox"]);
    let (child, backend) = match (bin, plan.process) {
        (Some(bin), true) => {
            let mut cmd = tokio::process::Command::new(bin);
            process::clean_env(&mut cmd, &plan.name);
            cmd.args(["--port", "0", "--bind", "127.0.0.1"])
                .args(&plan.server_args)
                .env("POD_NAME", &plan.name)
                .env("POD_NAMESPACE", &plan.namespace)
                .env("NODE_NAME", &plan.node)
                .env("POD_IP", &plan.pod_ip);
            let p = process::spawn_listening(cmd, &plan.name, logs.clone())
                .await
                .with_context(|| format!("starting {} for pod {}", bin.display(), plan.name))?;
            (Some(p.child), Some(p.backend))
        }
        // No process: the pod still reads as Running, so a follow stays open.
        _ => (None, None),
    };
    Ok(PodRuntime {
        plan: plan.clone(),
        logs,
        backend,
        child,
        killed: false,
        sandbox,
    })
}

/// Start every pod's process concurrently; on any failure the started ones are killed (dropped).
async fn start_pods(
    plans: &[workloads::PodPlan],
) -> anyhow::Result<HashMap<(String, String), PodRuntime>> {
    let bin = if plans.iter().any(|p| p.process) {
        Some(process::find_server_binary()?)
    } else {
        None
    };
    let starts = plans.iter().map(|plan| start_pod(bin.as_deref(), plan));
    let results = futures::future::join_all(starts).await;
    let mut out = HashMap::new();
    for r in results {
        let r = r?;
        out.insert((r.plan.namespace.clone(), r.plan.name.clone()), r);
    }
    Ok(out)
}
