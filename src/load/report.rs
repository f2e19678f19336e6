//! The result of a run, as every output renders it (table, JSON, HTML): the
//! merged figures of all executors, the per-second timeline, the server
//! samples and the evaluated criteria. Built once from the merged
//! `Recorder` and the `Sampled` server figures.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::criteria::{Criterion, Observed};
use super::histogram::quantile_ms;
use super::outcome::ErrorKind;
use super::recorder::Recorder;
use super::sampler::{Sampled, ServerSample};
use super::server_latency::ServerLatency;
use super::spread::Jitter;

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

/// One part of a multi-part scenario (a sweep step, a recovery phase, a
/// soak half, a health sample).
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// What the part is.
    pub label: String,
    /// Concurrent clients, where that defines the part.
    pub clients: usize,
    /// Requests completed.
    pub requests: u64,
    /// Of which not 2xx.
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// The server's own latency over the same part (from `/api/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_latency_ms: Option<ServerLatency>,
    /// The part's own verdict, where the scenario judges parts (`sweep`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub criteria: Vec<Criterion>,
}

impl Step {
    /// Every criterion of the part held (true when it has none).
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(|c| c.pass)
    }
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

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The subcommand.
    pub scenario: String,
    /// The server URL.
    pub target: String,
    /// Totals.
    pub summary: Summary,
    /// Latency from the intended send time (open loop) or the send (closed).
    pub latency_ms: Latency,
    /// Open loop only: latency from the actual send, hiding queueing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_raw_ms: Option<Latency>,
    /// Responses by status code.
    pub status_codes: BTreeMap<String, u64>,
    /// Failures by class: transport errors and `http_<status>` for non-2xx.
    pub errors: BTreeMap<String, u64>,
    /// Per second.
    pub timeline: Vec<TimelinePoint>,
    /// The server's figures per second.
    pub server: Vec<ServerSample>,
    /// The verdict, criterion by criterion.
    pub criteria: Vec<Criterion>,
    /// Connections opened.
    pub connections: Connections,
    /// Where the server and the generator ran.
    pub placement: Placement,
    /// Request count cross-check (with `/api/metrics` sampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_count: Option<ServerCount>,
    /// Parts of the scenario.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Remarks on how figures were derived.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `health` only: each sample's average latency, ms, in time order (the
    /// series the half ratio is judged on, so a failed run can be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples_ms: Vec<f64>,
    /// `health` only: the halves of `samples_ms` as judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halves: Option<HalfComparison>,
    /// (quantile, ms) pairs of the latency distribution, for the chart.
    #[serde(skip)]
    pub distribution: Vec<(f64, f64)>,
    /// The same from the raw latencies (open loop).
    #[serde(skip)]
    pub raw_distribution: Vec<(f64, f64)>,
}

