//! Renders the merged figures as `/api/metrics` JSON. Runs on the control
//! executor, so a metrics request costs a shard a snapshot copy, not the
//! rendering.
//!
//! The seed's keys are kept (`process{pid,uptime,activeRequests}`,
//! `memory{rss,heapTotal,heapUsed,external}`, `cache{size,hitRate}`); the
//! heap figures come from glibc's allocator where the seed reported V8's.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::http::response::Status;
use crate::metrics::process::ProcessStats;
use crate::metrics::stats::{hit_rate, ConnectionStats, Merged, ShardSnapshot};
use crate::shard::cache::CacheStats;
use crate::shard::routes::RouteClass;

/// Figures of the process that are not the shards' own.
#[derive(Clone, Copy, Debug)]
pub struct ProcessInfo {
    /// `/proc/self` reading.
    pub stats: ProcessStats,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
    /// (heap bytes from the system, heap bytes in use).
    pub heap: (u64, u64),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    process: ProcessJson,
    memory: MemoryJson,
    cache: CacheJson,
    requests: RequestsJson,
    latency: LatencyJson,
    connections: &'a ConnectionStats,
    cpu: CpuJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    machine: Option<MachineJson>,
    fds: FdsJson,
    context_switches: SwitchesJson,
    threads: u64,
    shards: Vec<ShardJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessJson {
    pid: u32,
    uptime: f64,
    active_requests: u64,
    workers: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemoryJson {
    rss: u64,
    peak_rss: u64,
    heap_total: u64,
    heap_used: u64,
    external: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CacheJson {
    size: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
    hit_rate: f64,
}

impl From<&CacheStats> for CacheJson {
    fn from(c: &CacheStats) -> Self {
        CacheJson {
            size: c.entries,
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
            expirations: c.expirations,
            hit_rate: hit_rate(c),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestsJson {
    total: u64,
    by_status: BTreeMap<u16, u64>,
    /// Every class, zeros included, so a client finds its key from the
    /// first reading on.
    by_route: BTreeMap<&'static str, u64>,
}

fn requests_json(by_status: &[u64], by_route: &[u64]) -> RequestsJson {
    let by_status: BTreeMap<u16, u64> = Status::ALL
        .iter()
        .zip(by_status)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s.code(), *n))
        .collect();
    RequestsJson {
        total: by_status.values().sum(),
        by_status,
        by_route: RouteClass::ALL
            .iter()
            .zip(by_route)
            .map(|(r, n)| (r.name(), *n))
            .collect(),
    }
}

/// Server-side latency, milliseconds.
#[derive(Serialize)]
struct LatencyJson {
    count: u64,
    p50: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    max: f64,
    /// The whole merged histogram (top level only): a client that reads it
    /// at two instants subtracts the two and gets the server-side
    /// percentiles of exactly what happened in between (a load generator's
    /// step), which cumulative percentiles cannot give.
    #[serde(rename = "histogramUs", skip_serializing_if = "Option::is_none")]
    histogram_us: Option<Vec<[u64; 2]>>,
}

fn latency_json(h: &Histogram<u64>) -> LatencyJson {
    let ms = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        }
    };
    LatencyJson {
        count: h.len(),
        p50: ms(0.5),
        p95: ms(0.95),
        p99: ms(0.99),
        p999: ms(0.999),
        max: h.max() as f64 / 1000.0,
        histogram_us: None,
    }
}

/// Significant digits of the exported histogram: values below 256 µs exact,
/// above within 1 %, so an hour of traffic spread from 1 µs to 10 s is at
/// most a few thousand pairs (typically a few hundred, ~5 KB).
pub const EXPORT_SIGFIG: u8 = 2;

/// `h` as `[value_us, count]` pairs, ascending, at [`EXPORT_SIGFIG`]
/// digits: `value_us` is the highest value of its bucket, so recording each
/// pair into a histogram of the same precision rebuilds `h` at that precision.
pub fn histogram_pairs(h: &Histogram<u64>) -> Vec<[u64; 2]> {
    let Ok(mut coarse) = Histogram::<u64>::new_with_bounds(1, h.high().max(2), EXPORT_SIGFIG)
    else {
        return Vec::new();
    };
    for v in h.iter_recorded() {
        coarse.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
    coarse
        .iter_recorded()
        .map(|v| [v.value_iterated_to(), v.count_at_value()])
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CpuJson {
    user_seconds: f64,
    system_seconds: f64,
}

/// The whole machine's CPU time, all cores, and the part of it the
/// hypervisor gave to someone else (steal), from `/proc/stat`: the
/// dashboard shows steal beside the server's CPU, because on a VM whose host
/// takes CPU away latency grows while the server has not changed. Machine
/// figures are a node exporter's business in Prometheus, so only here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MachineJson {
    cpu_seconds: f64,
    steal_seconds: f64,
}

#[derive(Serialize)]
struct FdsJson {
    open: u64,
    limit: u64,
}

#[derive(Serialize)]
struct SwitchesJson {
    voluntary: u64,
    involuntary: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShardJson<'a> {
    id: usize,
    core: usize,
    requests: RequestsJson,
    connections: &'a ConnectionStats,
    active_requests: u64,
    cache: CacheJson,
    latency: LatencyJson,
    restarts: u64,
    recv_buffers_exhausted: u64,
    recv_buffers_held: u64,
    ring_sends_short: u64,
}

fn shard_json(s: &ShardSnapshot) -> ShardJson<'_> {
    ShardJson {
        id: s.shard_id,
        core: s.core,
        requests: requests_json(&s.requests_by_status, &s.requests_by_route),
        connections: &s.connections,
        active_requests: s.active_requests,
        cache: CacheJson::from(&s.cache),
        latency: latency_json(&s.latency_us),
        restarts: s.restarts,
        recv_buffers_exhausted: s.recv_buffers_exhausted,
        recv_buffers_held: s.recv_buffers_held,
        ring_sends_short: s.ring_sends_short,
    }
}

/// `/api/metrics` body.
pub fn json(merged: &Merged, process: &ProcessInfo) -> Vec<u8> {
    let p = &process.stats;
    let report = Report {
        process: ProcessJson {
            pid: std::process::id(),
            uptime: process.uptime_seconds,
            active_requests: merged.active_requests,
            workers: merged.shards.len(),
        },
        memory: MemoryJson {
            rss: p.rss_bytes,
            peak_rss: p.peak_rss_bytes,
            heap_total: process.heap.0,
            heap_used: process.heap.1,
            external: 0,
        },
        cache: CacheJson::from(&merged.cache),
        requests: requests_json(&merged.requests_by_status, &merged.requests_by_route),
        latency: LatencyJson {
            histogram_us: Some(histogram_pairs(&merged.latency_us)),
            ..latency_json(&merged.latency_us)
        },
        connections: &merged.connections,
        cpu: CpuJson {
            user_seconds: p.cpu_user_seconds,
            system_seconds: p.cpu_system_seconds,
        },
        machine: super::machine_cpu::read().map(|t| {
            let ticks_per_s = super::process::ticks_per_second();
            MachineJson {
                cpu_seconds: t.total as f64 / ticks_per_s,
                steal_seconds: t.steal as f64 / ticks_per_s,
            }
        }),
        fds: FdsJson {
            open: p.open_fds,
            limit: p.max_fds,
        },
        context_switches: SwitchesJson {
            voluntary: p.voluntary_context_switches,
            involuntary: p.involuntary_context_switches,
        },
        threads: p.threads,
        shards: merged.shards.iter().map(shard_json).collect(),
    };
    serde_json::to_vec(&report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::ShardStats;

    #[test]
    fn json_has_every_path() {
        let a = ShardStats::new();
        a.record_response(RouteClass::Data, Status::Ok, 100);
        a.record_response(RouteClass::Other, Status::NotFound, 2000);
        let merged = Merged::from_shards(vec![a.snapshot(0, 0, CacheStats::default())]);
        let info = ProcessInfo {
            stats: crate::metrics::process::read(),
            uptime_seconds: 1.5,
            heap: (10, 5),
        };
        let v: serde_json::Value = serde_json::from_slice(&json(&merged, &info)).unwrap();
        for path in [
            "/process/pid",
            "/process/uptime",
            "/process/activeRequests",
            "/process/workers",
            "/memory/rss",
            "/memory/peakRss",
            "/memory/heapTotal",
            "/memory/heapUsed",
            "/memory/external",
            "/cache/size",
            "/cache/hits",
            "/cache/misses",
            "/cache/evictions",
            "/cache/hitRate",
            "/requests/total",
            "/requests/byStatus/200",
            "/requests/byStatus/404",
            "/requests/byRoute/data",
            "/requests/byRoute/health",
            "/requests/byRoute/metrics",
            "/requests/byRoute/other",
            "/latency/p50",
            "/latency/p95",
            "/latency/p99",
            "/latency/p999",
            "/latency/max",
            "/connections/active",
            "/connections/accepted",
            "/connections/closed",
            "/connections/rejected",
            "/cpu/userSeconds",
            "/cpu/systemSeconds",
            "/machine/cpuSeconds",
            "/machine/stealSeconds",
            "/fds/open",
            "/fds/limit",
            "/contextSwitches/voluntary",
            "/contextSwitches/involuntary",
            "/shards/0/id",
            "/shards/0/core",
            "/shards/0/requests/total",
            "/shards/0/requests/byRoute/data",
            "/shards/0/requests/byRoute/health",
            "/shards/0/requests/byRoute/metrics",
            "/shards/0/requests/byRoute/other",
            "/shards/0/connections/active",
            "/shards/0/activeRequests",
            "/shards/0/cache/hitRate",
            "/shards/0/latency/p99",
            "/shards/0/restarts",
            "/shards/0/recvBuffersExhausted",
            "/shards/0/recvBuffersHeld",
            "/shards/0/ringSendsShort",
        ] {
            assert!(v.pointer(path).is_some(), "missing {path} in {v}");
        }
        assert_eq!(v["requests"]["total"], 2);
        assert_eq!(
            v["requests"]["byRoute"],
            serde_json::json!({"data": 1, "health": 0, "metrics": 0, "other": 1})
        );
        assert_eq!(
            v["shards"][0]["requests"]["byRoute"],
            v["requests"]["byRoute"]
        );
        assert_eq!(v["latency"]["max"].as_f64().unwrap(), 2.0);
        assert_eq!(
            v["latency"]["histogramUs"],
            serde_json::json!([[100, 1], [2007, 1]])
        );
        assert!(v.pointer("/shards/0/latency/histogramUs").is_none());
    }

    /// The exported pairs rebuild the histogram at 2 digits: counts exact,
    /// every percentile within 1 %.
    #[test]
    fn histogram_pairs_rebuild_the_percentiles() {
        let mut h = crate::metrics::stats::new_latency_histogram();
        for us in 1..=20_000u64 {
            h.record_n(us, us % 7 + 1).unwrap();
        }
        let pairs = histogram_pairs(&h);
        // 256 exact values, then 128 per doubling up to 20,000 (< 7 doublings).
        assert!(pairs.len() <= 256 + 7 * 128, "{} pairs", pairs.len());
        assert!(pairs.windows(2).all(|w| w[0][0] < w[1][0]));
        let mut back = Histogram::<u64>::new_with_bounds(1, h.high(), EXPORT_SIGFIG).unwrap();
        for [v, n] in &pairs {
            back.record_n(*v, *n).unwrap();
        }
        assert_eq!(back.len(), h.len());
        for q in [0.5, 0.9, 0.99, 0.999] {
            let (a, b) = (
                h.value_at_quantile(q) as f64,
                back.value_at_quantile(q) as f64,
            );
            assert!((a - b).abs() <= 0.01 * a, "q{q}: {a} vs {b}");
        }
    }
}
