//! `soak`: a steady load for a long time (`--clients` with a fixed think
//! time, so both halves see the same rate), then the second half against the
//! first: latency must not creep up by more than `--max-half-ratio`, nor
//! jitter exceed its bound; RSS of both halves is reported so that a leak
//! shows.
//!
//! Each part also shows the server's CPU time per request and this
//! machine's steal; how steal is weighed in the verdict is `soak_steal`.

use super::super::cli::SoakArgs;
use super::super::pool::data_paths;
use super::super::report::{step_between, RunReport};
use super::super::server_latency;
use super::super::spread::half_ratio;
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{measured_with_marks, soak_steal, Setup};

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
    soak_steal::weigh(&mut report, args.steal_rise_points);
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
