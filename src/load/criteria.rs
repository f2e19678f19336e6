//! Pass/fail criteria: the seed's acceptance thresholds as defaults, each
//! overridable by a flag, and their evaluation against a run's figures. A
//! run's exit code is 0 when every criterion that applies holds, 99 when one
//! fails.
//!
//! Every bound is strict (`<`, `>`) as the seed wrote them, except
//! throughput, which is "at least". The half criterion may also hold on an
//! absolute tolerance (`health --half-tolerance-ms`, see
//! [`Thresholds::half_tolerance_ms`]).

use clap::{Args, ValueEnum};
use serde::Serialize;

/// What 100 % of server CPU means.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuConvention {
    /// `docker stats`: 100 % is one core busy, two full cores show 200 %
    /// (`cpu_delta / system_delta × online_cpus × 100`). The seed watched its
    /// run with `docker stats`, so its "CPU < 60 %" is 0.6 of one core.
    OneCore,
    /// 100 % is every core the server may use busy (`--server-cores`).
    ServerCores,
}

/// Which jitter figure the jitter criterion judges.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JitterStatistic {
    /// Robust: 1.4826 × the median absolute deviation of the per-second
    /// medians over their median (see `spread.rs`). A scheduling hiccup of a
    /// few ms moves neither a second's median nor the MAD.
    Robust,
    /// The seed's figure: coefficient of variation of the per-second means.
    Seed,
}

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
    /// Server CPU over the run must stay below this, % in the convention of
    /// `--cpu-pct-of` (default: docker's, 100 % = one core).
    #[arg(long, default_value_t = 60.0)]
    pub max_cpu_pct: f64,
    /// What 100 % CPU means for the CPU criterion: `one-core` (docker
    /// stats, the seed's convention) or `server-cores` (all of the server's
    /// cores). Both figures are always reported.
    #[arg(long, value_enum, default_value_t = CpuConvention::OneCore)]
    pub cpu_pct_of: CpuConvention,
    /// Server RSS must stay below this, MiB.
    #[arg(long, default_value_t = 1024.0)]
    pub max_rss_mib: f64,
    /// Server open fds must stay below this.
    #[arg(long, default_value_t = 500.0)]
    pub max_fds: f64,
    /// Jitter (the figure `--jitter-statistic` names) must stay below this, %.
    #[arg(long, default_value_t = 20.0)]
    pub max_jitter_pct: f64,
    /// Which jitter figure is judged: `robust` (MAD of per-second medians
    /// over their median) or `seed` (coefficient of variation of per-second
    /// means). Both are always reported.
    #[arg(long, value_enum, default_value_t = JitterStatistic::Robust)]
    pub jitter_statistic: JitterStatistic,
    /// Recovery after a burst must take less than this, ms.
    #[arg(long, default_value_t = 1000.0)]
    pub max_recovery_ms: f64,
    /// Server cache hit rate over the run must exceed this, %.
    #[arg(long, default_value_t = 50.0)]
    pub min_cache_hit_pct: f64,
    /// Second half / first half (latency) must stay below this ratio.
    #[arg(long, default_value_t = 1.2)]
    pub max_half_ratio: f64,
    /// The half criterion also holds when the second half is slower than
    /// the first by less than this, ms (0: the ratio alone). Not a shared
    /// flag: `health` sets it from `--half-tolerance-ms`, whose samples are
    /// far below the 1 ms resolution the seed measured them with; the other
    /// scenarios judge the ratio alone.
    #[arg(skip = 0.0)]
    pub half_tolerance_ms: f64,
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
            cpu_pct_of: CpuConvention::OneCore,
            max_rss_mib: 1024.0,
            max_fds: 500.0,
            max_jitter_pct: 20.0,
            jitter_statistic: JitterStatistic::Robust,
            max_recovery_ms: 1000.0,
            min_cache_hit_pct: 50.0,
            max_half_ratio: 1.2,
            half_tolerance_ms: 0.0,
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
    /// What else the reader needs to weigh it: the other convention's
    /// figure, which statistic judges and why, how a bound was scaled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Criterion {
    /// The same criterion with `detail` attached.
    pub fn with_detail(mut self, detail: String) -> Criterion {
        self.detail = detail;
        self
    }
}

