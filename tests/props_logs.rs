//! Property tests of reading pod logs: the line splitter (any bytes, any
//! chunking, bounded lines) and the `Active connections: N` matcher over
//! whole logs however they arrive.

use kubectl_wsaffinity::probe::logs::lines::{LineSplitter, MAX_LINE_BYTES};
use kubectl_wsaffinity::probe::logs::pattern::{ActivePattern, latest_in_chunk, match_line};
use proptest::prelude::*;

/// Feeds `bytes` cut at `cuts` (positions, any order) and collects the lines.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        splitter.push(&bytes[start..cut], |l| lines.push(l.to_string()));
        start = cut;
    }
    splitter.finish(|l| lines.push(l.to_string()));
    lines
}

/// What the splitter must produce: each `\n`-separated line, its first
/// MAX_LINE_BYTES bytes, decoded lossily; no empty last line.
fn reference(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .map(|p| String::from_utf8_lossy(&p[..p.len().min(MAX_LINE_BYTES)]).into_owned())
        .collect()
}

/// One line of a server log: noise, or a count in the text or JSON format,
/// with or without the API server's `timestamps=true` prefix.
fn log_line() -> impl Strategy<Value = (String, Option<u64>)> {
    let count = any::<u32>().prop_map(u64::from);
    prop_oneof![
        "[ -~]{0,60}".prop_filter("no count", |s| !s.contains("Active connections")).prop_map(|s| (s, None)),
        count.clone().prop_map(|n| (format!("2026-11-26T23:40:01.123Z INFO Active connections: {n}"), Some(n))),
        count.clone().prop_map(|n| (
            format!(r#"{{"timestamp":"2026-11-26T23:40:01.123Z","level":"INFO","message":"Active connections: {n}"}}"#),
            Some(n)
        )),
        count.prop_map(|n| (
            format!("2026-11-26T23:40:02.000000001Z 2026-11-26T23:40:01.123Z INFO Active connections: {n}"),
            Some(n)
        )),
    ]
}

proptest! {
    #[test]
    fn any_bytes_however_chunked_give_the_same_lines(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(split(&bytes, &cuts), reference(&bytes));
    }

    #[test]
    fn crlf_and_invalid_utf8_never_panic_the_matcher(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(0xff), Just(b'7'), any::<u8>()], 0..200),
    ) {
        let pattern = ActivePattern::default();
        for line in split(&bytes, &[]) {
            let _ = match_line(&pattern, &line);
        }
        let _ = latest_in_chunk(&pattern, &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_latest_count_is_found_however_the_log_arrives(
        lines in proptest::collection::vec(log_line(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = lines.iter().map(|(l, _)| format!("{l}{eol}")).collect();
        let want = lines.iter().rev().find_map(|(_, n)| *n);
        let pattern = ActivePattern::default();
        // As a follower sees it: line by line, keeping the latest match.
        let mut streamed = None;
        for line in split(text.as_bytes(), &cuts) {
            if let Some(m) = match_line(&pattern, &line) {
                streamed = Some(m.active);
            }
        }
        prop_assert_eq!(streamed, want);
        prop_assert_eq!(latest_in_chunk(&pattern, &text).map(|m| m.active), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn an_endless_line_is_cut_and_the_next_line_still_read(
        extra in 1usize..5000,
        byte in prop_oneof![Just(b'x'), Just(0xe2u8)],
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut bytes = vec![byte; MAX_LINE_BYTES + extra];
        bytes.extend_from_slice(b"\nActive connections: 3\n");
        let lines = split(&bytes, &cuts);
        prop_assert_eq!(lines.len(), 2);
        prop_assert!(lines[0].chars().count() <= MAX_LINE_BYTES);
        prop_assert_eq!(lines[1].as_str(), "Active connections: 3");
    }
}
