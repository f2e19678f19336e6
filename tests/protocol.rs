//! HTTP/1.1 wire behaviour, in raw bytes over TCP: pipelining, partial
//! reads, body framing, limits, persistence, timeouts and 100-continue.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// 100 pipelined requests in one write come back as 100 responses in request
/// order (data requests interleaved with health checks).
#[test]
fn pipelined_requests_answered_in_order() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let mut c = Client::connect(server.addr());
    let is_health = |i: usize| i % 10 == 9;
    let mut batch = String::new();
    for i in 0..100 {
        if is_health(i) {
            batch.push_str(&get_request("/api/health"));
        } else {
            batch.push_str(&get_request(&format!("/api/data/client-{i}")));
        }
    }
    c.send(&batch);
    for i in 0..100 {
        let r = c.read();
        assert_eq!(r.status, 200, "response {i}: {r:?}");
        let v = r.json();
        if is_health(i) {
            assert_eq!(v["status"], "healthy", "response {i}: {v}");
        } else {
            assert_eq!(v["clientId"], format!("client-{i}"), "response {i}");
        }
    }
}

/// A request split at any byte offset into two TCP segments still parses:
/// a GET, and a chunked POST whose body is framed and skipped so that the
/// GET after it is answered too.
#[test]
fn requests_split_at_every_offset() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let pause = Duration::from_millis(2);

    let get = b"GET /api/data/split-test HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";
    let mut c = Client::connect(server.addr());
    for k in 1..get.len() {
        c.send(&get[..k]);
        thread::sleep(pause); // forces a separate segment (TCP_NODELAY is set)
        c.send(&get[k..]);
        let r = c.read();
        assert_eq!(r.status, 200, "split at {k}: {r:?}");
        assert_eq!(r.json()["clientId"], "split-test", "split at {k}");
    }

    let post: &[u8] = b"POST /api/data/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\nhello\r\n0\r\n\r\n";
    let next = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut c = Client::connect(server.addr());
    for k in 1..post.len() {
        c.send(&post[..k]);
        thread::sleep(pause);
        c.send([&post[k..], next.as_slice()].concat());
        let r = c.read();
        assert_eq!(r.status, 405, "split at {k}: {r:?}");
        let r = c.read();
        assert_eq!(r.status, 200, "split at {k}: {r:?}");
        assert_eq!(r.json()["status"], "healthy", "split at {k}");
    }
}

/// A Content-Length body is skipped exactly: the GET pipelined right after
/// it is answered, not mistaken for body or garbage.
#[test]
fn content_length_body_keeps_pipeline_in_sync() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    c.send(
        "POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world\
         GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let r = c.read();
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("Connection"), None);
    let r = c.read();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "healthy");
}

