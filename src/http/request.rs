//! Request head parsing (RFC 9112 §2–§3, §5–§6, §9.3).
//!
//! Every request the server sees passes through [`parse_head`], so this module
//! decides which bytes are a request and how its body is delimited. Getting
//! framing wrong lets a client smuggle a second request past us, so the rules
//! here are strict: anything ambiguous is refused with a [`ParseError`] and the
//! connection is closed. Parsing does not allocate: header fields live in a
//! stack array handed to `httparse`, and the [`RequestHead`] borrows from the
//! caller's input buffer.

use crate::http::version::{self, Refused};

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

/// Request method (RFC 9110 §9); tokens are matched case-sensitively (§9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (RFC 9110 §9.3.1).
    Get,
    /// `HEAD` (RFC 9110 §9.3.2).
    Head,
    /// `POST` (RFC 9110 §9.3.3).
    Post,
    /// `PUT` (RFC 9110 §9.3.4).
    Put,
    /// `DELETE` (RFC 9110 §9.3.5).
    Delete,
    /// `OPTIONS` (RFC 9110 §9.3.7).
    Options,
    /// `PATCH` (RFC 5789).
    Patch,
    /// `CONNECT` (RFC 9110 §9.3.6).
    Connect,
    /// `TRACE` (RFC 9110 §9.3.8).
    Trace,
    /// Any other syntactically valid method token.
    Other,
}

impl Method {
    fn from_token(token: &str) -> Self {
        match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            "PATCH" => Self::Patch,
            "CONNECT" => Self::Connect,
            "TRACE" => Self::Trace,
            _ => Self::Other,
        }
    }
}

/// Protocol version of the request line (RFC 9112 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`, and `HTTP/1.2` to `HTTP/1.9`, served as the highest
    /// HTTP/1 minor version percore speaks (RFC 9110 §2.5).
    Http11,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (§6.3 rule 7).
    None,
    /// Exactly this many bytes follow the head (§6.3 rule 5).
    Length(u64),
    /// Chunked transfer coding (§6.3 rule 4, §7.1).
    Chunked,
}

/// A parsed request head, borrowing from the input buffer.
#[derive(Debug)]
pub struct RequestHead<'b> {
    /// Request method.
    pub method: Method,
    /// Path of the target without the query: `/p` for origin-form `/p?q` and
    /// absolute-form `http://h/p?q` (`/` if the latter has no path), `*` for
    /// asterisk-form (RFC 9112 §3.2).
    pub path: &'b str,
    /// Protocol version.
    pub version: Version,
    /// Whether the connection persists after this request (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// True when the client sent `Expect: 100-continue` (RFC 9110 §10.1.1) on an
    /// HTTP/1.1 request that has a non-empty body, i.e. exactly when the server
    /// should send `100 Continue` before reading the body.
    pub expect_continue: bool,
    /// Bytes of the head, including leading empty lines and the final empty line.
    pub head_len: usize,
}

