//! SPDY/3.1 framing, pure: the 8-byte frame head, the control frames the
//! kubelet's port-forward meets (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS,
//! PING, GOAWAY, HEADERS, WINDOW_UPDATE) and DATA. Header blocks are one zlib
//! stream per direction and connection, primed with the SPDY/3 dictionary and
//! sync-flushed after each block (draft 3, §2.6.10), with 32-bit counts and
//! lengths, lowercase names and multiple values joined by NUL.

use std::fmt;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The dictionary of SPDY/3 draft §2.6.10.1, as the Go framer primes zlib with.
const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

pub const VERSION: u16 = 3;
/// A frame head: a control bit, then version and type, or a stream id; then flags and length.
pub const HEAD_LEN: usize = 8;
/// Lengths are 24 bits.
pub const MAX_LEN: usize = (1 << 24) - 1;
/// A decompressed header block larger than this is refused (a zlib bomb).
const MAX_HEADER_BLOCK: usize = 256 * 1024;

pub const FLAG_FIN: u8 = 0x01;
#[cfg(test)]
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes (§2.6.3).
pub mod status {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const CANCEL: u32 = 5;
}

/// Header names (lowercase) and values; a value holding NULs carries several.
pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    UnsupportedVersion(u16),
    UnknownType(u16),
    /// The frame's length does not fit its type.
    BadLength {
        kind: &'static str,
        len: usize,
    },
    ZeroStreamId(&'static str),
    /// The compressed header block does not decode.
    Compression(String),
    /// The decompressed header block is malformed.
    HeaderBlock(&'static str),
    TooLarge(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => write!(f, "unsupported SPDY version {v} (want 3)"),
            Self::UnknownType(t) => write!(f, "unknown SPDY control frame type {t}"),
            Self::BadLength { kind, len } => write!(f, "{kind} frame with invalid length {len}"),
            Self::ZeroStreamId(kind) => write!(f, "{kind} frame with stream id 0"),
            Self::Compression(e) => write!(f, "header block does not decompress: {e}"),
            Self::HeaderBlock(e) => write!(f, "malformed header block: {e}"),
            Self::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the 24-bit length"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The payload length announced by a frame head (control and data alike).
pub fn payload_len(head: &[u8; HEAD_LEN]) -> usize {
    u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize
}

/// Returns the header value for `name`, or `None`.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One direction's header compression state plus the other's decompression
/// state: a connection has exactly one of each, and they outlive every frame.
pub struct Codec {
    deflate: Compress,
    inflate: Decompress,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    pub fn new() -> Self {
        let mut deflate = Compress::new(Compression::best(), true);
        // Priming the compressor writes FDICT and the dictionary's Adler-32 in
        // the zlib header, as Go's `zlib.NewWriterLevelDict` does.
        let _ = deflate.set_dictionary(DICTIONARY);
        Self {
            deflate,
            inflate: Decompress::new(true),
        }
    }

    /// Decodes one frame from its head and payload.
    pub fn decode(&mut self, head: &[u8; HEAD_LEN], payload: &[u8]) -> Result<Frame, FrameError> {
        let flags = head[4];
        let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if first & 0x8000_0000 == 0 {
            let stream_id = first & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(FrameError::ZeroStreamId("DATA"));
            }
            return Ok(Frame::Data {
                stream_id,
                flags,
                data: Bytes::copy_from_slice(payload),
            });
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let kind = (first & 0xffff) as u16;
        let word = |at: usize| -> u32 {
            u32::from_be_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        let need = |name: &'static str, ok: bool| -> Result<(), FrameError> {
            if ok {
                Ok(())
            } else {
                Err(FrameError::BadLength {
                    kind: name,
                    len: payload.len(),
                })
            }
        };
        let stream = |name: &'static str, id: u32| -> Result<u32, FrameError> {
            let id = id & 0x7fff_ffff;
            if id == 0 {
                Err(FrameError::ZeroStreamId(name))
            } else {
                Ok(id)
            }
        };
        match kind {
            SYN_STREAM => {
                need("SYN_STREAM", payload.len() >= 10)?;
                Ok(Frame::SynStream {
                    stream_id: stream("SYN_STREAM", word(0))?,
                    associated_to: word(4) & 0x7fff_ffff,
                    priority: payload[8] >> 5,
                    flags,
                    headers: self.inflate_headers(&payload[10..])?,
                })
            }
            SYN_REPLY | HEADERS => {
                let name = if kind == SYN_REPLY {
                    "SYN_REPLY"
                } else {
                    "HEADERS"
                };
                need(name, payload.len() >= 4)?;
                let stream_id = stream(name, word(0))?;
                let headers = self.inflate_headers(&payload[4..])?;
                Ok(if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                })
            }
            RST_STREAM => {
                need("RST_STREAM", payload.len() == 8)?;
                Ok(Frame::RstStream {
                    stream_id: stream("RST_STREAM", word(0))?,
                    status: word(4),
                })
            }
            SETTINGS => {
                need("SETTINGS", payload.len() >= 4)?;
                let n = word(0) as usize;
                need("SETTINGS", payload.len() == 4 + n.saturating_mul(8))?;
                let entries = (0..n)
                    .map(|i| {
                        let at = 4 + i * 8;
                        let id = word(at);
                        ((id >> 24) as u8, id & 0x00ff_ffff, word(at + 4))
                    })
                    .collect();
                Ok(Frame::Settings { flags, entries })
            }
            PING => {
                need("PING", payload.len() == 4)?;
                Ok(Frame::Ping { id: word(0) })
            }
            GOAWAY => {
                need("GOAWAY", payload.len() == 8)?;
                Ok(Frame::GoAway {
                    last_good_stream_id: word(0) & 0x7fff_ffff,
                    status: word(4),
                })
            }
            WINDOW_UPDATE => {
                need("WINDOW_UPDATE", payload.len() == 8)?;
                Ok(Frame::WindowUpdate {
                    stream_id: word(0) & 0x7fff_ffff,
                    delta: word(4) & 0x7fff_ffff,
                })
            }
            other => Err(FrameError::UnknownType(other)),
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut body = Vec::new();
        let (kind, flags) = match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_LEN {
                    return Err(FrameError::TooLarge(data.len()));
                }
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&(u32::from(*flags) << 24 | data.len() as u32).to_be_bytes());
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                body.extend_from_slice(&stream_id.to_be_bytes());
                body.extend_from_slice(&associated_to.to_be_bytes());
                body.push(priority << 5);
                body.push(0);
                self.deflate_headers(headers, &mut body)?;
                (SYN_STREAM, *flags)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                body.extend_from_slice(&stream_id.to_be_bytes());
                self.deflate_headers(headers, &mut body)?;
                (SYN_REPLY, *flags)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                body.extend_from_slice(&stream_id.to_be_bytes());
                self.deflate_headers(headers, &mut body)?;
                (HEADERS, *flags)
            }
            Frame::RstStream { stream_id, status } => {
                body.extend_from_slice(&stream_id.to_be_bytes());
                body.extend_from_slice(&status.to_be_bytes());
                (RST_STREAM, 0)
            }
            Frame::Settings { flags, entries } => {
                body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (flag, id, value) in entries {
                    body.extend_from_slice(
                        &(u32::from(*flag) << 24 | (id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    body.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, *flags)
            }
            Frame::Ping { id } => {
                body.extend_from_slice(&id.to_be_bytes());
                (PING, 0)
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                body.extend_from_slice(&last_good_stream_id.to_be_bytes());
                body.extend_from_slice(&status.to_be_bytes());
                (GOAWAY, 0)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                body.extend_from_slice(&stream_id.to_be_bytes());
                body.extend_from_slice(&delta.to_be_bytes());
                (WINDOW_UPDATE, 0)
            }
        };
        if body.len() > MAX_LEN {
            return Err(FrameError::TooLarge(body.len()));
        }
        out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(u32::from(flags) << 24 | body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(())
    }

    fn deflate_headers(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut block = Vec::new();
        block.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            block.extend_from_slice(&(name.len() as u32).to_be_bytes());
            block.extend_from_slice(name.as_bytes());
            block.extend_from_slice(&(value.len() as u32).to_be_bytes());
            block.extend_from_slice(value.as_bytes());
        }
        let start_in = self.deflate.total_in();
        loop {
            let consumed = (self.deflate.total_in() - start_in) as usize;
            out.reserve(block.len() + 64);
            let before_out = self.deflate.total_out();
            self.deflate
                .compress_vec(&block[consumed..], out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compression(e.to_string()))?;
            let consumed = (self.deflate.total_in() - start_in) as usize;
            // Done once all input is in and the flush left spare room.
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(());
            }
            if consumed == block.len() && self.deflate.total_out() == before_out {
                return Ok(());
            }
        }
    }

    fn inflate_headers(&mut self, compressed: &[u8]) -> Result<Headers, FrameError> {
        let mut block = Vec::with_capacity(compressed.len() * 4 + 64);
        let start_in = self.inflate.total_in();
        loop {
            let consumed = (self.inflate.total_in() - start_in) as usize;
            if block.len() == block.capacity() {
                block.reserve(block.capacity().max(256));
            }
            let before = (self.inflate.total_in(), self.inflate.total_out());
            match self.inflate.decompress_vec(
                &compressed[consumed..],
                &mut block,
                FlushDecompress::Sync,
            ) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| FrameError::Compression(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(FrameError::Compression(e.to_string())),
            }
            if block.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::HeaderBlock("larger than 256 KiB"));
            }
            let consumed = (self.inflate.total_in() - start_in) as usize;
            let stalled = (self.inflate.total_in(), self.inflate.total_out()) == before;
            if consumed == compressed.len() && block.len() < block.capacity() {
                break;
            }
            if stalled {
                if consumed == compressed.len() {
                    break;
                }
                return Err(FrameError::Compression("stalled".into()));
            }
        }
        parse_block(&block)
    }
}

