//! `/api/data/{clientId}`: body and headers, HEAD, cache hits, bad ids.

use crate::common::*;
use crate::{keys, set};
use serde_json::{json, Value};

/// Checks a `/api/data/{id}` body: the seed's shape, exactly.
fn assert_data_body(v: &Value, id: &str, shards: u64) {
    assert_eq!(
        keys(v),
        set(&["clientId", "timestamp", "workerId", "data"]),
        "{v}"
    );
    assert_eq!(v["clientId"], id);
    let ts = v["timestamp"].as_u64().expect("timestamp is an integer");
    let now = now_unix_ms();
    assert!(ts.abs_diff(now) <= 60_000, "timestamp {ts} vs now {now}");
    let worker = v["workerId"].as_u64().expect("workerId is an integer");
    assert!(worker < shards, "workerId {worker} with {shards} shards");
    let data = &v["data"];
    assert_eq!(keys(data), set(&["id", "value", "items"]), "{v}");
    assert_eq!(data["id"], id);
    let value = data["value"].as_f64().expect("value is a number");
    assert!((0.0..1000.0).contains(&value), "value {value}");
    let items = data["items"].as_array().expect("items is an array");
    assert_eq!(items.len(), 10);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(
            *item,
            json!({"index": i, "data": format!("Item {i} for client {id}")})
        );
    }
}

/// GET /api/data/client-1 answers 200 with exactly the four expected headers
/// (Server, Content-Type, an IMF-fixdate Date, a matching Content-Length) and
/// the seed's body.
#[test]
fn data_get_headers_and_body() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let r = get(server.addr(), "/api/data/client-1");
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200), "{r:?}");
    assert_eq!(r.reason, "OK");
    assert_eq!(
        r.header_names(),
        ["Server", "Content-Type", "Date", "Content-Length"],
        "{r:?}"
    );
    assert_eq!(r.header("Server"), Some("percore"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let date = r.header("Date").unwrap();
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(date.ends_with(" GMT"), "{date:?}");
    let date_s = parse_imf_fixdate(date).unwrap_or_else(|| panic!("not IMF-fixdate: {date:?}"));
    let now_s = now_unix_ms() / 1000;
    assert!(date_s.abs_diff(now_s) <= 60, "Date {date} is not now");
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_data_body(&r.json(), "client-1", 2);
}

/// HEAD /api/data/client-1 has the GET's status and Content-Length but sends
/// no body bytes: the next response on the connection parses right after it.
#[test]
fn data_head_has_length_but_no_body() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    let first = c.get("/api/data/client-1");
    assert_eq!(first.status, 200);

    // The body is cached now, so HEAD describes exactly these bytes.
    c.send("HEAD /api/data/client-1 HTTP/1.1\r\nHost: test\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("Content-Type"), Some("application/json"));
    assert_eq!(
        head.header("Content-Length"),
        Some(first.body.len().to_string().as_str())
    );

    // Had HEAD sent a body, its bytes would be read here as a status line.
    let again = c.get("/api/data/client-1");
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body, first.body);
}

/// A cache hit returns the very bytes of the miss (same timestamp and value);
/// with CACHE_TTL_MS=0 every request is a miss and the bodies differ.
#[test]
fn cache_hit_returns_identical_bytes() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    let miss = c.get("/api/data/cached");
    let hit = c.get("/api/data/cached");
    assert_eq!((miss.status, hit.status), (200, 200));
    assert_eq!(miss.text(), hit.text());
    assert_data_body(&hit.json(), "cached", 1);

    let server = Server::start(&[("WORKERS", "1"), ("CACHE_TTL_MS", "0")], &[]);
    let mut c = Client::connect(server.addr());
    let a = c.get("/api/data/cached");
    let b = c.get("/api/data/cached");
    assert_eq!((a.status, b.status), (200, 200));
    assert_ne!(a.text(), b.text(), "TTL 0 must not serve from the cache");
    assert_data_body(&b.json(), "cached", 1);
}

/// Client ids that are not 1..=128 unreserved characters get a 400 JSON
/// error; 128 characters is accepted.
#[test]
fn bad_client_ids_are_400() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let long = "a".repeat(129);
    for path in [
        "/api/data/a%20b".to_owned(),
        format!("/api/data/{long}"),
        "/api/data/".to_owned(),
        "/api/data/a/b".to_owned(),
    ] {
        let r = get(server.addr(), &path);
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_json_error(&r);
    }
    let id = "b".repeat(128);
    let r = get(server.addr(), &format!("/api/data/{id}"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_data_body(&r.json(), &id, 2);
}
