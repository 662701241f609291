//! Property tests of target references (`svc/NAME`, `ingress/NAME`,
//! `deploy/NAME`, a bare name): no input panics, every accepted name is a
//! valid Kubernetes name, and a parsed target prints back to itself.

use std::collections::BTreeMap;

use kubectl_wsaffinity::target::{
    ResolveError, TargetSpec, TargetSyntaxError, only_service, selector_matches,
};
use proptest::prelude::*;

/// RFC 1123 subdomain names as Kubernetes accepts them (kept short).
fn name() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?"
}

fn kind() -> impl Strategy<Value = (&'static str, fn(String) -> TargetSpec)> {
    prop_oneof![
        Just(("svc", TargetSpec::Service as fn(String) -> TargetSpec)),
        Just(("service", TargetSpec::Service as fn(String) -> TargetSpec)),
        Just(("services", TargetSpec::Service as fn(String) -> TargetSpec)),
        Just(("ing", TargetSpec::Ingress as fn(String) -> TargetSpec)),
        Just(("ingress", TargetSpec::Ingress as fn(String) -> TargetSpec)),
        Just(("ingresses", TargetSpec::Ingress as fn(String) -> TargetSpec)),
        Just(("deploy", TargetSpec::Deployment as fn(String) -> TargetSpec)),
        Just((
            "deployment",
            TargetSpec::Deployment as fn(String) -> TargetSpec
        )),
        Just((
            "deployments",
            TargetSpec::Deployment as fn(String) -> TargetSpec
        )),
    ]
}

fn is_valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn name_of(spec: &TargetSpec) -> Option<&str> {
    match spec {
        TargetSpec::Service(n) | TargetSpec::Ingress(n) | TargetSpec::Deployment(n) => Some(n),
        TargetSpec::OnlyService => None,
    }
}

proptest! {
    #[test]
    fn any_input_parses_or_errors_with_a_message(s in any::<String>()) {
        match s.parse::<TargetSpec>() {
            Ok(spec) => {
                let n = name_of(&spec).unwrap_or_default();
                prop_assert!(is_valid_name(n), "accepted {s:?} as {spec:?}");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn target_like_inputs_never_panic(s in "[ a-zA-Z0-9./_-]{0,40}") {
        if let Ok(spec) = s.parse::<TargetSpec>() {
            prop_assert!(is_valid_name(name_of(&spec).unwrap_or_default()), "{s:?}");
            // What was accepted prints as a reference that parses to the same target.
            prop_assert_eq!(spec.to_string().parse::<TargetSpec>(), Ok(spec));
        }
    }

    #[test]
    fn every_kind_alias_round_trips(
        (alias, make) in kind(),
        n in name(),
        upper in any::<bool>(),
        pad in "[ \t]{0,2}",
    ) {
        let alias = if upper { alias.to_ascii_uppercase() } else { alias.to_string() };
        let input = format!("{pad}{alias}/{n}{pad}");
        let spec: TargetSpec = input.parse().map_err(|e| TestCaseError::fail(format!("{input:?}: {e}")))?;
        prop_assert_eq!(&spec, &make(n.clone()));
        prop_assert_eq!(spec.to_string().parse::<TargetSpec>(), Ok(spec.clone()));
        prop_assert_eq!(spec.to_ref().name, Some(n));
    }

    #[test]
    fn a_bare_name_is_a_service(n in name()) {
        prop_assert_eq!(n.parse::<TargetSpec>(), Ok(TargetSpec::Service(n.clone())));
    }

    #[test]
    fn a_missing_name_is_named_in_the_error((alias, _) in kind()) {
        let input = format!("{alias}/");
        let missing = matches!(
            input.parse::<TargetSpec>(),
            Err(TargetSyntaxError::MissingName { .. })
        );
        prop_assert!(missing, "{input:?}");
    }

    #[test]
    fn an_unknown_kind_is_an_error_not_a_guess(k in "[a-z]{1,12}", n in name()) {
        prop_assume!(![
            "svc", "service", "services", "ing", "ingress", "ingresses",
            "deploy", "deployment", "deployments",
        ]
        .contains(&k.as_str()));
        let unknown = matches!(
            format!("{k}/{n}").parse::<TargetSpec>(),
            Err(TargetSyntaxError::UnknownKind { .. })
        );
        prop_assert!(unknown);
    }

    #[test]
    fn only_service_picks_the_one_or_lists_them_all(
        names in proptest::collection::btree_set(name(), 0..6),
    ) {
        let names: Vec<String> = names.into_iter().collect();
        match only_service("ns", names.iter().rev().cloned().collect()) {
            Ok(one) => prop_assert_eq!(vec![one], names),
            Err(ResolveError::NoServices { .. }) => prop_assert!(names.is_empty()),
            Err(e @ ResolveError::SeveralServices { .. }) => {
                prop_assert!(names.len() > 1);
                let message = e.to_string();
                for n in &names {
                    prop_assert!(message.contains(n.as_str()), "{message}");
                }
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn a_selector_matches_exactly_the_labels_that_contain_it(
        selector in proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{0,3}", 0..4),
        extra in proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{0,3}", 0..4),
    ) {
        let mut labels: BTreeMap<String, String> = extra.clone();
        labels.extend(selector.clone());
        // An empty selector selects nothing (as the endpoints controller does).
        prop_assert_eq!(selector_matches(&selector, &labels), !selector.is_empty());
        let contained = !selector.is_empty()
            && selector.iter().all(|(k, v)| extra.get(k) == Some(v));
        prop_assert_eq!(selector_matches(&selector, &extra), contained);
    }
}
