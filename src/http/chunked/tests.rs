//! The chunked grammar rule by rule (RFC 9112 §7.1, §7.1.1, §7.1.2): each case
//! is fed whole, cut at every offset and byte by byte, with a request
//! pipelined after it that must never be taken as body.

use super::*;
use crate::http::body::tests::{check_every_split, MAX, NEXT};
use crate::http::request::BodyFraming;
use ParseError as E;

/// A chunk-size line `1;` plus a token name, with `ext_bytes` extension bytes
/// (";" included), then its CRLF and one byte of data with its CRLF.
fn chunk_with_ext(ext_bytes: usize) -> Vec<u8> {
    let mut line = b"1;".to_vec();
    line.resize(1 + ext_bytes, b'e');
    line.extend_from_slice(b"\r\nx\r\n");
    line
}

/// A trailer section of exactly `total_bytes`, final CRLF included.
fn trailer_of(total_bytes: usize) -> Vec<u8> {
    let mut t = b"X: ".to_vec();
    t.resize(total_bytes - 4, b'v');
    t.extend_from_slice(b"\r\n\r\n");
    t
}

/// Bodies the grammar allows; each must end exactly at its last byte.
#[test]
fn valid_bodies_end_exactly() {
    let fixed: &[&[u8]] = &[
        b"5\r\nhello\r\n0\r\n\r\n",
        b"0\r\n\r\n",
        b"A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"00a\r\n0123456789\r\n000\r\n\r\n",
        // Chunk data is any octets, CR and LF included.
        b"3\r\n\r\n\r\r\n0\r\n\r\n",
        b"2\r\n\n\n\r\n0\r\n\r\n",
        // §7.1.1 extensions: name, name=token, name=quoted-string, BWS.
        b"5;name=value;x=\"q;s\"\r\nhello\r\n0;last\r\n\r\n",
        b"5 ;a\r\nhello\r\n0\t; b\r\n\r\n",
        b"1;a = b ; c\t=\t\"d\"\r\nx\r\n0\r\n\r\n",
        b"1;a;b;c\r\nx\r\n0\r\n\r\n",
        b"1;a=\"\"\r\nx\r\n0\r\n\r\n",
        b"1;a=\"\\\"\\\\ \t\"\r\nx\r\n0\r\n\r\n",
        b"1;a=\"\x80\xff\" ;b\r\nx\r\n0\r\n\r\n",
        b"1;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nx\r\n0\r\n\r\n",
        // §7.1.2 trailer fields by field syntax.
        b"0\r\nX-Trailer: 1\r\nY:\r\nZ: a b\r\n\r\n",
        b"0\r\nX:\t v \t\r\nY:\x80\xff\r\n\r\n",
        b"3e8\r\n",
    ];
    let mut cases: Vec<Vec<u8>> = fixed.iter().map(|b| b.to_vec()).collect();
    // The 3e8 case above is a prefix: its data makes it exactly MAX.
    if let Some(last) = cases.last_mut() {
        last.extend_from_slice(&[b'd'; MAX as usize]);
        last.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    // Extension bytes up to the bound per line, and per body.
    cases.push([chunk_with_ext(MAX_CHUNK_EXT_BYTES).as_slice(), b"0\r\n\r\n"].concat());
    let per_body = MAX_BODY_EXT_BYTES / MAX_CHUNK_EXT_BYTES;
    cases.push(
        [
            chunk_with_ext(MAX_CHUNK_EXT_BYTES).repeat(per_body),
            b"0\r\n\r\n".to_vec(),
        ]
        .concat(),
    );
    // A trailer section of exactly its bound.
    cases.push([b"0\r\n".as_slice(), &trailer_of(MAX_TRAILER_BYTES)].concat());
    for body in cases {
        let input = [body.as_slice(), NEXT].concat();
        check_every_split(BodyFraming::Chunked, &input, Ok(Some(body.len())));
    }
}

/// Prefixes of a valid body are not errors: the decoder waits for more.
#[test]
fn incomplete_bodies_wait() {
    let body: &[u8] = b"5;a=\"b\"\r\nhello\r\n0\r\nX: y\r\n\r\n";
    for end in 0..body.len() {
        check_every_split(BodyFraming::Chunked, &body[..end], Ok(None));
    }
}

/// Every CR and LF rule: each line of a chunked body ends with CRLF, and a
/// bare LF or bare CR anywhere outside chunk data is refused (§7.1; the
/// bare-LF leniency of §2.2 is for the start-line and header fields only).
#[test]
fn bare_lf_and_bare_cr_are_refused() {
    let cases: &[&[u8]] = &[
        // chunk-size line
        b"1\nZ\r\n0\r\n\r\n",
        b"1;a\nZ\r\n0\r\n\r\n",
        b"1;a=b\nZ\r\n0\r\n\r\n",
        b"1;a=\"b\"\nZ\r\n0\r\n\r\n",
        b"1;a=\"b\nc\"\r\nZ\r\n0\r\n\r\n",
        b"1\rZ\r\n0\r\n\r\n",
        b"1\r\r\nZ\r\n0\r\n\r\n",
        b"1;a\rb\r\nZ\r\n0\r\n\r\n",
        b"1;a=\"b\rc\"\r\nZ\r\n0\r\n\r\n",
        b"0\n\r\n",
        b"\n1\r\nZ\r\n0\r\n\r\n",
        // after chunk data
        b"1\r\na\n0\r\n\r\n",
        b"1\r\na\r0\r\n\r\n",
        b"1\r\na\n\r\n0\r\n\r\n",
        // trailer section and final line
        b"0\r\n\n",
        b"0\r\n\r\r",
        b"0\r\n\rX",
        b"0\r\nX: 1\n\r\n",
        b"0\r\nX: 1\r\n\n",
        b"0\r\nX: a\rb\r\n\r\n",
        b"0\r\nX\n: 1\r\n\r\n",
    ];
    for input in cases {
        check_every_split(BodyFraming::Chunked, input, Err(E::BadChunk));
    }
}

/// chunk-size = 1*HEXDIG, at most 16 digits, then the extensions or CRLF.
#[test]
fn bad_chunk_sizes_are_refused() {
    let cases: &[&[u8]] = &[
        b"zz\r\n",
        b"\r\n",
        b";a\r\n",
        b" 1\r\n",
        b"-1\r\n",
        b"+1\r\n",
        b"0x5\r\n",
        b"1 \r\n",
        b"1\t\r\n",
        b"1,a\r\n",
        b"1=a\r\n",
        b"00000000000000001\r\n",
        b"1\r\nab\r\n",
    ];
    for input in cases {
        check_every_split(BodyFraming::Chunked, input, Err(E::BadChunk));
    }
}

/// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
/// chunk-ext-val = token / quoted-string (§7.1.1, RFC 9110 §5.6).
#[test]
fn bad_extensions_are_refused() {
    let cases: &[&[u8]] = &[
        b"1;\r\n",
        b"1; \r\n",
        b"1;a \r\n",
        b"1;a=\r\n",
        b"1;a= \r\n",
        b"1;a=b \r\n",
        b"1;a=\"b\" \r\n",
        b"1;=b\r\n",
        b"1;;a\r\n",
        b"1;a;\r\n",
        b"1;a b\r\n",
        b"1;a=b c\r\n",
        b"1;a=b=c\r\n",
        b"1;a==b\r\n",
        b"1;a@b\r\n",
        b"1;a=b@c\r\n",
        b"1;a=\"b\"c\r\n",
        b"1;a=\"b\r\n",
        b"1;a=b\"c\"\r\n",
        b"1;a=\"\x01\"\r\n",
        b"1;a=\"\x7f\"\r\n",
        b"1;a=\"\\\x01\"\r\n",
        b"1;a=\"\\\r\n",
        b"1;\0\r\n",
        b"1;a\0\r\n",
        b"1;\x80\r\n",
        b"1;a=\x80\r\n",
    ];
    for input in cases {
        check_every_split(BodyFraming::Chunked, input, Err(E::BadChunk));
    }
}

/// Extension bytes are bounded per chunk-size line and per body.
#[test]
fn extensions_past_their_bounds_are_refused() {
    let over_line = chunk_with_ext(MAX_CHUNK_EXT_BYTES + 1);
    check_every_split(BodyFraming::Chunked, &over_line, Err(E::ChunkExtTooLarge));
    // Lines each within the bound whose sum is one byte past the body's.
    let per_body = MAX_BODY_EXT_BYTES / MAX_CHUNK_EXT_BYTES;
    let over_body = [
        chunk_with_ext(MAX_CHUNK_EXT_BYTES).repeat(per_body),
        b"0;\r\n".to_vec(),
    ]
    .concat();
    check_every_split(BodyFraming::Chunked, &over_body, Err(E::ChunkExtTooLarge));
}

/// trailer-section = *( field-line CRLF ) by the field syntax of §5, bounded.
#[test]
fn bad_trailers_are_refused() {
    let cases: &[&[u8]] = &[
        b"0\r\nX: 1\r\n Y\r\n\r\n",
        b"0\r\n\tX: 1\r\n\r\n",
        b"0\r\nX : 1\r\n\r\n",
        b"0\r\nX\r\n\r\n",
        b"0\r\n: x\r\n\r\n",
        b"0\r\nX@: 1\r\n\r\n",
        b"0\r\nX: \x01\r\n\r\n",
        b"0\r\nX: \x7f\r\n\r\n",
        b"0\r\nX: \0\r\n\r\n",
    ];
    for input in cases {
        check_every_split(BodyFraming::Chunked, input, Err(E::BadChunk));
    }
    let over = [b"0\r\n".as_slice(), &trailer_of(MAX_TRAILER_BYTES + 1)].concat();
    check_every_split(BodyFraming::Chunked, &over, Err(E::TrailerTooLarge));
}

/// The sum of chunk sizes is bounded by the body limit, refused before any
/// of the chunk's data is read.
#[test]
fn bodies_past_the_limit_are_refused() {
    let cases: Vec<Vec<u8>> = vec![
        b"3e9\r\n".to_vec(),
        b"1000000000000000\r\n".to_vec(),
        b"ffffffffffffffff\r\n".to_vec(),
        [b"3e7\r\n".as_slice(), &[b'x'; 999], b"\r\n2\r\n"].concat(),
    ];
    for input in cases {
        check_every_split(BodyFraming::Chunked, &input, Err(E::BodyTooLarge));
    }
}
