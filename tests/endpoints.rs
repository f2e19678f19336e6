//! The endpoints, over real sockets against the built binary: bodies, headers,
//! cache behaviour, metrics exactness and admission control.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

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

/// /api/health answers the exact object `{status, worker, activeRequests,
/// cacheSize}`; activeRequests counts the health request itself and cacheSize
/// follows the shard's cache.
#[test]
fn health_body_is_exact() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    let r = c.get("/api/health");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "worker": 0, "activeRequests": 1, "cacheSize": 0})
    );
    assert_eq!(c.get("/api/data/h1").status, 200);
    assert_eq!(c.get("/api/data/h2").status, 200);
    let r = c.get("/api/health");
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "worker": 0, "activeRequests": 1, "cacheSize": 2})
    );

    let server = Server::start(&[("WORKERS", "2")], &[]);
    let v = get(server.addr(), "/api/health").json();
    assert_eq!(
        keys(&v),
        set(&["status", "worker", "activeRequests", "cacheSize"])
    );
    assert_eq!(v["status"], "healthy");
    assert!(v["worker"].as_u64().unwrap() < 2, "{v}");
}

/// /api/metrics has the seed's keys (process, memory, cache) plus
/// requests.total and one `shards` entry per worker, with the child's pid.
#[test]
fn metrics_json_has_the_seeds_keys() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let r = get(server.addr(), "/api/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = r.json();
    for path in [
        "/process/pid",
        "/process/uptime",
        "/process/activeRequests",
        "/memory/rss",
        "/memory/heapTotal",
        "/memory/heapUsed",
        "/memory/external",
        "/cache/size",
        "/cache/hitRate",
        "/requests/total",
    ] {
        let x = v.pointer(path).unwrap_or_else(|| panic!("no {path}: {v}"));
        assert!(x.is_number(), "{path} is not a number: {v}");
    }
    assert_eq!(v["process"]["pid"], server.pid());
    let uptime = v["process"]["uptime"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&uptime), "uptime {uptime}");
    assert!(v["memory"]["rss"].as_u64().unwrap() > 0, "{v}");
    let shards = v["shards"].as_array().expect("shards is an array");
    assert_eq!(shards.len(), 2, "{v}");
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s["id"], i, "{v}");
    }
}

/// requests.total is exact: 37 data requests on several connections, then
/// the metrics request counts itself (38), and the next one 39.
#[test]
fn metrics_request_count_is_exact() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let mut clients: Vec<Client> = (0..5).map(|_| Client::connect(server.addr())).collect();
    for i in 0..37 {
        let c = &mut clients[i % 5];
        c.send_get(&format!("/api/data/count-{}", i % 11));
    }
    for (n, c) in clients.iter_mut().enumerate() {
        let requests = (0..37).filter(|i| i % 5 == n).count();
        for _ in 0..requests {
            assert_eq!(c.read().status, 200);
        }
    }
    let mut m = Client::connect(server.addr());
    let v = m.get("/api/metrics").json();
    assert_eq!(v["requests"]["total"], 38, "{v}");
    assert_eq!(v["requests"]["byStatus"], json!({"200": 38}), "{v}");
    let per_shard: u64 = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(per_shard, 38, "{v}");
    let v = m.get("/api/metrics").json();
    assert_eq!(v["requests"]["total"], 39, "{v}");
}

