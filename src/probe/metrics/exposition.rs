//! The Prometheus text exposition format (and OpenMetrics, its superset for
//! what is read here): samples `name{label="value",…} value [timestamp]`,
//! comments and `# EOF` skipped. Pure, so it is tested without a cluster.
//!
//! Written here rather than taken from a crate: `prometheus-client` only
//! encodes, and the parser crates on crates.io are unmaintained; the subset
//! needed (sample lines, label escapes) is small and property-tested.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// `--metric NAME` or `--metric 'NAME{label="v",…}'`: which series to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricQuery {
    pub name: String,
    /// Every one of these must match a series' label exactly.
    pub labels: BTreeMap<String, String>,
}

/// What one pod's metrics said about the query.
#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    /// The sum of the matching series' values, and how many there were.
    Found { value: f64, series: usize },
    /// The name exists, but no series has the asked labels.
    NoMatchingLabels { series: usize },
    /// No sample of that name.
    Missing,
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| is_name_char(c, true)) && chars.all(|c| is_name_char(c, false))
}

/// Parse `name="value",…` up to the closing brace; returns the labels and
/// the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let key = rest[..eq].trim();
        if !valid_name(key) {
            return Err(format!("`{key}` is not a label name"));
        }
        rest = rest[eq + 1..].trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.starts_with('}') {
            return Err("labels not separated by `,`".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("`{s}` is not a number")),
    }
}

/// One sample line (not a comment).
pub fn parse_line(line: &str) -> Result<Sample, String> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("`{name}` is not a metric name"));
    }
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (BTreeMap::new(), &line[name_end..]),
    };
    let value = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: parse_value(value)?,
    })
}

/// Every sample of a scrape, and the lines that did not parse (line number, why).
pub fn parse(text: &str) -> (Vec<Sample>, Vec<(usize, String)>) {
    let mut samples = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match parse_line(t) {
            Ok(s) => samples.push(s),
            Err(e) => bad.push((i + 1, e)),
        }
    }
    (samples, bad)
}

impl MetricQuery {
    /// `name` or `name{label="value",…}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, labels) = match text.split_once('{') {
            None => (text, BTreeMap::new()),
            Some((name, rest)) => {
                let (labels, after) = parse_labels(rest)?;
                if !after.trim().is_empty() {
                    return Err(format!("unexpected `{}` after the labels", after.trim()));
                }
                (name.trim(), labels)
            }
        };
        if !valid_name(name) {
            return Err(format!(
                "`{name}` is not a metric name (letters, digits, `_` and `:`, not starting with a digit)"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            labels,
        })
    }

    fn matches(&self, s: &Sample) -> bool {
        s.name == self.name && self.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
    }

    /// Sum the series of this name whose labels match.
    pub fn select(&self, samples: &[Sample]) -> Selection {
        let named: Vec<&Sample> = samples.iter().filter(|s| s.name == self.name).collect();
        if named.is_empty() {
            return Selection::Missing;
        }
        let matching: Vec<&&Sample> = named.iter().filter(|s| self.matches(s)).collect();
        if matching.is_empty() {
            return Selection::NoMatchingLabels {
                series: named.len(),
            };
        }
        Selection::Found {
            value: matching.iter().map(|s| s.value).sum(),
            series: matching.len(),
        }
    }
}

impl MetricQuery {
    /// When more than one series matched (and [`select`](Self::select)
    /// summed them): a note that says so, with the labels that tell them
    /// apart, each one's value, and a `--metric` that reads one alone.
    pub fn summed_note(&self, samples: &[Sample]) -> Option<String> {
        const SHOWN: usize = 4;
        let matching: Vec<&Sample> = samples.iter().filter(|s| self.matches(s)).collect();
        let first = matching.first()?;
        if matching.len() < 2 {
            return None;
        }
        // The label names whose values differ between the matching series.
        let apart: std::collections::BTreeSet<&str> = matching
            .iter()
            .flat_map(|s| s.labels.keys().map(String::as_str))
            .filter(|k| {
                matching
                    .iter()
                    .any(|s| s.labels.get(*k) != first.labels.get(*k))
            })
            .collect();
        let labels_of = |s: &Sample| -> BTreeMap<String, String> {
            apart
                .iter()
                .map(|k| (k.to_string(), s.labels.get(*k).cloned().unwrap_or_default()))
                .collect()
        };
        let mut each: Vec<String> = matching
            .iter()
            .take(SHOWN)
            .map(|s| {
                let only = MetricQuery {
                    name: String::new(),
                    labels: labels_of(s),
                };
                format!("{only} {}", s.value).trim_start().to_string()
            })
            .collect();
        if matching.len() > SHOWN {
            each.push(format!("and {} more", matching.len() - SHOWN));
        }
        let mut one = self.clone();
        one.labels.extend(labels_of(first));
        Some(format!(
            "{} series of `{}` summed ({}); read one alone with --metric '{one}'",
            matching.len(),
            self.name,
            each.join(", ")
        ))
    }
}

