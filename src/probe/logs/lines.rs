//! Splitting a byte stream into lines with a bound on line length, so a log
//! without newlines can never grow memory without limit: a longer line is
//! cut to its first `MAX_LINE_BYTES` (which hold the timestamp and message).

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Accumulates bytes and yields complete lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The current line passed `MAX_LINE_BYTES`: the rest of it is dropped.
    overflow: bool,
}

impl LineSplitter {
    /// Feeds one chunk; calls `line` for each complete line (without `\n`).
    pub fn push(&mut self, chunk: &[u8], mut line: impl FnMut(&str)) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            self.append(head);
            line(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
            self.overflow = false;
            rest = &tail[1..];
        }
        self.append(rest);
    }

    /// What is left at the end of the stream (a last line without `\n`).
    pub fn finish(&mut self, mut line: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            line(&String::from_utf8_lossy(&self.partial));
        }
        self.partial.clear();
        self.overflow = false;
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overflow {
            return;
        }
        let room = MAX_LINE_BYTES.saturating_sub(self.partial.len());
        if bytes.len() > room {
            // Keep the line's start (the timestamp and usually the message).
            self.partial.extend_from_slice(&bytes[..room]);
            self.overflow = true;
            return;
        }
        self.partial.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_owned()));
        }
        s.finish(|l| out.push(l.to_owned()));
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            collect(&[b"ab", b"c\nde", b"f\n", b"g"]),
            ["abc", "def", "g"]
        );
        assert_eq!(collect(&[b"\n\n"]), ["", ""]);
        assert!(collect(&[]).is_empty());
    }

    #[test]
    fn overlong_line_is_cut_not_kept_whole() {
        let long = vec![b'x'; MAX_LINE_BYTES * 3];
        let mut chunks: Vec<&[u8]> = long.chunks(1000).collect();
        chunks.push(b"\nnext\n");
        let out = collect(&chunks);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE_BYTES);
        assert_eq!(out[1], "next");
    }

    proptest! {
        #[test]
        fn same_lines_however_chunked(text in "[a-z\n]{0,200}", cut in 1usize..17) {
            let bytes = text.as_bytes();
            let chunks: Vec<&[u8]> = bytes.chunks(cut).collect();
            let expected: Vec<String> = text.lines().map(str::to_owned).collect();
            prop_assert_eq!(collect(&chunks), expected);
        }
    }
}
