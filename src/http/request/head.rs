//! What a parsed request head is: its method, version and body framing
//! (RFC 9110 §9, RFC 9112 §2.3, §6.3), and the [`RequestHead`] that borrows
//! its path from the caller's buffer. Plain values: the parser builds them,
//! the shard and the body readers act on them.

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
    pub(super) fn from_token(token: &str) -> Self {
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
