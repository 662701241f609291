//! Rules on what the probes observed (WSA060–WSA066): per-pod port-forward
//! tests, `Active connections` log lines, and multi-client URL runs.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;

use super::ctx::{Ctx, Rule, finding, names, plural};
use super::route::{Affinity, Route};
use crate::report::Finding;
use crate::snapshot::{Identity, PodLog, PodProbe, UpgradeRefusal};

pub const RULES: &[Rule] = &[
    wsa060_unreachable,
    wsa061_other_identity,
    wsa062_log_did_not_rise,
    wsa063_no_active_line,
    wsa064_imbalance,
    wsa064_url_imbalance,
    wsa065_client_on_several_pods,
    wsa066_all_clients_one_pod,
    wsa067_repinned,
];

/// The rules that need only what a URL test observed: `spread` runs them
/// when the cluster could not be read, and they then name no cluster cause.
pub const OBSERVATION_RULES: &[Rule] = &[
    wsa064_url_imbalance,
    wsa065_client_on_several_pods,
    wsa066_all_clients_one_pod,
    wsa067_repinned,
];

/// What to say instead of a cause when no Service was read.
const NO_SNAPSHOT_CAUSE: &str = "unknown, because the cluster was not read: run spread with the Service as its target (`kubectl wsaffinity spread -n NS svc/NAME --url URL`) to have the cause named";

/// max/mean above this is uneven (WSA064).
pub const IMBALANCE_THRESHOLD: f64 = 1.5;

/// Open connections are uneven when the busiest pod holds more than
/// [`IMBALANCE_THRESHOLD`] × the mean, or when a pod holds under half the
/// mean while pods hold two or more on average: after a scale-up from 3 to 4
/// pods (4, 4, 4, 0, found on the real cluster) the ratio is only 1.33, yet
/// the new pod's emptiness is exactly what the user asks about.
pub fn is_uneven(max: u64, min: u64, mean: f64) -> bool {
    max as f64 / mean > IMBALANCE_THRESHOLD || ((min as f64) < mean / 2.0 && mean >= 2.0)
}
/// Fewer open connections than this in total say nothing about balance.
pub const MIN_CONNECTIONS_FOR_IMBALANCE: u64 = 6;

/// WSA060's title when the forward worked and the pod's server refused the
/// WebSocket upgrade (the catalog's title is for a pod not reached at all).
pub const WSA060_REFUSED_TITLE: &str =
    "pod reached over port-forward but refused the WebSocket upgrade";

/// WSA060: a pod could not be reached through port-forward, or was reached
/// and refused the WebSocket upgrade (an HTTP answer other than 101).
pub fn wsa060_unreachable(ctx: &Ctx) -> Vec<Finding> {
    let Some(probes) = &ctx.obs.per_pod else {
        return vec![];
    };
    probes
        .iter()
        .filter(|p| p.error.is_some() || (p.attempted > 0 && p.ok == 0))
        .map(|p| match &p.refused {
            Some(refusal) => upgrade_refused(ctx, p, refusal),
            None => unreachable(ctx, p),
        })
        .collect()
}

fn failed_of(p: &PodProbe) -> String {
    format!(
        "{} of {} connections failed",
        p.failed.max(p.attempted.saturating_sub(p.ok)),
        p.attempted
    )
}

/// The forward itself failed: the API's or the kubelet's text says why.
fn unreachable(ctx: &Ctx, p: &PodProbe) -> Finding {
    let why = p
        .error
        .clone()
        .unwrap_or_else(|| "no connection succeeded and no error text was returned".into());
    finding(
        "WSA060",
        format!("pod `{}` port {}: {}: {why}", p.pod, p.port, failed_of(p)),
        vec![format!("pod/{} port-forward {}: {why}", p.pod, p.port)],
        format!(
            "check the pod listens on {}: `kubectl logs {} -n {}`, `kubectl describe pod {} -n {}`; and that you may `create pods/portforward`",
            p.port,
            p.pod,
            ctx.ns(),
            p.pod,
            ctx.ns()
        ),
    )
}

/// The forward worked and the server answered the upgrade with HTTP N: a
/// server error (5xx) points at its log; any other answer (404, 400, 426,
/// or a plain 200 page) means no WebSocket there, and points at
/// `--path`/`--port`.
fn upgrade_refused(ctx: &Ctx, p: &PodProbe, r: &UpgradeRefusal) -> Finding {
    let fix = if !(500..600).contains(&r.status) {
        format!(
            "check the WebSocket path and port: pass the path the server upgrades on with `--path` (this test used {}), e.g. `--path /ws`, and the container port that serves WebSockets with `--port` if it is not {}",
            r.path, p.port
        )
    } else {
        format!(
            "the server failed the upgrade with HTTP {}: check its log for why, e.g. a connection limit: `kubectl logs {} -n {}`",
            r.status,
            p.pod,
            ctx.ns()
        )
    };
    let mut detail = format!(
        "pod `{}` was reached over port-forward on port {}, but refused the WebSocket upgrade on {} with HTTP {} ({})",
        p.pod,
        p.port,
        r.path,
        r.status_text,
        failed_of(p)
    );
    if let Some(body) = &r.body {
        detail.push_str(&format!("; it answered: {body}"));
    }
    let mut f = finding(
        "WSA060",
        detail,
        vec![format!(
            "pod/{} port-forward {}: GET {} answered HTTP {}",
            p.pod, p.port, r.path, r.status_text
        )],
        fix,
    );
    f.title = WSA060_REFUSED_TITLE.to_owned();
    f
}

