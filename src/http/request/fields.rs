//! The header fields of one head, judged together: Host (RFC 9112 §3.2),
//! Content-Length and Transfer-Encoding into the body framing (§6.1, §6.3),
//! Connection options (§9.3) and `Expect: 100-continue` (RFC 9110 §10.1.1),
//! with the field-value syntax they need (lists, digits; OWS is trimmed by
//! `syntax::trim_ows`).

use super::head::{BodyFraming, Version};
use crate::http::parse_error::ParseError;
use crate::http::syntax::trim_ows;

/// Facts gathered from the header fields, judged together in [`Fields::framing`].
#[derive(Default)]
pub(super) struct Fields {
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
    /// A `close` connection option (RFC 9112 §9.3), read by the parser.
    pub(super) close: bool,
    /// A `keep-alive` connection option (HTTP/1.0 persistence), read by the parser.
    pub(super) keep_alive: bool,
    /// `Expect: 100-continue`, read by the parser.
    pub(super) expect_continue: bool,
}

impl Fields {
    /// Record one field line; names compare case-insensitively (RFC 9110 §5.1).
    pub(super) fn add(&mut self, name: &str, value: &[u8]) {
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
    pub(super) fn framing(
        &self,
        version: Version,
        max_body_bytes: u64,
    ) -> Result<BodyFraming, ParseError> {
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

/// Elements of a comma-separated list, OWS trimmed, empty ones skipped (RFC 9110 §5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
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
    HOST_BYTES[usize::from(b)]
}

/// [`is_host_byte`] as a table: one load per byte of every request's Host,
/// where searching the punctuation list cost a `memchr` per byte.
static HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"-._~!$&'()*+,;=:[]%";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::is_host_byte;

    /// The table holds exactly RFC 3986's reg-name, IP-literal and port bytes.
    #[test]
    fn host_bytes_are_the_rfc_3986_set() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b);
            assert_eq!(is_host_byte(b), expected, "byte {b:#04x}");
        }
    }
}
