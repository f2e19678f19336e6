//! `sweep`: the seed's client loop at 10, 100, 1,000 ... clients, one step
//! after the other, and how latency and throughput change per 10× clients:
//! the seed's "10× load, at most 2× slower". The slowdown of a step is its
//! p95 over the previous step's, scaled to a 10× step when the counts grow
//! by another factor; the worst one is judged against `--max-slowdown`.

use super::super::cli::SweepArgs;
use super::super::pool::data_paths;
use super::super::report::{step_between, RunReport, Step};
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{measured, Setup};

/// p95 growth between two steps, normalised to a 10× growth in clients.
pub fn slowdown_per_10x(before: &Step, after: &Step) -> Option<f64> {
    let load = after.clients as f64 / before.clients.max(1) as f64;
    if load <= 1.0 || before.p95_ms <= 0.0 || after.p95_ms <= 0.0 {
        return None;
    }
    Some((after.p95_ms / before.p95_ms).powf(1.0 / load.log10()))
}

/// Runs the steps and judges them.
pub fn run(args: &SweepArgs) -> Result<RunReport, LoadError> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        return Err(LoadError::Usage(
            "--clients needs counts > 0, e.g. 10,100,1000".into(),
        ));
    }
    let setup = Setup::new(&args.common)?;
    let step_ns = args.step_duration.as_nanos() as u64;
    let most = args.clients.iter().copied().max().unwrap_or(1);
    let groups: Vec<Group> = args
        .clients
        .iter()
        .enumerate()
        .map(|(k, &clients)| Group {
            clients,
            paths: data_paths(most),
            cycle_paths: false,
            think: Think::Seed,
            window_ns: (k as u64 * step_ns, (k as u64 + 1) * step_ns),
        })
        .collect();
    let (m, ()) = measured(&setup, 1000, |start, live| {
        Ok((run_groups(&setup, groups, 1000, start, live)?, ()))
    })?;
    let duration_s = (step_ns * args.clients.len() as u64) as f64 / 1e9;
    let mut report = RunReport::build(
        "sweep",
        &args.common.url,
        &m.recorder,
        duration_s,
        m.sampled.as_ref(),
        false,
    );
    for (k, &clients) in args.clients.iter().enumerate() {
        let from = k as u64 * step_ns;
        let label = format!("{clients} clients");
        report.steps.push(step_between(
            &label,
            clients,
            &m.recorder,
            from,
            from + step_ns,
        ));
    }
    let mut worst: Option<f64> = None;
    for pair in report.steps.windows(2) {
        if let Some(s) = slowdown_per_10x(&pair[0], &pair[1]) {
            worst = Some(worst.map_or(s, |w| w.max(s)));
            report.notes.push(format!(
                "{} -> {} clients: p95 x{:.2}, throughput x{:.2} (p95 growth per 10x: {s:.2})",
                pair[0].clients,
                pair[1].clients,
                pair[1].p95_ms / pair[0].p95_ms,
                pair[1].rps / pair[0].rps.max(1e-9)
            ));
        }
    }
    let mut observed = report.observed(m.sampled.as_ref());
    observed.slowdown = worst;
    observed.rps = report.steps.iter().map(|s| s.rps).reduce(f64::max);
    report.criteria = args.common.criteria.evaluate(&observed);
    report.notes.push(
        "each step runs the seed loop (adaptive wait); throughput is judged on the best step"
            .into(),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(clients: usize, p95_ms: f64) -> Step {
        Step {
            label: String::new(),
            clients,
            requests: 0,
            rps: 0.0,
            mean_ms: 0.0,
            p50_ms: 0.0,
            p95_ms,
            p99_ms: 0.0,
        }
    }

    #[test]
    fn slowdown_is_per_10x() {
        let s = slowdown_per_10x(&step(10, 1.0), &step(100, 2.0)).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        // 100x more clients, 4x slower: 2x per 10x.
        let s = slowdown_per_10x(&step(10, 1.0), &step(1000, 4.0)).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        assert!(slowdown_per_10x(&step(10, 1.0), &step(10, 4.0)).is_none());
    }
}
