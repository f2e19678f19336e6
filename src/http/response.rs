//! Writing responses into a connection's reused output buffer.
//!
//! Every response percore sends has a known length (JSON, the Prometheus
//! text, or the static dashboard page), so the head is a
//! pre-encoded prefix per status, the cached `Date`, `Content-Length` printed
//! with itoa, and the connection header when one is needed (RFC 9112 §9.3):
//! no formatting machinery and no allocation once the buffer has grown.

use crate::clock::DATE_LEN;

/// The statuses percore answers with, each with its pre-encoded status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200
    Ok,
    /// 400
    BadRequest,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 408
    RequestTimeout,
    /// 413
    ContentTooLarge,
    /// 414
    UriTooLong,
    /// 431
    HeaderFieldsTooLarge,
    /// 500
    InternalServerError,
    /// 501
    NotImplemented,
    /// 503
    ServiceUnavailable,
    /// 505
    HttpVersionNotSupported,
}

impl Status {
    /// Every status, in the order of [`Status::index`].
    pub const ALL: [Status; 12] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::ContentTooLarge,
        Status::UriTooLong,
        Status::HeaderFieldsTooLarge,
        Status::InternalServerError,
        Status::NotImplemented,
        Status::ServiceUnavailable,
        Status::HttpVersionNotSupported,
    ];

    /// Position in [`Status::ALL`], for per-status counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::HttpVersionNotSupported => 505,
        }
    }

    /// The status for a numeric code percore uses; anything else is a 500.
    pub fn from_code(code: u16) -> Status {
        match code {
            200 => Status::Ok,
            400 => Status::BadRequest,
            404 => Status::NotFound,
            405 => Status::MethodNotAllowed,
            408 => Status::RequestTimeout,
            413 => Status::ContentTooLarge,
            414 => Status::UriTooLong,
            431 => Status::HeaderFieldsTooLarge,
            501 => Status::NotImplemented,
            503 => Status::ServiceUnavailable,
            505 => Status::HttpVersionNotSupported,
            _ => Status::InternalServerError,
        }
    }

    /// Status line plus the `Server` header.
    #[inline(always)]
    fn prefix(self) -> &'static [u8] {
        macro_rules! prefix {
            ($line:literal) => {
                concat!("HTTP/1.1 ", $line, "\r\nServer: percore\r\n").as_bytes()
            };
        }
        match self {
            Status::Ok => prefix!("200 OK"),
            Status::BadRequest => prefix!("400 Bad Request"),
            Status::NotFound => prefix!("404 Not Found"),
            Status::MethodNotAllowed => prefix!("405 Method Not Allowed"),
            Status::RequestTimeout => prefix!("408 Request Timeout"),
            Status::ContentTooLarge => prefix!("413 Content Too Large"),
            Status::UriTooLong => prefix!("414 URI Too Long"),
            Status::HeaderFieldsTooLarge => prefix!("431 Request Header Fields Too Large"),
            Status::InternalServerError => prefix!("500 Internal Server Error"),
            Status::NotImplemented => prefix!("501 Not Implemented"),
            Status::ServiceUnavailable => prefix!("503 Service Unavailable"),
            Status::HttpVersionNotSupported => prefix!("505 HTTP Version Not Supported"),
        }
    }
}

/// Media type of a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// Every endpoint but `/metrics`.
    Json,
    /// Prometheus text exposition format 0.0.4 (`/metrics`).
    PrometheusText,
    /// The `/dashboard` page.
    Html,
}

impl ContentType {
    /// The header line, followed by the start of the `Date` header.
    #[inline(always)]
    fn lines(self) -> &'static [u8] {
        match self {
            ContentType::Json => b"Content-Type: application/json\r\nDate: ",
            ContentType::PrometheusText => {
                b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\nDate: "
            }
            ContentType::Html => b"Content-Type: text/html; charset=utf-8\r\nDate: ",
        }
    }
}

/// Which `Connection` header the response needs (RFC 9112 §9.3, §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive: the default, no header needed.
    KeepAlive,
    /// HTTP/1.0 client that asked for keep-alive: must be confirmed.
    KeepAliveHttp10,
    /// The connection closes after this response.
    Close,
}

/// `HTTP/1.1 100 Continue`, sent before the final response when a client
/// waits for it before sending its body (RFC 9110 §10.1.1, §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// One response about to be written: its status and how it differs from
/// the common case (JSON, keep-alive, no extra header, body sent). Built per
/// response and consumed by [`Response::write`]. Every method is inlined
/// and `write` always is, so the struct never goes through memory: its
/// fields are registers or constants at each call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a response is sent only by `write`"]
pub struct Response<'a> {
    status: Status,
    content_type: ContentType,
    persistence: Persistence,
    /// Whole header lines, each ending in CRLF (`Retry-After`, `Allow`).
    extra_headers: &'a [u8],
    /// False for HEAD (RFC 9110 §9.3.2): the head still carries the
    /// body's `Content-Length`, the body is not sent.
    include_body: bool,
}

