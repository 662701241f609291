//! The pods the scheduler binds to a node: list, then watch with
//! `fieldSelector=spec.nodeName=NODE` (what the Node authorizer lets a node
//! read, and what the kubelet asks for), one worker per pod uid. A broken
//! watch (an API server restart) relists and carries on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::watch;

use super::worker::{self, NodeCtx};

type Workers = HashMap<String, watch::Sender<Option<Pod>>>;

fn finished(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn upsert(ctx: &Arc<NodeCtx>, workers: &mut Workers, pod: Pod) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if let Some(tx) = workers.get(&uid).filter(|tx| !tx.is_closed()) {
        tx.send_replace(Some(pod));
        return;
    }
    if finished(&pod) {
        return;
    }
    let (tx, rx) = watch::channel(Some(pod));
    tokio::spawn(worker::run(ctx.clone(), rx));
    workers.insert(uid, tx);
}

fn gone(workers: &mut Workers, uid: &str) {
    if let Some(tx) = workers.remove(uid) {
        tx.send_replace(None);
    }
}

pub async fn sync(ctx: Arc<NodeCtx>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let fields = format!("spec.nodeName={}", ctx.node);
    let mut workers = Workers::new();
    loop {
        workers.retain(|_, tx| !tx.is_closed());
        let list = match api.list(&ListParams::default().fields(&fields)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("{}: listing pods: {e}", ctx.node);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let seen: HashSet<String> = list
            .items
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let stale: Vec<String> = workers
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for uid in stale {
            gone(&mut workers, &uid);
        }
        let mut rv = list.metadata.resource_version.unwrap_or_default();
        for p in list.items {
            upsert(&ctx, &mut workers, p);
        }
        loop {
            let params = WatchParams::default().fields(&fields).timeout(240);
            let stream = match api.watch(&params, &rv).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("{}: watching pods: {e}", ctx.node);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            };
            let mut stream = Box::pin(stream);
            let mut relist = false;
            loop {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                        rv = p.metadata.resource_version.clone().unwrap_or(rv);
                        upsert(&ctx, &mut workers, p);
                    }
                    Ok(Some(WatchEvent::Deleted(p))) => {
                        rv = p.metadata.resource_version.clone().unwrap_or(rv);
                        if let Some(uid) = p.metadata.uid {
                            gone(&mut workers, &uid);
                        }
                    }
                    Ok(Some(WatchEvent::Bookmark(b))) => rv = b.metadata.resource_version,
                    Ok(Some(WatchEvent::Error(e))) => {
                        // 410 Gone: the resourceVersion is too old; list again.
                        tracing::debug!("{}: watch error {e:?}", ctx.node);
                        relist = true;
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("{}: pod watch ended: {e}", ctx.node);
                        relist = true;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
            }
            workers.retain(|_, tx| !tx.is_closed());
            if relist {
                break;
            }
        }
    }
}
