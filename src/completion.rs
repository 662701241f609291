//! Shell completion.
//!
//! - `completion bash|zsh|fish`: clap_complete's scripts for `kubectl-wsaffinity`
//!   typed directly.
//! - `completion kubectl`: the `kubectl_complete-wsaffinity` helper (the same
//!   text as `scripts/kubectl_complete-wsaffinity`). kubectl 1.26 and later
//!   runs it from `PATH` for `kubectl wsaffinity <TAB>` with the words typed
//!   after `kubectl wsaffinity`, the last one being completed, and reads
//!   cobra's `__complete` format: one candidate per line (`value<TAB>help`),
//!   then `:<directive>`.
//! - `__complete WORDS...` (hidden): those candidates. Subcommands, flags and
//!   flag values come from the clap definition, so they cannot drift from it;
//!   a target position lists the namespace's Services (one metadata LIST, a
//!   few seconds at most, nothing at all on any error).
//!
//! [`plan`] is pure (words in, candidates out); [`complete`] adds the API
//! read and prints.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, Command, CommandFactory};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;

use crate::cli::Cli;
use crate::config::{KubeOptions, ScriptKind};

/// The helper kubectl runs for `kubectl wsaffinity <TAB>`.
pub const KUBECTL_COMPLETE_SCRIPT: &str = include_str!("../scripts/kubectl_complete-wsaffinity");

/// The helper's file name: kubectl looks for `kubectl_complete-<plugin>` on `PATH`.
pub const KUBECTL_COMPLETE_NAME: &str = "kubectl_complete-wsaffinity";

/// The name the clap_complete scripts complete (the binary on `PATH`).
pub const BIN_NAME: &str = "kubectl-wsaffinity";

/// How long `__complete` may spend on the Service LIST (kubectl's own
/// completion waits about as long before giving up).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
pub const DIRECTIVE_DEFAULT: u32 = 0;
/// cobra's `ShellCompDirectiveNoFileComp`: only our candidates, no file names.
pub const DIRECTIVE_NO_FILE_COMP: u32 = 4;

/// Writes the completion script for `kind`.
pub fn write_script(kind: ScriptKind, out: &mut dyn Write) -> std::io::Result<()> {
    use clap_complete::{Shell, generate};
    let shell = match kind {
        ScriptKind::Bash => Shell::Bash,
        ScriptKind::Zsh => Shell::Zsh,
        ScriptKind::Fish => Shell::Fish,
        ScriptKind::Kubectl => return out.write_all(KUBECTL_COMPLETE_SCRIPT.as_bytes()),
    };
    // clap_complete writes through `&mut dyn Write` and ignores write errors;
    // render into memory and write once so a closed pipe is reported.
    let mut buf = Vec::new();
    if shell == Shell::Bash {
        // clap_complete's bash script never completes a subcommand's flags
        // when the binary's name has a hyphen (clap-rs/clap#6421: its loop and
        // its case arms spell the state differently). Generate for a name
        // without one and register the function for the real name.
        generate(
            shell,
            &mut without_hidden_subcommands(Cli::command()),
            BASH_SAFE_NAME,
            &mut buf,
        );
        let script = String::from_utf8_lossy(&buf)
            .replace(&format!(" {BASH_SAFE_NAME}\n"), &format!(" {BIN_NAME}\n"));
        return out.write_all(script.as_bytes());
    }
    generate(
        shell,
        &mut without_hidden_subcommands(Cli::command()),
        BIN_NAME,
        &mut buf,
    );
    out.write_all(&buf)
}

/// [`BIN_NAME`] without its hyphen, for the bash generator.
const BASH_SAFE_NAME: &str = "kubectl_wsaffinity";

/// The same command without hidden subcommands (`__complete`): some of
/// clap_complete's generators list every subcommand, hidden or not.
fn without_hidden_subcommands(cmd: Command) -> Command {
    let mut copy = Command::new(BIN_NAME)
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        copy = copy.about(about.clone());
    }
    if cmd.get_version().is_some() {
        copy = copy.version(env!("CARGO_PKG_VERSION"));
    }
    copy
}

/// One completion candidate: the value and a one-line description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub help: Option<String>,
}

impl Candidate {
    fn new(value: impl Into<String>, help: Option<String>) -> Self {
        Self {
            value: value.into(),
            help,
        }
    }
}

