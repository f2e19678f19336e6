//! Why a request is refused: one error for the whole request path (head,
//! body framing, chunked coding), each kind mapped to its status, reason
//! phrase and message here, in one place.

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
