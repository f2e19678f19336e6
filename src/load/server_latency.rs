//! Server-side latency of a part of a run (a sweep step, a soak window),
//! next to what the clients measured.
//!
//! percore's `/api/metrics` carries its whole merged latency histogram as
//! `latency.histogramUs` (`[value_us, count]` pairs, 2 significant digits).
//! It is cumulative since the server started, so the sampler keeps it at the
//! part boundaries ([`Mark`]s) and a part's histogram is the later one minus
//! the earlier one. Client-side latency includes the generator's own
//! queueing and the kernel; server-side latency is what percore spent from
//! reading a request to writing its response. When the first grows with the
//! client count and the second does not, the growth is not the server's.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::histogram::new_bucket_histogram;

/// The server's cumulative histogram at one sampler reading.
#[derive(Clone, Debug)]
pub struct Mark {
    /// When it was read, seconds since the run started.
    pub t_s: f64,
    /// `latency.histogramUs` as read.
    pub pairs: Vec<[u64; 2]>,
}

/// Server-side latency percentiles of one part, milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ServerLatency {
    /// Responses the server timed in the part (the sampler's own included).
    pub requests: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// Parses `latency.histogramUs` of an `/api/metrics` body.
pub fn pairs_of(metrics: &serde_json::Value) -> Option<Vec<[u64; 2]>> {
    metrics
        .pointer("/latency/histogramUs")?
        .as_array()?
        .iter()
        .map(|p| Some([p.get(0)?.as_u64()?, p.get(1)?.as_u64()?]))
        .collect()
}

/// The histogram the pairs describe (same precision as the server's export).
pub fn histogram(pairs: &[[u64; 2]]) -> Histogram<u64> {
    let mut h = new_bucket_histogram();
    for &[value_us, count] in pairs {
        h.saturating_record_n(value_us, count);
    }
    h
}

/// Percentiles of `later` minus `earlier`; `None` when nothing was timed in
/// between or the counts went down (the server restarted).
pub fn between_pairs(earlier: &[[u64; 2]], later: &[[u64; 2]]) -> Option<ServerLatency> {
    let mut h = histogram(later);
    h.subtract(histogram(earlier)).ok()?;
    if h.is_empty() {
        return None;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Some(ServerLatency {
        requests: h.len(),
        p50: ms(0.5),
        p95: ms(0.95),
        p99: ms(0.99),
        p999: ms(0.999),
        max: h.max() as f64 / 1000.0,
    })
}

/// Server-side latency of the part from `from_s` to `to_s`: the last mark
/// read by `from_s` and the first read at or after `to_s` (readings come a
/// few ms after each whole second, so 0.5 s of slack on either side).
pub fn between(marks: &[Mark], from_s: f64, to_s: f64) -> Option<ServerLatency> {
    let start = marks.iter().rev().find(|m| m.t_s <= from_s + 0.5)?;
    let end = marks
        .iter()
        .find(|m| m.t_s >= to_s - 0.5 && m.t_s > start.t_s)?;
    between_pairs(&start.pairs, &end.pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_the_difference_of_two_marks() {
        // Before: 1,000 responses at 3 µs. During the part: 900 at 3 µs,
        // 100 at 2,000 µs (2,007 is that value's bucket at 2 digits).
        let marks = vec![
            Mark {
                t_s: -0.1,
                pairs: vec![[3, 1000]],
            },
            Mark {
                t_s: 10.01,
                pairs: vec![[3, 1900], [2007, 100]],
            },
        ];
        let s = between(&marks, 0.0, 10.0).expect("a part");
        assert_eq!(s.requests, 1000);
        assert_eq!(s.p50, 0.003);
        assert!((s.p95 - 2.007).abs() < 1e-9, "{s:?}");
        assert!(between(&marks, 10.0, 20.0).is_none(), "no mark after 20 s");
        // A restarted server's counts go down: no figure rather than a wrong one.
        assert!(between_pairs(&[[3, 5]], &[[3, 2]]).is_none());
    }

    #[test]
    fn parses_the_metrics_field() {
        let v = serde_json::json!({"latency": {"histogramUs": [[3, 10], [250, 1]]}});
        assert_eq!(pairs_of(&v), Some(vec![[3, 10], [250, 1]]));
        assert_eq!(pairs_of(&serde_json::json!({"latency": {}})), None);
    }
}
