//! The whole report of a run, built once from the merged recorder and the
//! sampled server figures; the criteria are added by the scenario.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::super::criteria::{Criterion, Observed};
use super::super::histogram::quantile_ms;
use super::super::outcome::ErrorKind;
use super::super::recorder::Recorder;
use super::super::sampler::{Reading, Sampled, ServerSample};
use super::super::spread::Jitter;
use super::sections::{
    Connections, HalfComparison, Latency, Placement, ServerCount, Summary, TimelinePoint,
};
use super::step::Step;

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
            let peak =
                |f: fn(&Reading) -> u64| sampled.readings.iter().map(f).max().unwrap_or(0) as f64;
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
