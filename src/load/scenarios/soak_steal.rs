//! How a soak weighs steal, the CPU time a VM's host takes from it
//! (`machine_cpu`): on such a machine the clients' latency grows while the
//! server has not changed, so a soak that fails on latency must say whether
//! the host or the server moved.
//!
//! - The half criterion: when it fails on latency while the second half lost
//!   `--steal-rise-points` more of the machine to the host than the first,
//!   the server's own CPU per request (which steal does not inflate) is
//!   judged against the same ratio in its place, and the criterion says so.
//! - The jitter criterion keeps its verdict (the seed's contract), and its
//!   detail adds the figure over the seconds without steal, so that a reader
//!   can tell a host that came and went from a server that wavers.

use super::super::criteria::{Bound, Criterion};
use super::super::report::{RunReport, Step};
use super::super::spread::Jitter;

/// Steal in a second from which that second counts as one the host took
/// part of, %.
const STEAL_SECOND_PCT: f64 = 2.0;

/// Applies both rules to `report`'s criteria (its first two steps are the
/// halves) and notes the halves' steal.
pub fn weigh(report: &mut RunReport, rise_points: f64) {
    if let [first, second, ..] = &report.steps[..] {
        let steal = HalfSteal::of(first, second);
        if let Some(c) = report
            .criteria
            .iter_mut()
            .find(|c| c.name.starts_with("second/first half"))
        {
            if let Some(judged) = steal.judge_cpu_instead(c, rise_points) {
                *c = judged;
            }
        }
        if let (Some(a), Some(b)) = (steal.first_pct, steal.second_pct) {
            report.notes.push(format!(
                "steal (the host's share of this machine's CPU time): first half {a:.1} %, \
                 second half {b:.1} %"
            ));
        }
    }
    let Some(note) = jitter_without_steal(report) else {
        return;
    };
    if let Some(c) = report
        .criteria
        .iter_mut()
        .find(|c| c.name.starts_with("jitter"))
    {
        c.detail = if c.detail.is_empty() {
            note
        } else {
            format!("{}; {note}", c.detail)
        };
    }
}

/// Jitter over the seconds whose steal stayed under `STEAL_SECOND_PCT`, as
/// a sentence; `None` when no second had that much steal or none is known.
fn jitter_without_steal(report: &RunReport) -> Option<String> {
    let full = report.summary.duration_s.floor() as usize;
    // A server sample covers the second that ends at its `t_s`.
    let steal_of = |t_s: f64| {
        report
            .server
            .iter()
            .find(|s| s.t_s > t_s + 0.5 && s.t_s <= t_s + 1.5)
            .and_then(|s| s.machine_steal_pct)
    };
    let seconds: Vec<_> = report
        .timeline
        .iter()
        .take(full)
        .filter(|p| p.rps > 0.0)
        .map(|p| (p, steal_of(p.t_s)))
        .collect();
    let stolen = seconds
        .iter()
        .filter(|(_, s)| s.is_some_and(|s| s >= STEAL_SECOND_PCT))
        .count();
    if stolen == 0 || seconds.iter().all(|(_, s)| s.is_none()) {
        return None;
    }
    let quiet: Vec<_> = seconds
        .iter()
        .filter(|(_, s)| s.is_some_and(|s| s < STEAL_SECOND_PCT))
        .map(|(p, _)| *p)
        .collect();
    let means: Vec<f64> = quiet.iter().map(|p| p.mean_ms).collect();
    let medians: Vec<f64> = quiet.iter().map(|p| p.p50_ms).collect();
    let j = Jitter::of(&means, &medians);
    Some(format!(
        "{stolen} of {} seconds had {STEAL_SECOND_PCT} % steal or more; over the other {}: \
         robust {:.1} %, seed {:.1} % (not judged)",
        seconds.len(),
        quiet.len(),
        j.robust_pct,
        j.seed_pct
    ))
}

/// The halves' steal and server CPU per request, for the half criterion.
#[derive(Clone, Copy, Debug, PartialEq)]
struct HalfSteal {
    first_pct: Option<f64>,
    second_pct: Option<f64>,
    first_cpu_us: Option<f64>,
    second_cpu_us: Option<f64>,
}

impl HalfSteal {
    fn of(first: &Step, second: &Step) -> HalfSteal {
        HalfSteal {
            first_pct: first.machine_steal_pct,
            second_pct: second.machine_steal_pct,
            first_cpu_us: first.server_cpu_us_per_request,
            second_cpu_us: second.server_cpu_us_per_request,
        }
    }