/// WSA061: the hello named another pod.
pub fn wsa061_other_identity(ctx: &Ctx) -> Vec<Finding> {
    let Some(probes) = &ctx.obs.per_pod else {
        return vec![];
    };
    probes
        .iter()
        .filter_map(|p| match &p.identity {
            Identity::Other(other) => Some(finding(
                "WSA061",
                format!("the port-forward to pod `{}` was answered by a server calling itself `{other}`", p.pod),
                vec![format!("pod/{} hello.pod={other}", p.pod)],
                "set POD_NAME from the downward API (`valueFrom.fieldRef.fieldPath: metadata.name`) and check that nothing else listens on the port",
            )),
            _ => None,
        })
        .collect()
}

/// WSA062's title when the count is `--metric`'s gauge, not the log line.
pub const WSA062_METRIC_TITLE: &str =
    "the gauge read with --metric did not rise by the connections held open";

/// WSA062: logged Active did not rise by the connections held.
pub fn wsa062_log_did_not_rise(ctx: &Ctx) -> Vec<Finding> {
    let Some(probes) = &ctx.obs.per_pod else {
        return vec![];
    };
    probes
        .iter()
        .filter_map(|p| {
            let (Some(before), Some(during)) = (p.logged_active_before, p.logged_active_during) else { return None };
            let rise = during.saturating_sub(before);
            if p.ok == 0 || rise >= u64::from(p.ok) {
                return None;
            }
            if let Some(src) = &ctx.obs.active_source {
                let mut f = finding(
                    "WSA062",
                    format!(
                        "pod `{}`: the test held {} open, but its gauge `{}` went from {before} to {during} (+{rise})",
                        p.pod,
                        plural(p.ok as usize, "connection"),
                        src.metric,
                    ),
                    vec![format!("pod/{} metric `{}`: before={before} during={during}, held={}", p.pod, src.metric, p.ok)],
                    format!(
                        "check that `{}` counts this server's open WebSocket connections (`kubectl wsaffinity logs --metric NAME` shows each pod's value), and pass the one that does with --metric",
                        src.metric
                    ),
                );
                f.title = WSA062_METRIC_TITLE.to_owned();
                return Some(f);
            }
            Some(finding(
                "WSA062",
                format!(
                    "pod `{}`: the test held {} open, but its logged Active connections went from {before} to {during} (+{rise})",
                    p.pod,
                    plural(p.ok as usize, "connection"),
                ),
                vec![format!("pod/{} log `Active connections`: before={before} during={during}, held={}", p.pod, p.ok)],
                format!(
                    "check that the server logs `Active connections: N` on every change: `kubectl logs {} -n {} --timestamps --tail=50`",
                    p.pod,
                    ctx.ns()
                ),
            ))
        })
        .collect()
}

/// WSA063: no Active line in a pod's recent logs.
pub fn wsa063_no_active_line(ctx: &Ctx) -> Vec<Finding> {
    let Some(logs) = &ctx.obs.logs else {
        return vec![];
    };
    logs.iter()
        .filter(|l| l.active.is_none())
        .map(|l| {
            if let Some(src) = &ctx.obs.active_source {
                let extra = l.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                return finding(
                    "WSA063",
                    format!("pod `{}` gave no value for `{}`{extra}", l.pod, src.metric),
                    vec![format!("pod/{} metrics: no `{}`", l.pod, src.metric)],
                    "check the name with `--metric` and the port with `--metrics-port`; the note shows what the pod exposes".to_string(),
                );
            }
            let extra = l.error.as_deref().map(|e| format!(" (reading the log failed: {e})")).unwrap_or_default();
            finding(
                "WSA063",
                format!("pod `{}` has no `Active connections: N` line in its recent logs{extra}", l.pod),
                vec![format!("pod/{} logs: no `Active connections` line", l.pod)],
                format!(
                    "none needed for the companion server until a connection opens; otherwise log `Active connections: N` on every change (`kubectl logs {} -n {}`)",
                    l.pod,
                    ctx.ns()
                ),
            )
        })
        .collect()
}

/// When the pod started: from the log observation, else the snapshot's pod status.
fn started(ctx: &Ctx, l: &PodLog) -> Option<Timestamp> {
    l.started
        .as_deref()
        .and_then(|s| s.parse().ok())
        .or_else(|| {
            ctx.snap
                .pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(l.pod.as_str()))
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
        })
}

/// WSA064: uneven spread of open connections, with the likely cause.
pub fn wsa064_imbalance(ctx: &Ctx) -> Vec<Finding> {
    let counts: Vec<(&PodLog, u64)> = match &ctx.obs.logs {
        Some(logs) => logs
            .iter()
            .filter_map(|l| l.active.map(|a| (l, a)))
            .collect(),
        None => return vec![],
    };
    if counts.len() < 2 {
        return vec![];
    }
    let total: u64 = counts.iter().map(|(_, a)| a).sum();
    if total < MIN_CONNECTIONS_FOR_IMBALANCE {
        return vec![];
    }
    let mean = total as f64 / counts.len() as f64;
    let max = counts.iter().map(|(_, a)| *a).max().unwrap_or(0);
    let min = counts.iter().map(|(_, a)| *a).min().unwrap_or(0);
    let ratio = max as f64 / mean;
    if !is_uneven(max, min, mean) {
        return vec![];
    }
    let emptier: Vec<&(&PodLog, u64)> = counts.iter().filter(|(_, a)| (*a as f64) < mean).collect();
    let fuller: Vec<&(&PodLog, u64)> = counts.iter().filter(|(_, a)| (*a as f64) >= mean).collect();
    let youngest_full = fuller
        .iter()
        .map(|(l, _)| started(ctx, l))
        .collect::<Option<Vec<_>>>()
        .and_then(|v| v.into_iter().max());
    let oldest_empty = emptier
        .iter()
        .map(|(l, _)| started(ctx, l))
        .collect::<Option<Vec<_>>>()
        .and_then(|v| v.into_iter().min());
    let per_pod: Vec<String> = counts
        .iter()
        .map(|(l, a)| format!("{}: {a}", l.pod))
        .collect();
    let cause = match (youngest_full, oldest_empty) {
        (Some(full), Some(empty)) if empty > full && !emptier.is_empty() => {
            let young: Vec<String> = emptier.iter().map(|(l, _)| l.pod.clone()).collect();
            format!(
                "the emptier pods {} started after the busier ones: only new connections are balanced and WebSockets stay open for hours, so younger pods fill up only as clients reconnect",
                names(&young)
            )
        }
        _ => likely_cause_from_snapshot(ctx),
    };
    vec![finding(
        "WSA064",
        format!(
            "open connections per pod are uneven (busiest {max}, emptiest {min}, mean {mean:.1}, max/mean {ratio:.1}): {}; likely cause: {cause}",
            per_pod.join(", ")
        ),
        counts
            .iter()
            .map(|(l, a)| {
                format!(
                    "pod/{} Active connections={a}{}",
                    l.pod,
                    l.started
                        .as_deref()
                        .map(|s| format!(" started={s}"))
                        .unwrap_or_default()
                )
            })
            .collect(),
        "let clients reconnect over time, or have the server ask them to: close with code 1012/1013 or enforce a maximum connection age; nothing moves open connections by itself",
    )]
}

