//! Pure line parsing for `logs`: the `Active connections: N` pattern, the
//! `timestamps=true` prefix the API adds, and "the latest match in a chunk
//! wins". No I/O, so everything here is unit- and property-tested.

use jiff::Timestamp;
use regex::Regex;
use thiserror::Error;

/// The regex used when `--pattern` is not given.
pub const DEFAULT_PATTERN: &str = r"Active connections: (\d+)";

/// A compiled `--pattern`: a regex with exactly one capture group, whose
/// text is the number of active connections.
#[derive(Clone, Debug)]
pub struct ActivePattern {
    regex: Regex,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("invalid --pattern `{pattern}`: {reason}")]
    Invalid { pattern: String, reason: String },
    #[error(
        "invalid --pattern `{pattern}`: it has {groups} capture groups, it needs exactly one around the number, \
         e.g. --pattern 'Active connections: (\\d+)' (use (?:...) for groups that should not capture)"
    )]
    Groups { pattern: String, groups: usize },
}

impl ActivePattern {
    /// Compiles `pattern`; an invalid regex or a capture-group count other
    /// than one is an error that names the `--pattern` flag.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| PatternError::Invalid {
                pattern: pattern.to_string(),
                reason: first_line_of_regex_error(&e),
            })?;
        // captures_len counts the implicit group 0.
        let groups = regex.captures_len().saturating_sub(1);
        if groups != 1 {
            return Err(PatternError::Groups {
                pattern: pattern.to_string(),
                groups,
            });
        }
        Ok(Self { regex })
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The value of the last match in `text` whose capture is a number.
    pub fn last_in_text(&self, text: &str) -> Option<u64> {
        self.regex
            .captures_iter(text)
            .filter_map(|c| c.get(1).and_then(|m| m.as_str().trim().parse::<u64>().ok()))
            .last()
    }
}

impl Default for ActivePattern {
    fn default() -> Self {
        let regex = Regex::new(DEFAULT_PATTERN).expect("DEFAULT_PATTERN is a valid regex");
        Self { regex }
    }
}

fn first_line_of_regex_error(e: &regex::Error) -> String {
    // regex's syntax errors are several lines with a caret diagram, ending
    // in `error: <what>`; keep that last part on one line.
    let s = e.to_string();
    match s
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    {
        Some(what) => what.to_string(),
        None => s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// One log line as returned with `timestamps=true`: `<RFC3339> <rest>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub time: Option<Timestamp>,
    pub rest: &'a str,
}

/// Splits the timestamp the API server prepends with `timestamps=true`.
/// A line without a parseable RFC 3339 prefix is returned whole with no time.
pub fn split_timestamp(line: &str) -> LogLine<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if let Some((head, rest)) = line.split_once(' ')
        && looks_like_rfc3339(head)
        && let Ok(time) = head.parse::<Timestamp>()
    {
        return LogLine {
            time: Some(time),
            rest,
        };
    }
    LogLine {
        time: None,
        rest: line,
    }
}

/// Cheap pre-check so ordinary words are never handed to the parser.
fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b.len() <= 40
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b.get(10) == Some(&b'T')
}

/// Formats a line the way the API server does with `timestamps=true`.
pub fn format_timestamped(time: Timestamp, rest: &str) -> String {
    format!("{} {rest}", time)
}

/// The latest `Active connections` value found in a chunk of log text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveMatch {
    pub active: u64,
    /// From the line's `timestamps=true` prefix, when it had one.
    pub time: Option<Timestamp>,
}

/// Scans `chunk` (many lines) and returns the last match: the lines are in
/// log order, so the last line with a match is the latest value. Within one
/// line the last match wins too.
pub fn latest_in_chunk(pattern: &ActivePattern, chunk: &str) -> Option<ActiveMatch> {
    chunk
        .lines()
        .rev()
        .find_map(|line| match_line(pattern, line))
}

/// The match in one line, if any.
pub fn match_line(pattern: &ActivePattern, line: &str) -> Option<ActiveMatch> {
    let parsed = split_timestamp(line);
    pattern.last_in_text(parsed.rest).map(|active| ActiveMatch {
        active,
        time: parsed.time,
    })
}

/// The match in a line logged after `after` (any line's when `None`). A line
/// without a time cannot be placed after anything, so it is left out then.
pub fn match_after(
    pattern: &ActivePattern,
    line: &str,
    after: Option<Timestamp>,
) -> Option<ActiveMatch> {
    match_line(pattern, line).filter(|m| after.is_none_or(|a| m.time.is_some_and(|t| t > a)))
}

