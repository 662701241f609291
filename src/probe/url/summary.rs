//! The numbers a `spread` report shows, computed once from a [`UrlRun`]:
//! the client × pod matrix, per-pod totals, imbalance (max/mean) and whether
//! each client stayed on one pod. Pure; `render` only lays it out.

use serde::Serialize;

use super::attribution::UNKNOWN;
use crate::snapshot::{Attribution, UrlRun};

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    /// Matrix columns: pods in name order, `unknown` last.
    pub pods: Vec<String>,
    pub clients: Vec<ClientRow>,
    /// Connections per column, same order as `pods`.
    pub totals: Vec<u32>,
    pub connections: u32,
    pub failed: u32,
    /// Highest per-pod count over the mean per pod (1.0 = perfectly even);
    /// `None` with no attributed connection. `unknown` is not a pod.
    pub imbalance: Option<f64>,
    /// Clients with at least one connection, all on one pod.
    pub clients_on_one_pod: u32,
    /// Clients with at least one attributed connection.
    pub clients_with_connections: u32,
    /// Distinct pods (not `unknown`) that got at least one connection.
    pub pods_reached: u32,
    /// How many connections each attribution source named.
    pub attributed_by: Vec<(Attribution, u32)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRow {
    pub client: u32,
    pub source_ip: Option<String>,
    /// Connections per column of [`Spread::pods`].
    pub counts: Vec<u32>,
    pub failed: u32,
    /// All of its attributed connections on one pod (`unknown` excluded).
    pub one_pod: bool,
    pub error: Option<String>,
}

/// Builds the summary. `known_pods` (the ready endpoints, when a snapshot
/// was read) become zero columns, so a pod nobody reached still counts in the
/// mean — but only when the attributed names are pod names (some connection
/// named one of them); cookie values are not.
pub fn summarize(run: &UrlRun, known_pods: &[String]) -> Spread {
    let mut pods: Vec<String> = run
        .clients
        .iter()
        .flat_map(|c| c.pods.iter())
        .filter(|p| p.as_str() != UNKNOWN)
        .cloned()
        .collect();
    if known_pods.iter().any(|k| pods.contains(k)) {
        pods.extend(known_pods.iter().cloned());
    }
    pods.sort();
    pods.dedup();
    let has_unknown = run
        .clients
        .iter()
        .any(|c| c.pods.iter().any(|p| p == UNKNOWN));
    if has_unknown {
        pods.push(UNKNOWN.to_string());
    }

    let column = |p: &str| pods.iter().position(|x| x == p);
    let mut spread = Spread {
        totals: vec![0; pods.len()],
        ..Spread::default()
    };
    let mut by = [
        (Attribution::Hello, 0u32),
        (Attribution::Header, 0),
        (Attribution::Cookie, 0),
        (Attribution::Unknown, 0),
    ];
    for c in &run.clients {
        let mut counts = vec![0u32; pods.len()];
        for p in &c.pods {
            if let Some(i) = column(p) {
                counts[i] += 1;
                spread.totals[i] += 1;
            }
        }
        for a in &c.attributed_by {
            if let Some(slot) = by.iter_mut().find(|(k, _)| k == a) {
                slot.1 += 1;
            }
        }
        let distinct = counts
            .iter()
            .zip(&pods)
            .filter(|(n, p)| **n > 0 && p.as_str() != UNKNOWN)
            .count();
        if distinct > 0 {
            spread.clients_with_connections += 1;
        }
        let one_pod = distinct == 1;
        if one_pod {
            spread.clients_on_one_pod += 1;
        }
        spread.connections += c.pods.len() as u32;
        spread.failed += c.failed;
        spread.clients.push(ClientRow {
            client: c.client,
            source_ip: c.source_ip.clone(),
            counts,
            failed: c.failed,
            one_pod,
            error: c.error.clone(),
        });
    }
    let real: Vec<u32> = spread
        .totals
        .iter()
        .zip(&pods)
        .filter(|(_, p)| p.as_str() != UNKNOWN)
        .map(|(n, _)| *n)
        .collect();
    spread.pods_reached = real.iter().filter(|n| **n > 0).count() as u32;
    let sum: u32 = real.iter().sum();
    if sum > 0 && !real.is_empty() {
        let mean = f64::from(sum) / real.len() as f64;
        let max = real.iter().copied().max().unwrap_or(0);
        spread.imbalance = Some(f64::from(max) / mean);
    }
    spread.attributed_by = by.into_iter().filter(|(_, n)| *n > 0).collect();
    spread.pods = pods;
    spread
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::UrlClient;

    fn client(i: u32, pods: &[&str], failed: u32) -> UrlClient {
        UrlClient {
            client: i,
            pods: pods.iter().map(|p| p.to_string()).collect(),
            attributed_by: pods
                .iter()
                .map(|p| {
                    if *p == "unknown" {
                        Attribution::Unknown
                    } else {
                        Attribution::Hello
                    }
                })
                .collect(),
            failed,
            ..UrlClient::default()
        }
    }

    #[test]
    fn sticky_clients_over_two_pods() {
        let run = UrlRun {
            clients: vec![
                client(1, &["b", "b"], 0),
                client(2, &["a", "a"], 0),
                client(3, &["b", "b"], 1),
            ],
            ..UrlRun::default()
        };
        let s = summarize(&run, &[]);
        assert_eq!(s.pods, vec!["a", "b"]);
        assert_eq!(s.totals, vec![2, 4]);
        assert_eq!(s.clients[0].counts, vec![0, 2]);
        assert_eq!(s.clients_on_one_pod, 3);
        assert_eq!(s.pods_reached, 2);
        assert_eq!(s.failed, 1);
        assert_eq!(s.connections, 6);
        assert_eq!(s.imbalance, Some(4.0 / 3.0));
        assert_eq!(s.attributed_by, vec![(Attribution::Hello, 6)]);
    }

    #[test]
    fn known_pods_count_in_the_mean_and_unknown_does_not() {
        let run = UrlRun {
            clients: vec![client(1, &["a", "a", "unknown"], 0)],
            ..UrlRun::default()
        };
        let s = summarize(&run, &["a".into(), "b".into()]);
        assert_eq!(s.pods, vec!["a", "b", "unknown"]);
        assert_eq!(s.totals, vec![2, 0, 1]);
        assert_eq!(s.imbalance, Some(2.0));
        assert!(s.clients[0].one_pod);
        // Cookie values do not match pod names: no zero columns added.
        let run = UrlRun {
            clients: vec![client(1, &["s1"], 0)],
            ..UrlRun::default()
        };
        assert_eq!(summarize(&run, &["a".into()]).pods, vec!["s1"]);
    }

    #[test]
    fn nothing_attributed() {
        let run = UrlRun {
            clients: vec![client(1, &[], 3)],
            ..UrlRun::default()
        };
        let s = summarize(&run, &[]);
        assert_eq!(s.imbalance, None);
        assert_eq!(s.clients_with_connections, 0);
        assert!(!s.clients[0].one_pod);
    }
}
