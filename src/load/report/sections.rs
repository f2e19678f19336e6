//! The sections of a run report: totals, latency percentiles, the
//! per-second timeline, where the server and the generator ran, connection
//! counts, the request count check and `health`'s half comparison.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::super::histogram::quantile_ms;

/// Totals of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Requests completed (any outcome).
    pub requests: u64,
    /// Requests that did not end in a 2xx.
    pub errors: u64,
    /// Requests per second over the load's duration.
    pub rps: f64,
    /// Duration of the load, seconds.
    pub duration_s: f64,
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50: quantile_ms(h, 0.5),
            p90: quantile_ms(h, 0.9),
            p95: quantile_ms(h, 0.95),
            p99: quantile_ms(h, 0.99),
            p999: quantile_ms(h, 0.999),
            max: h.max() as f64 / 1000.0,
        }
    }
}

/// One second of the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelinePoint {
    /// Start of the second, seconds since the run started.
    pub t_s: f64,
    /// Requests completed in that second.
    pub rps: f64,
    /// Of which not 2xx.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
}

/// Where the server and the generator ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Placement {
    /// Cores "CPU % of the server's cores" is relative to.
    pub server_cores: usize,
    /// Cores the server's shards are pinned to, as it reports them.
    pub server_core_ids: Vec<usize>,
    /// CPUs the generator was pinned to (`--load-cpus`); empty: not pinned.
    pub load_cpus: Vec<usize>,
}

/// Client-side connection counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Connections {
    /// TCP connections opened.
    pub opened: u64,
    /// Of which re-opened after the server closed the previous one.
    pub reconnects: u64,
}

/// The generator's request count against the server's own.
#[derive(Clone, Debug, Serialize)]
pub struct ServerCount {
    /// The server's count for the route class the load requests (see
    /// [`Sampled::server_requests`]).
    pub server_requests: u64,
    /// Which server counter that is, e.g. `requests.byRoute.data delta`.
    pub counter: String,
    /// `/api/metrics` calls the sampler made.
    pub metrics_calls: u64,
    /// Whether it equals `summary.requests`.
    pub agrees: bool,
}

/// `health`'s half criterion, figure by figure: the ratio and the
/// difference it may pass on, so a report shows both.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HalfComparison {
    /// How each half's samples were summarised: `median` or `mean`.
    pub statistic: &'static str,
    /// The first half's summary sample, ms.
    pub first_ms: f64,
    /// The second half's summary sample, ms.
    pub second_ms: f64,
    /// Second over first.
    pub ratio: f64,
    /// Second minus first, ms.
    pub difference_ms: f64,
    /// The ratio must stay below this ...
    pub max_ratio: f64,
    /// ... or the difference below this, ms (0: the ratio alone).
    pub tolerance_ms: f64,
}
