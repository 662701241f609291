//! The one place that builds a kube [`Client`] from `--kubeconfig`,
//! `KUBECONFIG`, `--context`, `-n` and `--request-timeout`, the way
//! kubectl-view-allocations does (a three-way match), plus the `-v` API log.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use thiserror::Error;
use tower::{BoxError, Layer, Service};

use crate::config::KubeOptions;

/// Where the cluster configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--kubeconfig PATH` (with `--context` when given).
    File {
        path: PathBuf,
        context: Option<String>,
    },
    /// `--context` alone: `KUBECONFIG` (a list of files) or `~/.kube/config`.
    Default { context: String },
    /// Neither: `KUBECONFIG`/`~/.kube/config` with its current-context, else in-cluster.
    Infer,
}

/// The three-way match.
pub fn config_source(opts: &KubeOptions) -> ConfigSource {
    match (&opts.kubeconfig, &opts.context) {
        (Some(path), context) => ConfigSource::File {
            path: path.clone(),
            context: context.clone(),
        },
        (None, Some(context)) => ConfigSource::Default {
            context: context.clone(),
        },
        (None, None) => ConfigSource::Infer,
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot use kubeconfig {}: {source}. Pass a readable kubeconfig with --kubeconfig PATH", .path.display())]
    KubeconfigFile {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "context `{context}` not found in {where_}. `kubectl config get-contexts` lists the contexts; pass one with --context NAME"
    )]
    NoSuchContext { context: String, where_: String },
    #[error(
        "cannot load the kubeconfig ($KUBECONFIG or ~/.kube/config): {source}. Pass one with --kubeconfig PATH"
    )]
    Kubeconfig {
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running inside a cluster. Pass one with --kubeconfig PATH or set KUBECONFIG"
    )]
    Infer {
        #[source]
        source: kube::config::InferConfigError,
    },
    #[error(
        "the kubeconfig's credential plugin `{command}` (users[].user.exec) failed: {message}. Run it yourself to see why (often an expired login: log in again), or pick another --context"
    )]
    ExecCredential { command: String, message: String },
    #[error("cannot build a client for {server}: {source}")]
    Build {
        server: String,
        #[source]
        source: kube::Error,
    },
}

/// A connected client and where it points.
#[derive(Clone)]
pub struct Kube {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The API server URL, for error messages.
    pub server: String,
}

/// Loads the kube [`kube::Config`] the flags select.
pub async fn load_config(opts: &KubeOptions) -> Result<kube::Config, ClientError> {
    let mut config = match config_source(opts) {
        ConfigSource::File { path, context } => {
            let kubeconfig =
                Kubeconfig::read_from(&path).map_err(|source| ClientError::KubeconfigFile {
                    path: path.clone(),
                    source,
                })?;
            let options = KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| context_error(source, context, || path.display().to_string()))
                .map_err(|e| match e {
                    ClientError::Kubeconfig { source } => {
                        ClientError::KubeconfigFile { path, source }
                    }
                    other => other,
                })?
        }
        ConfigSource::Default { context } => {
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..Default::default()
            };
            let loaded = match kubeconfig_from_env_list()? {
                Some(kubeconfig) => {
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
                }
                None => kube::Config::from_kubeconfig(&options).await,
            };
            loaded
                .map_err(|source| context_error(source, Some(context), default_kubeconfig_name))?
        }
        ConfigSource::Infer => match kubeconfig_from_env_list()? {
            Some(kubeconfig) => {
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|source| ClientError::Kubeconfig { source })?
            }
            None => kube::Config::infer()
                .await
                .map_err(|source| ClientError::Infer { source })?,
        },
    };
    if let Some(timeout) = opts.request_timeout {
        config.connect_timeout = Some(config.connect_timeout.map_or(timeout, |c| c.min(timeout)));
    }
    skip_unused_trust_store(&mut config);
    Ok(config)
}

/// A plain `http://` API server (`kubectl proxy`, the lab) is never spoken
/// to over TLS, yet without a CA in the kubeconfig kube-client loads the
/// OS trust store for its TLS connector anyway (~4 ms, ~150 files, on every
/// start). An empty set of roots skips that; it can verify nothing, and
/// nothing needs verifying. Not with a proxy, which may itself be TLS.
fn skip_unused_trust_store(config: &mut kube::Config) {
    let plain = config.cluster_url.scheme_str() == Some("http");
    if plain && config.proxy_url.is_none() && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
}

/// The files `KUBECONFIG` lists, merged, skipping the ones that do not exist
/// as kubectl (client-go) does: `KUBECONFIG=~/.kube/extra:~/.kube/config`
/// keeps working when `extra` is gone. kube-rs fails on the first missing
/// file instead. `None` when the variable is unset or no listed file exists,
/// so the caller falls back to `~/.kube/config` or in-cluster as before.
fn kubeconfig_from_env_list() -> Result<Option<Kubeconfig>, ClientError> {
    let Some(value) = std::env::var_os("KUBECONFIG") else {
        return Ok(None);
    };
    let existing = existing_paths(&value);
    if existing.is_empty() {
        return Ok(None);
    }
    let mut merged = Kubeconfig::default();
    for path in existing {
        let read = Kubeconfig::read_from(&path).and_then(|next| merged.merge(next));
        merged = read.map_err(|source| ClientError::KubeconfigFile { path, source })?;
    }
    Ok(Some(merged))
}

