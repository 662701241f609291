//! plugin.yaml checked and installed by krew itself: the pinned krew v0.4.3
//! and its `validate-krew-manifest` (Go module `cluster/krew`, built into
//! `target/cluster/bin/` by `scripts/cluster-build.sh`) validate the manifest
//! `scripts/dist.sh` fills, `kubectl krew install --manifest --archive` installs
//! the release archive, the real `kubectl` finds and runs it, `kubectl krew
//! uninstall` removes it. Everything happens in a temporary `KREW_ROOT` and
//! `HOME`, offline: krew's default index is a local git repository
//! (`KREW_DEFAULT_INDEX_URI`) and downloads come from a server on 127.0.0.1.
//!
//! Without the krew binaries (or git, or kubectl) these tests say why and skip;
//! with `CI=true` that is a failure.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_kubectl-wsaffinity");
/// The file name krew's validator requires: `<metadata.name>.yaml`.
const MANIFEST_NAME: &str = "wsaffinity.yaml";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says why the test skips; under `CI=true` a skip is a failure.
fn skip(why: &str) {
    assert!(!ci(), "CI=true, so this is a failure, not a skip: {why}");
    eprintln!("skipping: {why}");
}

/// The file `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The programs these tests run: krew and its validator from
/// `target/cluster/bin/`, kubectl from there or else from `PATH`, and git
/// (krew clones its index with it).
struct Tools {
    krew: PathBuf,
    validator: PathBuf,
    kubectl: PathBuf,
    git: PathBuf,
}

fn tools() -> Option<Tools> {
    let dir = Path::new(REPO).join("target/cluster/bin");
    let krew = dir.join("krew");
    let validator = dir.join("validate-krew-manifest");
    for p in [&krew, &validator] {
        if !p.is_file() {
            skip(&format!(
                "{} is missing; build it with scripts/cluster-build.sh (Go module cluster/krew)",
                p.display()
            ));
            return None;
        }
    }
    let kubectl = Some(dir.join("kubectl"))
        .filter(|p| p.is_file())
        .or_else(|| on_path("kubectl"));
    let Some(kubectl) = kubectl else {
        skip("no kubectl in target/cluster/bin/ nor on PATH");
        return None;
    };
    let Some(git) = on_path("git") else {
        skip("git is not on PATH (krew keeps its index as a git clone)");
        return None;
    };
    Some(Tools {
        krew,
        validator,
        kubectl,
        git,
    })
}

/// One finished command, for assertions.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
    what: String,
}

impl Ran {
    fn new(what: String, out: Output) -> Ran {
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        }
    }

    fn all(&self) -> String {
        format!(
            "`{}` ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            if self.ok { "succeeded" } else { "failed" },
            self.stdout,
            self.stderr
        )
    }

    fn succeeded(self) -> Ran {
        assert!(self.ok, "{}", self.all());
        self
    }

    /// Failed, saying `message` (krew's own words) on stdout or stderr.
    fn failed_saying(&self, message: &str) {
        assert!(!self.ok, "should have failed: {}", self.all());
        assert!(
            self.stdout.contains(message) || self.stderr.contains(message),
            "should say {message:?}: {}",
            self.all()
        );
    }
}

/// A krew installation of its own: `KREW_ROOT` and `HOME` in a temp dir, and
/// a `PATH` of `KREW_ROOT/bin`, a tools dir (`kubectl`, `kubectl-krew`, `git`)
/// and `/usr/bin:/bin`. Commands get only this environment.
struct Krew {
    dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    path: OsString,
    kubectl: PathBuf,
    validator: PathBuf,
    index_uri: Option<PathBuf>,
}