/// `requests.byRoute` counts each request under the class of its path,
/// whatever its answer: data (a 405 too), health, metrics (both formats,
/// this request included) and other (the dashboard, a 404, an unparsable
/// request); the classes add up to `requests.total`, per shard as well.
#[test]
fn metrics_count_requests_by_route() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    let mut c = Client::connect(server.addr());
    for path in ["/api/data/a", "/api/data/b", "/api/data/a"] {
        assert_eq!(c.get(path).status, 200, "{path}");
    }
    c.send("POST /api/data/a HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read().status, 405);
    for (path, status) in [
        ("/api/health", 200),
        ("/api/health", 200),
        ("/dashboard", 200),
        ("/nope", 404),
        ("/metrics", 200),
    ] {
        assert_eq!(c.get(path).status, status, "{path}");
    }
    let mut bad = Client::connect(server.addr());
    bad.send("NOT HTTP\r\n\r\n");
    assert_eq!(bad.read().status, 400);
    let v = c.get("/api/metrics").json();
    assert_eq!(
        v["requests"]["byRoute"],
        json!({"data": 4, "health": 2, "metrics": 2, "other": 3}),
        "{v}"
    );
    assert_eq!(v["requests"]["total"], 11, "{v}");
    for class in ["data", "health", "metrics", "other"] {
        let per_shard: u64 = v["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["requests"]["byRoute"][class].as_u64().unwrap())
            .sum();
        assert_eq!(
            Some(per_shard),
            v["requests"]["byRoute"][class].as_u64(),
            "{class}: {v}"
        );
    }
}

/// Cache counters follow LRU exactly: with capacity 2, the sequence
/// a a b c a gives 1 hit, 4 misses, 2 evictions, 2 entries, hit rate 0.2.
#[test]
fn metrics_cache_counters_are_exact() {
    let server = Server::start(&[("WORKERS", "1"), ("CACHE_CAPACITY", "2")], &[]);
    let mut c = Client::connect(server.addr());
    for id in ["a", "a", "b", "c", "a"] {
        assert_eq!(c.get(&format!("/api/data/{id}")).status, 200);
    }
    let v = c.get("/api/metrics").json();
    let cache = &v["cache"];
    assert_eq!(cache["hits"], 1, "{v}");
    assert_eq!(cache["misses"], 4, "{v}");
    assert_eq!(cache["evictions"], 2, "{v}");
    assert_eq!(cache["size"], 2, "{v}");
    assert_eq!(cache["hitRate"].as_f64(), Some(0.2), "{v}");
    // The health view of the same shard agrees.
    assert_eq!(c.get("/api/health").json()["cacheSize"], 2);
}

fn metric_value(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"));
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad sample line {line:?}"))
}

/// /metrics is Prometheus text 0.0.4 with the request counter (counting
/// itself), the latency histogram and the standard process metrics; it
/// passes `promtool check metrics` when promtool is installed.
#[test]
fn prometheus_metrics() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/api/data/prom").status, 200);
    let r = c.get("/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"percore_http_requests_total{shard=\"0\",status=\"200\"} 2"),
        "{text}"
    );
    for line in [
        "percore_http_route_requests_total{shard=\"0\",route=\"data\"} 1",
        "percore_http_route_requests_total{shard=\"0\",route=\"metrics\"} 1",
        "percore_http_route_requests_total{shard=\"0\",route=\"health\"} 0",
        "# TYPE percore_http_request_duration_seconds histogram",
    ] {
        assert!(lines.contains(&line), "no {line:?} in {text}");
    }
    assert!(metric_value(&text, "percore_http_request_duration_seconds_count") >= 1.0);
    assert!(metric_value(&text, "process_cpu_seconds_total") >= 0.0);
    assert!(metric_value(&text, "process_resident_memory_bytes") > 0.0);
    let open = metric_value(&text, "process_open_fds");
    let max = metric_value(&text, "process_max_fds");
    assert!(open > 0.0 && open < max, "open {open} max {max}");
    let start = metric_value(&text, "process_start_time_seconds");
    let now = now_unix_ms() as f64 / 1000.0;
    assert!((start - now).abs() < 60.0, "start {start} now {now}");

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: promtool is not on PATH; skipping `promtool check metrics`");
        }
        Err(e) => panic!("cannot run promtool: {e}"),
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&r.body)
                .expect("write to promtool");
            let out = child.wait_with_output().expect("promtool");
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

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

/// The test helper that checks `Date` headers parses IMF-fixdate strictly.
#[test]
fn imf_fixdate_parser_self_check() {
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
}
