//! Just enough of RFC 6455 for a cheap load client: pre-encoded masked client
//! frames, and a streaming counter of the data payload bytes a server sends.
//! Counting payload bytes (not frames) keeps the count right for servers that
//! split or coalesce messages.

/// The fixed masking key of every client frame (any key is valid).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One masked binary frame carrying `payload`.
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x82); // FIN + binary
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// Counts data payload bytes (opcodes 0, 1, 2) across reads; control frames
/// (ping, pong, close) are skipped.
#[derive(Default)]
pub struct PayloadCounter {
    header: Vec<u8>,
    /// Payload bytes left in the current frame.
    remaining: u64,
    /// Whether the current frame's payload is data.
    data: bool,
}

impl PayloadCounter {
    /// Feeds bytes read from the server; returns the data payload bytes in them.
    pub fn feed(&mut self, mut buf: &[u8]) -> u64 {
        let mut counted = 0;
        while !buf.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(buf.len() as u64);
                if self.data {
                    counted += take;
                }
                self.remaining -= take;
                buf = &buf[take as usize..];
                continue;
            }
            self.header.push(buf[0]);
            buf = &buf[1..];
            if let Some((len, data)) = parse_header(&self.header) {
                self.header.clear();
                self.remaining = len;
                self.data = data;
            }
        }
        counted
    }
}

/// The payload length and whether it is data, once `h` holds a whole header.
fn parse_header(h: &[u8]) -> Option<(u64, bool)> {
    if h.len() < 2 {
        return None;
    }
    let data = h[0] & 0x0f <= 2;
    let masked = h[1] & 0x80 != 0;
    let mask_len = if masked { 4 } else { 0 };
    let (len, len_bytes) = match h[1] & 0x7f {
        126 => (None, 2),
        127 => (None, 8),
        n => (Some(u64::from(n)), 0),
    };
    if h.len() < 2 + len_bytes + mask_len {
        return None;
    }
    let len = len.unwrap_or_else(|| {
        h[2..2 + len_bytes]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some((len, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn counts_data_across_split_reads_and_skips_control_frames() {
        let mut wire = server_frame(0x1, b"hello");
        wire.extend(server_frame(0x9, b"ping"));
        wire.extend(server_frame(0x2, &[7u8; 300]));
        wire.extend(server_frame(0x2, &[1u8; 70_000]));
        for step in [1, 3, 7, 1000, wire.len()] {
            let mut c = PayloadCounter::default();
            let total: u64 = wire.chunks(step).map(|ch| c.feed(ch)).sum();
            assert_eq!(total, 5 + 300 + 70_000, "step {step}");
        }
    }

    #[test]
    fn masked_frames_are_counted_too() {
        let mut c = PayloadCounter::default();
        assert_eq!(c.feed(&client_frame(&[0u8; 20])), 20);
    }
}