/// Why a request was refused; each maps to one status. The connection is
/// closed after any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// 400: syntax error, bare CR, obs-fold, bad header name/value or target.
    Malformed,
    /// 400: HTTP/1.1 request without Host (RFC 9112 §3.2).
    MissingHost,
    /// 400: more than one Host field line (RFC 9112 §3.2).
    DuplicateHost,
    /// 400: Content-Length not 1*DIGIT, overflowing, or differing repeats (§6.3 rule 5).
    InvalidContentLength,
    /// 400: both Content-Length and Transfer-Encoding (§6.1, §6.3 rule 3).
    ContentLengthWithTransferEncoding,
    /// 400: Transfer-Encoding in an HTTP/1.0 request (§6.1).
    TransferEncodingInHttp10,
    /// 400: Transfer-Encoding whose final coding is not chunked (§6.3 rule 4).
    ChunkedNotFinal,
    /// 501: a transfer coding before chunked; we implement none (§6.1, RFC 9110 §15.6.2).
    UnsupportedTransferCoding,
    /// 413: declared or chunked body larger than `max_body_bytes`.
    BodyTooLarge,
    /// 414: request-target longer than `max_uri_bytes` (RFC 9110 §15.5.15).
    UriTooLong,
    /// 431: head not complete within `max_head_bytes` (RFC 6585 §5).
    HeadTooLarge,
    /// 431: more header lines than `max_headers` (RFC 6585 §5).
    TooManyHeaders,
    /// 505: a well-formed version of another major version, `HTTP/0.9` or
    /// `HTTP/2.0` (RFC 9110 §15.6.6); `HTTP/1.2` is served as HTTP/1.1 and
    /// a malformed version is [`ParseError::Malformed`] (see `http::version`).
    UnsupportedVersion,
    /// 400: chunked body against the grammar of RFC 9112 §7.1 (bare LF or CR
    /// in a chunk line, bad size, extension or trailer field), reported by `chunked`.
    BadChunk,
    /// 400: chunk extensions past their bound per line or per body (§7.1.1).
    ChunkExtTooLarge,
    /// 431: trailer section past its bound (§7.1.2, RFC 6585 §5).
    TrailerTooLarge,
}

impl ParseError {
    /// The status code this error is answered with.
    pub fn status(self) -> u16 {
        self.describe().0
    }

    /// Reason phrase for that status ("Bad Request", ...), per RFC 9110 §15.
    pub fn reason(self) -> &'static str {
        match self.status() {
            413 => "Content Too Large",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Bad Request",
        }
    }

    /// Short human message for a JSON error body, e.g. "request head too large".
    pub fn message(self) -> &'static str {
        self.describe().1
    }

    fn describe(self) -> (u16, &'static str) {
        match self {
            Self::Malformed => (400, "malformed request"),
            Self::MissingHost => (400, "missing Host header"),
            Self::DuplicateHost => (400, "duplicate Host header"),
            Self::InvalidContentLength => (400, "invalid Content-Length"),
            Self::ContentLengthWithTransferEncoding => {
                (400, "Content-Length with Transfer-Encoding")
            }
            Self::TransferEncodingInHttp10 => (400, "Transfer-Encoding in HTTP/1.0 request"),
            Self::ChunkedNotFinal => (400, "chunked is not the final transfer coding"),
            Self::UnsupportedTransferCoding => (501, "unsupported transfer coding"),
            Self::BodyTooLarge => (413, "request body too large"),
            Self::UriTooLong => (414, "request target too long"),
            Self::HeadTooLarge => (431, "request head too large"),
            Self::TooManyHeaders => (431, "too many header fields"),
            Self::UnsupportedVersion => (505, "HTTP version not supported"),
            Self::BadChunk => (400, "malformed chunked body"),
            Self::ChunkExtTooLarge => (400, "chunk extensions too large"),
            Self::TrailerTooLarge => (431, "trailer section too large"),
        }
    }
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
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    // Cannot panic: the bound is clamped to the array length.
    let mut req = httparse::Request::new(&mut slots[..limits.max_headers.min(MAX_HEADERS)]);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return incomplete(buf, window, limits),
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

