//! plugin.yaml against krew's own validation rules, and the release archive
//! installed on PATH as krew would install it, found by the real `kubectl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn load_manifest(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("plugin.yaml is readable");
    serde_saphyr::from_str(&text).expect("plugin.yaml is valid YAML")
}

/// The checks `krew`'s `validate` package applies to a Plugin manifest.
fn krew_violations(m: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let name_ok = regex::Regex::new(r"^[\w-]+$").expect("static regex");
    let semver = regex::Regex::new(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
        .expect("static regex");
    let hex64 = regex::Regex::new(r"^[0-9a-f]{64}$").expect("static regex");

    if m["apiVersion"] != "krew.googlecontainertools.github.com/v1alpha2" {
        bad.push(format!("apiVersion is {}", m["apiVersion"]));
    }
    if m["kind"] != "Plugin" {
        bad.push(format!("kind is {}", m["kind"]));
    }
    let name = m["metadata"]["name"].as_str().unwrap_or("");
    if !name_ok.is_match(name) {
        bad.push(format!("metadata.name {name:?} does not match ^[\\w-]+$"));
    }
    let spec = &m["spec"];
    let version = spec["version"].as_str().unwrap_or("");
    if !semver.is_match(version) {
        bad.push(format!(
            "spec.version {version:?} is not semver with a leading v"
        ));
    }
    if spec["shortDescription"]
        .as_str()
        .is_none_or(|s| s.is_empty() || s.contains('\n'))
    {
        bad.push("spec.shortDescription must be one non-empty line".into());
    }
    let platforms = spec["platforms"].as_array().cloned().unwrap_or_default();
    if platforms.is_empty() {
        bad.push("spec.platforms is empty".into());
    }
    for (i, p) in platforms.iter().enumerate() {
        let labels = p["selector"]["matchLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if labels.is_empty() {
            bad.push(format!("platform {i}: empty selector"));
        }
        for (k, v) in &labels {
            if k != "os" && k != "arch" {
                bad.push(format!("platform {i}: selector key {k} is not os/arch"));
            }
            if v.as_str().is_none_or(str::is_empty) {
                bad.push(format!("platform {i}: selector {k} is empty"));
            }
        }
        if !p["sha256"].as_str().is_some_and(|s| hex64.is_match(s)) {
            bad.push(format!(
                "platform {i}: sha256 is not 64 lowercase hex digits"
            ));
        }
        if p["uri"].as_str().is_none_or(str::is_empty) {
            bad.push(format!("platform {i}: uri is empty"));
        }
        if p["bin"].as_str().is_none_or(str::is_empty) {
            bad.push(format!("platform {i}: bin is empty"));
        }
        let files = p["files"].as_array().cloned().unwrap_or_default();
        if files.is_empty() {
            bad.push(format!("platform {i}: files is empty"));
        }
        for f in &files {
            for key in ["from", "to"] {
                if f[key].as_str().is_none_or(str::is_empty) {
                    bad.push(format!("platform {i}: a files entry has an empty {key}"));
                }
            }
        }
    }
    bad
}

#[test]
fn committed_manifest_passes_krew_validation() {
    let m = load_manifest(&Path::new(REPO).join("plugin.yaml"));
    assert_eq!(krew_violations(&m), Vec::<String>::new());
    assert_eq!(
        m["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(m["metadata"]["name"], "wsaffinity");
}

/// The lines of `spec` from `homepage:` up to `platforms:` (descriptions and
/// caveats), which the release template must carry unchanged.
fn spec_texts(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .skip_while(|l| !l.starts_with("  homepage:"))
        .take_while(|l| !l.starts_with("  platforms:"))
        .collect()
}

/// What krew-release-bot publishes on each tag comes from `.krew.yaml`: its
/// descriptions and the permissions in its caveats must be plugin.yaml's.
#[test]
fn release_template_says_what_plugin_yaml_says() {
    let read = |name: &str| std::fs::read_to_string(Path::new(REPO).join(name)).expect(name);
    let (plugin, template) = (read("plugin.yaml"), read(".krew.yaml"));
    let want = spec_texts(&plugin);
    assert!(want.iter().any(|l| l.contains("caveats:")), "{want:?}");
    assert_eq!(spec_texts(&template), want);
}

#[test]
fn validation_rejects_what_krew_rejects() {
    let mut m = load_manifest(&Path::new(REPO).join("plugin.yaml"));
    m["metadata"]["name"] = Value::from("ws affinity");
    m["spec"]["version"] = Value::from("0.1.0");
    m["spec"]["platforms"][0]["sha256"] = Value::from("abc");
    m["spec"]["platforms"][0]["selector"]["matchLabels"]["distro"] = Value::from("debian");
    let found = krew_violations(&m);
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn release_archive_installs_as_a_kubectl_plugin() {
    let tmp = tempfile::tempdir().expect("create temp dir");
    let work = tmp.path().to_path_buf();
    let manifest = work.join("plugin.yaml");
    std::fs::copy(Path::new(REPO).join("plugin.yaml"), &manifest).expect("copy plugin.yaml");
    let out = Command::new("bash")
        .arg(Path::new(REPO).join("scripts/dist.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_kubectl-wsaffinity")])
        .arg("--out")
        .arg(work.join("dist"))
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .expect("run scripts/dist.sh");
    assert!(
        out.status.success(),
        "dist.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("dist.sh prints the archive path"),
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        archive.ends_with(format!("kubectl-wsaffinity_v{version}_linux_amd64.tar.gz")),
        "{archive:?}"
    );

    // The manifest now names this archive's sha256 and still validates.
    let m = load_manifest(&manifest);
    assert_eq!(krew_violations(&m), Vec::<String>::new());
    let sha = Command::new("sha256sum")
        .arg(&archive)
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(m["spec"]["platforms"][0]["sha256"], Value::from(sha));

    // Every file krew would copy is in the archive, the bin among them.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .expect("tar -t");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let platform = &m["spec"]["platforms"][0];
    for f in platform["files"].as_array().expect("files") {
        let from = f["from"].as_str().expect("from");
        assert!(
            listing.lines().any(|l| l == from),
            "{from} missing from archive: {listing}"
        );
    }
    let bin = platform["bin"].as_str().expect("bin");

    // Install as krew does (unpack, put the bin on PATH) and ask kubectl.
    let bindir = work.join("bin");
    std::fs::create_dir_all(&bindir).expect("mkdir bin");
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&bindir)
        .status()
        .expect("tar -x");
    assert!(untar.success());
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let list = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .expect("kubectl plugin list");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&format!("{}/{bin}", bindir.display())),
        "kubectl plugin list: {listed}"
    );

    let help = Command::new("kubectl")
        .args(["wsaffinity", "--help"])
        .env("PATH", &path)
        .env("KUBECONFIG", work.join("no-such-kubeconfig"))
        .output()
        .expect("kubectl wsaffinity --help");
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("kubectl wsaffinity"),
        "help should name the kubectl form: {text}"
    );
}
