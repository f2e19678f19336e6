//! Requests refused: unknown paths (404), methods an endpoint does not
//! allow (405), and admission control shedding what is over its limit (503).

use std::time::{Duration, Instant};

use crate::common::*;

/// Unknown paths are 404 `{"error":"Not Found"}`; other methods on known
/// paths are 405 with `Allow: GET, HEAD`.
#[test]
fn not_found_and_method_not_allowed() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    for path in ["/", "/nope", "/api/healthz", "/api/data"] {
        let r = get(server.addr(), path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.text(), r#"{"error":"Not Found"}"#);
    }
    for (method, path) in [
        ("POST", "/api/data/x"),
        ("DELETE", "/api/health"),
        ("PUT", "/api/metrics"),
    ] {
        let mut c = Client::connect(server.addr());
        c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        let r = c.read();
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(r.reason, "Method Not Allowed");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"), "{r:?}");
        assert_json_error(&r);
        // A 405 keeps the connection usable.
        assert_eq!(c.get("/api/health").status, 200);
    }
}

/// Admission control: with 2 requests allowed in flight and a 1.5 s origin,
/// 5 concurrent misses give exactly 2 × 200 and 3 × 503 (`Retry-After: 1`,
/// the seed's body), and the 503s do not wait for the origin.
#[test]
fn admission_control_sheds_excess_requests() {
    let server = Server::start(
        &[
            ("WORKERS", "1"),
            ("MAX_CONCURRENT_REQUESTS", "2"),
            ("ORIGIN_DELAY_MS", "1500"),
            ("CACHE_TTL_MS", "0"),
        ],
        &[],
    );
    let mut clients: Vec<Client> = (0..5).map(|_| Client::connect(server.addr())).collect();
    let sent = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send_get(&format!("/api/data/c{i}"));
    }
    let (mut ok, mut busy) = (0, 0);
    // One reader per connection, each timing its own response.
    let mut results: Vec<(Response, Duration)> = Vec::new();
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let r = c.read();
                (r, sent.elapsed())
            })
        })
        .collect();
    for h in handles {
        results.push(h.join().expect("reader thread"));
    }
    for (r, took) in &results {
        match r.status {
            200 => {
                ok += 1;
                assert!(
                    *took >= Duration::from_millis(1400),
                    "a 200 came before the origin delay: {took:?}"
                );
            }
            503 => {
                busy += 1;
                assert_eq!(r.header("Retry-After"), Some("1"), "{r:?}");
                assert_eq!(r.header("Content-Type"), Some("application/json"));
                assert_eq!(r.text(), r#"{"error":"Server too busy","retry_after":1}"#);
                assert!(
                    *took < Duration::from_millis(1400),
                    "a 503 waited for the origin: {took:?}"
                );
            }
            s => panic!("unexpected status {s}: {r:?}"),
        }
    }
    assert_eq!((ok, busy), (2, 3));
}
