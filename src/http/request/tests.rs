//! The request-head parser by cases (RFC 9112 §3, §5, §6.3; RFC 9110 §2.5,
//! §7.2): each error with its status, good requests and every prefix of them,
//! version answers that do not depend on where the head was cut, the limits.

use super::*;
use ParseError as E;

const LIMITS: Limits = Limits {
    max_head_bytes: 512,
    max_headers: 8,
    max_uri_bytes: 64,
    max_body_bytes: 1000,
};

fn parse(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    parse_head(buf, &LIMITS).map(|h| h.map(|h| h.head_len))
}

/// An HTTP/1.1 POST with Host and the given field lines.
fn post(fields: &str) -> String {
    format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n")
}

/// Whole requests that are refused.
#[rustfmt::skip]
const RAW_ERRORS: &[(&str, ParseError, u16)] = &[
    ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", E::Malformed, 400), // obs-fold
    ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tfold\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", E::Malformed, 400), // bare CR
    ("GET / HTTP/1.1\rHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\nHost: a\r\n\rX", E::Malformed, 400),
    ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", E::Malformed, 400), // space before colon
    ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\n: a\r\n\r\n", E::Malformed, 400),
    ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTXP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / http/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET /é HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.1\r\n\r\n", E::MissingHost, 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", E::DuplicateHost, 400),
    ("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", E::DuplicateHost, 400),
    ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", E::TransferEncodingInHttp10, 400),
    ("GET /uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu",
        E::UriTooLong, 414),
    ("GET / HTTP/1.1\r\nA:\r\nB:\r\nC:\r\nD:\r\nE:\r\nF:\r\nG:\r\nH:\r\nI:\r\n",
        E::TooManyHeaders, 431), // 9 field lines, max_headers 8
    ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", E::UnsupportedVersion, 505),
    ("GET / HTTP/3.0\r\n", E::UnsupportedVersion, 505), // before the head ends
    ("GET / HTTP/0.9\r\n\r\n", E::UnsupportedVersion, 505),
    ("GET / HTTP/3\r\n", E::Malformed, 400), // not DIGIT "." DIGIT (§2.3)
    ("GET / HTTP/1.\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/11\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1. 1\r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.2 \r\nHost: a\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.2\r\n\r\n", E::MissingHost, 400), // HTTP/1.1 rules
    ("GET / HTTP/1.2\r\nHost: a\r\nX : b\r\n\r\n", E::Malformed, 400),
    ("GET / HTTP/1.2\r\nA:\r\nB:\r\nC:\r\nD:\r\nE:\r\nF:\r\nG:\r\nH:\r\nI:\r\n",
        E::TooManyHeaders, 431),
    ("GET /é HTTP/1.2\r\nHost: a\r\n\r\n", E::Malformed, 400),
];

/// Field lines that make an otherwise good POST (see [`post`]) refused.
#[rustfmt::skip]
const FIELD_ERRORS: &[(&str, ParseError, u16)] = &[
    ("Transfer-Encoding:\r\n", E::Malformed, 400),
    ("Transfer-Encoding: chunked, chunked\r\n", E::Malformed, 400),
    ("Content-Length: x\r\n", E::InvalidContentLength, 400),
    ("Content-Length:\r\n", E::InvalidContentLength, 400),
    ("Content-Length: +5\r\n", E::InvalidContentLength, 400),
    ("Content-Length: -1\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 1 2\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 18446744073709551616\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 5, 6\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 5,\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 5\r\nContent-Length: 6\r\n", E::InvalidContentLength, 400),
    ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        E::ContentLengthWithTransferEncoding, 400),
    ("Transfer-Encoding: chunked, gzip\r\n", E::ChunkedNotFinal, 400),
    ("Transfer-Encoding: gzip\r\n", E::ChunkedNotFinal, 400),
    ("Transfer-Encoding: chunked;x=1\r\n", E::ChunkedNotFinal, 400),
    ("Transfer-Encoding: gzip, chunked\r\n", E::UnsupportedTransferCoding, 501),
    ("Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n",
        E::UnsupportedTransferCoding, 501),
    ("Content-Length: 1001\r\n", E::BodyTooLarge, 413),
];

