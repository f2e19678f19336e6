//! Pass/fail criteria: the seed's acceptance thresholds as defaults, each
//! overridable by a flag, and their evaluation against a run's figures. A
//! run's exit code is 0 when every criterion that applies holds, 99 when one
//! fails.
//!
//! Every bound is strict (`<`, `>`) as the seed wrote them, except
//! throughput, which is "at least".

use clap::Args;
use serde::Serialize;

/// The thresholds (flags shared by every subcommand).
#[derive(Args, Clone, Debug)]
pub struct Thresholds {
    /// Success rate (2xx of all requests) must exceed this, %.
    #[arg(long, default_value_t = 99.9)]
    pub min_success_pct: f64,
    /// p95 latency must stay below this, ms.
    #[arg(long, default_value_t = 200.0)]
    pub max_p95_ms: f64,
    /// p99 latency must stay below this, ms.
    #[arg(long, default_value_t = 500.0)]
    pub max_p99_ms: f64,
    /// Throughput must reach at least this where throughput applies
    /// (`max`, `sweep`), requests per second.
    #[arg(long, default_value_t = 1000.0)]
    pub min_rps: f64,
    /// Server CPU over the run must stay below this, % of all its cores.
    #[arg(long, default_value_t = 60.0)]
    pub max_cpu_pct: f64,
    /// Server RSS must stay below this, MiB.
    #[arg(long, default_value_t = 1024.0)]
    pub max_rss_mib: f64,
    /// Server open fds must stay below this.
    #[arg(long, default_value_t = 500.0)]
    pub max_fds: f64,
    /// Jitter (coefficient of variation of the per-second mean latency) must
    /// stay below this, %.
    #[arg(long, default_value_t = 20.0)]
    pub max_jitter_pct: f64,
    /// Recovery after a burst must take less than this, ms.
    #[arg(long, default_value_t = 1000.0)]
    pub max_recovery_ms: f64,
    /// Server cache hit rate over the run must exceed this, %.
    #[arg(long, default_value_t = 50.0)]
    pub min_cache_hit_pct: f64,
    /// Second half / first half (latency) must stay below this ratio.
    #[arg(long, default_value_t = 1.2)]
    pub max_half_ratio: f64,
    /// Per 10× more clients, latency may grow by less than this factor
    /// (`sweep`: the seed's "10× load, at most 2× slower").
    #[arg(long, default_value_t = 2.0)]
    pub max_slowdown: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_success_pct: 99.9,
            max_p95_ms: 200.0,
            max_p99_ms: 500.0,
            min_rps: 1000.0,
            max_cpu_pct: 60.0,
            max_rss_mib: 1024.0,
            max_fds: 500.0,
            max_jitter_pct: 20.0,
            max_recovery_ms: 1000.0,
            min_cache_hit_pct: 50.0,
            max_half_ratio: 1.2,
            max_slowdown: 2.0,
        }
    }
}

/// How an observation is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// observed < threshold
    Below,
    /// observed > threshold
    Above,
    /// observed ≥ threshold
    AtLeast,
}

impl Bound {
    /// The operator as shown in names.
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::Below => "<",
            Bound::Above => ">",
            Bound::AtLeast => ">=",
        }
    }

    fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Bound::Below => observed < threshold,
            Bound::Above => observed > threshold,
            Bound::AtLeast => observed >= threshold,
        }
    }
}

/// One evaluated criterion.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Criterion {
    /// What is measured, with its unit and operator, e.g. `p95 latency ms <`.
    pub name: String,
    /// The bound.
    pub threshold: f64,
    /// The measured value (NaN when it could not be measured: fails).
    pub observed: f64,
    /// Whether it held.
    pub pass: bool,
}

/// Evaluates `observed` against `threshold`. An observation that is not a
/// number (nothing measured) fails.
pub fn check(what: &str, bound: Bound, threshold: f64, observed: f64) -> Criterion {
    Criterion {
        name: format!("{what} {}", bound.symbol()),
        threshold,
        observed,
        pass: !observed.is_nan() && bound.holds(observed, threshold),
    }
}

/// The figures criteria are evaluated on; `None` where not measured.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Successful share of all requests, %.
    pub success_pct: Option<f64>,
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// p99 latency, ms.
    pub p99_ms: Option<f64>,
    /// Requests per second (only where throughput applies).
    pub rps: Option<f64>,
    /// Server CPU over the run, % of its cores.
    pub cpu_pct: Option<f64>,
    /// Server peak RSS, MiB.
    pub rss_mib: Option<f64>,
    /// Server peak open fds.
    pub fds: Option<f64>,
    /// Jitter, %.
    pub jitter_pct: Option<f64>,
    /// Recovery time, ms.
    pub recovery_ms: Option<f64>,
    /// Server cache hit rate over the run, %.
    pub cache_hit_pct: Option<f64>,
    /// Second half / first half.
    pub half_ratio: Option<f64>,
    /// Worst latency growth per 10× clients.
    pub slowdown: Option<f64>,
}