/// WSA064 for a URL test: the connections it opened are unevenly spread
/// over the pods it reached (and, with a snapshot, the ready pods it did not).
/// Under affinity a client, not a connection, is what gets balanced, so then
/// each client counts once (on its first pod). All clients on one pod is
/// WSA066's case, and one client alone proves nothing about balance.
pub fn wsa064_url_imbalance(ctx: &Ctx) -> Vec<Finding> {
    let Some(run) = &ctx.obs.url else {
        return vec![];
    };
    if run.clients.len() < 2 {
        return vec![];
    }
    let per_client = affinity_on(ctx, run.cookies).is_some();
    let mut counts: std::collections::BTreeMap<String, u64> = ctx
        .ready_endpoints()
        .iter()
        .filter_map(|e| e.pod.clone())
        .map(|p| (p, 0))
        .collect();
    for c in &run.clients {
        let pods: Vec<&String> = c.pods.iter().filter(|p| *p != "unknown").collect();
        let counted = if per_client {
            &pods[..pods.len().min(1)]
        } else {
            &pods[..]
        };
        for p in counted {
            *counts.entry((*p).clone()).or_default() += 1;
        }
    }
    let reached = counts.values().filter(|n| **n > 0).count();
    let total: u64 = counts.values().sum();
    if counts.len() < 2 || reached < 2 || total < MIN_CONNECTIONS_FOR_IMBALANCE {
        return vec![];
    }
    let mean = total as f64 / counts.len() as f64;
    let max = counts.values().copied().max().unwrap_or(0);
    let ratio = max as f64 / mean;
    if ratio <= IMBALANCE_THRESHOLD {
        return vec![];
    }
    let unit = if per_client { "client" } else { "connection" };
    let per_pod: Vec<String> = counts.iter().map(|(p, n)| format!("{p}: {n}")).collect();
    let cause = if ctx.service.is_none() {
        NO_SNAPSHOT_CAUSE.to_owned()
    } else {
        likely_cause_from_snapshot(ctx)
    };
    vec![finding(
        "WSA064",
        format!(
            "through {} the {unit}s are uneven across pods (busiest {max}, mean {mean:.1}, ratio {ratio:.1} > {IMBALANCE_THRESHOLD}): {}; likely cause: {cause}",
            run.url,
            per_pod.join(", ")
        ),
        vec![format!(
            "url test {}: {} clients x {} connections, counted per {unit}",
            run.url,
            run.clients.len(),
            run.connect
        )],
        "run again with more clients to tell chance from a cause; if it persists, check what the balancer hashes on (the evidence of the other findings)",
    )]
}

fn likely_cause_from_snapshot(ctx: &Ctx) -> String {
    if let Some(r) = ctx.routes.iter().find(|r| {
        matches!(
            r.affinity,
            Affinity::Hash {
                client_address: true,
                ..
            }
        )
    }) {
        return format!(
            "{} hashes on the client address, so clients behind one address share a pod",
            r.tick()
        );
    }
    if ctx.routes.iter().any(|r| r.to_cluster_ip.is_some()) && ctx.client_ip_timeout().is_some() {
        return "a route sends to the ClusterIP and ClientIP affinity sees only the controller's IP".into();
    }
    if ctx.is_external_type() && ctx.external_traffic_policy() == "Local" {
        return "externalTrafficPolicy Local: per-pod load follows the number of pods on each node"
            .into();
    }
    if ctx.client_ip_timeout().is_some() {
        return "ClientIP affinity: a busy client IP keeps all its connections on one pod".into();
    }
    "long-lived connections: only new connections are balanced, so pods that started later or were restarted hold fewer until clients reconnect".into()
}

/// Does affinity apply to the URL test's clients?
fn affinity_on(ctx: &Ctx, cookies: bool) -> Option<String> {
    if ctx.service.is_none() {
        // No routing was read: the affinity cookie the handshakes set is the
        // only evidence, and it binds only clients that send it back.
        let run = ctx.obs.url.as_ref()?;
        return match &run.affinity_cookie {
            Some(name) if cookies => Some(format!(
                "affinity cookie `{name}` set by {} in the handshake",
                run.url
            )),
            _ => None,
        };
    }
    let route_affinity = |r: &Route| match &r.affinity {
        Affinity::None => None,
        Affinity::Cookie { .. } if !cookies || r.to_cluster_ip.is_some() => None,
        a => Some(format!("{} affinity {}", r.reference(), a.summary())),
    };
    // The route the URL's host goes through, when one names it: a controller
    // that sends to the pods itself never sees the Service's ClientIP affinity.
    let host = ctx.obs.url.as_ref().and_then(|run| url_host(&run.url));
    let through = host.and_then(|h| {
        ctx.entry_routes()
            .find(|r| r.hosts.iter().any(|rh| rh.eq_ignore_ascii_case(&h)))
    });
    if let Some(r) = through.filter(|r| r.bypasses_service && r.to_cluster_ip.is_none()) {
        return route_affinity(r);
    }
    if ctx.client_ip_timeout().is_some() {
        return Some(format!("{} sessionAffinity=ClientIP", ctx.svc_ref()));
    }
    ctx.entry_routes().find_map(route_affinity)
}

