//! What one request ended in: a status code, or a transport error of one of
//! a few classes. Kept as a small `Copy` enum so recording it allocates
//! nothing.

/// A request that got no HTTP status, by cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// No complete response within the request timeout.
    Timeout,
    /// The response could not be parsed or is framed in a way not supported
    /// (chunked, oversized head).
    Protocol,
}

impl ErrorKind {
    /// Every class, in report order.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
    ];

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// Classifies an I/O error met on an established connection.
    pub fn from_io(err: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
            _ => ErrorKind::Reset,
        }
    }
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response with this status code.
    Status(u16),
    /// No response.
    Error(ErrorKind),
}

impl Outcome {
    /// A 2xx response.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s))
    }
}