/// Facts gathered from the header fields, judged together in [`Fields::framing`].
#[derive(Default)]
struct Fields {
    hosts: u32,
    host_invalid: bool,
    content_length_seen: bool,
    content_length_invalid: bool,
    content_length: Option<u64>,
    te_seen: bool,
    te_empty: bool,
    te_codings: u32,
    te_chunked: u32,
    te_last_chunked: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Fields {
    /// Record one field line; names compare case-insensitively (RFC 9110 §5.1).
    fn add(&mut self, name: &str, value: &[u8]) {
        if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
            self.host_invalid |= !value.iter().all(|&b| is_host_byte(b));
        } else if name.eq_ignore_ascii_case("content-length") {
            self.content_length_seen = true;
            // RFC 9110 §8.6: a list of identical values may be taken as one value.
            for element in value.split(|&b| b == b',').map(trim_ows) {
                match (parse_decimal(element), self.content_length) {
                    (None, _) => self.content_length_invalid = true,
                    (Some(n), Some(prev)) if n != prev => self.content_length_invalid = true,
                    (Some(n), _) => self.content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // §6.1: all Transfer-Encoding lines form one list, in order.
            self.te_seen = true;
            let mut any = false;
            for coding in list_elements(value) {
                any = true;
                self.te_codings += 1;
                self.te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.te_chunked += u32::from(self.te_last_chunked);
            }
            self.te_empty |= !any;
        } else if name.eq_ignore_ascii_case("connection") {
            // RFC 9110 §7.6.1: connection options are case-insensitive tokens.
            for option in list_elements(value) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // RFC 9110 §10.1.1: the expectation is case-insensitive; others are ignored.
            self.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
    }

    /// Check Host and decide the body framing (RFC 9112 §3.2, §6.1, §6.3).
    fn framing(&self, version: Version, max_body_bytes: u64) -> Result<BodyFraming, ParseError> {
        // §3.2: exactly one Host in HTTP/1.1, at most one anywhere, valid value.
        if self.hosts > 1 {
            return Err(ParseError::DuplicateHost);
        }
        if self.hosts == 0 && version == Version::Http11 {
            return Err(ParseError::MissingHost);
        }
        if self.host_invalid {
            return Err(ParseError::Malformed);
        }
        if self.te_seen {
            return Err(if version == Version::Http10 {
                ParseError::TransferEncodingInHttp10 // §6.1: faulty framing in 1.0
            } else if self.content_length_seen {
                ParseError::ContentLengthWithTransferEncoding // §6.1, §6.3 rule 3
            } else if self.te_empty {
                ParseError::Malformed // a Transfer-Encoding line with no coding
            } else if !self.te_last_chunked {
                ParseError::ChunkedNotFinal // §6.3 rule 4
            } else if self.te_chunked > 1 {
                ParseError::Malformed // §7: chunked MUST NOT be applied twice
            } else if self.te_codings > 1 {
                ParseError::UnsupportedTransferCoding // §6.1: unknown coding → 501
            } else {
                return Ok(BodyFraming::Chunked);
            });
        }
        match self.content_length {
            _ if self.content_length_invalid => Err(ParseError::InvalidContentLength),
            Some(n) if n > max_body_bytes => Err(ParseError::BodyTooLarge),
            Some(n) => Ok(BodyFraming::Length(n)),
            None => Ok(BodyFraming::None), // §6.3 rule 7
        }
    }
}

/// Path of a request-target (RFC 9112 §3.2), without the query.
fn request_path(method: Method, target: &str) -> Result<&str, ParseError> {
    // §3.2: the target is ASCII URI syntax; a fragment is never sent.
    if target.bytes().any(|b| b == b'#' || !b.is_ascii()) {
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
    target.split('?').next().unwrap_or(target)
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
fn target_exceeds(window: &[u8], max_uri_bytes: usize) -> bool {
    let line = request_line(window);
    let Some(method_len) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let target = line.get(method_len + 1..).unwrap_or(&[]);
    let target_len = target
        .iter()
        .take(max_uri_bytes.saturating_add(1))
        .take_while(|&&b| !matches!(b, b' ' | b'\r' | b'\n'))
        .count();
    target_len > max_uri_bytes
}

/// The buffer after the empty lines a server ignores before a request (RFC 9112 §2.2).
fn request_line(window: &[u8]) -> &[u8] {
    let start = window.iter().position(|&b| b != b'\r' && b != b'\n');
    start.and_then(|s| window.get(s..)).unwrap_or(&[])
}

/// Elements of a comma-separated list, OWS trimmed, empty ones skipped (RFC 9110 §5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Strip optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `1*DIGIT` as u64 (RFC 9110 §8.6); None if empty, non-digit, or overflowing.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// Bytes allowed in a Host value: uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2).
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

#[cfg(test)]
mod tests;
