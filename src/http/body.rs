//! Discarding a request body (RFC 9112 §6.3, §7.1).
//!
//! The server answers without reading request bodies, but on a persistent
//! connection the next pipelined request starts right after the body, so the
//! body must be skipped exactly: not one byte short, not one byte past its end.
//! [`BodySkipper`] is a small resumable state machine that does this for
//! Content-Length and chunked bodies without allocating or buffering.

use super::request::{BodyFraming, ParseError};

/// Longest chunk-size line (size, extensions) before its line end (RFC 9112 §7.1.1).
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Longest trailer section including line ends (RFC 9112 §7.1.2).
const MAX_TRAILER_BYTES: usize = 8192;
/// Most hex digits in a chunk-size; 16 always fit in a u64 (RFC 9112 §7.1).
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// State of a body being skipped.
///
/// Chunk-size lines, chunk extensions and trailer fields are parsed byte by
/// byte inside the state machine, so [`BodySkipper::skip`] always consumes
/// every byte it is offered until the body ends: `NeedMore { consumed }` has
/// `consumed == buf.len()`, and the caller never has to keep a partial line.
#[derive(Debug)]
pub struct BodySkipper {
    state: State,
    max_body_bytes: u64,
    /// Sum of chunk sizes seen so far.
    total_bytes: u64,
    /// Bytes of the current chunk-size line, or of the whole trailer section.
    line_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Content-Length body with this many bytes still to skip.
    Length { left_bytes: u64 },
    /// chunk-size hex digits (§7.1).
    Size { size_bytes: u64, digits: u8 },
    /// BWS after the chunk-size; only more BWS or ';' may follow (§7.1.1).
    SizeBws { size_bytes: u64 },
    /// chunk-ext after the first ';', up to the line end (§7.1.1).
    Ext { size_bytes: u64 },
    /// CR seen at the end of a chunk-size line; LF must follow.
    SizeLf { size_bytes: u64 },
    /// chunk-data with this many bytes still to skip.
    Data { left_bytes: u64 },
    /// CR that must follow chunk-data.
    DataCr,
    /// LF that must follow that CR.
    DataLf,
    /// Start of a trailer field line or of the final empty line (§7.1.2).
    TrailerStart,
    /// Trailer field name, up to ':'.
    TrailerName,
    /// Trailer field value, up to the line end.
    TrailerValue,
    /// CR seen in the trailer section; `last` if it ends the final empty line.
    TrailerLf { last: bool },
    /// The body has ended.
    Done,
    /// The body was refused; every further call returns this error.
    Failed(ParseError),
}

/// What one call consumed.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// All of the offered bytes were body; call again with the bytes that follow.
    NeedMore {
        /// Bytes consumed from the start of the buffer (always all of it).
        consumed: usize,
    },
    /// The body ended at `buf[consumed]`; the bytes from there on are not body.
    Done {
        /// Bytes consumed from the start of the buffer.
        consumed: usize,
    },
}

impl BodySkipper {
    /// None if the framing has no body (`BodyFraming::None` or `Length(0)`).
    ///
    /// A `Length` above `max_body_bytes` (normally refused by `parse_head`)
    /// fails on the first [`skip`](Self::skip) with `BodyTooLarge`.
    pub fn new(framing: BodyFraming, max_body_bytes: u64) -> Option<Self> {
        let state = match framing {
            BodyFraming::None | BodyFraming::Length(0) => return None,
            BodyFraming::Length(n) if n > max_body_bytes => State::Failed(ParseError::BodyTooLarge),
            BodyFraming::Length(n) => State::Length { left_bytes: n },
            BodyFraming::Chunked => State::Size {
                size_bytes: 0,
                digits: 0,
            },
        };
        Some(Self {
            state,
            max_body_bytes,
            total_bytes: 0,
            line_bytes: 0,
        })
    }