impl Krew {
    fn new(tools: &Tools) -> Krew {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("krew-root");
        let home = dir.path().join("home");
        let bin = dir.path().join("tools");
        for d in [&root, &home, &bin] {
            std::fs::create_dir_all(d).expect("create a dir in the temp dir");
        }
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, bin.join(name)).expect("symlink into the tools dir")
        };
        // kubectl runs `kubectl krew` as the plugin kubectl-krew on PATH.
        link(&tools.krew, "kubectl-krew");
        // validate-krew-manifest installs with `kubectl krew` from PATH.
        link(&tools.kubectl, "kubectl");
        link(&tools.git, "git");
        let path = std::env::join_paths([
            root.join("bin"),
            bin,
            PathBuf::from("/usr/bin"),
            PathBuf::from("/bin"),
        ])
        .expect("a PATH from temp dirs");
        Krew {
            root,
            home,
            path,
            kubectl: tools.kubectl.clone(),
            validator: tools.validator.clone(),
            index_uri: None,
            dir,
        }
    }

    fn tmp(&self) -> &Path {
        self.dir.path()
    }

    /// `program` with this installation's environment only.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("KREW_ROOT", &self.root)
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .stdin(Stdio::null());
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            cmd.env("TMPDIR", tmp);
        }
        if let Some(uri) = &self.index_uri {
            cmd.env("KREW_DEFAULT_INDEX_URI", uri);
        }
        cmd
    }

    fn run(&self, program: &Path, args: &[&str]) -> Ran {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        Ran::new(format!("{} {}", program.display(), args.join(" ")), out)
    }

    fn kubectl(&self, args: &[&str]) -> Ran {
        self.run(&self.kubectl, args)
    }

    /// krew's validator on `manifest`; with `install`, it also installs the
    /// manifest's archive (downloaded from its uri) with `kubectl krew`.
    fn validate(&self, manifest: &Path, install: bool) -> Ran {
        let manifest = manifest.display().to_string();
        let mut args = vec!["-manifest", &manifest];
        if !install {
            args.push("-skip-install");
        }
        self.run(&self.validator, &args)
    }

    /// `kubectl krew install --manifest=FILE --archive=FILE`, as in the README.
    fn install_archive(&self, manifest: &Path, archive: &Path) -> Ran {
        self.kubectl(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ])
    }

    /// Publishes `manifest` as krew's default index: a local git repository
    /// with `plugins/wsaffinity.yaml`, cloned by `kubectl krew update`.
    fn publish_index(&mut self, manifest: &str) {
        let repo = self.tmp().join("krew-index");
        std::fs::create_dir_all(repo.join("plugins")).expect("mkdir krew-index/plugins");
        std::fs::write(repo.join("plugins").join(MANIFEST_NAME), manifest)
            .expect("write the index's manifest");
        let git = self.tmp().join("tools/git");
        let dir = repo.display().to_string();
        for args in [
            vec!["-C", &dir, "init", "-q"],
            vec!["-C", &dir, "add", "plugins"],
            vec![
                "-C",
                &dir,
                "-c",
                "user.name=krew_real",
                "-c",
                "user.email=krew_real@localhost",
                "-c",
                "commit.gpgsign=false",
                "commit",
                "-q",
                "-m",
                "wsaffinity",
            ],
        ] {
            self.run(&git, &args).succeeded();
        }
        self.index_uri = Some(repo);
        let update = self.kubectl(&["krew", "update"]).succeeded();
        assert!(
            update
                .stderr
                .contains("Adding \"default\" plugin index from"),
            "{}",
            update.all()
        );
    }

    /// The path `kubectl plugin list` shows for the installed plugin.
    fn installed_bin(&self) -> PathBuf {
        self.root.join("bin/kubectl-wsaffinity")
    }

    fn plugin_list(&self) -> String {
        self.kubectl(&["plugin", "list"]).stdout
    }
}

/// The release both tests install: `scripts/dist.sh` on the test build of
/// the plugin, once per run (gzipping a debug build takes seconds), into
/// `CARGO_TARGET_TMPDIR/krew_real/`: the manifest it filled (a copy of
/// plugin.yaml named `wsaffinity.yaml`) and the archive.
fn release() -> &'static (PathBuf, PathBuf) {
    static RELEASE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("krew_real");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear the last run's release");
        }
        std::fs::create_dir_all(&dir).expect("mkdir for dist.sh");
        let manifest = dir.join(MANIFEST_NAME);
        std::fs::copy(Path::new(REPO).join("plugin.yaml"), &manifest).expect("copy plugin.yaml");
        let out = Command::new("bash")
            .arg(Path::new(REPO).join("scripts/dist.sh"))
            .args(["--bin", BIN, "--out"])
            .arg(dir.join("dist"))
            .arg("--manifest")
            .arg(&manifest)
            .output()
            .expect("run scripts/dist.sh");
        let ran = Ran::new("scripts/dist.sh".into(), out).succeeded();
        let archive = PathBuf::from(
            ran.stdout
                .lines()
                .next()
                .expect("dist.sh prints the archive"),
        );
        (manifest, archive)
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("the manifest is YAML")
}

