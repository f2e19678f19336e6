//! `/api/metrics` and `/metrics`: the seed's keys, and counts that are exact.

use crate::common::*;
use serde_json::json;

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