    /// Consume as much of `buf` as belongs to the body; never consumes past its end.
    ///
    /// `NeedMore { consumed }`: all of `buf` was body (`consumed == buf.len()`);
    /// call again with the next bytes. `Done { consumed }`: the body (for
    /// chunked: including last-chunk, trailer section and final CRLF) ended at
    /// `buf[consumed]`; later calls return `Done { consumed: 0 }`. After an
    /// error every later call returns the same error.
    pub fn skip(&mut self, buf: &[u8]) -> Result<Progress, ParseError> {
        let mut pos = 0;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            match self.state {
                State::Done => return Ok(Progress::Done { consumed: pos }),
                State::Failed(e) => return Err(e),
                State::Length { left_bytes } => {
                    let n = take(left_bytes, rest.len());
                    let left_bytes = left_bytes - n as u64;
                    pos += n;
                    if left_bytes == 0 {
                        self.state = State::Done;
                        continue;
                    }
                    self.state = State::Length { left_bytes };
                    return Ok(Progress::NeedMore { consumed: pos });
                }
                State::Data { left_bytes } => {
                    let n = take(left_bytes, rest.len());
                    let left_bytes = left_bytes - n as u64;
                    pos += n;
                    self.state = if left_bytes == 0 {
                        State::DataCr
                    } else {
                        State::Data { left_bytes }
                    };
                }
                _ => {}
            }
            let Some(&byte) = buf.get(pos) else {
                return Ok(Progress::NeedMore { consumed: pos });
            };
            pos += 1;
            if let Err(e) = self.step(byte) {
                self.state = State::Failed(e);
                return Err(e);
            }
        }
    }

    /// Advance the line-level states by one byte.
    fn step(&mut self, byte: u8) -> Result<(), ParseError> {
        self.line_bytes += 1;
        let in_trailer = matches!(
            self.state,
            State::TrailerStart
                | State::TrailerName
                | State::TrailerValue
                | State::TrailerLf { .. }
        );
        let limit = if in_trailer {
            MAX_TRAILER_BYTES
        } else {
            MAX_CHUNK_LINE_BYTES
        };
        if self.line_bytes > limit {
            return Err(ParseError::BadChunk);
        }
        self.state = match (self.state, byte) {
            // §7.1: chunk-size = 1*HEXDIG.
            (State::Size { size_bytes, digits }, _) if byte.is_ascii_hexdigit() => {
                if digits >= MAX_CHUNK_SIZE_DIGITS {
                    return Err(ParseError::BadChunk);
                }
                let size_bytes = (size_bytes << 4) | u64::from(hex_value(byte));
                // Refuse before any of the chunk's data is consumed.
                if self.total_bytes.saturating_add(size_bytes) > self.max_body_bytes {
                    return Err(ParseError::BodyTooLarge);
                }
                State::Size {
                    size_bytes,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => return Err(ParseError::BadChunk),
            // §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
            (State::Size { size_bytes, .. } | State::SizeBws { size_bytes }, b' ' | b'\t') => {
                State::SizeBws { size_bytes }
            }
            (State::Size { size_bytes, .. } | State::SizeBws { size_bytes }, b';') => {
                State::Ext { size_bytes }
            }
            // Extensions are ignored (§7.1.1); only field bytes are allowed in them.
            (State::Ext { size_bytes }, _) if is_field_byte(byte) => State::Ext { size_bytes },
            // Line end: CRLF, or a bare LF (§2.2); a bare CR is an error.
            (State::Size { size_bytes, .. } | State::Ext { size_bytes }, b'\r') => {
                State::SizeLf { size_bytes }
            }
            (
                State::Size { size_bytes, .. }
                | State::Ext { size_bytes }
                | State::SizeLf { size_bytes },
                b'\n',
            ) => self.end_size_line(size_bytes),
            // §7.1: chunk-data is followed by exactly CRLF.
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.line_bytes = 0;
                State::Size {
                    size_bytes: 0,
                    digits: 0,
                }
            }
            // §7.1.2: trailer-section = *( field-line CRLF ), then CRLF.
            (State::TrailerStart, b'\r') => State::TrailerLf { last: true },
            (State::TrailerStart, b'\n') | (State::TrailerLf { last: true }, b'\n') => State::Done,
            // §5.1: field-name = token; a leading SP/HTAB is obs-fold (§5.2).
            (State::TrailerStart | State::TrailerName, _) if is_tchar(byte) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerValue, b'\r') => State::TrailerLf { last: false },
            (State::TrailerValue, b'\n') | (State::TrailerLf { last: false }, b'\n') => {
                State::TrailerStart
            }
            (State::TrailerValue, _) if is_field_byte(byte) => State::TrailerValue,
            _ => return Err(ParseError::BadChunk),
        };
        Ok(())
    }

    /// A chunk-size line ended: start its data, or the trailer after last-chunk.
    fn end_size_line(&mut self, size_bytes: u64) -> State {
        // Cannot overflow: checked against max_body_bytes digit by digit.
        self.total_bytes = self.total_bytes.saturating_add(size_bytes);
        self.line_bytes = 0;
        if size_bytes == 0 {
            State::TrailerStart // §7.1: last-chunk
        } else {
            State::Data {
                left_bytes: size_bytes,
            }
        }
    }
}

