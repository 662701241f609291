//! Deterministic names and ids, so that tests see the same pod names on every run.

/// The alphabet Kubernetes uses for generated suffixes (`rand.SafeEncodeString`):
/// no vowels and no look-alike digits, so names never spell words.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 64 bit: small, stable across runs and platforms (unlike std's hasher).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0u8)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// `len` characters of the safe alphabet derived from `parts`.
pub fn safe_suffix(parts: &[&str], len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut hash = fnv1a(parts);
    let mut round = 0u64;
    while out.len() < len {
        if hash == 0 {
            round += 1;
            hash = fnv1a(parts) ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        let idx = (hash % SAFE_ALPHABET.len() as u64) as usize;
        out.push(char::from(SAFE_ALPHABET[idx]));
        hash /= SAFE_ALPHABET.len() as u64;
    }
    out
}

/// An RFC 4122-shaped uid derived from the object's identity.
pub fn uid(parts: &[&str]) -> String {
    let a = fnv1a(parts);
    let b = fnv1a(&[&a.to_string(), "uid"]);
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A 64-hex-digit id shaped like a CRI sandbox or container id.
pub fn hex_id(parts: &[&str]) -> String {
    (0..4u64)
        .map(|i| format!("{:016x}", fnv1a(&[&i.to_string(), &parts.join("/")])))
        .collect()
}

/// A random-looking bearer token; not security relevant (the lab listens on loopback only).
pub fn token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let a = state.hash_one(std::process::id());
    let b = state.hash_one(std::time::SystemTime::now());
    format!("lab-{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_deterministic_and_safe() {
        let a = safe_suffix(&["ns", "deploy"], 10);
        assert_eq!(a, safe_suffix(&["ns", "deploy"], 10));
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(a, safe_suffix(&["ns", "deploy2"], 10));
    }

    #[test]
    fn uid_has_uuid_shape() {
        let u = uid(&["x"]);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(hex_id(&["a"]).len(), 64);
    }
}