fn parse_block(block: &[u8]) -> Result<Headers, FrameError> {
    let count = block
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(FrameError::HeaderBlock("truncated header count"))?;
    let mut headers = Vec::with_capacity(count.min(64));
    let mut at = 4usize;
    for _ in 0..count {
        let mut take = |what: &'static str| -> Result<String, FrameError> {
            let len_bytes = block.get(at..at + 4).ok_or(FrameError::HeaderBlock(what))?;
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                as usize;
            at += 4;
            let s = block
                .get(at..at.saturating_add(len))
                .ok_or(FrameError::HeaderBlock(what))?;
            at += len;
            String::from_utf8(s.to_vec())
                .map_err(|_| FrameError::HeaderBlock("header is not UTF-8"))
        };
        let name = take("truncated header name")?.to_ascii_lowercase();
        let value = take("truncated header value")?;
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frames: &[Frame]) -> Vec<Frame> {
        let (mut tx, mut rx) = (Codec::new(), Codec::new());
        let mut wire = Vec::new();
        for f in frames {
            tx.encode(f, &mut wire).expect("encode");
        }
        let mut out = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let head: [u8; HEAD_LEN] = rest[..HEAD_LEN].try_into().expect("head");
            let len = payload_len(&head);
            out.push(
                rx.decode(&head, &rest[HEAD_LEN..HEAD_LEN + len])
                    .expect("decode"),
            );
            rest = &rest[HEAD_LEN + len..];
        }
        out
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_frame_type_round_trips_with_one_zlib_stream_per_direction() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 7,
                flags: FLAG_UNIDIRECTIONAL,
                headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[("x", "a\0b")]),
            },
            Frame::RstStream {
                stream_id: 3,
                status: status::CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536), (1, 4, 100)],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1024,
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::new(),
            },
        ];
        assert_eq!(roundtrip(&frames), frames);
    }

    #[test]
    fn control_head_carries_version_type_flags_and_length() {
        let mut wire = Vec::new();
        Codec::new()
            .encode(
                &Frame::RstStream {
                    stream_id: 5,
                    status: status::PROTOCOL_ERROR,
                },
                &mut wire,
            )
            .expect("encode");
        assert_eq!(wire, [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 1]);
        let mut wire = Vec::new();
        Codec::new()
            .encode(
                &Frame::Data {
                    stream_id: 2,
                    flags: FLAG_FIN,
                    data: Bytes::from_static(b"ab"),
                },
                &mut wire,
            )
            .expect("encode");
        assert_eq!(wire, [0, 0, 0, 2, 1, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn header_block_starts_a_zlib_stream_primed_with_the_spdy_dictionary() {
        let mut wire = Vec::new();
        Codec::new()
            .encode(
                &Frame::SynReply {
                    stream_id: 1,
                    flags: 0,
                    headers: vec![],
                },
                &mut wire,
            )
            .expect("encode");
        // zlib header with FDICT, then the dictionary's Adler-32 (SPDY/3: 0xe3c6a7c2).
        let zlib = &wire[HEAD_LEN + 4..];
        assert_eq!(zlib[1] & 0x20, 0x20, "FDICT set");
        assert_eq!(&zlib[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let mut c = Codec::new();
        let head = [0x80, 3, 0, 6, 0, 0, 0, 2];
        assert!(matches!(
            c.decode(&head, &[0, 1]),
            Err(FrameError::BadLength { .. })
        ));
        let head = [0x80, 2, 0, 1, 0, 0, 0, 0];
        assert_eq!(c.decode(&head, &[]), Err(FrameError::UnsupportedVersion(2)));
        let head = [0x80, 3, 0, 42, 0, 0, 0, 0];
        assert_eq!(c.decode(&head, &[]), Err(FrameError::UnknownType(42)));
        let head = [0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(c.decode(&head, &[]), Err(FrameError::ZeroStreamId("DATA")));
        let head = [0x80, 3, 0, 1, 0, 0, 0, 14];
        let garbage = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert!(matches!(
            c.decode(&head, &garbage),
            Err(FrameError::Compression(_))
        ));
    }

    #[test]
    fn settings_count_must_match_length() {
        let mut c = Codec::new();
        let head = [0x80, 3, 0, 4, 0, 0, 0, 4];
        assert!(matches!(
            c.decode(&head, &[0, 0, 0, 2]),
            Err(FrameError::BadLength { .. })
        ));
    }
}