/// How many of `available_bytes` a body with `left_bytes` remaining takes.
fn take(left_bytes: u64, available_bytes: usize) -> usize {
    usize::try_from(left_bytes).map_or(available_bytes, |left| left.min(available_bytes))
}

/// Value of an ASCII hex digit; callers check `is_ascii_hexdigit` first.
fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    }
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
fn is_field_byte(byte: u8) -> bool {
    matches!(byte, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BodyFraming as F;
    use ParseError as E;

    const MAX: u64 = 1000;
    const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

    /// Feed `input` in pieces ending at each of `cuts` (then the rest),
    /// honouring the `consumed` contract; returns where the body ended
    /// (None: it did not end within `input`).
    fn drive(
        framing: BodyFraming,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<Option<usize>, ParseError> {
        let mut skipper = BodySkipper::new(framing, MAX).expect("framing has a body");
        let mut pos = 0;
        for &end in cuts.iter().chain([input.len()].iter()) {
            let offered = input.get(pos..end.max(pos)).unwrap_or_default();
            match skipper.skip(offered)? {
                Progress::Done { consumed } => return Ok(Some(pos + consumed)),
                Progress::NeedMore { consumed } => {
                    assert_eq!(consumed, offered.len());
                    pos += consumed;
                }
            }
        }
        Ok(None)
    }

    fn valid_bodies() -> Vec<(BodyFraming, Vec<u8>)> {
        let chunked: &[&[u8]] = &[
            b"5\r\nhello\r\n0\r\n\r\n",
            b"0\r\n\r\n",
            b"A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n",
            b"00a\r\n0123456789\r\n000\r\n\r\n",
            b"5;name=value;x=\"q;s\"\r\nhello\r\n0;last\r\n\r\n",
            b"5 ;a\r\nhello\r\n0\t; b\r\n\r\n",
            b"5\nhello\r\n0\n\n",
            b"3\r\n\r\n\r\r\n0\r\nX-Trailer: 1\r\nY:\r\nZ: a b\n\r\n",
        ];
        let mut out: Vec<_> = chunked.iter().map(|b| (F::Chunked, b.to_vec())).collect();
        out.push((F::Length(1), b"x".to_vec()));
        out.push((F::Length(7), b"0\r\n\r\nab".to_vec()));
        out.push((F::Length(MAX), vec![b'z'; MAX as usize]));
        out
    }

    #[test]
    fn valid_bodies_at_every_split() {
        for (framing, body) in valid_bodies() {
            let name = String::from_utf8_lossy(&body).into_owned();
            let mut input = body.clone();
            input.extend_from_slice(NEXT);
            assert_eq!(
                drive(framing, &input, &[]),
                Ok(Some(body.len())),
                "{name:?} whole"
            );
            for cut in 0..=input.len() {
                assert_eq!(
                    drive(framing, &input, &[cut]),
                    Ok(Some(body.len())),
                    "{name:?} @{cut}"
                );
            }
            let bytewise: Vec<usize> = (0..input.len()).collect();
            assert_eq!(
                drive(framing, &input, &bytewise),
                Ok(Some(body.len())),
                "{name:?} bytewise"
            );
        }
    }

    #[test]
    fn done_is_sticky_and_new_skips_empty_bodies() {
        let mut skipper = BodySkipper::new(F::Length(2), MAX).expect("has body");
        assert_eq!(skipper.skip(b""), Ok(Progress::NeedMore { consumed: 0 }));
        assert_eq!(skipper.skip(b"abcd"), Ok(Progress::Done { consumed: 2 }));
        assert_eq!(skipper.skip(b"cd"), Ok(Progress::Done { consumed: 0 }));
        assert!(BodySkipper::new(F::None, MAX).is_none());
        assert!(BodySkipper::new(F::Length(0), MAX).is_none());
    }

    #[test]
    fn bad_bodies() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(5000, b'a');
        long_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        let mut long_trailer = b"0\r\nX: ".to_vec();
        long_trailer.resize(9000, b'a');
        long_trailer.extend_from_slice(b"\r\n\r\n");
        // None: no error, but the body has not ended yet.
        let cases: Vec<(BodyFraming, Vec<u8>, Option<ParseError>)> = vec![
            (F::Chunked, b"zz\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b";a\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"-1\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"0x5\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1\r\nab\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1\r\na\n0\r\n\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1\r\naX".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1\r\na\rX".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1\rX".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1 \r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1;a\rb\r\n".to_vec(), Some(E::BadChunk)),
            (F::Chunked, b"1;\0\r\n".to_vec(), Some(E::BadChunk)),
            (
                F::Chunked,
                b"00000000000000001\r\n".to_vec(),
                Some(E::BadChunk),
            ),
            (F::Chunked, long_ext, Some(E::BadChunk)),
            (F::Chunked, b"0\r\n\r\r".to_vec(), Some(E::BadChunk)),
            (
                F::Chunked,
                b"0\r\nX: 1\r\n Y\r\n\r\n".to_vec(),
                Some(E::BadChunk),
            ),
            (
                F::Chunked,
                b"0\r\nX : 1\r\n\r\n".to_vec(),
                Some(E::BadChunk),
            ),
            (F::Chunked, b"0\r\nX\r\n\r\n".to_vec(), Some(E::BadChunk)),
            (
                F::Chunked,
                b"0\r\nX: \x01\r\n\r\n".to_vec(),
                Some(E::BadChunk),
            ),
            (F::Chunked, long_trailer, Some(E::BadChunk)),
            (F::Chunked, b"3e9\r\n".to_vec(), Some(E::BodyTooLarge)),
            (
                F::Chunked,
                b"1000000000000000\r\n".to_vec(),
                Some(E::BodyTooLarge),
            ),
            (
                F::Chunked,
                b"ffffffffffffffff\r\n".to_vec(),
                Some(E::BodyTooLarge),
            ),
            (F::Chunked, b"3e8\r\n".to_vec(), None), // exactly MAX is allowed
            (
                F::Chunked,
                [b"3e7\r\n".as_slice(), &[b'x'; 999], b"\r\n2\r\n"].concat(),
                Some(E::BodyTooLarge),
            ),
            (F::Length(MAX + 1), b"x".to_vec(), Some(E::BodyTooLarge)),
        ];
        for (framing, input, want) in cases {
            let name = String::from_utf8_lossy(&input).into_owned();
            let want = want.map_or(Ok(None), Err);
            assert_eq!(drive(framing, &input, &[]), want, "{name:?} whole");
            let bytewise: Vec<usize> = (0..input.len()).collect();
            assert_eq!(drive(framing, &input, &bytewise), want, "{name:?} bytewise");
        }
        let mut skipper = BodySkipper::new(F::Chunked, MAX).expect("has body");
        assert_eq!(skipper.skip(b"zz"), Err(E::BadChunk));
        assert_eq!(skipper.skip(b"0\r\n\r\n"), Err(E::BadChunk));
    }
}