fn field<'a>(m: &'a Value, key: &str) -> &'a str {
    m["spec"][key]
        .as_str()
        .unwrap_or_else(|| panic!("spec.{key} in the manifest"))
}

/// `text` with its one `from` replaced by `to`.
fn edited(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in:\n{text}");
    text.replacen(from, to, 1)
}

/// `text` with its first line starting `prefix` replaced by `line`.
fn with_line(text: &str, prefix: &str, line: &str) -> String {
    let old = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("a line {prefix:?} in:\n{text}"));
    edited(text, old, line)
}

/// `text` with the first platform's `uri:` set to `uri`.
fn with_uri(text: &str, uri: &str) -> String {
    with_line(text, "    uri: ", &format!("    uri: {uri}"))
}

/// Writes `text` as `dir/name`, creating `dir`.
fn write_manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir for a manifest");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a manifest");
    path
}

/// Serves `body` to every request on 127.0.0.1 until dropped: the release
/// download of an index install and of the validator's install.
struct Served {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    fn new(body: Vec<u8>) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("the server's address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(header.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        Served {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn uri(&self, archive: &Path) -> String {
        let name = archive.file_name().expect("archive name").to_string_lossy();
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// kubectl's client minor version (`1.N`), when it says.
fn kubectl_minor(krew: &Krew) -> Option<u32> {
    let version = krew.kubectl(&["version", "--client"]).stdout;
    version
        .split("v1.")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The README's completion helper: written by `kubectl wsaffinity completion
/// kubectl` into `KREW_ROOT/bin`, run by kubectl (1.26+) for `kubectl
/// wsaffinity <TAB>`.
fn completion_helper_completes(krew: &Krew) {
    let minor = kubectl_minor(krew);
    if minor.is_some_and(|m| m < 26) {
        skip(&format!(
            "kubectl 1.{} has no plugin completion (kubectl_complete-*, 1.26+); completion helper not checked",
            minor.unwrap_or_default()
        ));
        return;
    }
    let script = krew
        .kubectl(&["wsaffinity", "completion", "kubectl"])
        .succeeded()
        .stdout;
    assert_eq!(
        script,
        read(&Path::new(REPO).join("scripts/kubectl_complete-wsaffinity"))
    );
    let helper = krew.root.join("bin/kubectl_complete-wsaffinity");
    std::fs::write(&helper, script).expect("write the helper into KREW_ROOT/bin");
    let mut perms = std::fs::metadata(&helper).expect("helper").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&helper, perms).expect("chmod +x the helper");

    let done = krew.kubectl(&["__complete", "wsaffinity", ""]).succeeded();
    let lines: Vec<&str> = done.stdout.lines().collect();
    for sub in ["check", "per-pod", "logs", "spread", "test-service"] {
        assert!(
            lines.iter().any(|l| l.split('\t').next() == Some(sub)),
            "no {sub}: {}",
            done.all()
        );
    }
    assert_eq!(lines.last(), Some(&":4"), "{}", done.all());
}

/// The README's install commands, run by the real krew and kubectl.
#[test]
fn krew_validates_installs_runs_and_uninstalls_the_plugin() {
    let started = Instant::now();
    let Some(tools) = tools() else { return };
    let mut krew = Krew::new(&tools);
    let (manifest, archive) = release();
    let text = read(manifest);
    let m = yaml(&text);
    let version = field(&m, "version");

    // krew's validator accepts the manifest dist.sh filled...
    let ran = krew.validate(manifest, false).succeeded();
    assert!(
        ran.stderr.contains("structural validation OK"),
        "{}",
        ran.all()
    );
    // ...and installs its archive with `kubectl krew install` (from a local
    // copy of the uri), checking the LICENSE came along.
    let served = Served::new(std::fs::read(archive).expect("read the archive"));
    let served_text = with_uri(&text, &served.uri(archive));
    let served_manifest = write_manifest(&krew.tmp().join("served"), MANIFEST_NAME, &served_text);
    let ran = krew.validate(&served_manifest, true).succeeded();
    assert!(
        ran.stderr.contains("all 1 spec.platforms installed fine"),
        "{}",
        ran.all()
    );

    // krew's default index, as the krew-index would serve the plugin.
    krew.publish_index(&served_text);

    // kubectl krew install --manifest=... --archive=... (README)
    let ran = krew.install_archive(manifest, archive).succeeded();
    assert!(
        ran.stderr.contains("Installed plugin: wsaffinity"),
        "{}",
        ran.all()
    );
    assert!(ran.stderr.contains("Caveats:"), "{}", ran.all());
    let bin = krew.installed_bin();
    let listed = krew.plugin_list();
    assert!(
        listed.lines().any(|l| l == bin.display().to_string()),
        "kubectl plugin list should show {}:\n{listed}",
        bin.display()
    );
    let ran = krew.kubectl(&["wsaffinity", "--version"]).succeeded();
    assert_eq!(
        ran.stdout.trim(),
        format!(
            "kubectl-wsaffinity {}",
            version.strip_prefix('v').unwrap_or(version)
        )
    );

    // What krew tells users about the plugin: info (description, caveats)
    // and search (the short description, whole).
    let info = krew.kubectl(&["krew", "info", "wsaffinity"]).succeeded();
    assert!(info.stdout.contains("NAME: wsaffinity"), "{}", info.all());
    assert!(
        info.stdout.contains(&format!("VERSION: {version}")),
        "{}",
        info.all()
    );
    for line in field(&m, "description").lines() {
        assert!(info.stdout.contains(line), "no {line:?}: {}", info.all());
    }
    assert!(info.stdout.contains("CAVEATS:"), "{}", info.all());
    for line in field(&m, "caveats").lines() {
        assert!(
            info.stdout.contains(&format!(" | {line}")),
            "no caveat {line:?}: {}",
            info.all()
        );
    }
    let search = krew.kubectl(&["krew", "search", "wsaffinity"]).succeeded();
    let short = field(&m, "shortDescription");
    assert!(
        search
            .stdout
            .lines()
            .any(|l| l.starts_with("wsaffinity ") && l.contains(short)),
        "krew search shows at most 50 characters of the short description: {}",
        search.all()
    );
    let list = krew.kubectl(&["krew", "list"]).succeeded();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.trim() == "detached/wsaffinity"),
        "{}",
        list.all()
    );

