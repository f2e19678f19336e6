//! Where percore's request path ends each request of a byte stream, for the
//! differential check against h11 (`fuzz/differential.py`).
//!
//! Reads cases from stdin, each a little-endian u32 length then that many
//! bytes; prints one line per case: the stream offsets where accepted
//! requests ended, and how the stream ended (`needmore`, `closed`, or
//! `refused <status>`). Framing is decided by `percore::fuzz::outcome`, which
//! drives the connection's `RequestReader` with the fuzz targets' limits.

use std::io::{self, BufWriter, Read, Write};

use percore::fuzz::{self, End};

fn main() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut rest = input.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let (case, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let outcome = fuzz::outcome(case, 0);
        let ends: Vec<String> = outcome.request_ends.iter().map(|e| e.to_string()).collect();
        let end = match outcome.end {
            End::NeedMore => "needmore".to_owned(),
            End::Closed => "closed".to_owned(),
            End::Refused { status, .. } => format!("refused {status}"),
        };
        writeln!(out, "{}|{end}", ends.join(","))?;
    }
    out.flush()
}