impl<'a> Response<'a> {
    /// A JSON response with `status`, keeping the connection alive, its
    /// body sent.
    #[inline]
    pub const fn new(status: Status) -> Self {
        Response {
            status,
            content_type: ContentType::Json,
            persistence: Persistence::KeepAlive,
            extra_headers: b"",
            include_body: true,
        }
    }

    /// The body's media type.
    #[inline]
    pub const fn content_type(mut self, content_type: ContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// The `Connection` header the response needs (RFC 9112 §9.3, §9.6).
    #[inline]
    pub const fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Header lines to add, each ending in CRLF.
    #[inline]
    pub const fn headers(mut self, lines: &'a [u8]) -> Self {
        self.extra_headers = lines;
        self
    }

    /// Whether the body follows the head (false answers a HEAD request).
    #[inline]
    pub const fn include_body(mut self, include_body: bool) -> Self {
        self.include_body = include_body;
        self
    }

    /// Appends the complete response, head and `body`, to `out`, with the
    /// cached `date`.
    ///
    /// Always inlined, so that at each call site the status, the media type
    /// and the extra headers (constants there) turn into constant-size
    /// copies; the connection header is one constant copy per branch for the
    /// same reason. The body is the only runtime-sized copy besides the
    /// length's digits. Out of line and generic, the same head cost 269
    /// instructions per cache hit against 244 inlined (`response/hit` in
    /// `benches/hot_path.rs`, counted by `benches/instructions.sh`).
    #[inline(always)]
    pub fn write(self, out: &mut Vec<u8>, date: &[u8; DATE_LEN], body: &[u8]) {
        out.extend_from_slice(self.status.prefix());
        out.extend_from_slice(self.content_type.lines());
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\nContent-Length: ");
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(digits.format(body.len()).as_bytes());
        match self.persistence {
            Persistence::KeepAlive => out.extend_from_slice(b"\r\n"),
            Persistence::KeepAliveHttp10 => {
                out.extend_from_slice(b"\r\nConnection: keep-alive\r\n")
            }
            Persistence::Close => out.extend_from_slice(b"\r\nConnection: close\r\n"),
        }
        out.extend_from_slice(self.extra_headers);
        out.extend_from_slice(b"\r\n");
        if self.include_body {
            out.extend_from_slice(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn exact_bytes() {
        type Case = (
            Status,
            Persistence,
            &'static [u8],
            &'static [u8],
            bool,
            &'static str,
        );
        let cases: [Case; 4] = [
            (
                Status::Ok,
                Persistence::KeepAlive,
                b"",
                b"{}",
                true,
                "HTTP/1.1 200 OK\r\nServer: percore\r\nContent-Type: application/json\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\n{}",
            ),
            (
                Status::Ok,
                Persistence::KeepAliveHttp10,
                b"",
                b"{}",
                false,
                "HTTP/1.1 200 OK\r\nServer: percore\r\nContent-Type: application/json\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\
                 Connection: keep-alive\r\n\r\n",
            ),
            (
                Status::ServiceUnavailable,
                Persistence::Close,
                b"Retry-After: 1\r\n",
                b"{}",
                true,
                "HTTP/1.1 503 Service Unavailable\r\nServer: percore\r\nContent-Type: application/json\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\
                 Connection: close\r\nRetry-After: 1\r\n\r\n{}",
            ),
            (
                Status::HeaderFieldsTooLarge,
                Persistence::Close,
                b"",
                b"",
                true,
                "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: percore\r\n\
                 Content-Type: application/json\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
            ),
        ];
        for (status, persistence, extra, body, include, want) in cases {
            let mut out = Vec::new();
            Response::new(status)
                .persistence(persistence)
                .headers(extra)
                .include_body(include)
                .write(&mut out, DATE, body);
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        }
    }

    #[test]
    fn prometheus_content_type() {
        let mut out = Vec::new();
        Response::new(Status::Ok)
            .content_type(ContentType::PrometheusText)
            .write(&mut out, DATE, b"x 1\n");
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    }

    #[test]
    fn index_matches_all() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn codes_round_trip() {
        for code in [200, 400, 404, 405, 408, 413, 414, 431, 500, 501, 503, 505] {
            let s = Status::from_code(code);
            assert_eq!(s.code(), code);
            let line = std::str::from_utf8(s.prefix()).unwrap();
            assert!(line.starts_with(&format!("HTTP/1.1 {code} ")));
        }
    }
}
