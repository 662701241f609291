//! REAL: `wsaffinity-lab cluster up`, the launcher of a real Kubernetes control
//! plane on this machine: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler built from their Go modules (`scripts/cluster-build.sh`),
//! plus the project's node agent (`crate::node`, a stand-in for kubelets and a
//! container runtime), all inside one network namespace of the cluster's own.
//! The API server is reached from the host's 127.0.0.1 through a forward.

pub mod component;
pub mod forward;
pub mod kubeconfig;
pub mod netns;
pub mod pki;
pub mod traefik;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use component::{Component, tail};
use netns::{CONTROL_PLANE_IP, Netns, node_ip};

/// The API server's port inside the namespace.
pub const API_PORT: u16 = 6443;
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The namespace `k8s/overlays/dev` creates; the admin kubeconfig's default.
pub const DEV_NAMESPACE: &str = "websocket-app-dev";
const READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    pub bin_dir: PathBuf,
    /// Do not apply `k8s/overlays/dev`.
    pub empty: bool,
    /// The dev overlay to apply (`kubectl apply -k`).
    pub overlay: PathBuf,
    /// kube-controller-manager `--node-monitor-grace-period` (seconds).
    pub node_monitor_grace: Option<u32>,
    /// An Ingress controller to run in front of the pods.
    pub ingress: Option<IngressController>,
}

/// The Ingress controllers `cluster up --ingress` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IngressController {
    /// Traefik v3, with its Ingress, CRD and Gateway API providers.
    Traefik,
}

/// The repository's `k8s/overlays/NAME` (`dev`, or `traefik` with Traefik in
/// front), found from the build or the working directory.
pub fn default_overlay(ingress: Option<IngressController>) -> PathBuf {
    let name = match ingress {
        None => "dev",
        Some(IngressController::Traefik) => "traefik",
    };
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../k8s/overlays")
        .join(name);
    if built.is_dir() {
        built
    } else {
        PathBuf::from("k8s/overlays").join(name)
    }
}

/// `target/cluster/bin` of the repository this binary was built from, else relative.
pub fn default_bin_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cluster/bin");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("target/cluster/bin")
    }
}

/// Names of the node agent's nodes.
pub fn node_name(n: usize) -> String {
    format!("lab-node-{n}")
}

pub struct Cluster {
    dir: tempfile::TempDir,
    netns: Netns,
    /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node-agent.
    components: Vec<Component>,
    forward: forward::Forward,
    /// 127.0.0.1:PORT → the Ingress controller's `web` entrypoint.
    ingress: Option<forward::Forward>,
    dialer: netns::Dialer,
    kubeconfig: PathBuf,
    pub options: ClusterOptions,
}

fn s(v: impl Into<String>) -> String {
    v.into()
}