/// What still needs the cluster: the Services of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceQuery {
    /// `-n`, `--context`, `--kubeconfig` typed on the command line.
    pub kube: KubeOptions,
    /// The word being completed (`""`, `dev-`, `svc/dev-`).
    pub prefix: String,
}

/// The candidates for one completion request, before any API read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    pub directive: u32,
    /// Service names to add (a target position).
    pub services: Option<ServiceQuery>,
    /// Kubeconfig context names to add (`--context <TAB>`).
    pub contexts: Option<ContextQuery>,
}

/// `--context <TAB>`: which kubeconfig, and the prefix typed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextQuery {
    pub kubeconfig: Option<PathBuf>,
    pub prefix: String,
}

impl Plan {
    fn new(candidates: Vec<Candidate>, directive: u32) -> Self {
        Self {
            candidates,
            directive,
            services: None,
            contexts: None,
        }
    }
}

/// The first line of a help text, without a trailing period.
fn first_line(text: Option<String>) -> Option<String> {
    text.and_then(|t| {
        t.lines()
            .next()
            .map(|l| l.trim().trim_end_matches('.').to_string())
    })
    .filter(|l| !l.is_empty())
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// May this flag be given again (`-v -v`, `--resolve` twice)?
fn repeatable(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        clap::ArgAction::Append | clap::ArgAction::Count
    )
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| a.get_short() == Some(c))
}

/// Remembers the kubectl flags typed so far: the Service LIST uses them.
fn note_value(kube: &mut KubeOptions, arg: &Arg, value: &str) {
    match arg.get_id().as_str() {
        "namespace" => kube.namespace = Some(value.to_string()),
        "context" => kube.context = Some(value.to_string()),
        "kubeconfig" => kube.kubeconfig = Some(PathBuf::from(value)),
        _ => {}
    }
}

/// The values a flag or positional offers (its `value_enum`), filtered by `prefix`.
fn possible_values(arg: &Arg, prefix: &str, prepend: &str) -> Vec<Candidate> {
    arg.get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set() && v.get_name().starts_with(prefix))
        .map(|v| {
            Candidate::new(
                format!("{prepend}{}", v.get_name()),
                first_line(v.get_help().map(ToString::to_string)),
            )
        })
        .collect()
}

/// Candidates for a flag's value.
fn flag_value(arg: &Arg, prefix: &str, prepend: &str, kube: &KubeOptions) -> Plan {
    match arg.get_id().as_str() {
        // A path: let the shell complete file names.
        "kubeconfig" => Plan::new(Vec::new(), DIRECTIVE_DEFAULT),
        "context" if prepend.is_empty() => Plan {
            contexts: Some(ContextQuery {
                kubeconfig: kube.kubeconfig.clone(),
                prefix: prefix.to_string(),
            }),
            ..Plan::new(Vec::new(), DIRECTIVE_NO_FILE_COMP)
        },
        _ => Plan::new(
            possible_values(arg, prefix, prepend),
            DIRECTIVE_NO_FILE_COMP,
        ),
    }
}