impl RunReport {
    /// Every criterion held.
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(|c| c.pass)
    }

    /// Builds the report of `recorder` (merged) over `duration_s`, with the
    /// server figures in `sampled`; criteria are added by the scenario.
    pub fn build(
        scenario: &str,
        target: &str,
        recorder: &Recorder,
        duration_s: f64,
        sampled: Option<&Sampled>,
        open_loop: bool,
    ) -> RunReport {
        let mut status_codes = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (code, &n) in recorder.status_counts.iter().enumerate() {
            if n > 0 {
                status_codes.insert(code.to_string(), n);
                if !(200..300).contains(&code) {
                    errors.insert(format!("http_{code}"), n);
                }
            }
        }
        for kind in ErrorKind::ALL {
            errors.insert(kind.name().to_string(), recorder.error_counts[kind.index()]);
        }
        let seconds = duration_s.ceil().max(1.0) as usize;
        let timeline = recorder
            .regrouped(1000)
            .iter()
            .take(seconds)
            .enumerate()
            .map(|(i, b)| TimelinePoint {
                t_s: i as f64,
                rps: b.requests as f64,
                errors: b.errors,
                p50_ms: quantile_ms(&b.latency_us, 0.5),
                p95_ms: quantile_ms(&b.latency_us, 0.95),
                p99_ms: quantile_ms(&b.latency_us, 0.99),
                mean_ms: b.latency_us.mean() / 1000.0,
            })
            .collect();
        let server_count = sampled.and_then(|s| {
            s.server_requests().map(|n| ServerCount {
                server_requests: n.count,
                counter: n.counter,
                metrics_calls: s.metrics_calls,
                agrees: n.count == recorder.requests,
            })
        });
        RunReport {
            scenario: scenario.to_string(),
            target: target.to_string(),
            summary: Summary {
                requests: recorder.requests,
                errors: recorder.errors,
                rps: recorder.requests as f64 / duration_s.max(1e-9),
                duration_s,
            },
            latency_ms: Latency::of(&recorder.latency_us),
            latency_raw_ms: open_loop.then(|| Latency::of(&recorder.raw_latency_us)),
            status_codes,
            errors,
            timeline,
            server: sampled.map(Sampled::samples).unwrap_or_default(),
            criteria: Vec::new(),
            connections: Connections {
                opened: recorder.connects,
                reconnects: recorder.reconnects,
            },
            placement: Placement {
                server_cores: sampled.map_or(0, |s| s.server_cores),
                server_core_ids: sampled
                    .map(|s| s.server_core_ids.clone())
                    .unwrap_or_default(),
                load_cpus: Vec::new(),
            },
            server_count,
            steps: Vec::new(),
            notes: Vec::new(),
            samples_ms: Vec::new(),
            halves: None,
            distribution: distribution(&recorder.latency_us),
            raw_distribution: if open_loop {
                distribution(&recorder.raw_latency_us)
            } else {
                Vec::new()
            },
        }
    }

    /// The figures every scenario judges: success, p95, p99 and the
    /// server's resources when sampled.
    pub fn observed(&self, sampled: Option<&Sampled>) -> Observed {
        let s = &self.summary;
        let mut o = Observed {
            success_pct: Some(if s.requests == 0 {
                0.0
            } else {
                100.0 * (s.requests - s.errors) as f64 / s.requests as f64
            }),
            p95_ms: Some(self.latency_ms.p95),
            p99_ms: Some(self.latency_ms.p99),
            ..Observed::default()
        };
        if let Some(sampled) = sampled.filter(|s| s.readings.len() >= 2) {
            o.cpu_pct = sampled.cpu_pct_overall();
            o.cpu_pct_of_cores = o.cpu_pct.map(|c| sampled.of_cores(c));
            o.server_cores = sampled.server_cores;
            let peak = |f: fn(&super::sampler::Reading) -> u64| {
                sampled.readings.iter().map(f).max().unwrap_or(0) as f64
            };
            o.rss_mib = Some(peak(|r| r.proc.rss_bytes) / (1024.0 * 1024.0));
            o.fds = Some(peak(|r| r.proc.fds_open));
            o.cache_hit_pct = sampled.cache_hit_rate_overall().map(|r| 100.0 * r);
        }
        o
    }

    /// Both jitter figures over the full seconds of the timeline that saw
    /// responses.
    pub fn jitter(&self) -> Jitter {
        let full = self.summary.duration_s.floor() as usize;
        let seconds = || self.timeline.iter().take(full).filter(|p| p.rps > 0.0);
        let means: Vec<f64> = seconds().map(|p| p.mean_ms).collect();
        let medians: Vec<f64> = seconds().map(|p| p.p50_ms).collect();
        Jitter::of(&means, &medians)
    }
}

/// (quantile, ms) points of a latency distribution, evenly spaced in
/// "nines" (0, 90 %, 99 %, 99.9 % ...) up to what the count resolves.
pub fn distribution(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let max_nines = (h.len() as f64).log10().clamp(1.0, 6.0);
    let steps = (max_nines * 20.0) as usize;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let nines = max_nines * i as f64 / steps as f64;
            let q = 1.0 - 10f64.powf(-nines);
            (q, quantile_ms(h, q))
        })
        .collect();
    points.push((1.0, h.max() as f64 / 1000.0));
    points
}

/// Latency figures of one part of a scenario.
pub fn step(label: &str, clients: usize, recorder: &Recorder, duration_s: f64) -> Step {
    let h = &recorder.latency_us;
    Step {
        label: label.to_string(),
        clients,
        requests: recorder.requests,
        errors: recorder.errors,
        rps: recorder.requests as f64 / duration_s.max(1e-9),
        mean_ms: h.mean() / 1000.0,
        p50_ms: quantile_ms(h, 0.5),
        p95_ms: quantile_ms(h, 0.95),
        p99_ms: quantile_ms(h, 0.99),
        server_latency_ms: None,
        criteria: Vec::new(),
    }
}

/// Latency figures of the requests completed between `from_ns` and `to_ns`
/// (timeline buckets, so bounded by the recorder's bucket width).
pub fn step_between(
    label: &str,
    clients: usize,
    recorder: &Recorder,
    from_ns: u64,
    to_ns: u64,
) -> Step {
    let mut part = Recorder::new(recorder.bucket_ns / 1_000_000, None);
    let first = (from_ns / recorder.bucket_ns) as usize;
    let last = ((to_ns / recorder.bucket_ns) as usize).min(recorder.buckets.len());
    for b in recorder.buckets.get(first..last.max(first)).unwrap_or(&[]) {
        part.requests += b.requests;
        part.errors += b.errors;
        let _ = part.latency_us.add(&b.latency_us);
    }
    step(
        label,
        clients,
        &part,
        (to_ns - from_ns.min(to_ns)) as f64 / 1e9,
    )
}