    /// The criterion to judge instead of a failed latency half criterion
    /// `c`, when steal rose by `rise_points` or more and the server's CPU
    /// per request was measured in both halves; `None` otherwise (`c`
    /// stands). Same bound: the server's cost may not grow by more than the
    /// latency might have.
    fn judge_cpu_instead(&self, c: &Criterion, rise_points: f64) -> Option<Criterion> {
        let (a, b) = (self.first_pct?, self.second_pct?);
        if c.pass || b - a < rise_points {
            return None;
        }
        let (cpu_a, cpu_b) = (self.first_cpu_us?, self.second_cpu_us?);
        let ratio = cpu_b / cpu_a;
        Some(Criterion {
            name: format!(
                "second/first half server CPU us/req {}",
                Bound::Below.symbol()
            ),
            threshold: c.threshold,
            observed: ratio,
            pass: ratio < c.threshold,
            detail: format!(
                "judged in place of latency ({} {:.3}, failed): steal rose from {a:.1} % to \
                 {b:.1} % of this machine's CPU time (>= {rise_points} points, \
                 --steal-rise-points), so the clients' latency measured the host; the \
                 server's own CPU per request went {cpu_a:.2} -> {cpu_b:.2} us",
                c.name, c.observed
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_latency() -> Criterion {
        Criterion {
            name: "second/first half <".into(),
            threshold: 1.2,
            observed: 1.66,
            pass: false,
            detail: String::new(),
        }
    }

    fn halves(steal: (f64, f64), cpu_us: (f64, f64)) -> HalfSteal {
        HalfSteal {
            first_pct: Some(steal.0),
            second_pct: Some(steal.1),
            first_cpu_us: Some(cpu_us.0),
            second_cpu_us: Some(cpu_us.1),
        }
    }

    #[test]
    fn steal_that_rose_moves_the_verdict_to_server_cpu() {
        let c = halves((0.5, 4.0), (14.2, 15.0))
            .judge_cpu_instead(&failed_latency(), 3.0)
            .expect("steal rose 3.5 points");
        assert!(c.pass, "{c:?}");
        assert!((c.observed - 15.0 / 14.2).abs() < 1e-9);
        assert!(c.detail.contains("0.5 % to 4.0 %"), "{}", c.detail);
        // A server whose own cost grew fails all the same.
        let c = halves((0.5, 4.0), (14.2, 20.0))
            .judge_cpu_instead(&failed_latency(), 3.0)
            .expect("steal rose");
        assert!(!c.pass);
    }

    #[test]
    fn latency_stands_otherwise() {
        let h = halves((0.5, 3.0), (14.2, 15.0));
        assert_eq!(
            h.judge_cpu_instead(&failed_latency(), 3.0),
            None,
            "2.5 points"
        );
        let passed = Criterion {
            pass: true,
            observed: 1.1,
            ..failed_latency()
        };
        let h = halves((0.5, 9.0), (14.2, 15.0));
        assert_eq!(h.judge_cpu_instead(&passed, 3.0), None, "latency held");
        let unmeasured = HalfSteal {
            second_cpu_us: None,
            ..h
        };
        assert_eq!(unmeasured.judge_cpu_instead(&failed_latency(), 3.0), None);
    }
}

#[cfg(test)]
mod jitter_tests {
    use super::*;
    use crate::load::outcome::Outcome;
    use crate::load::recorder::Recorder;
    use crate::load::sampler::ServerSample;

    /// Ten seconds at 0.5 ms, but for seconds 6–8 at 3 ms, when the host
    /// took 8 % of the machine.
    fn report() -> RunReport {
        let mut rec = Recorder::new(1000, None);
        for second in 0..10u64 {
            let latency_ns = if (6..9).contains(&second) {
                3_000_000
            } else {
                500_000
            };
            for i in 0..100u64 {
                let at_ns = second * 1_000_000_000 + i * 10_000_000;
                rec.record(at_ns, at_ns, at_ns + latency_ns, Outcome::Status(200));
            }
        }
        let mut r = RunReport::build("soak", "http://x:1", &rec, 10.0, None, false);
        r.server = (1..=10)
            .map(|t| ServerSample {
                t_s: t as f64,
                cpu_pct: 10.0,
                cpu_pct_of_cores: 5.0,
                rss_bytes: 1 << 20,
                fds_open: 10,
                context_switches_per_s: 0.0,
                cache_hit_rate: None,
                machine_steal_pct: Some(if (7..10).contains(&t) { 8.0 } else { 0.1 }),
            })
            .collect();
        r.criteria = vec![Criterion {
            name: "jitter % (robust) <".into(),
            threshold: 20.0,
            observed: 50.0,
            pass: false,
            detail: "judged on MAD".into(),
        }];
        r
    }

    #[test]
    fn jitter_detail_gives_the_figure_without_the_stolen_seconds() {
        let mut r = report();
        weigh(&mut r, 3.0);
        let c = &r.criteria[0];
        assert!(!c.pass, "the verdict stands");
        assert!(
            c.detail
                .starts_with("judged on MAD; 3 of 10 seconds had 2 % steal or more"),
            "{}",
            c.detail
        );
        // The seed figure (CV of means) would show one slow second left in.
        assert!(
            c.detail
                .contains("over the other 7: robust 0.0 %, seed 0.0 %"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn no_note_without_steal() {
        let mut r = report();
        for s in &mut r.server {
            s.machine_steal_pct = Some(0.1);
        }
        weigh(&mut r, 3.0);
        assert_eq!(r.criteria[0].detail, "judged on MAD");
    }
}