/// Plans the completion of `words`: what kubectl passes after `kubectl
/// wsaffinity` (the last word is the one being completed, `""` for a new one).
pub fn plan(words: &[String]) -> Plan {
    let mut root = Cli::command();
    // Propagates the global flags and adds --help/--version to every subcommand.
    root.build();
    let (to_complete, typed) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };

    let mut cmd = &root;
    let mut nested = false;
    let mut positionals = 0usize;
    let mut given: Vec<String> = Vec::new();
    let mut kube = KubeOptions::default();
    let mut pending: Option<&Arg> = None;
    let mut only_positionals = false;

    for word in typed {
        if let Some(arg) = pending.take() {
            note_value(&mut kube, arg, word);
            continue;
        }
        if only_positionals || word == "-" || !word.starts_with('-') {
            if !only_positionals
                && positionals == 0
                && let Some(sub) = cmd
                    .get_subcommands()
                    .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
            {
                cmd = sub;
                nested = true;
                continue;
            }
            positionals += 1;
            continue;
        }
        if word == "--" {
            only_positionals = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if let Some(arg) = find_long(cmd, name) {
                given.push(arg.get_id().to_string());
                match value {
                    Some(v) => note_value(&mut kube, arg, v),
                    None if takes_value(arg) => pending = Some(arg),
                    None => {}
                }
            }
            continue;
        }
        // `-vv`, `-n dev`, `-ndev`, `-oyaml`, `-n=dev`.
        let shorts = &word[1..];
        for (i, c) in shorts.char_indices() {
            let Some(arg) = find_short(cmd, c) else {
                break;
            };
            given.push(arg.get_id().to_string());
            if takes_value(arg) {
                let rest = &shorts[i + c.len_utf8()..];
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                if rest.is_empty() {
                    pending = Some(arg);
                } else {
                    note_value(&mut kube, arg, rest);
                }
                break;
            }
        }
    }

    // The value of a flag typed as its own word: `-o <TAB>`.
    if let Some(arg) = pending {
        return flag_value(arg, to_complete, "", &kube);
    }

    if !only_positionals && to_complete.starts_with('-') {
        // `--output=<TAB>`
        if let Some((name, value)) = to_complete
            .strip_prefix("--")
            .and_then(|l| l.split_once('='))
        {
            return match find_long(cmd, name) {
                Some(arg) if takes_value(arg) => {
                    flag_value(arg, value, &format!("--{name}="), &kube)
                }
                _ => Plan::new(Vec::new(), DIRECTIVE_NO_FILE_COMP),
            };
        }
        return Plan::new(flags(cmd, to_complete, &given), DIRECTIVE_NO_FILE_COMP);
    }

    // A positional word: a subcommand, a target, or a value from a list.
    if !nested || (cmd.has_subcommands() && positionals == 0) {
        let subs = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name().starts_with(to_complete))
            .map(|s| {
                Candidate::new(
                    s.get_name(),
                    first_line(s.get_about().map(ToString::to_string)),
                )
            })
            .collect();
        return Plan::new(subs, DIRECTIVE_NO_FILE_COMP);
    }
    let positional = cmd
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .nth(positionals);
    let Some(arg) = positional else {
        return Plan::new(Vec::new(), DIRECTIVE_NO_FILE_COMP);
    };
    if arg.get_id() == "target" {
        return Plan {
            services: Some(ServiceQuery {
                kube,
                prefix: to_complete.to_string(),
            }),
            ..Plan::new(Vec::new(), DIRECTIVE_NO_FILE_COMP)
        };
    }
    Plan::new(
        possible_values(arg, to_complete, ""),
        DIRECTIVE_NO_FILE_COMP,
    )
}

/// The flags of `cmd` (its own and the global ones) that start with `prefix`:
/// long forms always, short forms unless `--` was typed. Flags already given
/// once are left out unless they repeat.
fn flags(cmd: &Command, prefix: &str, given: &[String]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        if given.iter().any(|g| g == arg.get_id().as_str()) && !repeatable(arg) {
            continue;
        }
        let help = first_line(arg.get_help().map(ToString::to_string));
        if let Some(long) = arg.get_long() {
            let flag = format!("--{long}");
            if flag.starts_with(prefix) {
                out.push(Candidate::new(flag, help.clone()));
            }
        }
        if let Some(short) = arg.get_short()
            && !prefix.starts_with("--")
        {
            let flag = format!("-{short}");
            if flag.starts_with(prefix) {
                out.push(Candidate::new(flag, help));
            }
        }
    }
    out
}

/// The forms a Service can be named in, for the word typed so far: a bare
/// name and `svc/NAME`, or `service/NAME`/`services/NAME` when that prefix was typed.
pub fn service_candidates(names: &[String], prefix: &str) -> Vec<Candidate> {
    let kinds: Vec<&str> = match prefix.split_once('/') {
        Some((kind @ ("svc" | "service" | "services"), _)) => vec![kind],
        Some(_) => Vec::new(),
        None => vec!["", "svc"],
    };
    let mut out = Vec::new();
    for kind in kinds {
        for name in names {
            let value = if kind.is_empty() {
                name.clone()
            } else {
                format!("{kind}/{name}")
            };
            if value.starts_with(prefix) {
                out.push(Candidate::new(value, None));
            }
        }
    }
    out
}

/// Sorted names of the Services in the namespace the flags select; empty on
/// any error or after [`LIST_TIMEOUT`].
pub async fn list_service_names(opts: &KubeOptions) -> Vec<String> {
    let read = async {
        let kube = crate::client::connect(opts).await.ok()?;
        let api: Api<Service> = Api::namespaced(kube.client, &kube.namespace);
        let list = api.list_metadata(&ListParams::default()).await.ok()?;
        Some(
            list.items
                .into_iter()
                .filter_map(|m| m.metadata.name)
                .collect::<Vec<_>>(),
        )
    };
    let mut names = tokio::time::timeout(LIST_TIMEOUT, read)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    names.sort();
    names
}

