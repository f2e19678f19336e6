//! A run judged: every criterion whose figure was measured, in report
//! order, with the CPU, jitter and half criteria in the convention the
//! thresholds choose and the other figure in the detail.

use super::criterion::{check, Bound, Criterion};
use super::observed::Observed;
use super::thresholds::{CpuConvention, JitterStatistic, Thresholds};

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

    /// The jitter criterion on the chosen statistic, the other beside it:
    /// the % below `max_jitter_pct`, or, with a tolerance set, the same
    /// statistic's spread in ms below `jitter_tolerance_ms`. The observation
    /// is the %; the spread is in the detail.
    fn jitter_criterion(&self, j: super::super::spread::Jitter) -> Criterion {
        let (by_pct, spread_ms, detail) = match self.jitter_statistic {
            JitterStatistic::Robust => (
                check(
                    "jitter % (robust)",
                    Bound::Below,
                    self.max_jitter_pct,
                    j.robust_pct,
                ),
                j.robust_ms,
                format!(
                    "judged on MAD of per-second medians / median; the seed's CV of \
                     per-second means reads {:.1} % (at sub-ms latencies one hiccup of a few \
                     ms moves a second's mean by more than the bound)",
                    j.seed_pct
                ),
            ),
            JitterStatistic::Seed => (
                check(
                    "jitter % (seed: CV of means)",
                    Bound::Below,
                    self.max_jitter_pct,
                    j.seed_pct,
                ),
                j.seed_ms,
                format!(
                    "judged on the seed's CV of per-second means; the robust figure \
                     (MAD of per-second medians / median) reads {:.1} %",
                    j.robust_pct
                ),
            ),
        };
        let tolerance_ms = self.jitter_tolerance_ms;
        if tolerance_ms <= 0.0 {
            return by_pct.with_detail(format!("{detail}; the % alone (tolerance 0)"));
        }
        // NaN (nothing measured) is not within any tolerance.
        let within = spread_ms < tolerance_ms;
        let verdict = match (by_pct.pass, within) {
            (true, _) => "held by the %",
            (false, true) => "held by the tolerance alone",
            (false, false) => "held by neither",
        };
        let pass = by_pct.pass || within;
        Criterion { pass, ..by_pct }.with_detail(format!(
            "{detail}; spread {spread_ms:.3} ms; holds when the % < {} or the spread < \
             {tolerance_ms} ms (--jitter-tolerance-ms): {verdict}",
            self.max_jitter_pct
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            jitter: Some(crate::load::spread::Jitter {
                seed_pct: 33.0,
                robust_pct: 4.0,
                seed_ms: 1.0,
                robust_ms: 0.1,
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
        assert!(!c[0].pass, "33 % and a spread of 1 ms");
        assert_eq!(c[0].observed, 33.0);
    }

    /// At sub-ms latencies a 20 % swing is a few µs: the tolerance holds
    /// it; a spread of a millisecond or more fails as the seed's would.
    #[test]
    fn jitter_holds_on_the_percentage_or_within_the_tolerance() {
        let judge = |tolerance_ms: f64, robust_pct: f64, robust_ms: f64| {
            let o = Observed {
                jitter: Some(crate::load::spread::Jitter {
                    seed_pct: 0.0,
                    robust_pct,
                    seed_ms: 0.0,
                    robust_ms,
                }),
                ..Observed::default()
            };
            let t = Thresholds {
                jitter_tolerance_ms: tolerance_ms,
                ..Thresholds::default()
            };
            t.evaluate(&o).remove(0)
        };
        let c = judge(0.5, 21.0, 0.03);
        assert!(c.pass, "{c:?}");
        assert_eq!(c.observed, 21.0, "the criterion observes the %");
        assert!(
            c.detail.contains("held by the tolerance alone"),
            "{}",
            c.detail
        );
        let c = judge(0.5, 30.0, 1.2);
        assert!(!c.pass, "{c:?}");
        assert!(c.detail.contains("held by neither"), "{}", c.detail);
        assert!(!judge(0.0, 21.0, 0.03).pass, "tolerance 0: the % alone");
        assert!(judge(0.5, 10.0, 2.0).pass, "held by the %");
        assert!(!judge(0.5, f64::NAN, f64::NAN).pass, "nothing measured");
    }

    #[test]
    fn half_criterion_holds_on_the_ratio_or_within_the_tolerance() {
        use crate::load::spread::Halves;
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
