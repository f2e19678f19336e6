//! Discarding a request body (RFC 9112 §6.3, §7.1).
//!
//! The server answers without reading request bodies, but on a persistent
//! connection the next pipelined request starts right after the body, so the
//! body must be skipped exactly: not one byte short, not one byte past its end.
//! [`BodySkipper`] is a small resumable state machine that does this for
//! Content-Length bodies and, through [`ChunkedDecoder`], chunked ones, without
//! allocating or buffering.

use super::chunked::ChunkedDecoder;
use super::parse_error::ParseError;
use super::request::BodyFraming;

/// A body being skipped.
///
/// [`BodySkipper::skip`] consumes every byte it is offered until the body
/// ends: `NeedMore { consumed }` has `consumed == buf.len()`, so the caller
/// never has to keep a partial chunk line.
#[derive(Clone, Debug)]
pub struct BodySkipper {
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// Content-Length body with this many bytes still to skip.
    Length { left_bytes: u64 },
    /// Chunked body (RFC 9112 §7.1).
    Chunked(ChunkedDecoder),
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
            BodyFraming::Chunked => State::Chunked(ChunkedDecoder::new(max_body_bytes)),
        };
        Some(Self { state })
    }

    /// Consume as much of `buf` as belongs to the body; never consumes past its end.
    ///
    /// `NeedMore { consumed }`: all of `buf` was body (`consumed == buf.len()`);
    /// call again with the next bytes. `Done { consumed }`: the body (for
    /// chunked: including last-chunk, trailer section and final CRLF) ended at
    /// `buf[consumed]`; later calls return `Done { consumed: 0 }`. After an
    /// error every later call returns the same error.
    pub fn skip(&mut self, buf: &[u8]) -> Result<Progress, ParseError> {
        let ended = match &mut self.state {
            State::Done => Some(0),
            State::Failed(e) => return Err(*e),
            State::Length { left_bytes } => {
                let n = usize::try_from(*left_bytes).map_or(buf.len(), |l| l.min(buf.len()));
                *left_bytes -= n as u64;
                (*left_bytes == 0).then_some(n)
            }
            State::Chunked(decoder) => match decoder.decode(buf) {
                Ok(ended) => ended,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            },
        };
        Ok(match ended {
            Some(consumed) => {
                self.state = State::Done;
                Progress::Done { consumed }
            }
            None => Progress::NeedMore {
                consumed: buf.len(),
            },
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use BodyFraming as F;
    use ParseError as E;

    /// The body limit of every test here.
    pub(crate) const MAX: u64 = 1000;
    /// A request pipelined after each body: never part of it.
    pub(crate) const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

    /// Feed `input` in pieces ending at each of `cuts` (then the rest),
    /// honouring the `consumed` contract; returns where the body ended
    /// (None: it did not end within `input`).
    pub(crate) fn drive(
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

    /// `drive` whole, cut at every offset, and byte by byte: all must agree
    /// with `want`.
    pub(crate) fn check_every_split(
        framing: BodyFraming,
        input: &[u8],
        want: Result<Option<usize>, ParseError>,
    ) {
        let name = String::from_utf8_lossy(input);
        let name = name.get(..120).unwrap_or(&name);
        assert_eq!(drive(framing, input, &[]), want, "{name:?} whole");
        for cut in 0..=input.len() {
            assert_eq!(drive(framing, input, &[cut]), want, "{name:?} @{cut}");
        }
        let bytewise: Vec<usize> = (0..input.len()).collect();
        assert_eq!(drive(framing, input, &bytewise), want, "{name:?} bytewise");
    }

    /// Content-Length bodies end exactly after their length, whatever follows
    /// (chunked bodies: `chunked::tests`).
    #[test]
    fn length_bodies_at_every_split() {
        let cases: Vec<(u64, Vec<u8>)> = vec![
            (1, b"x".to_vec()),
            (7, b"0\r\n\r\nab".to_vec()),
            (MAX, vec![b'z'; MAX as usize]),
        ];
        for (n, body) in cases {
            let input = [body.as_slice(), NEXT].concat();
            check_every_split(F::Length(n), &input, Ok(Some(body.len())));
            check_every_split(F::Length(n), &body[..body.len() - 1], Ok(None));
        }
    }

    #[test]
    fn done_is_sticky_and_new_skips_empty_bodies() {
        let mut skipper = BodySkipper::new(F::Length(2), MAX).expect("has body");
        assert_eq!(skipper.skip(b""), Ok(Progress::NeedMore { consumed: 0 }));
        assert_eq!(skipper.skip(b"abcd"), Ok(Progress::Done { consumed: 2 }));
        assert_eq!(skipper.skip(b"cd"), Ok(Progress::Done { consumed: 0 }));
        let mut skipper = BodySkipper::new(F::Chunked, MAX).expect("has body");
        assert_eq!(
            skipper.skip(b"0\r\n\r\nX"),
            Ok(Progress::Done { consumed: 5 })
        );
        assert_eq!(
            skipper.skip(b"0\r\n\r\n"),
            Ok(Progress::Done { consumed: 0 })
        );
        assert!(BodySkipper::new(F::None, MAX).is_none());
        assert!(BodySkipper::new(F::Length(0), MAX).is_none());
    }

    #[test]
    fn errors_are_sticky() {
        let mut skipper = BodySkipper::new(F::Length(MAX + 1), MAX).expect("has body");
        assert_eq!(skipper.skip(b"x"), Err(E::BodyTooLarge));
        assert_eq!(skipper.skip(b"x"), Err(E::BodyTooLarge));
        let mut skipper = BodySkipper::new(F::Chunked, MAX).expect("has body");
        assert_eq!(skipper.skip(b"zz"), Err(E::BadChunk));
        assert_eq!(skipper.skip(b"0\r\n\r\n"), Err(E::BadChunk));
    }
}