    completion_helper_completes(&krew);

    // kubectl krew uninstall: gone from KREW_ROOT and from kubectl.
    let ran = krew
        .kubectl(&["krew", "uninstall", "wsaffinity"])
        .succeeded();
    assert!(
        ran.stderr.contains("Uninstalled plugin: wsaffinity"),
        "{}",
        ran.all()
    );
    assert!(!bin.exists(), "{} still there", bin.display());
    let listed = krew.plugin_list();
    assert!(
        !listed.contains("kubectl-wsaffinity"),
        "kubectl plugin list still shows the plugin:\n{listed}"
    );
    assert!(!krew.kubectl(&["wsaffinity", "--version"]).ok);
    // krew knows nothing of the completion helper: it stays until removed.
    let helper = krew.root.join("bin/kubectl_complete-wsaffinity");
    if helper.exists() {
        std::fs::remove_file(&helper).expect("remove the helper");
    }

    // kubectl krew install wsaffinity (README): from the index, downloaded.
    let ran = krew.kubectl(&["krew", "install", "wsaffinity"]).succeeded();
    assert!(
        ran.stderr.contains("Installed plugin: wsaffinity"),
        "{}",
        ran.all()
    );
    krew.kubectl(&["wsaffinity", "--version"]).succeeded();
    let search = krew.kubectl(&["krew", "search", "wsaffinity"]).succeeded();
    assert!(
        search
            .stdout
            .lines()
            .any(|l| l.starts_with("wsaffinity ") && l.trim_end().ends_with(" yes")),
        "{}",
        search.all()
    );
    krew.kubectl(&["krew", "uninstall", "wsaffinity"])
        .succeeded();
    assert!(!bin.exists());
    drop(served);
    eprintln!(
        "krew_real: install/uninstall round trip in {:?}",
        started.elapsed()
    );
}

