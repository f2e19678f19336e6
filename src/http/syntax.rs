//! Byte classes of the HTTP grammar (RFC 9110 §5.5, §5.6), shared by the
//! parsers that check bytes one at a time, and [`trim_ows`] for those that
//! take a field value whole.
//!
//! Each class is a `match` on one byte, so the chunked decoder's per-byte
//! loop stays branch-light and allocation-free.

/// tchar, the bytes of a token (RFC 9110 §5.6.2): method, field name,
/// chunk-ext-name, unquoted chunk-ext-val.
pub fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// SP / HTAB, the bytes of OWS and BWS (RFC 9110 §5.6.3).
pub fn is_ws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t')
}

/// The slice without its leading and trailing OWS (RFC 9110 §5.6.3:
/// `OWS = *( SP / HTAB )`), the bytes [`is_ws`] accepts: list elements and
/// field values are compared without it.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Bytes of a field value: field-vchar, SP, HTAB (RFC 9110 §5.5);
/// field-vchar = VCHAR / obs-text. CR, LF and NUL are not among them.
pub fn is_field_byte(byte: u8) -> bool {
    matches!(byte, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

/// qdtext, the bytes that stand for themselves inside a quoted-string
/// (RFC 9110 §5.6.4): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
pub fn is_qdtext(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// The byte after a backslash in a quoted-pair (RFC 9110 §5.6.4):
/// HTAB / SP / VCHAR / obs-text.
pub fn is_quoted_pair_byte(byte: u8) -> bool {
    is_field_byte(byte)
}

/// Value of an ASCII hex digit (RFC 5234 HEXDIG, case-insensitive as
/// RFC 9112 §7.1 reads it); None for any other byte.
pub fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each class, checked against its ABNF over all 256 byte values.
    #[test]
    fn classes_match_the_abnf() {
        for b in 0..=255u8 {
            let vchar = (0x21..=0x7e).contains(&b);
            let obs_text = b >= 0x80;
            let delimiter = b"\"(),/:;<=>?@[\\]{}".contains(&b);
            assert_eq!(is_tchar(b), vchar && !delimiter, "tchar {b:#x}");
            assert_eq!(is_ws(b), b == b' ' || b == b'\t', "ws {b:#x}");
            let field = vchar || obs_text || b == b' ' || b == b'\t';
            assert_eq!(is_field_byte(b), field, "field {b:#x}");
            assert_eq!(is_quoted_pair_byte(b), field, "quoted-pair {b:#x}");
            assert_eq!(
                is_qdtext(b),
                field && b != b'"' && b != b'\\',
                "qdtext {b:#x}"
            );
            let hex = b.is_ascii_hexdigit();
            assert_eq!(hex_value(b).is_some(), hex, "hex {b:#x}");
        }
        assert_eq!(
            (hex_value(b'0'), hex_value(b'a'), hex_value(b'F')),
            (Some(0), Some(10), Some(15))
        );
    }

    /// OWS is SP and HTAB only, taken from both ends and nowhere else.
    #[test]
    fn trim_ows_strips_sp_and_htab_at_both_ends_only() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b" \t ", b""),
            (b"chunked", b"chunked"),
            (b" \tclose\t ", b"close"),
            (b"keep-alive ,", b"keep-alive ,"),
            (b"a b", b"a b"),
            // CR, LF, VT and FF are not OWS (unlike `<[u8]>::trim_ascii`).
            (b"\r5\n", b"\r5\n"),
            (b"\x0b5\x0c", b"\x0b5\x0c"),
        ];
        for &(input, want) in cases {
            assert_eq!(trim_ows(input), want, "{input:?}");
        }
    }
}