/// `ws://HOST:PORT/path` → `HOST` (lower-cased).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// WSA065: one client's connections on several pods although affinity is on.
pub fn wsa065_client_on_several_pods(ctx: &Ctx) -> Vec<Finding> {
    let Some(run) = &ctx.obs.url else {
        return vec![];
    };
    let Some(aff) = affinity_on(ctx, run.cookies) else {
        return vec![];
    };
    let spread: Vec<String> = run
        .clients
        .iter()
        .filter(|c| pinned_runs(c).iter().any(|run| run.len() > 1))
        .filter_map(|c| {
            let pods: BTreeSet<&str> = c
                .pods
                .iter()
                .map(String::as_str)
                .filter(|p| *p != "unknown")
                .collect();
            (pods.len() > 1).then(|| {
                format!(
                    "client {}: {}",
                    c.client,
                    pods.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect();
    if spread.is_empty() {
        return vec![];
    }
    vec![finding(
        "WSA065",
        format!(
            "through {} with affinity configured ({aff}), {} landed on several pods: {}",
            run.url,
            plural(spread.len(), "client"),
            spread.join("; ")
        ),
        vec![
            aff,
            format!("url test {}: cookies={}", run.url, run.cookies),
        ],
        "check which object serves this URL (host and path), that the client keeps and sends its cookies, and that the affinity is set on that route",
    )]
}

/// The distinct pods of each stretch of a client's connections between two
/// re-pins (WSA067): a client the proxy moved once because its pod went away
/// did not lose its affinity.
fn pinned_runs(c: &crate::snapshot::UrlClient) -> Vec<BTreeSet<&str>> {
    let mut runs = vec![BTreeSet::new()];
    for (i, pod) in c.pods.iter().enumerate() {
        if c.repins.iter().any(|r| r.connection as usize == i + 1) && i > 0 {
            runs.push(BTreeSet::new());
        }
        if let (true, Some(run)) = (pod != "unknown", runs.last_mut()) {
            run.insert(pod.as_str());
        }
    }
    runs
}

/// WSA067: the proxy replaced a client's affinity cookie and moved it.
pub fn wsa067_repinned(ctx: &Ctx) -> Vec<Finding> {
    let Some(run) = &ctx.obs.url else {
        return vec![];
    };
    let cookie = run.affinity_cookie.as_deref().unwrap_or("affinity cookie");
    let ready = ctx.ready_count();
    let moved: Vec<String> = run
        .clients
        .iter()
        .flat_map(|c| {
            c.repins.iter().map(move |r| {
                let pod = c
                    .pods
                    .get(r.connection as usize - 1)
                    .map_or("unknown", String::as_str);
                let before = (r.connection > 1)
                    .then(|| c.pods.get(r.connection as usize - 2))
                    .flatten()
                    .map(|p| format!(" (it was on {p})"))
                    .unwrap_or_default();
                format!(
                    "client {} sent {cookie}={} and got {} back: connection {} landed on {pod}{before}",
                    c.client, r.from, r.to, r.connection
                )
            })
        })
        .collect();
    if moved.is_empty() {
        return vec![];
    }
    let gone = if ctx.service.is_none() {
        "the pod the old cookie named was gone or unusable for the proxy (deleted, scaled away or not ready)".to_string()
    } else {
        format!(
            "the pod the old cookie named was gone or unusable for the proxy (deleted, scaled away or not ready; {} ready now)",
            plural(ready, "pod")
        )
    };
    vec![finding(
        "WSA067",
        format!(
            "through {}, the proxy pinned {} again: {}; {gone}, so it chose another and set a new cookie. That is recovery, not a failure of the affinity or of the test",
            run.url,
            plural(moved.len(), "client connection"),
            moved.join("; ")
        ),
        vec![format!(
            "url test {}: Set-Cookie {cookie} replaced the value sent",
            run.url
        )],
        "none needed: that is how cookie affinity recovers; after rollouts and scale-downs the WebSockets on removed pods reconnect too, so give clients reconnect backoff with jitter",
    )]
}

fn is_local_url(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.split(['/', ':']).next().unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "[" | "0.0.0.0")
        || host.starts_with("127.")
        || url.contains("[::1]")
}

/// WSA066: all clients landed on one pod.
pub fn wsa066_all_clients_one_pod(ctx: &Ctx) -> Vec<Finding> {
    let Some(run) = &ctx.obs.url else {
        return vec![];
    };
    if run.clients.len() < 2 {
        return vec![];
    }
    let pods: BTreeSet<&str> = run
        .clients
        .iter()
        .flat_map(|c| c.pods.iter().map(String::as_str))
        .filter(|p| *p != "unknown")
        .collect();
    if pods.len() != 1 {
        return vec![];
    }
    let pod = pods.into_iter().next().unwrap_or_default();
    let ready = ctx.ready_count();
    let sources: BTreeSet<&str> = run
        .clients
        .iter()
        .filter_map(|c| c.source_ip.as_deref())
        .collect();
    let cause = if is_local_url(&run.url) && (ctx.service.is_none() || ready > 1) {
        "the URL is local, most likely a `kubectl port-forward`, which reaches one pod".to_owned()
    } else if ctx.service.is_none() {
        NO_SNAPSHOT_CAUSE.to_owned()
    } else if ready <= 1 {
        "only one pod is ready".to_owned()
    } else if let Some(r) = ctx
        .entry_routes()
        .find(|r| r.to_cluster_ip.is_some() && ctx.client_ip_timeout().is_some())
    {
        format!(
            "{} sends to the ClusterIP and ClientIP affinity sees the controller's IP for every client",
            r.tick()
        )
    } else if let Some(r) = ctx.entry_routes().find(|r| {
        matches!(
            r.affinity,
            Affinity::Hash {
                client_address: true,
                ..
            }
        )
    }) {
        format!(
            "{} hashes on the client address and all test clients share this machine's address",
            r.tick()
        )
    } else if ctx.client_ip_timeout().is_some()
        && !ctx.entry_routes().any(|r| r.bypasses_service)
        && sources.len() <= 1
    {
        "all test clients come from this machine's one IP and ClientIP affinity pins it to one pod"
            .to_owned()
    } else {
        let n = run.clients.len();
        format!(
            "with {n} clients and {ready} ready pods this can happen by chance; run again with more clients"
        )
    };
    vec![finding(
        "WSA066",
        format!(
            "all {} clients through {} landed on pod `{pod}`; likely cause: {cause}",
            run.clients.len(),
            run.url
        ),
        vec![format!(
            "url test {}: {} clients, 1 pod ({pod})",
            run.url,
            run.clients.len()
        )],
        "test from separate source IPs or with separate cookie jars, through the Ingress host rather than a port-forward",
    )]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::{Observations, PodProbe, Snapshot, UrlClient, UrlRun};

    fn run(rule: Rule, snap: &Snapshot, obs: &Observations) -> Vec<&'static str> {
        codes(&rule(&Ctx::new(snap, obs)))
    }

    fn probe(pod: &str) -> PodProbe {
        PodProbe {
            pod: pod.into(),
            port: 8080,
            ready: true,
            attempted: 3,
            ok: 3,
            identity: Identity::Matches,
            ..Default::default()
        }
    }

    fn log(pod: &str, active: Option<u64>, started: &str) -> PodLog {
        PodLog {
            pod: pod.into(),
            active,
            started: Some(started.into()),
            ..Default::default()
        }
    }

    fn url(clients: &[&[&str]], cookies: bool) -> UrlRun {
        UrlRun {
            url: "wss://ws.example.com/".into(),
            cookies,
            clients: clients
                .iter()
                .enumerate()
                .map(|(i, p)| UrlClient {
                    client: i as u32 + 1,
                    pods: p.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn base() -> Snapshot {
        snapshot(service("web").build()).ready_pods(3).build()
    }

    #[test]
    fn wsa060_fires_with_api_error_text() {
        let mut p = probe("web-1");
        p.ok = 0;
        p.failed = 3;
        p.error = Some("error forwarding port 8080 to pod abc: connection refused".into());
        let obs = Observations {
            per_pod: Some(vec![probe("web-0"), p]),
            ..Default::default()
        };
        let f = wsa060_unreachable(&Ctx::new(&base(), &obs));
        assert_eq!(codes(&f), vec!["WSA060"]);
        assert!(f[0].detail.contains("connection refused"));
        assert_eq!(super::super::diagnose(&base(), &obs, None).exit_code(), 1);
    }

    #[test]
    fn wsa060_forward_failure_keeps_the_unreachable_wording() {
        let mut p = probe("web-1");
        p.ok = 0;
        p.failed = 3;
        p.error = Some("error forwarding port 8080 to pod abc, uid : connection refused".into());
        let obs = Observations {
            per_pod: Some(vec![p]),
            ..Default::default()
        };
        let f = wsa060_unreachable(&Ctx::new(&base(), &obs));
        assert_eq!(f[0].title, "pod unreachable through port-forward");
        assert!(
            f[0].fix.starts_with("check the pod listens on 8080"),
            "{}",
            f[0].fix
        );
    }

    fn refused(status: u16, reason: &str, body: &str) -> Observations {
        let mut p = probe("web-1");
        p.ok = 0;
        p.failed = 3;
        let refusal = UpgradeRefusal {
            path: "/nope".into(),
            status,
            status_text: format!("{status} {reason}"),
            body: Some(body.into()),
        };
        p.error = Some(refusal.to_string());
        p.refused = Some(Box::new(refusal));
        Observations {
            per_pod: Some(vec![probe("web-0"), p]),
            ..Default::default()
        }
    }

    #[test]
    fn wsa060_refused_upgrade_says_the_pod_was_reached_and_names_path() {
        let obs = refused(404, "Not Found", "no such page");
        let f = wsa060_unreachable(&Ctx::new(&base(), &obs));
        assert_eq!(codes(&f), vec!["WSA060"]);
        assert_eq!(f[0].severity, crate::report::Severity::Error);
        assert_eq!(f[0].title, WSA060_REFUSED_TITLE);
        assert_eq!(
            f[0].detail,
            "pod `web-1` was reached over port-forward on port 8080, but refused the WebSocket upgrade on /nope with HTTP 404 Not Found (3 of 3 connections failed); it answered: no such page"
        );
        assert!(f[0].fix.contains("`--path /ws`"), "{}", f[0].fix);
        assert!(f[0].fix.contains("`--port`"), "{}", f[0].fix);
        assert!(!f[0].fix.contains("listens on"), "{}", f[0].fix);
        for (status, reason) in [(400, "Bad Request"), (426, "Upgrade Required")] {
            let f = wsa060_unreachable(&Ctx::new(&base(), &refused(status, reason, "x")));
            assert!(
                f[0].detail.contains(&format!("with HTTP {status}")),
                "{}",
                f[0].detail
            );
            assert!(f[0].fix.contains("--path"), "{}", f[0].fix);
        }
    }

    #[test]
    fn wsa060_plain_page_instead_of_an_upgrade_names_path() {
        let f = wsa060_unreachable(&Ctx::new(&base(), &refused(200, "OK", "ok")));
        assert_eq!(f[0].title, WSA060_REFUSED_TITLE);
        assert!(f[0].fix.contains("--path"), "{}", f[0].fix);
    }

    #[test]
    fn wsa060_refused_with_a_server_error_points_at_its_log() {
        let obs = refused(503, "Service Unavailable", "too many connections");
        let f = wsa060_unreachable(&Ctx::new(&base(), &obs));
        assert_eq!(f[0].title, WSA060_REFUSED_TITLE);
        assert!(f[0].fix.contains("kubectl logs web-1"), "{}", f[0].fix);
        assert!(!f[0].fix.contains("--path"), "{}", f[0].fix);
    }

    #[test]
    fn wsa060_silent_when_all_ok_or_not_run() {
        let obs = Observations {
            per_pod: Some(vec![probe("web-0")]),
            ..Default::default()
        };
        assert!(run(wsa060_unreachable, &base(), &obs).is_empty());
        assert!(run(wsa060_unreachable, &base(), &Observations::default()).is_empty());
    }

    #[test]
    fn wsa061_fires_for_other_identity_only() {
        let mut p = probe("web-0");
        p.identity = Identity::Other("web-2".into());
        let obs = Observations {
            per_pod: Some(vec![p, probe("web-1")]),
            ..Default::default()
        };
        assert_eq!(run(wsa061_other_identity, &base(), &obs), vec!["WSA061"]);
        let obs = Observations {
            per_pod: Some(vec![probe("web-1")]),
            ..Default::default()
        };
        assert!(run(wsa061_other_identity, &base(), &obs).is_empty());
    }

    #[test]
    fn wsa062_fires_when_log_rises_less_than_held() {
        let mut p = probe("web-0");
        p.logged_active_before = Some(10);
        p.logged_active_during = Some(11);
        let obs = Observations {
            per_pod: Some(vec![p]),
            ..Default::default()
        };
        assert_eq!(run(wsa062_log_did_not_rise, &base(), &obs), vec!["WSA062"]);
    }

    #[test]
    fn wsa062_names_the_gauge_when_the_count_came_from_a_metric() {
        let mut p = probe("web-0");
        p.logged_active_before = Some(3);
        p.logged_active_during = Some(3);
        let obs = Observations {
            per_pod: Some(vec![p]),
            active_source: Some(crate::snapshot::ActiveSource {
                kind: "metric".into(),
                metric: "ws_connections".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = wsa062_log_did_not_rise(&Ctx::new(&base(), &obs));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].title, WSA062_METRIC_TITLE);
        assert!(
            f[0].detail
                .contains("its gauge `ws_connections` went from 3 to 3"),
            "{}",
            f[0].detail
        );
        assert!(f[0].fix.contains("--metric"), "{}", f[0].fix);
    }

    #[test]
    fn wsa062_silent_when_log_rises_enough_or_unknown() {
        let mut p = probe("web-0");
        p.logged_active_before = Some(10);
        p.logged_active_during = Some(13);
        let mut q = probe("web-1");
        q.logged_active_before = None;
        q.logged_active_during = Some(3);
        let obs = Observations {
            per_pod: Some(vec![p, q]),
            ..Default::default()
        };
        assert!(run(wsa062_log_did_not_rise, &base(), &obs).is_empty());
    }

    #[test]
    fn wsa063_fires_for_missing_line() {
        let obs = Observations {
            logs: Some(vec![
                log("web-0", Some(3), "2026-01-01T00:00:00Z"),
                log("web-1", None, "2026-01-01T00:00:00Z"),
            ]),
            ..Default::default()
        };
        assert_eq!(run(wsa063_no_active_line, &base(), &obs), vec!["WSA063"]);
        let obs = Observations {
            logs: Some(vec![log("web-0", Some(0), "2026-01-01T00:00:00Z")]),
            ..Default::default()
        };
        assert!(run(wsa063_no_active_line, &base(), &obs).is_empty());
    }

    #[test]
    fn wsa064_names_younger_pods() {
        let obs = Observations {
            logs: Some(vec![
                log("web-0", Some(180), "2026-01-01T00:00:00Z"),
                log("web-1", Some(170), "2026-01-01T00:05:00Z"),
                log("web-2", Some(4), "2026-01-03T10:00:00Z"),
            ]),
            ..Default::default()
        };
        // 180 / mean 118 = 1.53: just above the threshold.
        let f = wsa064_imbalance(&Ctx::new(&base(), &obs));
        assert!(
            f[0].detail.contains("`web-2` started after"),
            "{}",
            f[0].detail
        );
        let obs = Observations {
            logs: Some(vec![
                log("web-0", Some(180), "2026-01-01T00:00:00Z"),
                log("web-1", Some(4), "2026-01-03T10:00:00Z"),
                log("web-2", Some(2), "2026-01-03T10:01:00Z"),
            ]),
            ..Default::default()
        };
        let f = wsa064_imbalance(&Ctx::new(&base(), &obs));
        assert_eq!(codes(&f), vec!["WSA064"]);
        assert!(
            f[0].detail.contains("`web-1`, `web-2` started after"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa064_reads_start_times_from_the_snapshot_pods() {
        let snap = snapshot(service("web").build())
            .pod(pod("web-0").started("2026-01-01T00:00:00Z").build())
            .pod(pod("web-1").started("2026-01-05T00:00:00Z").build())
            .endpoints(vec![
                ep("web-0", "10.0.0.1", "n1").build(),
                ep("web-1", "10.0.0.2", "n2").build(),
            ])
            .build();
        let no_start = |pod: &str, active| PodLog {
            pod: pod.into(),
            active: Some(active),
            ..Default::default()
        };
        let obs = Observations {
            logs: Some(vec![no_start("web-0", 50), no_start("web-1", 1)]),
            ..Default::default()
        };
        let f = wsa064_imbalance(&Ctx::new(&snap, &obs));
        assert!(
            f[0].detail.contains("`web-1` started after"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa064_falls_back_to_snapshot_cause() {
        let snap = snapshot(service("web").client_ip(10800).build())
            .ready_pods(2)
            .build();
        let obs = Observations {
            // The emptier pod is the older one: age does not explain it.
            logs: Some(vec![
                log("web-0", Some(2), "2026-01-01T00:00:00Z"),
                log("web-1", Some(40), "2026-01-03T00:00:00Z"),
            ]),
            ..Default::default()
        };
        let f = wsa064_imbalance(&Ctx::new(&snap, &obs));
        assert!(f[0].detail.contains("ClientIP affinity"), "{}", f[0].detail);
    }

    #[test]
    fn wsa064_silent_when_even_or_too_few() {
        let obs = Observations {
            logs: Some(vec![
                log("web-0", Some(10), "2026-01-01T00:00:00Z"),
                log("web-1", Some(12), "2026-01-02T00:00:00Z"),
            ]),
            ..Default::default()
        };
        assert!(run(wsa064_imbalance, &base(), &obs).is_empty());
        let obs = Observations {
            logs: Some(vec![
                log("web-0", Some(3), "2026-01-01T00:00:00Z"),
                log("web-1", Some(0), "2026-01-02T00:00:00Z"),
            ]),
            ..Default::default()
        };
        assert!(run(wsa064_imbalance, &base(), &obs).is_empty());
        let obs = Observations {
            logs: Some(vec![log("web-0", Some(300), "bad date")]),
            ..Default::default()
        };
        assert!(run(wsa064_imbalance, &base(), &obs).is_empty());
    }

    #[test]
    fn wsa065_fires_when_affinity_on_and_client_spreads() {
        let snap = snapshot(service("web").client_ip(10800).build())
            .ready_pods(2)
            .build();
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-1"], &["web-0", "web-0"]], true)),
            ..Default::default()
        };
        assert_eq!(
            run(wsa065_client_on_several_pods, &snap, &obs),
            vec!["WSA065"]
        );
    }

    #[test]
    fn wsa065_silent_without_affinity_or_with_cookies_off() {
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-1"]], true)),
            ..Default::default()
        };
        assert!(run(wsa065_client_on_several_pods, &base(), &obs).is_empty());
        let snap = snapshot(service("web").build())
            .ready_pods(2)
            .ingress(ingress_nginx("web", "web").nginx_cookie_ok().build())
            .build();
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-1"]], false)),
            ..Default::default()
        };
        assert!(run(wsa065_client_on_several_pods, &snap, &obs).is_empty());
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-0", "unknown"]], true)),
            ..Default::default()
        };
        assert!(run(wsa065_client_on_several_pods, &snap, &obs).is_empty());
    }

    #[test]
    fn wsa066_fires_with_cause() {
        let snap = snapshot(service("web").client_ip(10800).build())
            .ready_pods(2)
            .build();
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-0"], &["web-0"], &["web-0"]], true)),
            ..Default::default()
        };
        let f = wsa066_all_clients_one_pod(&Ctx::new(&snap, &obs));
        assert_eq!(codes(&f), vec!["WSA066"]);
        assert!(
            f[0].detail.contains("ClientIP affinity pins"),
            "{}",
            f[0].detail
        );
        let mut local = url(&[&["web-0"], &["web-0"]], true);
        local.url = "ws://127.0.0.1:8080/".into();
        let obs = Observations {
            url: Some(local),
            ..Default::default()
        };
        assert!(
            wsa066_all_clients_one_pod(&Ctx::new(&base(), &obs))[0]
                .detail
                .contains("port-forward")
        );
    }

    #[test]
    fn wsa066_silent_when_clients_spread_or_single_client() {
        let obs = Observations {
            url: Some(url(&[&["web-0"], &["web-1"]], true)),
            ..Default::default()
        };
        assert!(run(wsa066_all_clients_one_pod, &base(), &obs).is_empty());
        let obs = Observations {
            url: Some(url(&[&["web-0", "web-0"]], true)),
            ..Default::default()
        };
        assert!(run(wsa066_all_clients_one_pod, &base(), &obs).is_empty());
    }
    fn observed(run: UrlRun) -> Observations {
        Observations {
            url: Some(run),
            ..Default::default()
        }
    }

    #[test]
    fn without_a_snapshot_wsa066_names_no_cluster_cause() {
        let obs = observed(url(&[&["web-0"], &["web-0"], &["web-0"]], true));
        let report = super::super::diagnose_observations(&obs, None);
        assert_eq!(codes(&report.findings), vec!["WSA066"]);
        let d = &report.findings[0].detail;
        assert!(d.contains("the cluster was not read"), "{d}");
        assert!(!d.contains("only one pod is ready"), "{d}");
        assert!(
            report.verdict.starts_with("All 3 clients"),
            "{}",
            report.verdict
        );
        assert_eq!(report.exit_code(), 0);
        // A local URL is still recognised as a port-forward.
        let mut local = url(&[&["web-0"], &["web-0"]], true);
        local.url = "ws://127.0.0.1:8080/".into();
        let report = super::super::diagnose_observations(&observed(local), None);
        assert!(report.findings[0].detail.contains("port-forward"));
    }

    #[test]
    fn an_empty_new_pod_after_scale_up_is_uneven() {
        assert!(is_uneven(4, 0, 3.0), "3 → 4 pods: 4, 4, 4, 0");
        assert!(!is_uneven(3, 2, 2.5), "3, 2, 2, 3 is even");
        assert!(!is_uneven(1, 0, 0.75), "too few per pod to judge");
        assert!(is_uneven(8, 1, 3.0), "the ratio alone");
    }

    #[test]
    fn wsa067_a_replaced_cookie_is_recovery_and_not_wsa065() {
        // Seen through the real Traefik: pod deleted under a sticky client.
        let mut spread = url(&[&["web-0", "web-0", "web-2", "web-2"]], true);
        spread.affinity_cookie = Some("_49ac9".into());
        spread.clients[0].repins = vec![crate::snapshot::Repin {
            connection: 3,
            from: "17eb".into(),
            to: "e7d5".into(),
        }];
        let sticky = snapshot(
            service("web")
                .annotation(
                    "traefik.ingress.kubernetes.io/service.sticky.cookie",
                    "true",
                )
                .build(),
        )
        .ready_pods(3)
        .ingress(ingress("ws", "web").class("traefik").build())
        .build();
        let obs = observed(spread.clone());
        assert_eq!(run(wsa067_repinned, &sticky, &obs), vec!["WSA067"]);
        assert!(run(wsa065_client_on_several_pods, &sticky, &obs).is_empty());
        let f = wsa067_repinned(&Ctx::new(&sticky, &obs));
        assert!(
            f[0].detail
                .contains("connection 3 landed on web-2 (it was on web-0)"),
            "{}",
            f[0].detail
        );
        // Moving without a new cookie is still WSA065; no repin, no WSA067.
        spread.clients[0].repins.clear();
        let obs = observed(spread);
        assert!(run(wsa067_repinned, &sticky, &obs).is_empty());
        assert_eq!(
            run(wsa065_client_on_several_pods, &sticky, &obs),
            vec!["WSA065"]
        );
    }

    #[test]
    fn wsa065_through_a_route_that_skips_the_service_ignores_clientip() {
        // Traefik (found real): it sends to the pods itself, so the Service's
        // ClientIP affinity is no reason for one client to stay on one pod.
        let through = |sticky: bool| {
            let mut svc = service("web").client_ip(10800);
            if sticky {
                svc = svc.annotation(
                    "traefik.ingress.kubernetes.io/service.sticky.cookie",
                    "true",
                );
            }
            snapshot(svc.build())
                .ready_pods(3)
                .ingress(ingress("ws", "web").class("traefik").build())
                .build()
        };
        let mut spread = url(&[&["web-0", "web-1"]], true);
        spread.url = "ws://ws.example.com:41365/".into();
        let obs = observed(spread);
        assert!(run(wsa065_client_on_several_pods, &through(false), &obs).is_empty());
        assert_eq!(
            run(wsa065_client_on_several_pods, &through(true), &obs),
            vec!["WSA065"]
        );
        assert_eq!(url_host("ws://[::1]:80/x").as_deref(), Some("::1"));
        assert_eq!(
            url_host("wss://WS.example.com/").as_deref(),
            Some("ws.example.com")
        );
    }

    #[test]
    fn without_a_snapshot_wsa065_needs_a_seen_affinity_cookie_and_cookies_on() {
        let mut run = url(&[&["web-0", "web-1"], &["web-2", "web-2"]], true);
        let none = super::super::diagnose_observations(&observed(run.clone()), None);
        assert!(!codes(&none.findings).contains(&"WSA065"));
        run.affinity_cookie = Some("SERVERID".into());
        let f =
            wsa065_client_on_several_pods(&Ctx::new(&Snapshot::default(), &observed(run.clone())));
        assert_eq!(codes(&f), vec!["WSA065"]);
        assert!(f[0].detail.contains("`SERVERID`"), "{}", f[0].detail);
        assert!(
            f[0].detail.contains("client 1: web-0, web-1"),
            "{}",
            f[0].detail
        );
        run.cookies = false;
        assert!(
            wsa065_client_on_several_pods(&Ctx::new(&Snapshot::default(), &observed(run)))
                .is_empty()
        );
    }

    #[test]
    fn wsa064_url_counts_connections_without_affinity() {
        // 3 ready pods, no affinity: 8 connections on web-0, 1 on web-1, none on web-2.
        let run = url(
            &[
                &["web-0", "web-0", "web-0", "web-0"],
                &["web-0", "web-0", "web-0", "web-1"],
                &["web-0"],
            ],
            false,
        );
        let f = wsa064_url_imbalance(&Ctx::new(&base(), &observed(run)));
        assert_eq!(codes(&f), vec!["WSA064"]);
        assert!(
            f[0].detail.contains("connections are uneven"),
            "{}",
            f[0].detail
        );
        assert!(f[0].detail.contains("web-2: 0"), "{}", f[0].detail);
        // Without a snapshot only the reached pods count, and no cause is named.
        let run = url(
            &[
                &["web-0"; 5],
                &["web-0", "web-0", "web-0", "web-0", "web-1"],
            ],
            false,
        );
        let f = wsa064_url_imbalance(&Ctx::new(&Snapshot::default(), &observed(run)));
        assert_eq!(codes(&f), vec!["WSA064"]);
        assert!(
            f[0].detail.contains("the cluster was not read"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn wsa064_url_counts_clients_under_affinity_and_stays_quiet_when_even() {
        // ClientIP affinity: 2 clients with 5 connections each on 2 pods is even.
        let snap = snapshot(service("web").client_ip(10800).build())
            .ready_pods(2)
            .build();
        let run = url(&[&["web-0"; 5], &["web-1"; 5]], true);
        assert!(wsa064_url_imbalance(&Ctx::new(&snap, &observed(run))).is_empty());
        // Too few clients to say anything, however many connections each opened.
        let run = url(&[&["web-0"; 10], &["web-0"; 10], &["web-1"; 1]], true);
        assert!(wsa064_url_imbalance(&Ctx::new(&snap, &observed(run))).is_empty());
        // All on one pod is WSA066's case; one client proves nothing.
        let run = url(&[&["web-0"; 4], &["web-0"; 4]], false);
        assert!(wsa064_url_imbalance(&Ctx::new(&base(), &observed(run))).is_empty());
        let run = url(&[&["web-0"; 20]], false);
        assert!(wsa064_url_imbalance(&Ctx::new(&base(), &observed(run))).is_empty());
    }
}