/// Evaluates `observed` against `threshold`. An observation that is not a
/// number (nothing measured) fails.
pub fn check(what: &str, bound: Bound, threshold: f64, observed: f64) -> Criterion {
    Criterion {
        name: format!("{what} {}", bound.symbol()),
        threshold,
        observed,
        pass: !observed.is_nan() && bound.holds(observed, threshold),
        detail: String::new(),
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
    /// Server CPU over the run, % of one core (docker's convention).
    pub cpu_pct: Option<f64>,
    /// Server CPU over the run, % of the server's cores.
    pub cpu_pct_of_cores: Option<f64>,
    /// The cores `cpu_pct_of_cores` is relative to.
    pub server_cores: usize,
    /// Server peak RSS, MiB.
    pub rss_mib: Option<f64>,
    /// Server peak open fds.
    pub fds: Option<f64>,
    /// Jitter, the seed's figure and the robust one (`spread.rs`), %.
    pub jitter: Option<super::spread::Jitter>,
    /// Recovery time, ms.
    pub recovery_ms: Option<f64>,
    /// Server cache hit rate over the run, %.
    pub cache_hit_pct: Option<f64>,
    /// Second half / first half.
    pub half_ratio: Option<f64>,
    /// Both halves in ms, where the tolerance applies (`health`): the
    /// difference the tolerance is judged on, shown beside the ratio.
    pub halves: Option<super::spread::Halves>,
    /// Worst latency growth per 10× clients.
    pub slowdown: Option<f64>,
}

impl Thresholds {
    /// Every criterion whose figure was measured, in report order.
    pub fn evaluate(&self, o: &Observed) -> Vec<Criterion> {
        let row = |name: &str, bound, threshold, observed: Option<f64>| {
            observed.map(|v| check(name, bound, threshold, v))
        };
        [
            row(
                "success rate %",
                Bound::Above,
                self.min_success_pct,
                o.success_pct,
            ),
            row("p95 latency ms", Bound::Below, self.max_p95_ms, o.p95_ms),
            row("p99 latency ms", Bound::Below, self.max_p99_ms, o.p99_ms),
            row("throughput req/s", Bound::AtLeast, self.min_rps, o.rps),
            o.jitter.map(|j| self.jitter_criterion(j)),
            self.half_criterion(o),
            row(
                "slowdown per 10x",
                Bound::Below,
                self.max_slowdown,
                o.slowdown,
            ),
            row(
                "recovery ms",
                Bound::Below,
                self.max_recovery_ms,
                o.recovery_ms,
            ),
            self.cpu_criterion(o),
            row("server RSS MiB", Bound::Below, self.max_rss_mib, o.rss_mib),
            row("server fds", Bound::Below, self.max_fds, o.fds),
            row(
                "cache hit %",
                Bound::Above,
                self.min_cache_hit_pct,
                o.cache_hit_pct,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The CPU criterion in the chosen convention, the other figure beside it.
    fn cpu_criterion(&self, o: &Observed) -> Option<Criterion> {
        let (one, all) = (o.cpu_pct?, o.cpu_pct_of_cores?);
        let cores = o.server_cores.max(1);
        Some(match self.cpu_pct_of {
            CpuConvention::OneCore => check(
                "server CPU % (100 = one core)",
                Bound::Below,
                self.max_cpu_pct,
                one,
            )
            .with_detail(format!("{all:.1} % of the server's {cores} cores")),
            CpuConvention::ServerCores => check(
                &format!("server CPU % (100 = {cores} cores)"),
                Bound::Below,
                self.max_cpu_pct,
                all,
            )
            .with_detail(format!("{one:.1} % of one core (docker stats)")),
        })
    }

    /// The half criterion: the ratio below `max_half_ratio`, or, with
    /// `halves` measured and a tolerance set, the second half slower than
    /// the first by less than `half_tolerance_ms`. The observation is the
    /// ratio; the difference is in the detail.
    fn half_criterion(&self, o: &Observed) -> Option<Criterion> {
        let ratio = o.half_ratio?;
        let by_ratio = check(
            "second/first half",
            Bound::Below,
            self.max_half_ratio,
            ratio,
        );
        let Some(h) = o.halves else {
            return Some(by_ratio);
        };
        let difference_ms = h.difference_ms();
        let tolerance_ms = self.half_tolerance_ms;
        let figures = format!(
            "{:.3} -> {:.3} ms: ratio {ratio:.3}, difference {difference_ms:+.3} ms",
            h.first_ms, h.second_ms
        );
        if tolerance_ms <= 0.0 {
            let detail = format!("{figures}; judged on the ratio alone (tolerance 0)");
            return Some(by_ratio.with_detail(detail));
        }
        // NaN (nothing measured) is not within any tolerance.
        let within = !ratio.is_nan() && difference_ms < tolerance_ms;
        let verdict = match (by_ratio.pass, within) {
            (true, _) => "held by the ratio",
            (false, true) => "held by the tolerance alone",
            (false, false) => "held by neither",
        };
        let pass = by_ratio.pass || within;
        Some(Criterion { pass, ..by_ratio }.with_detail(format!(
            "{figures}; holds when the ratio < {} or the difference < {tolerance_ms} ms \
                 (--half-tolerance-ms): {verdict}",
            self.max_half_ratio
        )))
    }

    /// The jitter criterion on the chosen statistic, the other beside it.
    fn jitter_criterion(&self, j: super::spread::Jitter) -> Criterion {
        match self.jitter_statistic {
            JitterStatistic::Robust => check(
                "jitter % (robust)",
                Bound::Below,
                self.max_jitter_pct,
                j.robust_pct,
            )
            .with_detail(format!(
                "judged on MAD of per-second medians / median; the seed's CV of \
                 per-second means reads {:.1} % (at sub-ms latencies one hiccup of a few \
                 ms moves a second's mean by more than the bound)",
                j.seed_pct
            )),
            JitterStatistic::Seed => check(
                "jitter % (seed: CV of means)",
                Bound::Below,
                self.max_jitter_pct,
                j.seed_pct,
            )
            .with_detail(format!(
                "judged on the seed's CV of per-second means; the robust figure \
                 (MAD of per-second medians / median) reads {:.1} %",
                j.robust_pct
            )),
        }
    }
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
            cpu_pct: Some(70.0),
            cpu_pct_of_cores: Some(35.0),
            server_cores: 2,
            ..Observed::default()
        };
        let c = t.evaluate(&o);
        assert_eq!(c.len(), 3);
        assert!(c[0].pass, "{c:?}");
        assert!(!c[1].pass, "{c:?}");
        assert_eq!(c[1].threshold, 200.0);
        // 70 % of one core is 35 % of two: docker's convention judges.
        assert_eq!(c[2].name, "server CPU % (100 = one core) <");
        assert!(!c[2].pass, "{c:?}");
        assert_eq!(c[2].detail, "35.0 % of the server's 2 cores");
        let all_cores = Thresholds {
            cpu_pct_of: CpuConvention::ServerCores,
            ..Thresholds::default()
        };
        let c = all_cores.evaluate(&o);
        assert_eq!(c[2].name, "server CPU % (100 = 2 cores) <");
        assert!(c[2].pass, "{c:?}");
        assert_eq!(c[2].observed, 35.0);
    }

    #[test]
    fn jitter_is_judged_on_the_chosen_statistic() {
        let o = Observed {
            jitter: Some(super::super::spread::Jitter {
                seed_pct: 33.0,
                robust_pct: 4.0,
            }),
            ..Observed::default()
        };
        let c = Thresholds::default().evaluate(&o);
        assert_eq!(c[0].name, "jitter % (robust) <");
        assert!(c[0].pass);
        assert!(c[0].detail.contains("33.0 %"), "{}", c[0].detail);
        let seed = Thresholds {
            jitter_statistic: JitterStatistic::Seed,
            ..Thresholds::default()
        };
        let c = seed.evaluate(&o);
        assert!(!c[0].pass);
        assert_eq!(c[0].observed, 33.0);
    }

    #[test]
    fn half_criterion_holds_on_the_ratio_or_within_the_tolerance() {
        use super::super::spread::Halves;
        let judge = |tolerance_ms: f64, first_ms: f64, second_ms: f64| {
            let halves = Halves {
                first_ms,
                second_ms,
            };
            let o = Observed {
                half_ratio: Some(halves.ratio()),
                halves: Some(halves),
                ..Observed::default()
            };
            let t = Thresholds {
                half_tolerance_ms: tolerance_ms,
                ..Thresholds::default()
            };
            let c = t.evaluate(&o);
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].name, "second/first half <");
            assert_eq!(c[0].threshold, 1.2);
            c[0].clone()
        };
        // Ratio 1.3, +0.3 ms: only the tolerance holds it.
        let c = judge(0.5, 1.0, 1.3);
        assert!(c.pass, "{c:?}");
        assert!((c.observed - 1.3).abs() < 1e-9);
        assert!(c.detail.contains("ratio 1.300"), "{}", c.detail);
        assert!(c.detail.contains("difference +0.300 ms"), "{}", c.detail);
        assert!(
            c.detail.contains("held by the tolerance alone"),
            "{}",
            c.detail
        );
        // Tolerance 0: the ratio alone, which fails.
        let c = judge(0.0, 1.0, 1.3);
        assert!(!c.pass, "{c:?}");
        assert!(c.detail.contains("difference +0.300 ms"), "{}", c.detail);
        assert!(c.detail.contains("ratio alone"), "{}", c.detail);
        // Ratio 3, +2 ms: neither.
        let c = judge(0.5, 1.0, 3.0);
        assert!(!c.pass, "{c:?}");
        assert!(c.detail.contains("held by neither"), "{}", c.detail);
        // The tolerance is strict, like every bound.
        assert!(!judge(0.5, 1.0, 1.5).pass);
        // Ratio 1.1 of 10 ms samples, +1 ms: the ratio holds it.
        let c = judge(0.5, 10.0, 11.0);
        assert!(c.pass && c.detail.contains("held by the ratio"), "{c:?}");
        // Nothing measured fails whatever the tolerance.
        assert!(!judge(0.5, 0.0, 0.0).pass);
        // Without halves (soak) the ratio alone, no detail.
        let o = Observed {
            half_ratio: Some(1.3),
            ..Observed::default()
        };
        let t = Thresholds {
            half_tolerance_ms: 0.5,
            ..Thresholds::default()
        };
        let c = t.evaluate(&o);
        assert!(!c[0].pass && c[0].detail.is_empty(), "{c:?}");
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
}
