//! The HTTP-version of a request line that `httparse` refused (RFC 9112 §2.3).
//!
//! `httparse` takes exactly `HTTP/1.0` and `HTTP/1.1` and reports anything
//! else as one error, but three different answers are due:
//!
//! - `HTTP/1.2` … `HTTP/1.9`: a higher minor version of the major version
//!   percore speaks, which a recipient "SHOULD process … as if it were in the
//!   highest minor version within that major version to which the recipient
//!   is conformant" (RFC 9110 §2.5): served as HTTP/1.1;
//! - `HTTP/0.9`, `HTTP/2.0`, … : well-formed, another major version: 505
//!   (RFC 9110 §15.6.6);
//! - anything not `HTTP` "/" DIGIT "." DIGIT (`HTTP/1.`, `HTTP/11`, `HTTP/3`,
//!   `HTTP/1. 1`): a request line against the grammar, 400.
//!
//! The answer waits for the end of the line, since `HTTP/2.0` followed by
//! `1` is malformed, not a major version 2. This runs only after `httparse`
//! refused the version: not on the path of a well-formed request.

/// What the request line with a refused version is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<'b> {
    /// `HTTP/1.x` with x ≥ 2, to be served as HTTP/1.1: the method and
    /// target `httparse` checked before it reached the version, and where
    /// the header section starts (after the line's CRLF or LF).
    HigherMinor {
        method: &'b str,
        target: &'b str,
        line_len: usize,
    },
    /// Well-formed, another major version: 505.
    OtherMajor,
    /// Not an HTTP-version, or the line does not end right after it: 400.
    Malformed,
    /// The line is not complete yet and can still become any of the above.
    Incomplete,
}

/// Classifies the request line at the start of `window` (after the empty
/// lines a server ignores, RFC 9112 §2.2), whose method and target
/// `httparse` accepted and whose version it refused.
pub(crate) fn classify(window: &[u8]) -> Refused<'_> {
    let skipped = window
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let line = window.get(skipped..).unwrap_or_default();
    // method SP request-target SP HTTP-version (§3): `httparse` checked the
    // first two and that one SP follows each, so the third part starts after
    // the second SP.
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return Refused::Malformed;
    };
    let version_len = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    let (version, end) = rest.split_at(version_len);
    let well_formed = match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] => {
            major.is_ascii_digit() && minor.is_ascii_digit()
        }
        _ => false,
    };
    // The line ends in CRLF, or a bare LF (§2.2).
    let terminator = match end {
        [] | [b'\r'] => return incomplete_unless_invalid(version),
        [b'\r', b'\n', ..] => 2,
        [b'\n', ..] => 1,
        _ => return Refused::Malformed,
    };
    if !well_formed {
        return Refused::Malformed;
    }
    if version.get(5) != Some(&b'1') {
        return Refused::OtherMajor;
    }
    let (Ok(method), Ok(target)) = (std::str::from_utf8(method), std::str::from_utf8(target))
    else {
        return Refused::Malformed;
    };
    Refused::HigherMinor {
        method,
        target,
        line_len: skipped + method.len() + 1 + target.len() + 1 + version_len + terminator,
    }
}

/// A version still arriving: [`Refused::Incomplete`] while its bytes can
/// still become `HTTP/` DIGIT `.` DIGIT, [`Refused::Malformed`] as soon as
/// they cannot.
fn incomplete_unless_invalid(version: &[u8]) -> Refused<'static> {
    const PATTERN: &[u8] = b"HTTP/0.0";
    let fits = version.len() <= PATTERN.len()
        && version.iter().zip(PATTERN).all(|(&b, &p)| match p {
            b'0' => b.is_ascii_digit(),
            _ => b == p,
        });
    if fits {
        Refused::Incomplete
    } else {
        Refused::Malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let higher = |line_len| Refused::HigherMinor {
            method: "GET",
            target: "/a",
            line_len,
        };
        #[rustfmt::skip]
        let cases: &[(&str, Refused<'_>)] = &[
            ("GET /a HTTP/1.2\r\nHost: a\r\n\r\n", higher(17)),
            ("GET /a HTTP/1.9\nHost: a\n\n", higher(16)),
            ("\r\nGET /a HTTP/1.2\r\n", higher(19)),
            ("GET /a HTTP/1.2\r\n", higher(17)),
            ("GET /a HTTP/2.0\r\n\r\n", Refused::OtherMajor),
            ("GET /a HTTP/3.0\r\n", Refused::OtherMajor),
            ("GET /a HTTP/0.9\r\n\r\n", Refused::OtherMajor),
            ("GET /a HTTP/1.\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/11\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/3\r\n", Refused::Malformed),
            ("GET /a HTTP/1. 1\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/1.2 \r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/1.23\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/12.0\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/2.0\rX\r\n", Refused::Malformed),
            ("GET /a http/1.2\r\n\r\n", Refused::Malformed),
            ("GET /a HTTP/x.0", Refused::Malformed), // before the line ends
            ("GET /a HTTP/1.2x", Refused::Malformed),
            ("GET /a HTTP/1.2", Refused::Incomplete),
            ("GET /a HTTP/2.0\r", Refused::Incomplete),
            ("GET /a HTTP/2", Refused::Incomplete),
            ("GET /a", Refused::Malformed),
        ];
        for (line, want) in cases {
            assert_eq!(classify(line.as_bytes()), *want, "{line:?}");
        }
    }
}