impl Thresholds {
    /// Every criterion whose figure was measured, in report order.
    pub fn evaluate(&self, o: &Observed) -> Vec<Criterion> {
        let rows = [
            (
                "success rate %",
                Bound::Above,
                self.min_success_pct,
                o.success_pct,
            ),
            ("p95 latency ms", Bound::Below, self.max_p95_ms, o.p95_ms),
            ("p99 latency ms", Bound::Below, self.max_p99_ms, o.p99_ms),
            ("throughput req/s", Bound::AtLeast, self.min_rps, o.rps),
            ("jitter %", Bound::Below, self.max_jitter_pct, o.jitter_pct),
            (
                "second/first half",
                Bound::Below,
                self.max_half_ratio,
                o.half_ratio,
            ),
            (
                "slowdown per 10x",
                Bound::Below,
                self.max_slowdown,
                o.slowdown,
            ),
            (
                "recovery ms",
                Bound::Below,
                self.max_recovery_ms,
                o.recovery_ms,
            ),
            ("server CPU %", Bound::Below, self.max_cpu_pct, o.cpu_pct),
            ("server RSS MiB", Bound::Below, self.max_rss_mib, o.rss_mib),
            ("server fds", Bound::Below, self.max_fds, o.fds),
            (
                "cache hit %",
                Bound::Above,
                self.min_cache_hit_pct,
                o.cache_hit_pct,
            ),
        ];
        rows.into_iter()
            .filter_map(|(name, bound, threshold, observed)| {
                observed.map(|v| check(name, bound, threshold, v))
            })
            .collect()
    }
}

/// Coefficient of variation of `values`, % (0 for fewer than two values).
pub fn coefficient_of_variation_pct(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return 0.0;
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    100.0 * var.sqrt() / mean
}

/// Mean of the second half of `values` divided by the mean of the first
/// (the middle value of an odd count goes to the second half).
pub fn half_ratio(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let (first, second) = values.split_at(values.len() / 2);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(first);
    (base > 0.0).then(|| mean(second) / base)
}

/// Median of the second half of `values` divided by the median of the
/// first: like [`half_ratio`], but a few outliers (an OS hiccup on a shared
/// machine) do not move it.
pub fn half_ratio_median(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let (first, second) = values.split_at(values.len() / 2);
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        if v.len() % 2 == 0 {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        }
    };
    let base = median(first);
    (base > 0.0).then(|| median(second) / base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_strict_except_throughput() {
        assert!(!check("x", Bound::Below, 200.0, 200.0).pass);
        assert!(check("x", Bound::Below, 200.0, 199.9).pass);
        assert!(!check("x", Bound::Above, 99.9, 99.9).pass);
        assert!(check("x", Bound::AtLeast, 1000.0, 1000.0).pass);
        assert!(!check("x", Bound::Below, 1.0, f64::NAN).pass);
        assert_eq!(
            check("p95 latency ms", Bound::Below, 1.0, 0.5).name,
            "p95 latency ms <"
        );
    }

    #[test]
    fn evaluates_only_what_was_measured() {
        let t = Thresholds::default();
        let o = Observed {
            success_pct: Some(99.95),
            p95_ms: Some(250.0),
            cpu_pct: Some(12.0),
            ..Observed::default()
        };
        let c = t.evaluate(&o);
        assert_eq!(c.len(), 3);
        assert!(c[0].pass, "{c:?}");
        assert!(!c[1].pass, "{c:?}");
        assert_eq!(c[1].threshold, 200.0);
        assert!(c[2].pass);
    }

    #[test]
    fn overridden_threshold_changes_the_verdict() {
        let t = Thresholds {
            max_p95_ms: 300.0,
            ..Thresholds::default()
        };
        let o = Observed {
            p95_ms: Some(250.0),
            ..Observed::default()
        };
        assert!(t.evaluate(&o)[0].pass);
    }

    #[test]
    fn jitter_and_halves() {
        assert_eq!(coefficient_of_variation_pct(&[5.0, 5.0, 5.0]), 0.0);
        let cv = coefficient_of_variation_pct(&[1.0, 3.0]);
        assert!((cv - 50.0).abs() < 1e-9);
        assert_eq!(half_ratio(&[1.0, 1.0, 1.5, 1.5]), Some(1.5));
        assert_eq!(half_ratio(&[2.0]), None);
        // One 10x outlier moves the mean ratio, not the median one.
        let v = [1.0, 1.0, 1.0, 1.0, 1.0, 10.0];
        assert!(half_ratio(&v).unwrap() > 3.0);
        assert_eq!(half_ratio_median(&v), Some(1.0));
    }
}
