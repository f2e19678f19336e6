//! The chunked decoder by its grammar (RFC 9112 §7.1), against the real
//! server in raw bytes: one test per class of malformed body. Each sends a
//! chunked POST with the bad body and a GET pipelined after it in one write;
//! the POST's own answer is still unsent when the body turns out malformed, so
//! the error replaces it: exactly one response, the error with
//! `Connection: close`, then the connection closes and the pipelined GET is
//! never answered (a server that took the bad line differently would answer
//! it: that is the smuggling this prevents). Each class also sends the same
//! body made valid, which must be answered and keep the pipeline, so the
//! refusal is the grammar's and not an accident of the test.

mod common;

use common::*;

const HEAD: &str = "POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
const PIPELINED: &str = "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";

/// A server with one shard and the default limits.
fn server() -> Server {
    Server::start(&[("WORKERS", "1")], &[])
}

/// Bodies longer than this span several reads of the server (its read
/// buffer starts at 1 KiB), so the head's answer is sent before the error is
/// seen: then the connection just closes after it (one request, one response).
const ONE_READ_BYTES: usize = 1024;

/// `body` is refused with `status` (or, past one read, after the head's own
/// answer); the pipelined request is not answered.
fn expect_refused(server: &Server, name: &str, body: &[u8], status: u16) {
    let mut c = Client::connect(server.addr());
    c.send([HEAD.as_bytes(), body, PIPELINED.as_bytes()].concat());
    let r = c.read();
    if HEAD.len() + body.len() > ONE_READ_BYTES {
        assert_eq!(r.status, 405, "{name}: {r:?}");
    } else {
        assert_eq!(r.status, status, "{name}: {r:?}");
        assert_eq!(r.header("Connection"), Some("close"), "{name}: {r:?}");
        assert_json_error(&r);
    }
    let rest = c.read_to_close();
    assert!(
        rest.is_empty(),
        "{name}: answered past the bad body: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// `body` is framed and skipped: the POST gets its 405, the pipelined GET its 200.
fn expect_accepted(server: &Server, name: &str, body: &[u8]) {
    let mut c = Client::connect(server.addr());
    c.send([HEAD.as_bytes(), body, PIPELINED.as_bytes()].concat());
    let r = c.read();
    assert_eq!(r.status, 405, "{name}: {r:?}");
    let r = c.read();
    assert_eq!(r.status, 200, "{name}: pipelined request: {r:?}");
}

/// Each pair: a malformed body and the same body made valid.
fn check_class(cases: &[(&str, &[u8], &[u8])], status: u16) {
    let server = server();
    for &(name, bad, good) in cases {
        expect_refused(&server, name, bad, status);
        expect_accepted(&server, name, good);
    }
}

/// A chunk-size line ends with CRLF only: a bare LF after the size or inside
/// its extensions does not end it (RFC 9112 §7.1; §2.2's bare-LF leniency is
/// for the start-line and header fields).
#[test]
fn bare_lf_in_a_chunk_size_line_is_400() {
    check_class(
        &[
            (
                "after the size",
                b"1\nZ\r\n0\r\n\r\n",
                b"1\r\nZ\r\n0\r\n\r\n",
            ),
            (
                "after an extension",
                b"1;a\nZ\r\n0\r\n\r\n",
                b"1;a\r\nZ\r\n0\r\n\r\n",
            ),
            ("last-chunk", b"0\n\r\n", b"0\r\n\r\n"),
        ],
        400,
    );
}

/// chunk-data is followed by exactly CRLF (RFC 9112 §7.1).
#[test]
fn bare_lf_after_chunk_data_is_400() {
    check_class(
        &[("after data", b"1\r\nZ\n0\r\n\r\n", b"1\r\nZ\r\n0\r\n\r\n")],
        400,
    );
}

/// Trailer lines and the final empty line end with CRLF (RFC 9112 §7.1.2).
#[test]
fn bare_lf_in_the_trailer_section_is_400() {
    check_class(
        &[
            ("trailer field", b"0\r\nX: 1\n\r\n", b"0\r\nX: 1\r\n\r\n"),
            ("final line", b"0\r\n\n", b"0\r\n\r\n"),
        ],
        400,
    );
}

/// A CR not followed by LF, in any chunk line (RFC 9112 §2.2, §7.1).
#[test]
fn bare_cr_in_a_chunk_line_is_400() {
    check_class(
        &[
            ("size line", b"1\rZ\r\n0\r\n\r\n", b"1\r\nZ\r\n0\r\n\r\n"),
            ("after data", b"1\r\nZ\r0\r\n\r\n", b"1\r\nZ\r\n0\r\n\r\n"),
            ("trailer", b"0\r\nX: a\rb\r\n\r\n", b"0\r\nX: ab\r\n\r\n"),
        ],
        400,
    );
}

/// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS token / quoted-string ] )
/// (RFC 9112 §7.1.1).
#[test]
fn extensions_against_the_grammar_are_400() {
    check_class(
        &[
            (
                "empty name",
                b"1;\r\nZ\r\n0\r\n\r\n",
                b"1;a\r\nZ\r\n0\r\n\r\n",
            ),
            (
                "trailing BWS",
                b"1;a=b \r\nZ\r\n0\r\n\r\n",
                b"1;a=b ;c\r\nZ\r\n0\r\n\r\n",
            ),
            (
                "space in a token",
                b"1;a=b c\r\nZ\r\n0\r\n\r\n",
                b"1;a=\"b c\"\r\nZ\r\n0\r\n\r\n",
            ),
            (
                "unterminated quoted-string",
                b"1;a=\"b\r\nZ\r\n0\r\n\r\n",
                b"1;a=\"b\"\r\nZ\r\n0\r\n\r\n",
            ),
            (
                "control byte",
                b"1;a=\x01\r\nZ\r\n0\r\n\r\n",
                b"1;a=\"\\\"\"\r\nZ\r\n0\r\n\r\n",
            ),
        ],
        400,
    );
}

/// Extension bytes are bounded per chunk-size line (4096) and per body
/// (16 KiB): one byte past either closes the connection (400 when the head's
/// answer is still unsent; these bodies span reads, so it was sent).
#[test]
fn extensions_past_their_bounds_are_400() {
    let chunk = |ext_bytes: usize| {
        let mut c = b"1;".to_vec();
        c.resize(1 + ext_bytes, b'e');
        c.extend_from_slice(b"\r\nZ\r\n");
        c
    };
    let line_over = [chunk(4097), b"0\r\n\r\n".to_vec()].concat();
    let line_max = [chunk(4096), b"0\r\n\r\n".to_vec()].concat();
    let body_over = [chunk(4096).repeat(4), b"0;\r\n\r\n".to_vec()].concat();
    let body_max = [chunk(4096).repeat(4), b"0\r\n\r\n".to_vec()].concat();
    check_class(
        &[
            ("per line", &line_over, &line_max),
            ("per body", &body_over, &body_max),
        ],
        400,
    );
}

/// Trailer fields follow the field syntax of RFC 9112 §5 (no obs-fold, no
/// whitespace before ":", a token name).
#[test]
fn trailer_fields_against_the_field_syntax_are_400() {
    check_class(
        &[
            (
                "obs-fold",
                b"0\r\nX: 1\r\n Y\r\n\r\n",
                b"0\r\nX: 1 Y\r\n\r\n",
            ),
            (
                "space before colon",
                b"0\r\nX : 1\r\n\r\n",
                b"0\r\nX: 1\r\n\r\n",
            ),
            ("no colon", b"0\r\nX\r\n\r\n", b"0\r\nX:\r\n\r\n"),
        ],
        400,
    );
}

/// The trailer section is bounded (8192 bytes with its final CRLF): past it
/// the connection closes (431 when the head's answer is still unsent).
#[test]
fn trailer_section_past_its_bound_is_431() {
    let trailer = |total_bytes: usize| {
        let mut t = b"0\r\nX: ".to_vec();
        t.resize(3 + total_bytes - 4, b'v');
        t.extend_from_slice(b"\r\n\r\n");
        t
    };
    check_class(&[("8193 bytes", &trailer(8193), &trailer(8192))], 431);
}