impl Cluster {
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.forward.local_addr()
    }

    /// Where the Ingress controller answers on the host, when one runs.
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress.as_ref().map(forward::Forward::local_addr)
    }

    pub fn client(&self) -> impl std::future::Future<Output = anyhow::Result<kube::Client>> + '_ {
        client_for(&self.kubeconfig)
    }

    /// Start everything and wait until the nodes (and the dev overlay's pods) are Ready.
    pub async fn up(options: ClusterOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("wsaffinity-cluster-")
            .tempdir()
            .context("creating the cluster's temp dir")?;
        let root = dir.path().to_path_buf();
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs)?;
        let netns = Netns::create()?;
        let dialer = netns.dialer()?;

        let ca = pki::Ca::generate(&root)?;
        let inner_api = format!("https://{CONTROL_PLANE_IP}:{API_PORT}");
        let serving = ca.server(
            "kube-apiserver",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &[
                Ipv4Addr::LOCALHOST,
                CONTROL_PLANE_IP,
                Ipv4Addr::new(10, 96, 0, 1),
            ],
        )?;
        let (api_crt, api_key) = serving.write(&root, "apiserver")?;
        let (kc_crt, kc_key) = ca
            .client("kube-apiserver-kubelet-client", Some("system:masters"))?
            .write(&root, "apiserver-kubelet-client")?;
        let (sa_key, sa_pub) = pki::service_account_keys(&root)?;
        let ca_crt = root.join("ca.crt");
        let kcm_kc = kubeconfig::write(
            &root.join("controller-manager.kubeconfig"),
            &inner_api,
            &ca.cert_pem,
            "system:kube-controller-manager",
            &ca.client("system:kube-controller-manager", None)?,
            None,
        )?;
        let sched_kc = kubeconfig::write(
            &root.join("scheduler.kubeconfig"),
            &inner_api,
            &ca.cert_pem,
            "system:kube-scheduler",
            &ca.client("system:kube-scheduler", None)?,
            None,
        )?;
        for n in 1..=options.nodes {
            let name = node_name(n);
            kubeconfig::write(
                &root.join(format!("{name}.kubeconfig")),
                &inner_api,
                &ca.cert_pem,
                &format!("system:node:{name}"),
                &ca.client(&format!("system:node:{name}"), Some("system:nodes"))?,
                None,
            )?;
        }
        let traefik_kc = match options.ingress {
            Some(IngressController::Traefik) => Some(kubeconfig::write(
                &root.join("traefik.kubeconfig"),
                &inner_api,
                &ca.cert_pem,
                traefik::USER,
                &ca.client(traefik::USER, None)?,
                None,
            )?),
            None => None,
        };
        let node_ips: Vec<Ipv4Addr> = (1..=options.nodes).map(node_ip).collect();
        ca.server("lab-node-kubelet", &[], &node_ips)?
            .write(&root, "kubelet")?;

        let forward = forward::Forward::start(
            dialer.clone(),
            SocketAddr::from((CONTROL_PLANE_IP, API_PORT)),
        )
        .await?;
        let outer_api = format!("https://{}", forward.local_addr());
        let kubeconfig = kubeconfig::write(
            &root.join("admin.kubeconfig"),
            &outer_api,
            &ca.cert_pem,
            "wsaffinity-admin",
            &ca.client("wsaffinity-admin", Some("system:masters"))?,
            (!options.empty).then_some(DEV_NAMESPACE),
        )?;

        let bin = |name: &str| options.bin_dir.join(name);
        let p = |path: &Path| path.display().to_string();
        let etcd = Component::new(
            "etcd",
            bin("etcd"),
            vec![
                s("--name=lab"),
                format!("--data-dir={}", p(&root.join("etcd"))),
                s("--listen-client-urls=http://127.0.0.1:2379"),
                s("--advertise-client-urls=http://127.0.0.1:2379"),
                s("--listen-peer-urls=http://127.0.0.1:2380"),
                s("--initial-advertise-peer-urls=http://127.0.0.1:2380"),
                s("--initial-cluster=lab=http://127.0.0.1:2380"),
                // A throwaway store: skipping fsync makes the control plane
                // fast on CI disks; nothing here must survive a crash.
                s("--unsafe-no-fsync"),
                s("--log-level=warn"),
            ],
            &logs,
        );
        let apiserver = Component::new(
            "kube-apiserver",
            bin("kube-apiserver"),
            vec![
                s("--etcd-servers=http://127.0.0.1:2379"),
                format!("--bind-address={CONTROL_PLANE_IP}"),
                format!("--advertise-address={CONTROL_PLANE_IP}"),
                format!("--secure-port={API_PORT}"),
                s("--authorization-mode=Node,RBAC"),
                s("--enable-admission-plugins=NodeRestriction"),
                format!("--client-ca-file={}", p(&ca_crt)),
                format!("--tls-cert-file={}", p(&api_crt)),
                format!("--tls-private-key-file={}", p(&api_key)),
                format!("--kubelet-client-certificate={}", p(&kc_crt)),
                format!("--kubelet-client-key={}", p(&kc_key)),
                s("--kubelet-preferred-address-types=InternalIP"),
                format!("--service-account-key-file={}", p(&sa_pub)),
                format!("--service-account-signing-key-file={}", p(&sa_key)),
                s("--service-account-issuer=https://kubernetes.default.svc.cluster.local"),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                s("--allow-privileged=true"),
                format!("--audit-log-path={}", p(&logs.join("audit.log"))),
                format!("--audit-policy-file={}", p(&write_audit_policy(&root)?)),
                s("--v=1"),
            ],
            &logs,
        );
        let mut kcm_args = vec![
            format!("--kubeconfig={}", p(&kcm_kc)),
            format!("--authentication-kubeconfig={}", p(&kcm_kc)),
            format!("--authorization-kubeconfig={}", p(&kcm_kc)),
            format!("--service-account-private-key-file={}", p(&sa_key)),
            format!("--root-ca-file={}", p(&ca_crt)),
            s("--use-service-account-credentials=true"),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            s("--leader-elect=false"),
            s("--bind-address=127.0.0.1"),
            s("--v=1"),
        ];
        if let Some(g) = options.node_monitor_grace {
            kcm_args.push(format!("--node-monitor-grace-period={g}s"));
            kcm_args.push(s("--node-monitor-period=1s"));
        }
        let kcm = Component::new(
            "kube-controller-manager",
            bin("kube-controller-manager"),
            kcm_args,
            &logs,
        );
        let scheduler = Component::new(
            "kube-scheduler",
            bin("kube-scheduler"),
            vec![
                format!("--kubeconfig={}", p(&sched_kc)),
                format!("--authentication-kubeconfig={}", p(&sched_kc)),
                format!("--authorization-kubeconfig={}", p(&sched_kc)),
                s("--leader-elect=false"),
                s("--bind-address=127.0.0.1"),
                s("--v=1"),
            ],
            &logs,
        );
        let me = std::env::current_exe().context("locating wsaffinity-lab itself")?;
        let agent = Component::new(
            "node-agent",
            me,
            vec![
                s("cluster"),
                s("node-agent"),
                format!("--dir={}", p(&root)),
                format!("--nodes={}", options.nodes),
            ],
            &logs,
        )
        .env(
            "RUST_LOG",
            &std::env::var("RUST_LOG").unwrap_or_else(|_| s("info")),
        );

        let mut components = vec![etcd, apiserver, kcm, scheduler, agent];
        if let Some(kc) = &traefik_kc {
            components.push(traefik::component(&options.bin_dir, kc, &logs));
        }
        let mut cluster = Self {
            dir,
            netns,
            components,
            forward,
            ingress: None,
            dialer,
            kubeconfig,
            options,
        };
        for c in &mut cluster.components[..2] {
            c.start(&cluster.netns)?;
        }
        cluster.wait_api_ready().await?;
        for c in &mut cluster.components[2..5] {
            c.start(&cluster.netns)?;
        }
        cluster.wait_nodes_ready().await?;
        if cluster.options.ingress.is_some() {
            cluster.start_traefik().await?;
        }
        if !cluster.options.empty {
            cluster.apply_dev_overlay().await?;
            cluster.wait_pods_ready(DEV_NAMESPACE).await?;
        }
        tracing::info!("cluster up in {:?}", started.elapsed());
        Ok(cluster)
    }

    /// CRDs, RBAC and classes, then Traefik itself and the forward to it.
    async fn start_traefik(&mut self) -> anyhow::Result<()> {
        let kubectl = self.options.bin_dir.join("kubectl");
        traefik::install(&kubectl, &self.kubeconfig, &self.options.bin_dir).await?;
        let netns = &self.netns;
        let c = self
            .components
            .iter_mut()
            .find(|c| c.name == "traefik")
            .context("the traefik component")?;
        c.start(netns)?;
        let dialer = self.dialer.clone();
        let waited = traefik::wait_ready(&dialer, READY_TIMEOUT).await;
        if let Err(e) = waited {
            let log = self.log_tail("traefik", 25);
            bail!("{e:#}; traefik log:\n{log}");
        }
        self.ingress = Some(forward::Forward::start(dialer, traefik::web_addr()).await?);
        Ok(())
    }

    fn component(&mut self, name: &str) -> Option<&mut Component> {
        self.components.iter_mut().find(|c| c.name == name)
    }

    /// `Err` naming the first component that has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for c in &mut self.components {
            c.check_alive()?;
        }
        Ok(())
    }

    /// Poll `check` until it says done, failing when a component dies or time runs out.
    async fn wait_for<F, Fut>(
        &mut self,
        what: &str,
        blame: &str,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        loop {
            for c in &mut self.components {
                if c.pid().is_some() {
                    c.check_alive()?;
                }
            }
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                let log = self
                    .component(blame)
                    .map(|c| (c.log.display().to_string(), c.log_tail(25)))
                    .unwrap_or_default();
                bail!(
                    "{what} not within {READY_TIMEOUT:?} (last error: {last}); {blame} log ({}):\n{}",
                    log.0,
                    log.1
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn wait_api_ready(&mut self) -> anyhow::Result<()> {
        let kc = self.kubeconfig.clone();
        self.wait_for("kube-apiserver /readyz", "kube-apiserver", || {
            let kc = kc.clone();
            async move {
                let client = client_for(&kc).await?;
                let req = http::Request::get("/readyz").body(Vec::new())?;
                Ok(client
                    .request_text(req)
                    .await
                    .is_ok_and(|t| t.trim() == "ok"))
            }
        })
        .await
    }

    async fn wait_nodes_ready(&mut self) -> anyhow::Result<()> {
        let kc = self.kubeconfig.clone();
        let want = self.options.nodes;
        self.wait_for(&format!("{want} Ready nodes"), "node-agent", || {
            let kc = kc.clone();
            async move {
                let nodes: Api<Node> = Api::all(client_for(&kc).await?);
                let list = nodes.list(&ListParams::default()).await?;
                let ready = list.items.iter().filter(|n| node_is_ready(n)).count();
                Ok(ready >= want)
            }
        })
        .await
    }

    async fn apply_dev_overlay(&mut self) -> anyhow::Result<()> {
        let kubectl = self.options.bin_dir.join("kubectl");
        let overlay = self.options.overlay.clone();
        // The namespace's default ServiceAccount and RBAC bootstrap may lag the
        // first readyz by a moment; kubectl apply is idempotent, so retry.
        let mut last = String::new();
        for _ in 0..20 {
            let out = tokio::process::Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg("apply")
                .arg("-k")
                .arg(&overlay)
                .output()
                .await
                .with_context(|| format!("running {}", kubectl.display()))?;
            if out.status.success() {
                return Ok(());
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("kubectl apply -k {} failed: {last}", overlay.display())
    }

    /// Wait until every pod of the namespace's Deployments is Ready and listed
    /// ready in its EndpointSlices (the namespace has a Service selecting them).
    pub async fn wait_pods_ready(&mut self, namespace: &str) -> anyhow::Result<()> {
        let kc = self.kubeconfig.clone();
        let ns = namespace.to_string();
        self.wait_for(
            &format!("the pods of namespace {namespace} Ready"),
            "node-agent",
            || {
                let kc = kc.clone();
                let ns = ns.clone();
                async move {
                    let client = client_for(&kc).await?;
                    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
                        Api::namespaced(client.clone(), &ns);
                    let want: i32 = deploys
                        .list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
                        .sum();
                    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
                    let ready = pods
                        .list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .filter(|p| pod_is_ready(p))
                        .count();
                    // The EndpointSlice controller lists a pod as ready a
                    // moment after the pod is: wait for that too, or the first
                    // command (the demo's check) sees "1 ready of 2".
                    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
                        Api::namespaced(client, &ns);
                    let mut listed: Vec<String> = slices
                        .list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .flat_map(|s| s.endpoints.iter())
                        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                        .filter_map(|e| e.target_ref.as_ref().and_then(|t| t.name.clone()))
                        .collect();
                    listed.sort();
                    listed.dedup();
                    Ok(want > 0 && ready as i32 >= want && listed.len() as i32 >= want)
                }
            },
        )
        .await
    }

    /// Restart kube-apiserver (a fault for tests: SIGUSR1 to the launcher).
    pub async fn restart_apiserver(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self
            .components
            .iter_mut()
            .find(|c| c.name == "kube-apiserver")
        {
            c.stop(Duration::from_secs(10));
            c.start(&self.netns)?;
        }
        self.wait_api_ready().await
    }

    /// The process ids of the components, for tests that stop one.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.components
            .iter()
            .filter_map(|c| c.pid().map(|p| (c.name.clone(), p)))
            .collect()
    }

    /// Write `pids` (NAME PID per line) next to the kubeconfig.
    pub fn write_pids(&self) -> anyhow::Result<()> {
        let text: String = self
            .pids()
            .iter()
            .map(|(n, p)| format!("{n} {p}\n"))
            .collect();
        std::fs::write(self.dir.path().join("pids"), text).context("writing pids")
    }

    /// Stop the node agent first (its pods' processes go with it), then the rest.
    pub async fn shutdown(mut self) {
        let comps = std::mem::take(&mut self.components);
        tokio::task::spawn_blocking(move || {
            for mut c in comps.into_iter().rev() {
                c.stop(Duration::from_secs(5));
            }
        })
        .await
        .ok();
        self.forward.stop();
        if let Some(f) = &self.ingress {
            f.stop();
        }
    }

    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        tail(
            &self.dir.path().join("logs").join(format!("{name}.log")),
            lines,
        )
    }
}

pub fn node_is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

/// Metadata-level audit of every request: benchmarks count the API calls a
/// command makes from the API server's own record, not from the plugin's side.
fn write_audit_policy(root: &Path) -> anyhow::Result<PathBuf> {
    let path = root.join("audit-policy.yaml");
    std::fs::write(
        &path,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    )?;
    Ok(path)
}
