//! Fuzz targets of the request path and the invariants they check.
//!
//! Three targets, each a function of arbitrary bytes that panics when an
//! invariant breaks: [`parse_head`], [`body`] (both body framings) and
//! [`connection`], which feeds a byte stream, split arbitrarily, through
//! [`RequestReader`], the code the connection task runs. They are shared by
//! the deterministic fuzz test (`tests/fuzz.rs`, in CI) and the differential
//! check against h11 (`examples/frame.rs`, `fuzz/differential.py`).
//! Not on the server's path; the harness may allocate.

use crate::http::body::{BodySkipper, Progress};
use crate::http::reader::{Event, RequestReader};
use crate::http::request::{self, BodyFraming, Limits};

/// Limits small enough that fuzzers reach every bound.
pub const LIMITS: Limits = Limits {
    max_head_bytes: 2048,
    max_headers: 16,
    max_uri_bytes: 512,
    max_body_bytes: 4096,
};
/// Initial read buffer of [`connection`]: small, so growth is exercised.
const INITIAL_BUFFER_BYTES: usize = 64;

/// `parse_head` on `data`: a complete head lies within the input and the
/// head limit and parses the same from its own bytes; an incomplete one is
/// shorter than the limit; an error maps to a 4xx/5xx.
pub fn parse_head(data: &[u8]) {
    match request::parse_head(data, &LIMITS) {
        Ok(Some(head)) => {
            assert!(head.head_len > 0 && head.head_len <= data.len());
            assert!(head.head_len <= LIMITS.max_head_bytes);
            let again = request::parse_head(data.get(..head.head_len).unwrap_or_default(), &LIMITS);
            let again = again
                .ok()
                .flatten()
                .map(|h| (h.head_len, h.body, h.keep_alive));
            assert_eq!(again, Some((head.head_len, head.body, head.keep_alive)));
        }
        Ok(None) => assert!(data.len() < LIMITS.max_head_bytes),
        Err(err) => assert!((400..=505).contains(&err.status()), "{err:?}"),
    }
}

/// The body skipper on `data[1..]`, framed by `data[0]` (chunked, or a
/// length): fed whole and cut at an offset given by the input, it ends at the
/// same byte or fails with the same error, and never consumes past its input.
pub fn body(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let framing = match selector % 4 {
        0 | 1 => BodyFraming::Chunked,
        2 => BodyFraming::Length(u64::from(selector)),
        _ => BodyFraming::Length(LIMITS.max_body_bytes + u64::from(selector % 2)),
    };
    let cut = usize::from(selector).min(rest.len());
    let whole = skip_in_pieces(framing, rest, &[]);
    let split = skip_in_pieces(framing, rest, &[cut]);
    assert_eq!(whole, split, "cut at {cut}");
    if let Ok(Some(end)) = whole {
        assert!(end <= rest.len());
    }
}

/// Skip `input` in pieces ending at `cuts`; where the body ended, if it did.
fn skip_in_pieces(
    framing: BodyFraming,
    input: &[u8],
    cuts: &[usize],
) -> Result<Option<usize>, request::ParseError> {
    let Some(mut skipper) = BodySkipper::new(framing, LIMITS.max_body_bytes) else {
        return Ok(Some(0));
    };
    let mut pos = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        let piece = input.get(pos..end.max(pos)).unwrap_or_default();
        match skipper.skip(piece)? {
            Progress::Done { consumed } => {
                assert!(consumed <= piece.len());
                return Ok(Some(pos + consumed));
            }
            Progress::NeedMore { consumed } => {
                assert_eq!(consumed, piece.len(), "NeedMore consumes everything");
                pos += consumed;
            }
        }
    }
    Ok(None)
}

/// How a connection's byte stream was taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Stream offset where each accepted request (head and body) ended, in order.
    pub request_ends: Vec<usize>,
    /// How the stream ended.
    pub end: End,
}

/// The last thing that happened on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte was used; a partial request may be waiting for more.
    NeedMore,
    /// A request asked to close (`Connection: close`, HTTP/1.0): bytes after it are unread.
    Closed,
    /// Refused with this status, `in_body` if the head before had been answered.
    Refused {
        /// The status code answered (or, in a body, that would replace the answer).
        status: u16,
        /// Whether the error is in the body of an answered head.
        in_body: bool,
    },
}

