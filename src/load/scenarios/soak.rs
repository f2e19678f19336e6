//! `soak`: a steady load for a long time (`--clients` with a fixed think
//! time, so both halves see the same rate), then the second half against the
//! first: latency must not creep up by more than `--max-half-ratio`, nor
//! jitter exceed its bound; RSS of both halves is reported so that a leak
//! shows.
//!
//! Each part also shows the server's CPU time per request and this
//! machine's steal (`machine_cpu`). When the half criterion fails on
//! latency while the second half lost `--steal-rise-points` more of the
//! machine to the host than the first, the clients' latency measures the
//! host, not the server: the server's own CPU per request (which steal does
//! not inflate) is judged against the same ratio in its place, and the
//! criterion says so.

use super::super::cli::SoakArgs;
use super::super::criteria::{Bound, Criterion};
use super::super::pool::data_paths;
use super::super::report::{step_between, RunReport, Step};
use super::super::server_latency;
use super::super::spread::half_ratio;
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{measured_with_marks, Setup};

/// Runs the soak and judges it.
pub fn run(args: &SoakArgs) -> Result<RunReport, LoadError> {
    if args.clients == 0 || args.duration.as_secs() < 2 {
        return Err(LoadError::Usage(
            "soak needs --clients > 0 and a --duration of at least 2 s".into(),
        ));
    }
    let setup = Setup::new(&args.common)?;
    let end_ns = args.duration.as_nanos() as u64;
    let group = Group {
        clients: args.clients,
        paths: data_paths(args.clients),
        cycle_paths: false,
        think: Think::Fixed(args.think),
        think_jitter_pct: args.jitter.think_jitter,
        window_ns: (0, end_ns),
    };
    let duration_s = args.duration.as_secs_f64();
    let half_ns = (duration_s.floor() as u64 / 2) * 1_000_000_000;
    let full_ns = half_ns * 2;
    let window_ns = args.window.as_nanos() as u64;
    let mut bounds_ns = vec![0, half_ns, full_ns];
    if window_ns > 0 && window_ns < end_ns {
        bounds_ns.extend((1..=end_ns / window_ns).map(|k| k * window_ns));
    }
    bounds_ns.sort_unstable();
    bounds_ns.dedup();
    let marks_s = bounds_ns.iter().map(|&ns| ns as f64 / 1e9).collect();
    let (m, ()) = measured_with_marks(&setup, 1000, marks_s, |start, live| {
        Ok((run_groups(&setup, vec![group], 1000, start, live)?, ()))
    })?;
    let mut report = RunReport::build(
        "soak",
        &args.common.url,
        &m.recorder,
        duration_s,
        m.sampled.as_ref(),
        false,
    );
    let mut parts = vec![
        ("first half".to_string(), 0, half_ns),
        ("second half".to_string(), half_ns, full_ns),
    ];
    if window_ns > 0 && window_ns < end_ns {
        parts.extend((0..end_ns / window_ns).map(|k| {
            let (from_ns, to_ns) = (k * window_ns, (k + 1) * window_ns);
            let label = format!("{}-{} s", from_ns / 1_000_000_000, to_ns / 1_000_000_000);
            (label, from_ns, to_ns)
        }));
    }
    for (label, from_ns, to_ns) in parts {
        let mut st = step_between(&label, args.clients, &m.recorder, from_ns, to_ns);
        let (from_s, to_s) = (from_ns as f64 / 1e9, to_ns as f64 / 1e9);
        if let Some(s) = m.sampled.as_ref() {
            st.server_latency_ms = server_latency::between(&s.latency_marks, from_s, to_s);
            st.server_cpu_us_per_request = s
                .cpu_pct_between(from_s, to_s)
                .filter(|_| st.requests > 0)
                .map(|pct| pct / 100.0 * (to_s - from_s) * 1e6 / st.requests as f64);
            st.machine_steal_pct = s.steal_pct_between(from_s, to_s);
        }
        report.steps.push(st);
    }
    let means: Vec<f64> = report
        .timeline
        .iter()
        .take((full_ns / 1_000_000_000) as usize)
        .map(|p| p.mean_ms)
        .collect();
    let mut observed = report.observed(m.sampled.as_ref());
    observed.jitter = Some(report.jitter());
    observed.half_ratio = Some(half_ratio(&means).unwrap_or(f64::NAN));
    report.criteria = args.common.criteria.evaluate(&observed);
    if let [first, second, ..] = &report.steps[..] {
        let steal = HalfSteal::of(first, second);
        if let Some(c) = report
            .criteria
            .iter_mut()
            .find(|c| c.name.starts_with("second/first half"))
        {
            if let Some(judged) = steal.judge_cpu_instead(c, args.steal_rise_points) {
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
    if report.server.len() >= 2 {
        let (a, b) = report.server.split_at(report.server.len() / 2);
        let mean_rss = |s: &[super::super::sampler::ServerSample]| {
            s.iter().map(|x| x.rss_bytes as f64).sum::<f64>() / s.len() as f64 / 1048576.0
        };
        report.notes.push(format!(
            "server RSS mean: first half {:.1} MiB, second half {:.1} MiB",
            mean_rss(a),
            mean_rss(b)
        ));
    }
    report.notes.push(format!(
        "half ratio = mean of the second half's per-second mean latencies over the first's; \
         {} clients, think {:?}",
        args.clients, args.think
    ));
    Ok(report)
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
