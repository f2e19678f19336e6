//! `seed`: the seed's first Red-phase test. Each of `--clients` clients loops
//! `GET /api/data/client-<i>` on its own keep-alive connection with the
//! seed's adaptive wait, for `--duration`. Judged on success, p95, p99 and,
//! when the server is sampled, CPU, RSS, fds and cache hit rate (the seed's
//! third test measures those during this same load).

use super::super::cli::SeedArgs;
use super::super::pool::data_paths;
use super::super::report::RunReport;
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{jitter_note, measured, Setup};

/// Runs the seed loop and judges it.
pub fn run(args: &SeedArgs) -> Result<RunReport, LoadError> {
    if args.clients == 0 {
        return Err(LoadError::Usage("--clients must be at least 1".into()));
    }
    let setup = Setup::new(&args.common)?;
    let group = Group {
        clients: args.clients,
        paths: data_paths(args.clients),
        cycle_paths: false,
        think: Think::Seed,
        think_jitter_pct: args.jitter.think_jitter,
        window_ns: (0, args.duration.as_nanos() as u64),
    };
    let (m, ()) = measured(&setup, 1000, |start, live| {
        Ok((run_groups(&setup, vec![group], 1000, start, live)?, ()))
    })?;
    let mut report = RunReport::build(
        "seed",
        &args.common.url,
        &m.recorder,
        args.duration.as_secs_f64(),
        m.sampled.as_ref(),
        false,
    );
    let observed = report.observed(m.sampled.as_ref());
    report.criteria = args.common.criteria.evaluate(&observed);
    report.notes.push(format!(
        "{} clients, wait max(10, 100 - responses) ms after each response{}",
        args.clients,
        jitter_note(args.jitter.think_jitter)
    ));
    Ok(report)
}