/// The connection target: `data[..8]` seeds the read sizes, `data[8..]` is
/// the stream. Checks the outcome against the stream fed in one piece.
pub fn connection(data: &[u8]) {
    let (seed, stream) = data.split_at(data.len().min(8));
    let seed = seed.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |s, &b| {
        (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let split = outcome(stream, seed | 1);
    let whole = outcome(stream, 0);
    assert_eq!(split, whole, "the split changed where requests end");
}

/// Feeds `stream` through a [`RequestReader`], reads sized by `seed`
/// (0: as much as fits), answering as the connection task does, and checks
/// the invariants on the way: no growth past the head limit, progress on
/// every call, one answer per request at most, every byte consumed or the
/// connection closed.
pub fn outcome(stream: &[u8], mut seed: u64) -> Outcome {
    let mut reader = RequestReader::new(LIMITS, INITIAL_BUFFER_BYTES);
    let mut fed = 0;
    let mut request_ends = Vec::new();
    let mut heads = 0usize;
    let mut answers = 0usize;
    // Each call to next_event() consumes at least one byte, ends a body, or
    // returns NeedRead/Error, so the calls are bounded by the input.
    let mut calls_left = 4 * stream.len() + 16;
    let mut in_body = false;
    loop {
        calls_left = calls_left
            .checked_sub(1)
            .expect("the reader made no progress");
        let buffered = reader.buffered_bytes();
        match reader.next_event() {
            Event::Head(head) => {
                heads += 1;
                answers += 1;
                assert!(head.head_len > 0 && head.head_len <= buffered);
                let keep_alive = head.keep_alive;
                in_body = reader.in_body();
                if !in_body {
                    request_ends.push(fed - reader.buffered_bytes());
                }
                if !keep_alive {
                    return finish(request_ends, End::Closed, heads, answers);
                }
            }
            Event::BodyEnd => {
                assert!(in_body, "a body ended without a head");
                in_body = false;
                request_ends.push(fed - reader.buffered_bytes());
            }
            Event::Error {
                err,
                in_body: after_head,
            } => {
                assert_eq!(after_head, in_body, "error attributed to the wrong request");
                if !after_head {
                    answers += 1; // a malformed head gets its own error
                }
                // Sticky: the same error again, nothing else.
                assert!(matches!(reader.next_event(), Event::Error { err: e, .. } if e == err));
                let end = End::Refused {
                    status: err.status(),
                    in_body: after_head,
                };
                return finish(request_ends, end, heads + usize::from(!after_head), answers);
            }
            Event::NeedRead => {
                if in_body {
                    assert_eq!(reader.buffered_bytes(), 0, "a body read leaves no bytes");
                }
                let left = stream.get(fed..).unwrap_or_default();
                if left.is_empty() {
                    assert!(reader.buffered_bytes() < LIMITS.max_head_bytes);
                    return finish(request_ends, End::NeedMore, heads, answers);
                }
                let spare = reader.spare();
                assert!(
                    !spare.is_empty(),
                    "no room to read: the connection would spin"
                );
                let mut n = spare.len().min(left.len());
                if seed != 0 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    n = n.min(1 + (seed % 97) as usize);
                }
                spare
                    .get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(left.get(..n).unwrap_or_default());
                reader.filled(n);
                fed += n;
                let cap = LIMITS.max_head_bytes.max(INITIAL_BUFFER_BYTES);
                assert!(
                    reader.capacity_bytes() <= cap,
                    "read buffer grew past the head limit"
                );
            }
        }
    }
}

/// Last checks common to every end of a connection.
fn finish(request_ends: Vec<usize>, end: End, requests: usize, answers: usize) -> Outcome {
    assert!(
        answers <= requests,
        "{answers} answers to {requests} requests"
    );
    assert!(
        request_ends.windows(2).all(|w| w[0] < w[1]),
        "requests overlap"
    );
    Outcome { request_ends, end }
}