#[test]
fn errors_and_statuses() {
    let raw = RAW_ERRORS
        .iter()
        .map(|&(input, e, status)| (input.to_owned(), e, status));
    let fields = FIELD_ERRORS
        .iter()
        .map(|&(fields, e, status)| (post(fields), e, status));
    for (input, want, status) in raw.chain(fields) {
        assert_eq!(parse(input.as_bytes()), Err(want), "{input:?}");
        assert_eq!((want.status(), want.reason().is_empty()), (status, false));
        assert!(!want.message().is_empty());
    }
    assert_eq!(parse(&[b'a'; 600]), Err(E::HeadTooLarge));
    assert_eq!((E::HeadTooLarge.status(), E::BadChunk.status()), (431, 400));
    assert_eq!(E::HeadTooLarge.reason(), "Request Header Fields Too Large");
}

/// A version is judged when its line ends (RFC 9112 §2.3): before that,
/// every prefix of these requests waits for more or already has the
/// final answer, never another one.
#[test]
fn version_answers_do_not_depend_on_the_cut() {
    #[rustfmt::skip]
    let cases = [
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", E::UnsupportedVersion),
        ("GET / HTTP/0.9\r\n\r\n", E::UnsupportedVersion),
        ("GET / HTTP/1.\r\nHost: a\r\n\r\n", E::Malformed),
        ("GET / HTTP/11\r\nHost: a\r\n\r\n", E::Malformed),
        ("GET / HTTP/1. 1\r\nHost: a\r\n\r\n", E::Malformed),
        ("GET / HTTP/2.01\r\nHost: a\r\n\r\n", E::Malformed),
    ];
    for (input, want) in cases {
        assert_eq!(parse(input.as_bytes()), Err(want), "{input:?}");
        for cut in 0..input.len() {
            let got = parse(input.as_bytes().get(..cut).unwrap_or_default());
            assert!(
                got == Ok(None) || got == Err(want),
                "{input:?} cut at {cut}: {got:?}"
            );
        }
    }
}

/// A target over the limit is 414 at every cut, whatever the rest of the head
/// holds: a malformed field line, too many fields, another HTTP version.
/// Found by AFL++ (`fuzz/afl/run.sh connection`): fed whole, the first case
/// was 400; fed in pieces, 414.
#[test]
fn a_long_target_is_414_at_every_cut() {
    let limits = Limits {
        max_uri_bytes: 64,
        max_headers: 2,
        ..LIMITS
    };
    let long = format!("GET /{}", "u".repeat(64));
    let cases = [
        format!("{long} HTTP/1.1\r\nHost: a\r\nt in /1 HTTP/1.1\r\n\r\n"),
        format!("{long} HTTP/1.1\r\nA: 1\r\nB: 2\r\nHost: a\r\n\r\n"),
        format!("{long} HTTP/2.0\r\nHost: a\r\n\r\n"),
        format!("t {} HTTP/1.1\r\nHost:  a\r\n\r\n", "A".repeat(65)),
        // A byte no target may hold, after the first 65 target bytes.
        format!("{long}\x7fu HTTP/1.1\r\nHost: a\r\n\r\n"),
    ];
    for input in &cases {
        for cut in long.len()..=input.len() {
            let got = parse_head(input.as_bytes().get(..cut).unwrap_or_default(), &limits);
            assert_eq!(
                got.map(|h| h.map(|h| h.head_len)),
                Err(E::UriTooLong),
                "{input:?} cut at {cut}"
            );
        }
    }
}