/// The entries of a `KUBECONFIG`-style list that name existing files.
fn existing_paths(list: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty() && p.is_file())
        .collect()
}

fn default_kubeconfig_name() -> String {
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => format!("KUBECONFIG={}", v.to_string_lossy()),
        _ => "~/.kube/config".to_string(),
    }
}

fn context_error(
    source: KubeconfigError,
    context: Option<String>,
    where_: impl Fn() -> String,
) -> ClientError {
    match (&source, context) {
        (KubeconfigError::LoadContext(_), Some(context)) => ClientError::NoSuchContext {
            context,
            where_: where_(),
        },
        _ => ClientError::Kubeconfig { source },
    }
}

/// The namespace to work in: `-n`, else the context's.
pub fn namespace_for(opts: &KubeOptions, config: &kube::Config) -> String {
    opts.namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone())
}

/// Builds the client (with the `-v` API log and the request timeout).
pub async fn connect(opts: &KubeOptions) -> Result<Kube, ClientError> {
    let config = load_config(opts).await?;
    let namespace = namespace_for(opts, &config);
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/').to_string();
    let exec_command = config
        .auth_info
        .exec
        .as_ref()
        .and_then(|e| e.command.clone());
    let builder = crate::http_stack::client_builder(config).map_err(|source| {
        exec_error(&source, exec_command.as_deref()).unwrap_or(ClientError::Build {
            server: server.clone(),
            source,
        })
    })?;
    let client = builder
        .with_layer(&ApiLogLayer {
            timeout: opts.request_timeout,
        })
        .build();
    tracing::info!(target: "kubectl_wsaffinity::api", "server {server}, namespace {namespace}");
    Ok(Kube {
        client,
        namespace,
        server,
    })
}

/// An exec credential plugin (EKS, GKE, AKS kubeconfigs) that could not run,
/// failed or printed no ExecCredential: its command and its own words (stderr).
fn exec_error(err: &kube::Error, command: Option<&str>) -> Option<ClientError> {
    use kube::client::AuthError;
    let kube::Error::Auth(auth) = err else {
        return None;
    };
    let message = match auth {
        AuthError::AuthExecStart(io) => {
            format!("it could not be started ({io}); is it installed and on PATH?")
        }
        AuthError::AuthExecRun { out, .. } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if said.is_empty() {
                format!("{}", out.status)
            } else {
                format!("{}: {}", out.status, said.join(" "))
            }
        }
        AuthError::AuthExecParse(e) => format!("its output is not an ExecCredential: {e}"),
        AuthError::AuthExec(m) => m.clone(),
        AuthError::ExecPluginFailed => "its ExecCredential has no status".to_string(),
        _ => return None,
    };
    Some(ClientError::ExecCredential {
        command: command.unwrap_or("exec").to_string(),
        message,
    })
}

