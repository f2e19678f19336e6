//! The figures of one part of a multi-part scenario (a sweep step, a
//! recovery phase, a soak half, a health sample), and how they are taken
//! from a recorder.

use serde::Serialize;

use super::super::criteria::Criterion;
use super::super::histogram::quantile_ms;
use super::super::recorder::Recorder;
use super::super::server_latency::ServerLatency;

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
    /// The server's CPU time per request answered over the part, µs (it
    /// excludes steal: what the server itself spent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_request: Option<f64>,
    /// Steal over the part, % of this machine's CPU time (see
    /// `machine_cpu`): latency that grows with it is the host's doing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_steal_pct: Option<f64>,
    /// The part's own verdict, where the scenario judges parts (`sweep`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub criteria: Vec<Criterion>,
}

impl Step {
    /// Every criterion of the part held (true when it has none).
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(|c| c.pass)
    }

    /// Whether any of `steps` carries the cost figures (server CPU per
    /// request, steal): the reports show their columns only then.
    pub fn any_costs(steps: &[Step]) -> bool {
        steps
            .iter()
            .any(|s| s.server_cpu_us_per_request.is_some() || s.machine_steal_pct.is_some())
    }

    /// The cost figures as the reports print them, "-" where not measured:
    /// (server CPU µs per request, steal %).
    pub fn cost_cells(&self) -> (String, String) {
        let or_dash =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        (
            or_dash(self.server_cpu_us_per_request, 2),
            or_dash(self.machine_steal_pct, 1),
        )
    }
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
        server_cpu_us_per_request: None,
        machine_steal_pct: None,
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