impl std::fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let inner: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", inner.join(","))?;
        }
        Ok(())
    }
}

/// The names in `names` closest to `wanted`: sharing a word (split on `_`)
/// with it, most shared first, at most `max`.
pub fn closest_names<'a>(
    wanted: &str,
    names: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let words: Vec<&str> = wanted.split('_').filter(|w| w.len() > 2).collect();
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .map(|n| {
            let shared = n.split('_').filter(|w| words.contains(w)).count();
            (shared, n)
        })
        .filter(|(shared, _)| *shared > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(max)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SCRAPE: &str = r#"# HELP websocket_active_connections Open WebSocket connections.
# TYPE websocket_active_connections gauge
websocket_active_connections 3
socketio_connected{namespace="/chat"} 2
socketio_connected{namespace="/admin"} 1
ws_connections{path="/a\"b",zone="x\\y"} 4.5 1700000000000
http_requests_total{code="200"} +Inf
# EOF
"#;

    #[test]
    fn summed_series_are_noted_with_what_tells_them_apart() {
        let (samples, _) = parse(SCRAPE);
        let all = MetricQuery::parse("socketio_connected").unwrap();
        assert_eq!(
            all.select(&samples),
            Selection::Found {
                value: 3.0,
                series: 2
            }
        );
        assert_eq!(
            all.summed_note(&samples).as_deref(),
            Some(
                "2 series of `socketio_connected` summed ({namespace=\"/chat\"} 2, {namespace=\"/admin\"} 1); \
                 read one alone with --metric 'socketio_connected{namespace=\"/chat\"}'"
            )
        );
        let one = MetricQuery::parse(r#"socketio_connected{namespace="/admin"}"#).unwrap();
        assert_eq!(one.summed_note(&samples), None);
        let single = MetricQuery::parse("websocket_active_connections").unwrap();
        assert_eq!(single.summed_note(&samples), None);
    }

    #[test]
    fn samples_with_labels_escapes_timestamps_and_infinities() {
        let (samples, bad) = parse(SCRAPE);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[3].labels["path"], "/a\"b");
        assert_eq!(samples[3].labels["zone"], "x\\y");
        assert_eq!(samples[3].value, 4.5);
        assert!(samples[4].value.is_infinite());
    }

    #[test]
    fn series_of_one_name_are_summed_or_picked_by_labels() {
        let (samples, _) = parse(SCRAPE);
        let q = MetricQuery::parse("socketio_connected").unwrap();
        assert_eq!(
            q.select(&samples),
            Selection::Found {
                value: 3.0,
                series: 2
            }
        );
        let q = MetricQuery::parse(r#"socketio_connected{namespace="/chat"}"#).unwrap();
        assert_eq!(
            q.select(&samples),
            Selection::Found {
                value: 2.0,
                series: 1
            }
        );
        let q = MetricQuery::parse(r#"socketio_connected{namespace="/x"}"#).unwrap();
        assert_eq!(
            q.select(&samples),
            Selection::NoMatchingLabels { series: 2 }
        );
        let q = MetricQuery::parse("nope").unwrap();
        assert_eq!(q.select(&samples), Selection::Missing);
    }

    #[test]
    fn bad_queries_and_lines_say_what_is_wrong() {
        assert!(
            MetricQuery::parse("9lives")
                .unwrap_err()
                .contains("not a metric name")
        );
        assert!(
            MetricQuery::parse(r#"a{b="c"} x"#)
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(
            MetricQuery::parse(r#"a{b=c}"#)
                .unwrap_err()
                .contains("quotes")
        );
        let (_, bad) = parse("ok 1\nbroken{a=\"1\" 2\nnovalue\n");
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn closest_names_share_words() {
        let names = [
            "socketio_connected",
            "ws_connections",
            "http_requests_total",
            "process_cpu_seconds_total",
        ];
        assert_eq!(
            closest_names("websocket_connections", names, 3),
            ["ws_connections"]
        );
        assert_eq!(
            closest_names("socketio_connections", names, 3),
            ["socketio_connected", "ws_connections"]
        );
    }

    proptest! {
        /// Any label values survive rendering with escapes and parsing back.
        #[test]
        fn label_values_round_trip(v in "[ -~\n]{0,20}", value in -1e9f64..1e9) {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("m{{a=\"{escaped}\",b=\"x\"}} {value}");
            let s = parse_line(&line).unwrap();
            prop_assert_eq!(&s.labels["a"], &v);
            prop_assert_eq!(s.value, value);
        }

        /// The parser never panics on arbitrary input.
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
            let _ = MetricQuery::parse(&text);
        }
    }
}
