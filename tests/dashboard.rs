//! `GET /dashboard` over real sockets: the static page with its headers,
//! HEAD, 404s that stay 404s, its place in the metrics, and the latency
//! buckets the page computes its per-window percentiles from. What the page
//! shows in a browser is checked by `scripts/dashboard_browser.py` (CI).

mod common;

use common::*;
use serde_json::json;

/// The bytes the binary serves: the file it was built from.
const PAGE: &[u8] = include_bytes!("../assets/dashboard.html");

/// GET /dashboard answers the page compiled in, as HTML, with its
/// `Cache-Control`; a query string (the page's settings) does not change it.
#[test]
fn dashboard_is_the_static_page() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    for path in ["/dashboard", "/dashboard?window=60&span=600"] {
        let r = get(server.addr(), path);
        assert_eq!(r.status, 200, "{path}: {:?}", r.headers);
        assert_eq!(
            r.header_names(),
            [
                "Server",
                "Content-Type",
                "Date",
                "Content-Length",
                "Cache-Control"
            ]
        );
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("Cache-Control"), Some("no-cache"));
        assert_eq!(
            r.header("Content-Length"),
            Some(PAGE.len().to_string().as_str())
        );
        assert!(r.body == PAGE, "{path}: the body is not the page");
    }
}

/// HEAD has the GET's length and no body (the next response parses right
/// after it); other methods are 405 with `Allow`; neighbouring paths stay
/// 404s.
#[test]
fn dashboard_head_405_and_404() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    c.send("HEAD /dashboard HTTP/1.1\r\nHost: test\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.header("Content-Length"),
        Some(PAGE.len().to_string().as_str())
    );
    assert_eq!(c.get("/api/health").status, 200, "HEAD sent body bytes");

    c.send("POST /dashboard HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    let post = c.read();
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
    for path in [
        "/dashboard/",
        "/dashboard.html",
        "/dashboards",
        "/Dashboard",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_json_error(&r);
    }
}

/// A page load is a request like any other: counted by status, per shard,
/// and in the latency histogram.
#[test]
fn dashboard_is_counted_in_metrics() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let mut c = Client::connect(server.addr());
    for _ in 0..3 {
        assert_eq!(c.get("/dashboard").status, 200);
    }
    assert_eq!(c.get("/dashboard/x").status, 404);
    let v = c.get("/api/metrics").json();
    assert_eq!(v["requests"]["total"], 5, "{v}");
    assert_eq!(
        v["requests"]["byStatus"],
        json!({"200": 4, "404": 1}),
        "{v}"
    );
    // The metrics response itself is recorded once it is sent.
    assert_eq!(v["latency"]["count"], 4, "{v}");
}

/// `latency.histogramUs`, which the page takes per-window percentiles
/// from, holds every sample, and two readings subtract to exactly the
/// samples between them.
#[test]
fn metrics_histogram_subtracts_to_the_samples_between() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let mut c = Client::connect(server.addr());
    for i in 0..200 {
        assert_eq!(c.get(&format!("/api/data/b-{}", i % 7)).status, 200);
    }
    let pairs = |v: &serde_json::Value| -> Vec<[u64; 2]> {
        serde_json::from_value(v["latency"]["histogramUs"].clone()).unwrap()
    };
    let first = c.get("/api/metrics").json();
    let a = pairs(&first);
    assert!(a.windows(2).all(|w| w[0][0] < w[1][0]), "ascending: {a:?}");
    assert_eq!(a.iter().map(|p| p[1]).sum::<u64>(), 200);
    assert_eq!(first["latency"]["count"], 200);

    for i in 0..50 {
        assert_eq!(c.get(&format!("/api/data/b-{}", i % 7)).status, 200);
    }
    let b = pairs(&c.get("/api/metrics").json());
    let before: std::collections::HashMap<u64, u64> = a.iter().map(|p| (p[0], p[1])).collect();
    let between: u64 = b
        .iter()
        .map(|p| p[1] - before.get(&p[0]).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        between, 51,
        "50 data requests and the first metrics request"
    );
}
