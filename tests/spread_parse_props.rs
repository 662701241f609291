//! Property tests: `--resolve`, `--header` and `--url` parsing never panics,
//! and what parses round-trips.

use kubectl_wsaffinity::probe::url::{WsUrl, parse_header, parse_resolve};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resolve_never_panics(s in "\\PC{0,60}") {
        let _ = parse_resolve(&s);
    }

    #[test]
    fn resolve_like_inputs_never_panic(
        host in "[\\[\\]a-z0-9.*:-]{0,20}",
        port in "[0-9a-z]{0,6}",
        addrs in "[\\[\\]0-9a-f.:,]{0,40}",
    ) {
        let _ = parse_resolve(&format!("{host}:{port}:{addrs}"));
    }

    #[test]
    fn valid_resolve_round_trips(
        host in "[a-z][a-z0-9-]{0,15}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        port in 1u16..,
        a in any::<[u8; 4]>(),
    ) {
        let ip = std::net::Ipv4Addr::from(a);
        let e = parse_resolve(&format!("{host}:{port}:{ip}")).expect("valid entry");
        prop_assert_eq!(&e.host, &host);
        prop_assert_eq!(e.port, port);
        prop_assert!(e.matches(&host.to_uppercase(), port));
        let again = parse_resolve(&e.to_string()).expect("display parses");
        prop_assert_eq!(again, e);
    }

    #[test]
    fn header_never_panics(s in "\\PC{0,60}") {
        let _ = parse_header(&s);
    }

    #[test]
    fn valid_header_parses(name in "[A-Za-z][A-Za-z0-9-]{0,20}", value in "[ -~]{0,40}") {
        prop_assume!(!["connection", "upgrade"].contains(&name.to_ascii_lowercase().as_str()));
        prop_assume!(!name.to_ascii_lowercase().starts_with("sec-websocket-"));
        let (n, v) = parse_header(&format!("{name}: {value}")).expect("valid header");
        prop_assert_eq!(n.as_str(), name.to_ascii_lowercase());
        prop_assert_eq!(v.to_str().expect("ascii"), value.trim());
    }

    #[test]
    fn url_never_panics(s in "\\PC{0,60}") {
        let _ = WsUrl::parse(&s);
    }
}