/// Sends `request` on a new connection and expects responses with
/// `statuses`; the last one must carry `Connection: close`, be a JSON error,
/// and be followed by the server closing the connection.
fn expect_refused(server: &Server, name: &str, request: &[u8], statuses: &[u16]) {
    let mut c = Client::connect(server.addr());
    c.send(request);
    let (last, before) = statuses.split_last().expect("at least one status");
    for &status in before {
        let r = c.read();
        assert_eq!(r.status, status, "{name}: {r:?}");
        assert_eq!(r.header("Connection"), None, "{name}: {r:?}");
    }
    let r = c.read();
    assert_eq!(r.status, *last, "{name}: {r:?}");
    assert_eq!(r.header("Connection"), Some("close"), "{name}: {r:?}");
    assert_json_error(&r);
    let rest = c.read_to_close();
    assert!(
        rest.is_empty(),
        "{name}: bytes after the final response: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// Every limit and framing error gets its status with `Connection: close`,
/// and the server then closes the connection.
#[test]
fn limits_and_framing_errors_close_the_connection() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let pad: String = (0..20)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(1000)))
        .collect();
    let big_head = format!("GET /api/health HTTP/1.1\r\nHost: x\r\n{pad}\r\n");
    let many: String = (0..64).map(|i| format!("H{i}: v\r\n")).collect();
    let many_headers = format!("GET /api/health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(8999));
    let post = |fields: &str| format!("POST /api/health HTTP/1.1\r\nHost: x\r\n{fields}\r\n");

    let cases: Vec<(&str, String, &[u16])> = vec![
        ("head over 16 KiB", big_head, &[431]),
        ("65 header lines", many_headers, &[431]),
        ("9000-byte URI", long_uri, &[414]),
        (
            "Content-Length over the limit",
            post("Content-Length: 2000000\r\n"),
            &[413],
        ),
        (
            "Content-Length with Transfer-Encoding",
            post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n",
            &[400],
        ),
        (
            "two different Content-Length",
            post("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!",
            &[400],
        ),
        (
            "Content-Length: abc",
            post("Content-Length: abc\r\n"),
            &[400],
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n"),
            &[501],
        ),
        (
            "chunked in HTTP/1.0",
            "POST /api/health HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned(),
            &[400],
        ),
        // The head is valid and answered at once; the body error follows.
        (
            "bad chunk size line",
            post("Transfer-Encoding: chunked\r\n") + "zz\r\n",
            &[400],
        ),
        (
            "obs-fold",
            "GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  continued\r\n\r\n".to_owned(),
            &[400],
        ),
        (
            "bare CR in a field value",
            "GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n".to_owned(),
            &[400],
        ),
        (
            "missing Host in HTTP/1.1",
            "GET /api/health HTTP/1.1\r\n\r\n".to_owned(),
            &[400],
        ),
        (
            "two Host fields",
            "GET /api/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".to_owned(),
            &[400],
        ),
        // RFC 9112 §2.3: a well-formed version of another major version is
        // 505 (RFC 9110 §15.6.6); one against the grammar is a bad request.
        (
            "HTTP/2.0",
            "GET /api/health HTTP/2.0\r\nHost: x\r\n\r\n".to_owned(),
            &[505],
        ),
        (
            "HTTP/1. (no minor digit)",
            "GET /api/health HTTP/1.\r\nHost: x\r\n\r\n".to_owned(),
            &[400],
        ),
        (
            "HTTP/11 (no dot)",
            "GET /api/health HTTP/11\r\nHost: x\r\n\r\n".to_owned(),
            &[400],
        ),
        ("garbage request line", "HELLO\r\n\r\n".to_owned(), &[400]),
    ];
    for (name, request, statuses) in cases {
        expect_refused(&server, name, request.as_bytes(), statuses);
    }
}

/// A chunked body whose chunk sizes add up past MAX_BODY_BYTES is refused
/// with 413 (after the head's own answer) and the connection closed.
#[test]
fn chunked_body_over_the_limit_is_413() {
    let server = Server::start(&[("WORKERS", "1"), ("MAX_BODY_BYTES", "1000")], &[]);
    let request =
        "POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n";
    expect_refused(&server, "chunk of 2048 bytes", request.as_bytes(), &[413]);
    // Exactly at the limit is fine, and the connection stays usable.
    let mut c = Client::connect(server.addr());
    let body = format!("3e8\r\n{}\r\n0\r\n\r\n", "x".repeat(1000));
    c.send(
        format!("POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
            + &get_request("/api/health"),
    );
    assert_eq!(c.read().status, 405);
    assert_eq!(c.read().status, 200);
}

/// Persistence (RFC 9112 §9.3): HTTP/1.1 stays open by default and closes on
/// `Connection: close`; HTTP/1.0 closes unless it asked for keep-alive, which
/// the response then confirms.
#[test]
fn keep_alive_semantics() {
    let server = Server::start(&[("WORKERS", "2")], &[]);

    let mut c = Client::connect(server.addr());
    let r = c.get("/api/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), None, "{r:?}");
    let r = c.get("/api/health");
    assert_eq!(r.status, 200, "second request on the same connection");

    let mut c = Client::connect(server.addr());
    c.send("GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
    assert!(c.read_to_close().is_empty());

    let mut c = Client::connect(server.addr());
    c.send("GET /api/health HTTP/1.0\r\n\r\n");
    let r = c.read();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
    assert!(c.read_to_close().is_empty());

    let mut c = Client::connect(server.addr());
    for _ in 0..2 {
        c.send("GET /api/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), Some("keep-alive"), "{r:?}");
    }
    c.send("GET /api/health HTTP/1.0\r\n\r\n");
    assert_eq!(c.read().header("Connection"), Some("close"));
    assert!(c.read_to_close().is_empty());
}

/// A higher HTTP/1 minor version is served as HTTP/1.1 (RFC 9110 §2.5):
/// `HTTP/1.2` gets its answer, the connection persists by HTTP/1.1 rules
/// (no `Connection` header, the next request on it answered), and
/// `Connection: close` closes it as it would in HTTP/1.1.
#[test]
fn higher_minor_version_is_served_as_http11() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    c.send("GET /api/data/minor-2 HTTP/1.2\r\nHost: x\r\n\r\n");
    let r = c.read();
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200), "{r:?}");
    assert_eq!(r.json()["clientId"], "minor-2");
    assert_eq!(r.header("Connection"), None, "{r:?}");
    c.send("GET /api/health HTTP/1.9\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
    assert!(c.read_to_close().is_empty());
}

/// A head that does not arrive within HEADERS_TIMEOUT_MS gets 408 with
/// `Connection: close`, then the server closes.
#[test]
fn headers_timeout_is_408() {
    let server = Server::start(&[("WORKERS", "1"), ("HEADERS_TIMEOUT_MS", "500")], &[]);
    let mut c = Client::connect(server.addr());
    c.set_read_timeout(Duration::from_secs(3));
    let started = Instant::now();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    let r = c.read();
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.reason, "Request Timeout");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_json_error(&r);
    assert!(c.read_to_close().is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "closed after {took:?}"
    );
}

/// An idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS
/// without any response bytes.
#[test]
fn idle_keep_alive_connection_is_closed() {
    let server = Server::start(&[("WORKERS", "1"), ("KEEP_ALIVE_TIMEOUT_MS", "300")], &[]);
    let mut c = Client::connect(server.addr());
    c.set_read_timeout(Duration::from_secs(3));
    assert_eq!(c.get("/api/health").status, 200);
    let idle_since = Instant::now();
    let rest = c.read_to_close();
    assert!(
        rest.is_empty(),
        "bytes on an idle connection: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let took = idle_since.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(2500),
        "closed after {took:?}"
    );
}

/// `Expect: 100-continue` with a body: `100 Continue` comes before the final
/// response, the body sent afterwards is skipped, and the connection goes on.
#[test]
fn expect_100_continue() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    c.send(
        "POST /api/health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let r = c.read();
    assert_eq!(
        (r.version.as_str(), r.status, r.reason.as_str()),
        ("HTTP/1.1", 100, "Continue"),
        "{r:?}"
    );
    assert!(r.headers.is_empty(), "{r:?}");
    c.send(String::from("hello") + &get_request("/api/health"));
    let r = c.read();
    assert_eq!(r.status, 405, "{r:?}");
    let r = c.read();
    assert_eq!(r.status, 200, "{r:?}");

    // Without a body there is nothing to continue: no 100.
    c.send("POST /api/health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.read().status, 405);
}

/// A body that turns out malformed after its request was answered (in the
/// same read, so the answer is still unsent) replaces that answer: the
/// client gets one 400, and the metrics count one request, as a 400.
#[test]
fn a_replaced_response_is_counted_once() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let total = |c: &mut Client| {
        let v = c.get("/api/metrics").json();
        (
            v["requests"]["total"].as_u64().expect("total"),
            v["requests"]["byStatus"]["400"].as_u64().unwrap_or(0),
        )
    };
    let mut metrics = Client::connect(server.addr());
    let (before, bad_before) = total(&mut metrics);
    expect_refused(
        &server,
        "bad chunk size line",
        b"POST /api/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        &[400],
    );
    let (after, bad_after) = total(&mut metrics);
    assert_eq!(after - before, 2, "the bad request and this metrics call");
    assert_eq!(bad_after - bad_before, 1);
}
