//! Property tests of the lab's port-forward wire format (the kubelet's
//! `v4.channel.k8s.io` and `v4.base64.channel.k8s.io` frames, the subprotocol
//! choice and the `ports` query): no input panics, frames round-trip.

use proptest::prelude::*;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;
use wsaffinity_lab::{Codec, V4_BASE64, V4_BINARY, negotiate, parse_ports};

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Binary), Just(Codec::Base64)]
}

/// Any WebSocket message a client could send.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        any::<String>().prop_map(Message::text),
        "[0-9][A-Za-z0-9+/=]{0,40}".prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| Message::Ping(Bytes::from(b))),
        Just(Message::Close(None)),
    ]
}

proptest! {
    #[test]
    fn decoding_any_message_never_panics(codec in codec(), msg in message()) {
        let _ = codec.decode(&msg);
    }

    #[test]
    fn encoding_any_channel_never_panics(
        codec in codec(),
        channel in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = codec.encode(channel, &data);
    }

    /// Channels 0..=9 are what the base64 protocol can name with one digit;
    /// the binary protocol carries any byte.
    #[test]
    fn frames_round_trip(
        codec in codec(),
        channel in 0u8..10,
        wide in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let msg = codec.encode(channel, &data);
        prop_assert_eq!(codec.decode(&msg), Some((channel, Bytes::from(data.clone()))));
        let msg = Codec::Binary.encode(wide, &data);
        prop_assert_eq!(Codec::Binary.decode(&msg), Some((wide, Bytes::from(data))));
    }

    #[test]
    fn a_frame_of_the_other_codec_is_not_decoded(
        channel in 0u8..10,
        data in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        prop_assert_eq!(Codec::Base64.decode(&Codec::Binary.encode(channel, &data)), None);
        prop_assert_eq!(Codec::Binary.decode(&Codec::Base64.encode(channel, &data)), None);
    }

    #[test]
    fn negotiation_never_panics_and_picks_an_offered_protocol(offered in proptest::option::of(any::<String>())) {
        match negotiate(offered.as_deref()) {
            Ok(("", Codec::Binary)) => {
                let none = offered.as_deref().unwrap_or("").split(',').all(|p| p.trim().is_empty());
                prop_assert!(none, "no protocol offered: {offered:?}");
            }
            Ok((chosen, codec)) => {
                prop_assert!(offered.as_deref().unwrap_or("").split(',').any(|p| p.trim() == chosen));
                prop_assert_eq!(codec, if chosen == V4_BASE64 { Codec::Base64 } else { Codec::Binary });
            }
            Err(e) => prop_assert!(e.contains("not supported")),
        }
    }

    #[test]
    fn the_first_supported_offer_wins(
        junk in proptest::collection::vec("[a-z0-9.]{1,12}", 0..3),
        base64_first in any::<bool>(),
    ) {
        let mut offered: Vec<String> = junk.iter().filter(|j| j.as_str() != V4_BINARY && j.as_str() != V4_BASE64).cloned().collect();
        let (first, second) = if base64_first { (V4_BASE64, V4_BINARY) } else { (V4_BINARY, V4_BASE64) };
        offered.push(first.to_string());
        offered.push(second.to_string());
        let (chosen, _) = negotiate(Some(&offered.join(", "))).map_err(TestCaseError::fail)?;
        prop_assert_eq!(chosen, first);
    }

    #[test]
    fn port_lists_never_panic(values in proptest::collection::vec(any::<String>(), 0..4)) {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Ok(ports) = parse_ports(&values) {
            prop_assert!(!ports.is_empty());
            prop_assert!(ports.iter().all(|&p| p > 0));
        }
    }

    #[test]
    fn port_lists_round_trip(ports in proptest::collection::vec(1u16.., 1..6), split in any::<bool>()) {
        let texts: Vec<String> = ports.iter().map(u16::to_string).collect();
        let joined = texts.join(",");
        let values: Vec<&str> = if split { texts.iter().map(String::as_str).collect() } else { vec![joined.as_str()] };
        prop_assert_eq!(parse_ports(&values), Ok(ports));
    }
}
