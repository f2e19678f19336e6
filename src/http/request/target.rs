//! The request-target (RFC 9112 §3.2): its path without the query, in
//! origin, absolute or asterisk form, and whether an incomplete request line
//! already shows one longer than the limit.

use super::head::Method;
use crate::http::parse_error::ParseError;

/// Path of a request-target (RFC 9112 §3.2), without the query.
pub(super) fn request_path(method: Method, target: &str) -> Result<&str, ParseError> {
    // §3.2: the target is ASCII URI syntax; a fragment is never sent.
    if !target.is_ascii() || target.as_bytes().contains(&b'#') {
        return Err(ParseError::Malformed);
    }
    if target.starts_with('/') {
        return Ok(strip_query(target)); // §3.2.1 origin-form
    }
    if target == "*" {
        // §3.2.4 asterisk-form is only for server-wide OPTIONS.
        return if method == Method::Options {
            Ok("*")
        } else {
            Err(ParseError::Malformed)
        };
    }
    // §3.2.2 absolute-form; authority-form (§3.2.3, CONNECT) is not supported.
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or(ParseError::Malformed)?;
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..authority_len).unwrap_or("");
    // RFC 9110 §4.2.1: empty host is invalid; §4.2.4: userinfo is an error.
    if authority.is_empty() || authority.contains('@') {
        return Err(ParseError::Malformed);
    }
    let path = strip_query(rest.get(authority_len..).unwrap_or(""));
    Ok(if path.is_empty() { "/" } else { path })
}

fn strip_query(target: &str) -> &str {
    // A plain scan: `split('?')` set up a searcher that cost more than the
    // scan itself on a target of a few dozen bytes. `?` is ASCII, so the
    // cut is a char boundary.
    match target.bytes().position(|b| b == b'?') {
        Some(query_at) => target.get(..query_at).unwrap_or(target),
        None => target,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Whether the (possibly incomplete) request line already shows a target
/// longer than `max_uri_bytes`. Scans at most `max_uri_bytes + 1` target bytes.
pub(super) fn target_exceeds(window: &[u8], max_uri_bytes: usize) -> bool {
    long_target_end(window, max_uri_bytes).is_some()
}

/// For a head httparse refused: whether a target longer than `max_uri_bytes`
/// comes before the error. A head that arrives in pieces is refused 414 as
/// soon as `max_uri_bytes + 1` target bytes are in, if httparse found
/// nothing wrong up to there; a whole head must get the same answer, so the
/// same prefix is parsed again: an error in the method or in the target's
/// first bytes is the answer (400), one after them is not (414).
pub(super) fn long_target_precedes_error(window: &[u8], max_uri_bytes: usize) -> bool {
    let Some(end) = long_target_end(window, max_uri_bytes) else {
        return false;
    };
    let prefix = window.get(..end).unwrap_or(window);
    let mut req = httparse::Request::new(&mut []);
    matches!(req.parse(prefix), Ok(httparse::Status::Partial))
}

/// Where the first `max_uri_bytes + 1` bytes of the target end in `window`,
/// if the target is that long.
fn long_target_end(window: &[u8], max_uri_bytes: usize) -> Option<usize> {
    let line = request_line(window);
    let method_len = line.iter().position(|&b| b == b' ')?;
    let target = line.get(method_len + 1..).unwrap_or(&[]);
    let target_len = target
        .iter()
        .take(max_uri_bytes.saturating_add(1))
        .take_while(|&&b| !matches!(b, b' ' | b'\r' | b'\n'))
        .count();
    (target_len > max_uri_bytes).then(|| window.len() - target.len() + target_len)
}

/// The buffer after the empty lines a server ignores before a request (RFC 9112 §2.2).
fn request_line(window: &[u8]) -> &[u8] {
    let start = window.iter().position(|&b| b != b'\r' && b != b'\n');
    start.and_then(|s| window.get(s..)).unwrap_or(&[])
}