/// An error before the target's first `max_uri_bytes + 1` bytes (in the
/// method, or a byte no target may hold) is found before the target is long
/// enough to refuse: 400 whether the head arrives whole or in pieces. (The
/// fuzzer's second finding: whole heads got 414, heads in pieces 400.)
#[test]
fn an_error_before_a_long_target_is_400_at_every_cut() {
    let limits = Limits {
        max_uri_bytes: 64,
        max_headers: 2,
        ..LIMITS
    };
    let cases = [
        format!("G:T /{} HTTP/1.1\r\nHost: a\r\n\r\n", "u".repeat(80)),
        format!(
            "GET /{}\x7f{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "u".repeat(10),
            "u".repeat(80)
        ),
        format!(
            "GET /{}\x01{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "u".repeat(63),
            "u".repeat(80)
        ),
    ];
    for input in &cases {
        let error_at = input
            .bytes()
            .position(|b| b == b':' || b == 0x7f || b == 0x01);
        let first = error_at.unwrap_or_default() + 1;
        for cut in first..=input.len() {
            let got = parse_head(input.as_bytes().get(..cut).unwrap_or_default(), &limits);
            assert_eq!(
                got.map(|h| h.map(|h| h.head_len)),
                Err(E::Malformed),
                "{input:?} cut at {cut}"
            );
        }
    }
}

/// Method, path, version, "ka" if keep-alive, framing, "100" if expect_continue.
fn summary(h: &RequestHead<'_>) -> String {
    let ka = if h.keep_alive { " ka" } else { "" };
    let expect = if h.expect_continue { " 100" } else { "" };
    format!(
        "{:?} {} {:?}{ka} {:?}{expect}",
        h.method, h.path, h.version, h.body
    )
}

/// Whole requests that are accepted, with their [`summary`].
#[rustfmt::skip]
const RAW_GOOD: &[(&str, &str)] = &[
    ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "Get / Http11 ka None"),
    ("GET / HTTP/1.0\r\n\r\n", "Get / Http10 None"),
    ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "Get / Http10 ka None"),
    ("GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", "Get / Http10 None"),
    ("GET / HTTP/1.0\r\nConnection: x\r\nConnection: KEEP-ALIVE\r\n\r\n",
        "Get / Http10 ka None"),
    ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "Get / Http11 None"),
    ("GET / HTTP/1.1\r\nHost: a\r\nConnection: x ,CLOSE\r\n\r\n", "Get / Http11 None"),
    ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "Get / Http11 ka None"),
    ("HEAD /x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", "Head /x Http11 ka None"),
    ("GET http://h:80/p/q?x HTTP/1.1\r\nHost: h\r\n\r\n", "Get /p/q Http11 ka None"),
    ("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n", "Get / Http11 ka None"),
    ("GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n", "Get / Http11 ka None"),
    ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "Options * Http11 ka None"),
    ("DELETE / HTTP/1.1\nHost: a\n\n", "Delete / Http11 ka None"), // bare LF (§2.2)
    ("\r\n\nPATCH / HTTP/1.1\r\nHost: a\r\n\r\n", "Patch / Http11 ka None"), // §2.2
    ("TRACE / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "Trace / Http11 ka None"),
    ("get / HTTP/1.1\r\nHost:\r\n\r\n", "Other / Http11 ka None"),
    ("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        "Put / Http10 Length(3)"),
    // A higher HTTP/1 minor version is served as HTTP/1.1 (RFC 9110 §2.5).
    ("GET /x?q HTTP/1.2\r\nHost: a\r\n\r\n", "Get /x Http11 ka None"),
    ("\r\nGET / HTTP/1.9\nHost: a\nConnection: close\n\n", "Get / Http11 None"),
    ("POST / HTTP/1.5\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Post / Http11 ka Chunked"),
];

/// Field lines of accepted POSTs (see [`post`]), with their [`summary`].
#[rustfmt::skip]
const FIELD_GOOD: &[(&str, &str)] = &[
    ("Content-Length: 5\r\n", "Post / Http11 ka Length(5)"),
    ("content-length: 1000\r\n", "Post / Http11 ka Length(1000)"),
    ("Content-Length: 5, 5\r\nContent-Length: 005\r\n", "Post / Http11 ka Length(5)"),
    ("Transfer-Encoding: Chunked\r\n", "Post / Http11 ka Chunked"),
    ("Transfer-Encoding: , chunked ,\r\n", "Post / Http11 ka Chunked"),
    ("Expect: 100-Continue\r\nContent-Length: 3\r\n", "Post / Http11 ka Length(3) 100"),
    ("Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n", "Post / Http11 ka Chunked 100"),
    ("Expect: 100-continue\r\nContent-Length: 0\r\n", "Post / Http11 ka Length(0)"),
    ("Expect: 100-continue\r\n", "Post / Http11 ka None"),
];

#[test]
fn good_requests_and_every_prefix() {
    let raw = RAW_GOOD
        .iter()
        .map(|&(input, want)| (input.to_owned(), want));
    let fields = FIELD_GOOD
        .iter()
        .map(|&(fields, want)| (post(fields), want));
    for (input, want) in raw.chain(fields) {
        let head = parse_head(input.as_bytes(), &LIMITS);
        let got = head.map(|h| h.map(|h| (summary(&h), h.head_len)));
        assert_eq!(got, Ok(Some((want.to_owned(), input.len()))), "{input:?}");
        for cut in 0..input.len() {
            let prefix = input.as_bytes().get(..cut).unwrap_or_default();
            assert_eq!(parse(prefix), Ok(None), "{input:?} cut at {cut}");
        }
    }
}

#[test]
fn head_len_excludes_what_follows() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n".to_vec();
    assert_eq!(parse(&buf), Ok(Some(27)));
    buf.resize(4096, b'x'); // more than max_head_bytes buffered after the head
    assert_eq!(parse(&buf), Ok(Some(27)));
}

