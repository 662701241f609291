//! WSA001: the target does not exist; suggest close names.

use super::ctx::{Ctx, finding, names};
use crate::report::Finding;

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Up to three names close to `wanted`: small edit distance, or one contains the other.
pub fn suggestions(wanted: &str, candidates: &[String]) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter(|c| c.as_str() != wanted)
        .filter_map(|c| {
            let d = edit_distance(wanted, c);
            let contains =
                !wanted.is_empty() && (c.contains(wanted) || wanted.contains(c.as_str()));
            (d <= limit || contains).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// WSA001: the Service (or Ingress/Deployment) the user named is missing.
pub fn wsa001_not_found(ctx: &Ctx) -> Vec<Finding> {
    let requested = if ctx.snap.requested.is_empty() {
        format!("svc/{}", ctx.name)
    } else {
        ctx.snap.requested.clone()
    };
    let close = suggestions(&ctx.name, &ctx.snap.service_names);
    let mut detail = format!("`{requested}` was not found in namespace `{}`", ctx.ns());
    let fix = if close.is_empty() {
        if ctx.snap.service_names.is_empty() {
            detail.push_str("; the namespace has no Services");
        } else {
            detail.push_str(&format!(
                "; Services there: {}",
                names(&ctx.snap.service_names)
            ));
        }
        "check the name and namespace: `kubectl get svc -A | grep NAME`, then `kubectl wsaffinity check -n NAMESPACE svc/NAME`"
            .to_owned()
    } else {
        detail.push_str(&format!("; did you mean {}?", names(&close)));
        format!(
            "kubectl wsaffinity check -n {} svc/{}",
            ctx.ns(),
            close.first().map(String::as_str).unwrap_or("NAME")
        )
    };
    vec![finding(
        "WSA001",
        detail,
        vec![format!("{requested} in namespace {}", ctx.ns())],
        fix,
    )]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::codes;
    use super::*;
    use crate::snapshot::{Observations, Snapshot};

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn close_names_are_suggested_best_first() {
        let c: Vec<String> = [
            "dev-websocket-server",
            "redis",
            "dev-websocket-srv",
            "websocket",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            suggestions("dev-websocket-sever", &c),
            vec!["dev-websocket-server", "dev-websocket-srv", "websocket"]
        );
        assert!(suggestions("postgres", &c).is_empty());
    }

    #[test]
    fn wsa001_fires_with_suggestion() {
        let snap = Snapshot {
            namespace: "default".into(),
            requested: "svc/dev-websocket-sever".into(),
            service_names: vec!["dev-websocket-server".into(), "redis".into()],
            ..Default::default()
        };
        let f = wsa001_not_found(&Ctx::new(&snap, &Observations::default()));
        assert_eq!(codes(&f), vec!["WSA001"]);
        assert!(
            f[0].detail.contains("did you mean `dev-websocket-server`?"),
            "{}",
            f[0].detail
        );
        assert!(f[0].fix.contains("svc/dev-websocket-server"));
    }

    #[test]
    fn wsa001_is_not_run_when_the_service_exists() {
        let snap = super::super::fixtures::dev_overlay();
        let f = super::super::findings(&Ctx::new(&snap, &Observations::default()));
        assert!(!codes(&f).contains(&"WSA001"));
    }
}