/// A test's RFC 3339 time, for the log tests of this module and others.
#[cfg(test)]
pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_pattern_reads_the_server_text_format() {
        let p = ActivePattern::default();
        let m = match_line(
            &p,
            "2026-11-26T23:40:01.123456789Z 2026-11-26T23:40:01.123Z INFO Active connections: 2",
        );
        assert_eq!(
            m,
            Some(ActiveMatch {
                active: 2,
                time: Some(ts("2026-11-26T23:40:01.123456789Z"))
            })
        );
    }

    #[test]
    fn default_pattern_reads_json_lines() {
        let p = ActivePattern::default();
        let line =
            r#"2026-11-26T23:40:01Z {"level":"INFO","msg":"Active connections: 17","pod":"a"}"#;
        assert_eq!(match_line(&p, line).map(|m| m.active), Some(17));
    }

    #[test]
    fn latest_line_wins() {
        let p = ActivePattern::default();
        let chunk = "2026-11-26T23:40:01Z Active connections: 1\n\
                     2026-11-26T23:40:02Z Active connections: 5\n\
                     2026-11-26T23:40:03Z something else\n\
                     2026-11-26T23:40:04Z Active connections: 3\n\
                     2026-11-26T23:40:05Z unrelated\n";
        assert_eq!(
            latest_in_chunk(&p, chunk),
            Some(ActiveMatch {
                active: 3,
                time: Some(ts("2026-11-26T23:40:04Z"))
            })
        );
    }

    #[test]
    fn last_match_within_a_line_wins() {
        let p = ActivePattern::default();
        assert_eq!(
            p.last_in_text("Active connections: 1 ... Active connections: 9"),
            Some(9)
        );
    }

    #[test]
    fn no_match_is_none() {
        let p = ActivePattern::default();
        assert_eq!(
            latest_in_chunk(&p, "2026-11-26T23:40:01Z hello\nworld\n"),
            None
        );
        assert_eq!(latest_in_chunk(&p, ""), None);
    }

    #[test]
    fn line_without_timestamp_still_matches() {
        let p = ActivePattern::default();
        assert_eq!(
            match_line(&p, "INFO Active connections: 4"),
            Some(ActiveMatch {
                active: 4,
                time: None
            })
        );
    }

    #[test]
    fn crlf_and_partial_last_line() {
        let p = ActivePattern::default();
        let chunk =
            "2026-11-26T23:40:01Z Active connections: 7\r\n2026-11-26T23:40:02Z Active conn";
        assert_eq!(latest_in_chunk(&p, chunk).map(|m| m.active), Some(7));
    }

    #[test]
    fn custom_pattern_with_one_group() {
        let p = ActivePattern::new(r"clients=(\d+)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            match_line(&p, "2026-11-26T23:40:01Z ws clients=12 rooms=3").map(|m| m.active),
            Some(12)
        );
        // A named group is one group too.
        let p = ActivePattern::new(r"open=(?P<n>\d+)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.last_in_text("open=3"), Some(3));
        // Non-capturing groups do not count.
        let p = ActivePattern::new(r"(?:active|open)=(\d+)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.last_in_text("open=8"), Some(8));
    }

    #[test]
    fn non_numeric_capture_is_skipped() {
        let p = ActivePattern::new(r"active=(\S+)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.last_in_text("active=4 active=many"), Some(4));
        assert_eq!(p.last_in_text("active=many"), None);
    }

    #[test]
    fn invalid_regex_names_the_flag() {
        let err = ActivePattern::new("Active (").unwrap_err();
        assert!(matches!(err, PatternError::Invalid { .. }));
        let msg = err.to_string();
        assert_eq!(msg, "invalid --pattern `Active (`: unclosed group");
    }

    #[test]
    fn wrong_group_count_names_the_flag() {
        let zero = ActivePattern::new(r"Active connections: \d+").unwrap_err();
        assert_eq!(
            zero,
            PatternError::Groups {
                pattern: r"Active connections: \d+".into(),
                groups: 0
            }
        );
        assert!(zero.to_string().contains("--pattern"));
        let two = ActivePattern::new(r"(\w+): (\d+)").unwrap_err();
        assert!(matches!(two, PatternError::Groups { groups: 2, .. }));
        assert!(two.to_string().contains("exactly one"));
    }

    #[test]
    fn timestamp_split() {
        let l = split_timestamp("2026-11-26T23:40:01.5+01:00 rest of it");
        assert_eq!(l.time, Some(ts("2026-11-26T22:40:01.5Z")));
        assert_eq!(l.rest, "rest of it");
        let l = split_timestamp("2026-13-99T99:99:99Z not a time");
        assert_eq!(l.time, None);
        assert_eq!(l.rest, "2026-13-99T99:99:99Z not a time");
        let l = split_timestamp("plain line");
        assert_eq!(
            l,
            LogLine {
                time: None,
                rest: "plain line"
            }
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC*") {
            let p = ActivePattern::default();
            let _ = latest_in_chunk(&p, &s);
            let _ = split_timestamp(&s);
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = String::from_utf8_lossy(&bytes);
            let p = ActivePattern::default();
            let _ = latest_in_chunk(&p, &s);
        }

        #[test]
        fn never_panics_on_any_pattern(pat in "\\PC{0,24}") {
            let _ = ActivePattern::new(&pat);
        }

        #[test]
        fn formatted_line_round_trips(
            secs in 0i64..4_102_444_800,
            nanos in 0i32..1_000_000_000,
            rest in "[^\r\n]{0,80}",
            n in any::<u64>(),
        ) {
            let time = Timestamp::new(secs, nanos).unwrap_or(Timestamp::UNIX_EPOCH);
            let body = format!("{rest} Active connections: {n}");
            let line = format_timestamped(time, &body);
            let parsed = split_timestamp(&line);
            prop_assert_eq!(parsed.time, Some(time));
            prop_assert_eq!(parsed.rest, body.as_str());
            let m = match_line(&ActivePattern::default(), &line);
            prop_assert_eq!(m, Some(ActiveMatch { active: n, time: Some(time) }));
        }

        #[test]
        fn latest_of_many_lines_wins(values in proptest::collection::vec(any::<u64>(), 1..50)) {
            let chunk: String = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{} INFO Active connections: {v}\n", Timestamp::new(i as i64, 0).unwrap_or(Timestamp::UNIX_EPOCH)))
                .collect();
            let m = latest_in_chunk(&ActivePattern::default(), &chunk);
            prop_assert_eq!(m.map(|m| m.active), values.last().copied());
        }
    }
}