type LimitCase = (usize, usize, String, Result<Option<usize>, ParseError>);

#[test]
fn limits() {
    let head = |pad: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "p".repeat(pad)
        )
    };
    let target = |len: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "u".repeat(len - 1));
    let cut = |s: String, n: usize| s.get(..n).unwrap_or_default().to_owned();
    let (n, m) = (head(5).len(), target(64).len());
    // (max_head_bytes, max_uri_bytes, input, head_len or None = incomplete)
    #[rustfmt::skip]
    let cases: &[LimitCase] = &[
        (n, 64, head(5), Ok(Some(n))),
        (n - 1, 64, head(5), Err(E::HeadTooLarge)),
        (n, 64, cut(head(5), n - 1), Ok(None)),
        (n - 1, 64, cut(head(5), n - 1), Err(E::HeadTooLarge)),
        (512, 64, target(64), Ok(Some(m))),
        (512, 64, target(65), Err(E::UriTooLong)),
        (512, 64, cut(target(65), 70), Err(E::UriTooLong)), // before the head is complete
        (512, 64, cut(target(64), 69), Ok(None)),
        (60, 1000, cut(target(100), 100), Err(E::HeadTooLarge)),
    ];
    for (i, (max_head_bytes, max_uri_bytes, input, want)) in cases.iter().enumerate() {
        let (max_head_bytes, max_uri_bytes) = (*max_head_bytes, *max_uri_bytes);
        let limits = Limits {
            max_head_bytes,
            max_uri_bytes,
            ..LIMITS
        };
        let got = parse_head(input.as_bytes(), &limits).map(|h| h.map(|h| h.head_len));
        assert_eq!(got, *want, "case {i}");
    }
    let many = |n: usize| {
        let fields: String = (0..n).map(|i| format!("H{i}: v\r\n")).collect();
        format!("GET / HTTP/1.1\r\n{fields}Host: a\r\n\r\n")
    };
    for max_headers in [64, 1000] {
        let limits = Limits {
            max_head_bytes: 4096,
            max_headers,
            ..LIMITS
        };
        let ok = parse_head(many(63).as_bytes(), &limits).map(|h| h.is_some());
        assert_eq!(ok, Ok(true)); // 64 field lines
        let err = parse_head(many(64).as_bytes(), &limits).map(|h| h.is_some());
        assert_eq!(err, Err(E::TooManyHeaders)); // 65 field lines
    }
}