/// Context names of the kubeconfig (`--kubeconfig`, else `KUBECONFIG` or
/// `~/.kube/config`); empty when it cannot be read.
pub fn context_names(kubeconfig: Option<&PathBuf>) -> Vec<String> {
    let config = match kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    };
    let mut names: Vec<String> = config
        .map(|c| c.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// `__complete`: prints the candidates for `words` in cobra's format and
/// always succeeds (a failed API read just means no Service names).
pub async fn complete(
    outer: &KubeOptions,
    words: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut plan = plan(words);
    if let Some(query) = &plan.services {
        // Flags typed in the words win over ones given before `__complete`.
        let opts = KubeOptions {
            kubeconfig: query.kube.kubeconfig.clone().or(outer.kubeconfig.clone()),
            context: query.kube.context.clone().or(outer.context.clone()),
            namespace: query.kube.namespace.clone().or(outer.namespace.clone()),
            request_timeout: Some(LIST_TIMEOUT),
        };
        let names = list_service_names(&opts).await;
        plan.candidates
            .extend(service_candidates(&names, &query.prefix));
    }
    if let Some(query) = &plan.contexts {
        let path = query.kubeconfig.as_ref().or(outer.kubeconfig.as_ref());
        plan.candidates.extend(
            context_names(path)
                .into_iter()
                .filter(|c| c.starts_with(&query.prefix))
                .map(|c| Candidate::new(c, None)),
        );
    }
    write_candidates(&plan, out)
}

/// cobra's `__complete` output: `value<TAB>help` lines, then `:<directive>`.
pub fn write_candidates(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let mut text = String::new();
    for c in &plan.candidates {
        // A newline or tab inside a value would break the line format.
        let value = c.value.replace(['\n', '\t'], " ");
        text.push_str(&value);
        if let Some(help) = &c.help {
            text.push('\t');
            text.push_str(&help.replace(['\n', '\t'], " "));
        }
        text.push('\n');
    }
    text.push_str(&format!(":{}\n", plan.directive));
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn values(plan: &Plan) -> Vec<&str> {
        plan.candidates.iter().map(|c| c.value.as_str()).collect()
    }

    #[test]
    fn subcommands_first() {
        let p = plan(&words(&[""]));
        let v = values(&p);
        for sub in ["check", "per-pod", "logs", "spread", "completion"] {
            assert!(v.contains(&sub), "{v:?}");
        }
        assert!(!v.contains(&"__complete"), "hidden: {v:?}");
        assert_eq!(p.directive, DIRECTIVE_NO_FILE_COMP);
        assert!(p.services.is_none());
        let p = plan(&words(&["pe"]));
        assert_eq!(values(&p), vec!["per-pod"]);
        // No words at all (kubectl always sends one, but be lenient).
        assert!(values(&plan(&[])).contains(&"check"));
    }

    #[test]
    fn subcommand_after_global_flags() {
        let p = plan(&words(&["-n", "dev", "--context=c", "ch"]));
        assert_eq!(values(&p), vec!["check"]);
    }

    #[test]
    fn flags_of_the_subcommand_and_the_globals() {
        let p = plan(&words(&["check", "--"]));
        let v = values(&p);
        for flag in [
            "--explain",
            "--namespace",
            "--context",
            "--output",
            "--help",
        ] {
            assert!(v.contains(&flag), "{v:?}");
        }
        assert!(!v.contains(&"-n"), "only long forms after --: {v:?}");
        assert!(!v.contains(&"--connect"), "a per-pod flag: {v:?}");
        let help = p
            .candidates
            .iter()
            .find(|c| c.value == "--explain")
            .and_then(|c| c.help.clone())
            .unwrap_or_default();
        assert!(help.contains("explanation"), "{help}");
        let p = plan(&words(&["per-pod", "-"]));
        let v = values(&p);
        assert!(v.contains(&"--connect") && v.contains(&"-n"), "{v:?}");
    }

    #[test]
    fn given_flags_are_not_offered_again_unless_repeatable() {
        let p = plan(&words(&["check", "-o", "json", "-v", "--"]));
        let v = values(&p);
        assert!(!v.contains(&"--output"), "{v:?}");
        assert!(v.contains(&"--verbose"), "{v:?}");
    }

    #[test]
    fn flag_values_from_the_definition() {
        let p = plan(&words(&["check", "-o", ""]));
        assert_eq!(values(&p), vec!["text", "wide", "json", "yaml"]);
        let p = plan(&words(&["check", "--output", "j"]));
        assert_eq!(values(&p), vec!["json"]);
        let p = plan(&words(&["check", "--output=y"]));
        assert_eq!(values(&p), vec!["--output=yaml"]);
        // A free value: nothing, and no file names.
        let p = plan(&words(&["per-pod", "--path", ""]));
        assert!(p.candidates.is_empty());
        assert_eq!(p.directive, DIRECTIVE_NO_FILE_COMP);
        // --kubeconfig is a file.
        let p = plan(&words(&["--kubeconfig", ""]));
        assert_eq!(p.directive, DIRECTIVE_DEFAULT);
        let p = plan(&words(&["check", "--context", "la"]));
        assert_eq!(
            p.contexts,
            Some(ContextQuery {
                kubeconfig: None,
                prefix: "la".into()
            })
        );
    }

    #[test]
    fn target_position_asks_for_services_with_the_typed_flags() {
        let p = plan(&words(&[
            "logs",
            "-n",
            "dev",
            "--kubeconfig=/k",
            "--context",
            "c",
            "svc/",
        ]));
        let q = p.services.expect("a Service query");
        assert_eq!(q.prefix, "svc/");
        assert_eq!(q.kube.namespace.as_deref(), Some("dev"));
        assert_eq!(q.kube.context.as_deref(), Some("c"));
        assert_eq!(q.kube.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(p.directive, DIRECTIVE_NO_FILE_COMP);
        // -ndev form, and spread's TARGET|URL.
        let q = plan(&words(&["spread", "-ndev", ""]))
            .services
            .expect("query");
        assert_eq!(q.kube.namespace.as_deref(), Some("dev"));
        // The target is given: nothing more to complete.
        let p = plan(&words(&["check", "svc/a", ""]));
        assert!(p.services.is_none() && p.candidates.is_empty());
        // A flag's value is not a positional.
        assert!(
            plan(&words(&["check", "--explain", "WSA030", ""]))
                .services
                .is_some()
        );
    }

    #[test]
    fn completion_offers_its_shells() {
        let p = plan(&words(&["completion", ""]));
        assert_eq!(values(&p), vec!["bash", "zsh", "fish", "kubectl"]);
    }

    #[test]
    fn service_forms() {
        let names = words(&["dev-websocket-server", "other"]);
        let v: Vec<String> = service_candidates(&names, "")
            .into_iter()
            .map(|c| c.value)
            .collect();
        assert_eq!(
            v,
            words(&[
                "dev-websocket-server",
                "other",
                "svc/dev-websocket-server",
                "svc/other"
            ])
        );
        let v: Vec<String> = service_candidates(&names, "service/d")
            .into_iter()
            .map(|c| c.value)
            .collect();
        assert_eq!(v, words(&["service/dev-websocket-server"]));
        assert!(service_candidates(&names, "ingress/").is_empty());
        let v: Vec<String> = service_candidates(&names, "o")
            .into_iter()
            .map(|c| c.value)
            .collect();
        assert_eq!(v, words(&["other"]));
    }

    #[test]
    fn cobra_format() {
        let plan = Plan::new(
            vec![
                Candidate::new("check", Some("Read\tthe routing".into())),
                Candidate::new("svc/a", None),
            ],
            DIRECTIVE_NO_FILE_COMP,
        );
        let mut out = Vec::new();
        write_candidates(&plan, &mut out).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "check\tRead the routing\nsvc/a\n:4\n"
        );
    }

    #[test]
    fn scripts_name_the_binary_and_the_subcommands() {
        for kind in [ScriptKind::Bash, ScriptKind::Zsh, ScriptKind::Fish] {
            let mut out = Vec::new();
            write_script(kind, &mut out).expect("write");
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("kubectl-wsaffinity"), "{kind:?}");
            assert!(text.contains("per-pod"), "{kind:?}");
            assert!(
                !text.contains("__complete"),
                "hidden subcommand in {kind:?}"
            );
        }
        let mut out = Vec::new();
        write_script(ScriptKind::Kubectl, &mut out).expect("write");
        assert!(String::from_utf8_lossy(&out).contains("kubectl-wsaffinity __complete \"$@\""));
    }
}
