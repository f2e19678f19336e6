//! Request head parsing (RFC 9112 §2–§3, §5–§6, §9.3).
//!
//! Every request the server sees passes through [`parse_head`], so this module
//! decides which bytes are a request and how its body is delimited. Getting
//! framing wrong lets a client smuggle a second request past us, so the rules
//! here are strict: anything ambiguous is refused with a [`ParseError`] and the
//! connection is closed. Parsing does not allocate: header fields live in an
//! uninitialised stack array handed to `httparse`, and the [`RequestHead`]
//! borrows from the caller's input buffer.
//!
//! Here: [`parse_head`] and the [`Limits`] it applies. `head.rs`: what a
//! parsed head is ([`RequestHead`], [`Method`], [`Version`], [`BodyFraming`]).
//! [`ParseError`] and its statuses live in `http::parse_error` (re-exported
//! here). `fields.rs`: the header fields judged together (Host, framing,
//! persistence). `target.rs`: the request-target. `tests.rs`: the parser by
//! cases.

mod fields;
mod head;
mod target;

pub use crate::http::parse_error::ParseError;
pub use head::{BodyFraming, Method, RequestHead, Version};

use crate::http::version::{self, Refused};
use fields::Fields;
use std::mem::MaybeUninit;
use target::{long_target_precedes_error, request_path, target_exceeds};

/// Size of the stack array of header slots handed to `httparse`.
pub const MAX_HEADERS: usize = 64;

/// Limits on what a client may send in one request head.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request head, request line to final empty line inclusive.
    pub max_head_bytes: usize,
    /// Most header field lines; values above [`MAX_HEADERS`] act as [`MAX_HEADERS`].
    pub max_headers: usize,
    /// Longest request-target (RFC 9112 §3.2).
    pub max_uri_bytes: usize,
    /// Largest request body (Content-Length, or the sum of chunk sizes).
    pub max_body_bytes: u64,
}

/// Parse one request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more and call again with the grown buffer.
/// `Ok(Some(head))`: complete; the body (if any) starts at `buf[head.head_len]`.
/// Only the first `max_head_bytes` of `buf` are examined, so an incomplete head
/// with `buf.len() >= max_head_bytes` is [`ParseError::HeadTooLarge`]. A target
/// longer than `max_uri_bytes` is reported as soon as it is seen, even before
/// the head is complete.
pub fn parse_head<'b>(
    buf: &'b [u8],
    limits: &Limits,
) -> Result<Option<RequestHead<'b>>, ParseError> {
    let window = buf.get(..limits.max_head_bytes).unwrap_or(buf);
    // Left uninitialised: httparse writes a slot before it hands it back, and
    // filling 64 slots (2 KiB) per request cost more than parsing a short head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'b>>::uninit() }; MAX_HEADERS];
    // Cannot panic: the bound is clamped to the array length.
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS)];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return incomplete(buf, window, limits),
        // A target over the limit is refused as soon as it is seen, before
        // the head is complete; so it is here too, whatever httparse found
        // after it (but not before it): how the head arrived, whole or in
        // pieces, must not change the answer (414 against 400, 431 or 505).
        Err(_) if long_target_precedes_error(window, limits.max_uri_bytes) => {
            return Err(ParseError::UriTooLong)
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => return refused_version(buf, window, limits),
        // Bare CR (§2.2), obs-fold (§5.2), whitespace before colon (§5.1),
        // invalid token/field bytes (RFC 9110 §5.5), bad request line (§3).
        Err(_) => return Err(ParseError::Malformed),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::Malformed);
    };
    let version = match minor {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(ParseError::Malformed), // httparse returns no other
    };
    head(method, target, version, req.headers, head_len, limits).map(Some)
}

/// A head not complete yet: read more, unless the limits are already passed.
fn incomplete<'b>(
    buf: &[u8],
    window: &[u8],
    limits: &Limits,
) -> Result<Option<RequestHead<'b>>, ParseError> {
    if target_exceeds(window, limits.max_uri_bytes) {
        Err(ParseError::UriTooLong)
    } else if buf.len() >= limits.max_head_bytes {
        Err(ParseError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// A request line whose version `httparse` refused: 400, 505, or a higher
/// HTTP/1 minor version served as HTTP/1.1 (see `http::version`). Its header
/// section is parsed here with `httparse::parse_headers`, the same field
/// rules as a whole request's.
#[cold]
fn refused_version<'b>(
    buf: &'b [u8],
    window: &'b [u8],
    limits: &Limits,
) -> Result<Option<RequestHead<'b>>, ParseError> {
    let (method, target, line_len) = match version::classify(window) {
        Refused::HigherMinor {
            method,
            target,
            line_len,
        } => (method, target, line_len),
        Refused::OtherMajor => return Err(ParseError::UnsupportedVersion),
        Refused::Malformed => return Err(ParseError::Malformed),
        Refused::Incomplete => return incomplete(buf, window, limits),
    };
    let fields = window.get(line_len..).unwrap_or_default();
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    // Cannot panic: the bound is clamped to the array length.
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS)];
    match httparse::parse_headers(fields, slots) {
        Ok(httparse::Status::Complete((len, headers))) => head(
            method,
            target,
            Version::Http11,
            headers,
            line_len + len,
            limits,
        )
        .map(Some),
        Ok(httparse::Status::Partial) => incomplete(buf, window, limits),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooManyHeaders),
        Err(_) => Err(ParseError::Malformed),
    }
}

/// The checks and decisions on a complete head, however its request line
/// was parsed.
fn head<'b>(
    method: &'b str,
    target: &'b str,
    version: Version,
    headers: &[httparse::Header<'b>],
    head_len: usize,
    limits: &Limits,
) -> Result<RequestHead<'b>, ParseError> {
    if target.len() > limits.max_uri_bytes {
        return Err(ParseError::UriTooLong);
    }
    let method = Method::from_token(method);
    let path = request_path(method, target)?;

    let mut fields = Fields::default();
    for field in headers {
        fields.add(field.name, field.value);
    }
    let body = fields.framing(version, limits.max_body_bytes)?;
    // §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive" and no "close".
    let keep_alive = match version {
        Version::Http11 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    // RFC 9110 §10.1.1: ignore 100-continue from HTTP/1.0; nothing to wait for without content.
    let has_content = !matches!(body, BodyFraming::None | BodyFraming::Length(0));
    let expect_continue = fields.expect_continue && version == Version::Http11 && has_content;
    Ok(RequestHead {
        method,
        path,
        version,
        keep_alive,
        body,
        expect_continue,
        head_len,
    })
}

#[cfg(test)]
mod tests;
