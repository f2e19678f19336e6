//! The request side of a connection without its socket: a read buffer, the
//! head parser and the body skipper, deciding where each request starts and
//! ends (RFC 9112 §6.3, §9.3.2 pipelining).
//!
//! The connection task (`shard::conn`) reads into [`RequestReader::spare`],
//! reports the bytes with [`RequestReader::filled`] and takes
//! [`RequestReader::next_event`] until it says [`Event::NeedRead`]; the fuzz targets
//! (`crate::fuzz`) drive the very same code with arbitrary bytes split
//! arbitrarily. The buffer is allocated once per connection, starts small and
//! grows only while a partial head fills it, up to the head limit.

use super::body::{BodySkipper, Progress};
use super::parse_error::ParseError;
use super::request::{self, Limits, RequestHead};

/// What the buffered bytes hold next.
#[derive(Debug)]
pub enum Event<'b> {
    /// A complete request head, borrowing from the buffer; its body, if any,
    /// is skipped by the next calls.
    Head(RequestHead<'b>),
    /// The body of the last head ended: its response may go out as it is.
    BodyEnd,
    /// Every buffered byte is used: read more into [`RequestReader::spare`].
    NeedRead,
    /// The bytes are not a valid request. `in_body`: the head was valid and
    /// answered, its body was not. The connection must close; every later
    /// call returns the same event.
    Error {
        /// What was wrong.
        err: ParseError,
        /// Whether the error is in the body of an already answered head.
        in_body: bool,
    },
}

/// Reads requests from one connection's byte stream.
#[derive(Debug)]
pub struct RequestReader {
    buf: Vec<u8>,
    /// Bytes of `buf` holding data.
    filled: usize,
    /// Start of unprocessed data in `buf`.
    pos: usize,
    /// The body of the last head, while it is being skipped.
    body: Option<BodySkipper>,
    /// Set once the stream was refused.
    failed: Option<(ParseError, bool)>,
    limits: Limits,
}

impl RequestReader {
    /// A reader whose buffer starts at `initial_bytes` and may grow to
    /// `limits.max_head_bytes`.
    pub fn new(limits: Limits, initial_bytes: usize) -> Self {
        Self {
            buf: vec![0; initial_bytes.max(1)],
            filled: 0,
            pos: 0,
            body: None,
            failed: None,
            limits,
        }
    }

    /// At a request boundary with nothing buffered.
    pub fn is_idle(&self) -> bool {
        self.pos == self.filled && self.body.is_none()
    }

    /// Inside a body being skipped.
    pub fn in_body(&self) -> bool {
        self.body.is_some()
    }

    /// Bytes received but not yet taken as a request or body.
    pub fn buffered_bytes(&self) -> usize {
        self.filled - self.pos
    }

    /// Size of the read buffer (bounded by the head limit).
    pub fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The next request head, body end, error, or the need for more bytes.
    pub fn next_event(&mut self) -> Event<'_> {
        // Split borrows: a head borrows the buffer while the position and
        // the body skipper are updated.
        let Self {
            buf,
            filled,
            pos,
            body,
            failed,
            limits,
        } = self;
        let buf: &Vec<u8> = buf;
        if let Some((err, in_body)) = *failed {
            return Event::Error { err, in_body };
        }
        let rest = buf.get(*pos..*filled).unwrap_or_default();
        if let Some(skipper) = body.as_mut() {
            return match skipper.skip(rest) {
                Ok(Progress::NeedMore { consumed }) => {
                    *pos += consumed;
                    Event::NeedRead
                }
                Ok(Progress::Done { consumed }) => {
                    *pos += consumed;
                    *body = None;
                    Event::BodyEnd
                }
                Err(err) => {
                    *failed = Some((err, true));
                    *body = None;
                    Event::Error { err, in_body: true }
                }
            };
        }
        if rest.is_empty() {
            return Event::NeedRead;
        }
        match request::parse_head(rest, limits) {
            Ok(None) => Event::NeedRead,
            Err(err) => {
                *failed = Some((err, false));
                Event::Error {
                    err,
                    in_body: false,
                }
            }
            Ok(Some(head)) => {
                *pos += head.head_len;
                *body = BodySkipper::new(head.body, limits.max_body_bytes);
                Event::Head(head)
            }
        }
    }

    /// Room to read into, after moving unprocessed bytes to the front and,
    /// when a partial head fills the buffer, growing it up to the head limit
    /// (the parser refuses a head that reaches the limit incomplete, so the
    /// buffer never needs more). Empty only if that invariant broke: the
    /// caller answers 431 and closes rather than spin.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.pos == self.filled {
            self.pos = 0;
            self.filled = 0;
        } else if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        let cap = self.limits.max_head_bytes.max(self.buf.len());
        if self.filled == self.buf.len() && self.buf.len() < cap {
            let grown = (self.buf.len() * 2).min(cap);
            self.buf.resize(grown, 0);
        }
        self.buf.get_mut(self.filled..).unwrap_or_default()
    }

    /// The whole buffer, its contents discarded: room for a connection
    /// that only drains its input before closing.
    pub fn scratch(&mut self) -> &mut [u8] {
        self.pos = 0;
        self.filled = 0;
        self.body = None;
        &mut self.buf
    }

    /// `n` bytes were read into [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }
}
