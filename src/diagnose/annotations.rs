//! Pure parsers for annotation and CRD values. Every value comes from the
//! cluster and is untrusted: parsers return `Err(reason)`, never panic, and a
//! malformed value becomes a finding (WSA034 for timeouts, WSA036 otherwise).

use std::time::Duration;

/// Parse a duration as controllers write them: `3600` (seconds), `3600s`,
/// `90m`, `1h`, `1h30m`, `500ms`. Gateway API and Go style, no decimals.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("`{raw}` is too large"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "`{raw}` is not a duration (expected e.g. 3600, 3600s, 1h, 90m, 1h30m)"
            ));
        }
        let (num, tail) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| format!("`{raw}` is too large"))?;
        let unit_len = tail.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let (unit, tail) = tail.split_at(unit_len);
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{raw}`: a unit is missing after {n}")),
            other => {
                return Err(format!(
                    "`{raw}`: unknown unit `{other}` (use h, m, s or ms)"
                ));
            }
        };
        let part = n
            .checked_mul(factor)
            .ok_or_else(|| format!("`{raw}` is too large"))?;
        total_ms = total_ms
            .checked_add(part)
            .ok_or_else(|| format!("`{raw}` is too large"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Whole seconds of a duration value (rounded down), e.g. for comparisons with 3600.
pub fn parse_seconds(raw: &str) -> Result<u64, String> {
    parse_duration(raw).map(|d| d.as_secs())
}

/// Format a duration the way `parse_duration` reads it back: `1h30m`, `45s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1_000, rem % 1_000);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// Booleans as Kubernetes controllers accept them (Go's `strconv.ParseBool`).
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "`{raw}` is not a boolean (expected \"true\" or \"false\")"
        )),
    }
}

/// The nginx variables of an `upstream-hash-by` key, e.g. `$remote_addr$request_uri`
/// → `["remote_addr", "request_uri"]`. An empty list means a constant key.
pub fn hash_key_variables(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            continue;
        }
        // `${name}` or `$name`
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// nginx variables that identify a client by its address.
pub const CLIENT_ADDRESS_VARIABLES: [&str; 3] =
    ["remote_addr", "binary_remote_addr", "http_x_forwarded_for"];

/// The client-address variables of a hash key, if any.
pub fn client_address_variables(raw: &str) -> Vec<String> {
    hash_key_variables(raw)
        .into_iter()
        .filter(|v| CLIENT_ADDRESS_VARIABLES.contains(&v.as_str()))
        .collect()
}

/// `key=value,key=value` lists (AWS ALB attributes). Whitespace around items is ignored.
pub fn parse_kv_list(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((k.trim().to_owned(), v.trim().to_owned()))
            }
            _ => return Err(format!("`{item}` is not a key=value pair")),
        }
    }
    Ok(out)
}

/// Which BackendConfig the `cloud.google.com/backend-config` annotation names
/// for one of the Service's ports (`{"default":"x"}` or `{"ports":{"8080":"x"}}`).
pub fn backend_config_name(raw: &str, port_keys: &[String]) -> Result<Option<String>, String> {
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| format!("not valid JSON ({e}); expected {{\"default\":\"NAME\"}}"))?;
    let obj = v
        .as_object()
        .ok_or("expected a JSON object such as {\"default\":\"NAME\"}")?;
    if let Some(ports) = obj.get("ports").and_then(|p| p.as_object()) {
        for key in port_keys {
            if let Some(name) = ports.get(key).and_then(|n| n.as_str()) {
                return Ok(Some(name.to_owned()));
            }
        }
    }
    match obj.get("default") {
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("`default` must be a string".into()),
        None if obj.contains_key("ports") => Ok(None),
        None => Err("neither `default` nor `ports` is set".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_in_every_usual_form() {
        assert_eq!(parse_seconds("3600"), Ok(3600));
        assert_eq!(parse_seconds(" 3600s "), Ok(3600));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("90m"), Ok(5400));
        assert_eq!(parse_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("0"), Ok(0));
    }

    #[test]
    fn malformed_durations_are_errors() {
        for bad in [
            "",
            "h",
            "1x",
            "1.5h",
            "-1",
            "abc",
            "1h30",
            "99999999999999999999",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_is_compact() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("False"), Ok(false));
        assert!(parse_bool("yes please").is_err());
    }

    #[test]
    fn hash_keys() {
        assert_eq!(hash_key_variables("$remote_addr"), vec!["remote_addr"]);
        assert_eq!(
            hash_key_variables("${binary_remote_addr}$request_uri"),
            vec!["binary_remote_addr", "request_uri"]
        );
        assert!(hash_key_variables("constant").is_empty());
        assert_eq!(
            client_address_variables("$http_x_forwarded_for"),
            vec!["http_x_forwarded_for"]
        );
        assert!(client_address_variables("$request_uri").is_empty());
        assert!(client_address_variables("$cookie_session").is_empty());
    }

    #[test]
    fn kv_lists() {
        assert_eq!(
            parse_kv_list("stickiness.enabled=true, stickiness.type=lb_cookie").unwrap(),
            vec![
                ("stickiness.enabled".into(), "true".into()),
                ("stickiness.type".into(), "lb_cookie".into())
            ]
        );
        assert!(parse_kv_list("stickiness.enabled").is_err());
        assert!(parse_kv_list("=x").is_err());
    }

    #[test]
    fn backend_config_annotation() {
        let ports = vec!["8080".to_string(), "ws".to_string()];
        assert_eq!(
            backend_config_name(r#"{"default":"ws-bc"}"#, &ports),
            Ok(Some("ws-bc".into()))
        );
        assert_eq!(
            backend_config_name(r#"{"ports":{"ws":"p"},"default":"d"}"#, &ports),
            Ok(Some("p".into()))
        );
        assert_eq!(
            backend_config_name(r#"{"ports":{"9":"p"}}"#, &ports),
            Ok(None)
        );
        assert!(backend_config_name("ws-bc", &ports).is_err());
        assert!(backend_config_name("[]", &ports).is_err());
        assert!(backend_config_name(r#"{"default":3}"#, &ports).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*") {
            let _ = parse_duration(&s);
            let _ = parse_bool(&s);
            let _ = hash_key_variables(&s);
            let _ = parse_kv_list(&s);
            let _ = backend_config_name(&s, &["80".to_string()]);
        }

        #[test]
        fn duration_like_strings_never_panic(s in "[0-9hms]{0,30}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn durations_round_trip(ms in 0u64..(1u64 << 40)) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn plain_seconds_round_trip(n in 0u64..u32::MAX as u64) {
            prop_assert_eq!(parse_seconds(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_seconds(&format!("{n}s")), Ok(n));
        }
    }
}
