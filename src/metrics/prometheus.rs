//! Renders the merged figures in the Prometheus text exposition format 0.0.4
//! (`GET /metrics`), on the control executor.
//!
//! Per-shard series carry a `shard` label; the latency histogram is the
//! shards' HDR histograms merged, cut into cumulative buckets in seconds.

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::http::response::Status;
use crate::metrics::report::ProcessInfo;
use crate::metrics::stats::{Merged, ShardSnapshot};
use crate::shard::routes::RouteClass;

/// Upper bounds of the latency buckets, seconds: 50 µs to 10 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>) {
    let sep = if labels.is_empty() { "" } else { "," };
    for le in LATENCY_BUCKETS_SECONDS {
        let le_us = (le * 1e6) as u64;
        // Values are bucketed with 3 significant figures, so a sample near a
        // bound may land in its neighbour: well within Prometheus's own error.
        let count = if h.is_empty() {
            0
        } else {
            h.count_between(0, le_us)
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.len());
    // HDR histograms keep counts, not the exact sum: mean × count is exact to
    // the histogram's 3 significant figures.
    let sum_seconds = if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e6
    };
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum_seconds}");
    let _ = writeln!(out, "{name}_count{braces} {}", h.len());
}

/// `/metrics` body.
pub fn render(merged: &Merged, process: &ProcessInfo) -> Vec<u8> {
    let mut out = String::with_capacity(8192);
    let shards = &merged.shards;

    let name = "percore_http_requests_total";
    header(
        &mut out,
        name,
        "counter",
        "HTTP responses sent, by shard and status code.",
    );
    for s in shards {
        for (status, n) in Status::ALL.iter().zip(&s.requests_by_status) {
            if *n > 0 {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",status=\"{}\"}} {n}",
                    s.shard_id,
                    status.code()
                );
            }
        }
    }

    let name = "percore_http_route_requests_total";
    header(
        &mut out,
        name,
        "counter",
        "HTTP responses sent, by shard and route class of the request's path: data (/api/data/...), health, metrics (/api/metrics, /metrics), other.",
    );
    for s in shards {
        for (route, n) in RouteClass::ALL.iter().zip(&s.requests_by_route) {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\",route=\"{}\"}} {n}",
                s.shard_id,
                route.name()
            );
        }
    }

    let name = "percore_http_request_duration_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Server-side latency, from a complete request head to its response.",
    );
    histogram(&mut out, name, "", &merged.latency_us);

    type PerShard = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ShardSnapshot) -> u64,
    );
    let per_shard: [PerShard; 12] = [
        (
            "percore_connections_active",
            "gauge",
            "Connections open.",
            |s| s.connections.active,
        ),
        (
            "percore_connections_total",
            "counter",
            "Connections accepted.",
            |s| s.connections.accepted,
        ),
        (
            "percore_connections_rejected_total",
            "counter",
            "Connections refused with 503 at the connection cap.",
            |s| s.connections.rejected,
        ),
        (
            "percore_requests_in_flight",
            "gauge",
            "Requests being served.",
            |s| s.active_requests,
        ),
        (
            "percore_cache_hits_total",
            "counter",
            "Cache lookups that found a fresh body.",
            |s| s.cache.hits,
        ),
        (
            "percore_cache_misses_total",
            "counter",
            "Cache lookups that did not.",
            |s| s.cache.misses,
        ),
        (
            "percore_cache_evictions_total",
            "counter",
            "Entries evicted to stay within capacity.",
            |s| s.cache.evictions,
        ),
        ("percore_cache_entries", "gauge", "Entries cached.", |s| {
            s.cache.entries
        }),
        (
            "percore_shard_restarts_total",
            "counter",
            "Times a shard was restarted after a panic.",
            |s| s.restarts,
        ),
        (
            "percore_recv_buffers_exhausted_total",
            "counter",
            "Multishot receives that found no free provided buffer (see IO_URING_RECV_BUFFERS).",
            |s| s.recv_buffers_exhausted,
        ),
        (
            "percore_recv_buffers_held",
            "gauge",
            "Provided receive buffers holding data not read yet (0 at rest).",
            |s| s.recv_buffers_held,
        ),
        (
            "percore_ring_sends_short_total",
            "counter",
            "Ring sends that did not go out whole (a slow reader's socket buffer was full).",
            |s| s.ring_sends_short,
        ),
    ];
    for (name, kind, help, get) in per_shard {
        header(&mut out, name, kind, help);
        for s in shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard_id, get(s));
        }
    }

    let p = &process.stats;
    let process_metrics: [(&str, &str, &str, f64); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_user_seconds + p.cpu_system_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.rss_bytes as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            p.threads as f64,
        ),
        (
            "process_context_switches_total",
            "counter",
            "Voluntary and involuntary context switches.",
            (p.voluntary_context_switches + p.involuntary_context_switches) as f64,
        ),
    ];
    for (name, kind, help, value) in process_metrics {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::ShardStats;
    use crate::shard::cache::CacheStats;

    #[test]
    fn buckets_are_cumulative_and_complete() {
        let a = ShardStats::new();
        for us in [40, 90, 900, 2_000, 20_000_000] {
            a.record_response(RouteClass::Data, Status::Ok, us);
        }
        let merged = Merged::from_shards(vec![a.snapshot(0, 0, CacheStats::default())]);
        let info = ProcessInfo {
            stats: crate::metrics::process::read(),
            uptime_seconds: 1.0,
            heap: (0, 0),
        };
        let text = String::from_utf8(render(&merged, &info)).unwrap();
        let bucket = |le: &str| -> u64 {
            let key = format!("percore_http_request_duration_seconds_bucket{{le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&key)).unwrap();
            line[key.len()..].parse().unwrap()
        };
        assert_eq!(bucket("0.00005"), 1);
        assert_eq!(bucket("0.0001"), 2);
        assert_eq!(bucket("0.001"), 3);
        assert_eq!(bucket("0.0025"), 4);
        assert_eq!(bucket("10"), 4);
        assert_eq!(bucket("+Inf"), 5);
        assert!(text.contains("percore_http_requests_total{shard=\"0\",status=\"200\"} 5\n"));
        for (route, n) in [("data", 5), ("health", 0), ("metrics", 0), ("other", 0)] {
            let line =
                format!("percore_http_route_requests_total{{shard=\"0\",route=\"{route}\"}} {n}\n");
            assert!(text.contains(&line), "missing {line} in {text}");
        }
        assert!(text.contains("# TYPE percore_http_route_requests_total counter\n"));
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