/// A broken manifest is refused by krew itself, in its own words: by the
/// validator and, where it checks the same, by `kubectl krew install`.
#[test]
fn krew_rejects_broken_manifests_with_its_own_messages() {
    let Some(tools) = tools() else { return };
    let krew = Krew::new(&tools);
    let (manifest, archive) = release();
    let text = read(manifest);
    let sha = yaml(&text)["spec"]["platforms"][0]["sha256"]
        .as_str()
        .expect("sha256 filled by dist.sh")
        .to_string();
    let selector =
        "  - selector:\n      matchLabels:\n        os: linux\n        arch: amd64\n    uri:";

    // (what is broken, the manifest, what the validator says, what `krew install` says)
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "sha256 not 64 hex digits",
            edited(&text, &sha, "abc"),
            "`sha256` value abc is not valid, must match pattern ^[a-f0-9]{64}$",
            Some("`sha256` value abc is not valid"),
        ),
        (
            "no platform selector",
            edited(&text, selector, "  - uri:"),
            "invalid platform selector: nil selector is not supported",
            Some("invalid platform selector: nil selector is not supported"),
        ),
        (
            "a selector key other than os/arch",
            edited(
                &text,
                "        arch: amd64\n",
                "        arch: amd64\n        distro: debian\n",
            ),
            "invalid platform selector: key \"distro\" not supported",
            Some("invalid platform selector: key \"distro\" not supported"),
        ),
        (
            "a selector no platform matches",
            edited(&text, "        os: linux\n", "        os: plan9\n"),
            "doesn't match any supported platforms",
            Some("plugin \"wsaffinity\" does not offer installation for this platform"),
        ),
        (
            "a line break in the short description",
            with_line(
                &text,
                "  shortDescription: ",
                "  shortDescription: \"Explain why WebSocket connections\\nland on one pod\"",
            ),
            "should not have line breaks in short description",
            Some("should not have line breaks in short description"),
        ),
        (
            "a version without the v",
            edited(&text, "  version: v", "  version: "),
            "failed to parse plugin version",
            Some("failed to parse plugin version"),
        ),
    ];
    for (what, broken, validator_says, install_says) in cases {
        let dir = krew.tmp().join(what.replace(' ', "-"));
        let path = write_manifest(&dir, MANIFEST_NAME, &broken);
        krew.validate(&path, false).failed_saying(validator_says);
        if let Some(says) = install_says {
            krew.install_archive(&path, archive).failed_saying(says);
            assert!(!krew.installed_bin().exists(), "{what}: installed anyway");
        }
    }

    // The validator wants the file named after the plugin.
    let path = write_manifest(&krew.tmp().join("misnamed"), "plugin.yaml", &text);
    krew.validate(&path, false)
        .failed_saying("plugin should be named \"plugin\", not \"wsaffinity\"");

    // A well-formed but wrong sha256 (the committed placeholder) passes the
    // structural check; installing the archive is what catches it.
    let zeros = "0".repeat(64);
    let wrong = edited(&text, &sha, &zeros);
    let path = write_manifest(&krew.tmp().join("wrong-sha"), MANIFEST_NAME, &wrong);
    krew.validate(&path, false).succeeded();
    let mismatch = format!("checksum does not match, want: {zeros}, got {sha}");
    krew.install_archive(&path, archive)
        .failed_saying(&mismatch);
    assert!(
        !krew.installed_bin().exists(),
        "installed with a wrong sha256"
    );
    let served = Served::new(std::fs::read(archive).expect("read the archive"));
    let path = write_manifest(
        &krew.tmp().join("wrong-sha-served"),
        MANIFEST_NAME,
        &with_uri(&wrong, &served.uri(archive)),
    );
    krew.validate(&path, true).failed_saying(&mismatch);

    // krew sets no length limit on spec.description (only `krew search`
    // cuts the short description at 50 characters): a long one passes.
    let long = edited(
        &text,
        "  description: |\n",
        &format!("  description: |\n    {}\n", "long ".repeat(2000)),
    );
    let path = write_manifest(&krew.tmp().join("long"), MANIFEST_NAME, &long);
    krew.validate(&path, false).succeeded();
    krew.install_archive(&path, archive).succeeded();
}