/// Sets up `-v` logging to stderr: `-v` logs each API call, `-vv` adds
/// kube-rs debug logs, `-vvv` traces. Bearer tokens are never logged: the API
/// log prints method, path, status and time only.
pub fn init_tracing(verbose: u8) {
    let filter = match verbose {
        // kube-rs logs failed requests at ERROR; our own messages say it better.
        0 => "warn,kube_client=off",
        1 => "warn,kube_client=off,kubectl_wsaffinity=info",
        2 => "info,kubectl_wsaffinity=debug,kube=debug",
        _ => {
            "debug,kubectl_wsaffinity=trace,kube=trace,hyper=info,hyper_util=info,rustls=info,tower=info"
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(verbose >= 2)
        .with_ansi(false)
        .try_init();
}

/// The request timeout message (what `--request-timeout` cut).
#[derive(Debug, Error)]
#[error("no answer within {} (--request-timeout); raise it, e.g. --request-timeout 30s", humantime(*.0))]
pub struct RequestTimeout(pub Duration);

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A tower layer that logs each API call and applies `--request-timeout` to
/// the wait for the response headers (a port-forward's stream is not cut).
#[derive(Clone, Debug)]
pub struct ApiLogLayer {
    pub timeout: Option<Duration>,
}

impl<S> Layer<S> for ApiLogLayer {
    type Service = ApiLog<S>;

    fn layer(&self, inner: S) -> ApiLog<S> {
        ApiLog {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiLog<S> {
    inner: S,
    timeout: Option<Duration>,
}

type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B> Service<Request<Body>> for ApiLog<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFut<Response<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let method = req.method().clone();
        // Path and query only: never headers (the bearer token lives there).
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let timeout = self.timeout;
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = match timeout {
                Some(d) => match tokio::time::timeout(d, fut).await {
                    Ok(r) => r.map_err(Into::into),
                    Err(_) => Err(Box::new(RequestTimeout(d)) as BoxError),
                },
                None => fut.await.map_err(Into::into),
            };
            let ms = start.elapsed().as_millis();
            match &result {
                Ok(resp) => {
                    tracing::info!(target: "kubectl_wsaffinity::api", "{method} {path} {} {ms}ms", resp.status().as_u16())
                }
                Err(e) => {
                    tracing::info!(target: "kubectl_wsaffinity::api", "{method} {path} failed after {ms}ms: {e}")
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config_for(url: &str) -> kube::Config {
        kube::Config::new(url.parse().expect("a test URL"))
    }

    #[tokio::test]
    async fn a_plain_http_server_gets_no_trust_store_and_still_builds_a_client() {
        let mut http = config_for("http://127.0.0.1:8001");
        skip_unused_trust_store(&mut http);
        assert_eq!(http.root_cert, Some(Vec::new()));
        // kube-client accepts an empty root set: the client builds.
        assert!(crate::http_stack::client_builder(http).is_ok());

        let mut https = config_for("https://127.0.0.1:6443");
        skip_unused_trust_store(&mut https);
        assert_eq!(https.root_cert, None, "TLS servers keep the OS trust store");

        let mut proxied = config_for("http://127.0.0.1:8001");
        proxied.proxy_url = Some("http://proxy.example:3128".parse().expect("a test URL"));
        skip_unused_trust_store(&mut proxied);
        assert_eq!(proxied.root_cert, None, "a proxy may be TLS itself");
    }

    const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
current-context: a
clusters:
- name: ca
  cluster: { server: 'https://127.0.0.1:6443' }
- name: cb
  cluster: { server: 'http://127.0.0.2:8080' }
contexts:
- name: a
  context: { cluster: ca, user: u, namespace: dev }
- name: b
  context: { cluster: cb, user: u }
users:
- name: u
  user: { token: secret }
";

    fn opts(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> KubeOptions {
        KubeOptions {
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: context.map(str::to_string),
            namespace: namespace.map(str::to_string),
            request_timeout: None,
        }
    }

    #[test]
    fn three_way_match() {
        let p = Path::new("/k");
        assert_eq!(
            config_source(&opts(Some(p), Some("b"), None)),
            ConfigSource::File {
                path: p.into(),
                context: Some("b".into())
            }
        );
        assert_eq!(
            config_source(&opts(Some(p), None, None)),
            ConfigSource::File {
                path: p.into(),
                context: None
            }
        );
        assert_eq!(
            config_source(&opts(None, Some("b"), None)),
            ConfigSource::Default {
                context: "b".into()
            }
        );
        assert_eq!(
            config_source(&opts(None, None, Some("x"))),
            ConfigSource::Infer
        );
    }

    fn write_kubeconfig() -> (PathBuf, impl Drop) {
        struct Rm(PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let path = std::env::temp_dir().join(format!(
            "wsaffinity-client-test-{}-{}.yaml",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, KUBECONFIG).expect("write kubeconfig");
        (path.clone(), Rm(path))
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn file_with_current_context_gives_its_namespace() {
        let (path, _rm) = write_kubeconfig();
        let o = opts(Some(&path), None, None);
        let config = load_config(&o).await.expect("config");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(namespace_for(&o, &config), "dev");
    }

    #[tokio::test]
    async fn context_flag_selects_cluster_and_default_namespace() {
        let (path, _rm) = write_kubeconfig();
        let o = opts(Some(&path), Some("b"), None);
        let config = load_config(&o).await.expect("config");
        assert_eq!(config.cluster_url.to_string(), "http://127.0.0.2:8080/");
        assert_eq!(namespace_for(&o, &config), "default");
        let o = opts(Some(&path), Some("b"), Some("prod"));
        assert_eq!(namespace_for(&o, &config), "prod");
    }

    #[tokio::test]
    async fn unknown_context_and_missing_file_say_what_to_do() {
        let (path, _rm) = write_kubeconfig();
        let err = load_config(&opts(Some(&path), Some("nope"), None))
            .await
            .expect_err("error");
        assert!(matches!(err, ClientError::NoSuchContext { .. }), "{err}");
        assert!(
            err.to_string().contains("kubectl config get-contexts"),
            "{err}"
        );
        let err = load_config(&opts(
            Some(Path::new("/nonexistent/kubeconfig")),
            None,
            None,
        ))
        .await
        .expect_err("error");
        assert!(err.to_string().contains("--kubeconfig PATH"), "{err}");
    }

    #[test]
    fn a_kubeconfig_list_keeps_only_existing_files_in_order() {
        let (path, _rm) = write_kubeconfig();
        let list = std::env::join_paths([
            Path::new("/nonexistent/a"),
            Path::new(""),
            path.as_path(),
            Path::new("/nonexistent/b"),
        ])
        .expect("join");
        assert_eq!(existing_paths(&list), vec![path.clone()]);
        assert!(existing_paths(std::ffi::OsStr::new("/nonexistent/a")).is_empty());
    }

    #[test]
    fn timeout_message_names_the_flag() {
        assert!(
            RequestTimeout(Duration::from_secs(5))
                .to_string()
                .contains("5s (--request-timeout)")
        );
    }
}
