//! The lab's Service writes against the real kubectl: what `kubectl delete`
//! sends (DeleteOptions in the body) is honoured as the API server does.

mod common;

use common::{NS, kubectl};
use wsaffinity_lab::{Lab, LabOptions, Scenario};

const SVC: &str = "dev-websocket-server";

async fn lab() -> Lab {
    Lab::start(LabOptions {
        scenario: Scenario::DevOverlay,
        tls: false,
        processes: false,
    })
    .await
    .expect("start the lab")
}

/// Whether `kubectl get` finds the Service and its EndpointSlice.
fn service_and_slice_exist(lab: &Lab) -> (bool, bool) {
    let (svc, _) = kubectl(lab, &["get", "svc", SVC, "-n", NS]).expect("kubectl ran");
    let selector = format!("kubernetes.io/service-name={SVC}");
    let (ok, out) = kubectl(
        lab,
        &[
            "get",
            "endpointslices",
            "-n",
            NS,
            "-l",
            &selector,
            "-o",
            "name",
        ],
    )
    .expect("kubectl ran");
    assert!(ok, "{out}");
    (svc, out.contains("endpointslice.discovery.k8s.io/"))
}

/// kubectl sends `--dry-run=server` for a delete in the body
/// (`{"propagationPolicy":"Background","dryRun":["All"]}`), not the query:
/// the Service must survive it, and a plain delete must remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_with_server_dry_run_leaves_the_service() {
    let lab = lab().await;
    let Some((ok, out)) = kubectl(&lab, &["delete", "svc", SVC, "-n", NS, "--dry-run=server"])
    else {
        return;
    };
    assert!(ok, "{out}");
    // kubectl 1.37 adds the namespace: `service "x" deleted from NS namespace (server dry run)`.
    assert!(
        out.contains(&format!("service \"{SVC}\" deleted")) && out.contains("(server dry run)"),
        "{out}"
    );
    assert_eq!(
        lab.counts().get("delete services"),
        1,
        "the dry run reached the lab: {:?}",
        lab.counts()
    );
    assert_eq!(
        service_and_slice_exist(&lab),
        (true, true),
        "a server-side dry run deleted nothing"
    );

    let (ok, out) = kubectl(&lab, &["delete", "svc", SVC, "-n", NS]).expect("kubectl ran");
    assert!(ok, "{out}");
    assert!(out.contains(&format!("service \"{SVC}\" deleted")), "{out}");
    assert!(!out.contains("dry run"), "{out}");
    assert_eq!(lab.counts().get("delete services"), 2);
    assert_eq!(
        service_and_slice_exist(&lab),
        (false, false),
        "a plain delete removes the Service and its EndpointSlices"
    );
    let (ok, out) = kubectl(&lab, &["get", "svc", SVC, "-n", NS]).expect("kubectl ran");
    assert!(
        !ok && out.contains(&format!("services \"{SVC}\" not found")),
        "{out}"
    );
    lab.shutdown().await;
}
