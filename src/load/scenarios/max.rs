//! `max`: closed loop without think time, the way wrk loads a server: every
//! connection sends its next request as soon as the previous response is in.
//! Measures the throughput ceiling; judged on success, latency, throughput
//! (at least `--min-rps`) and the server's memory, fds and cache. Server CPU
//! is reported but not judged: saturating it is the point. Driven by
//! `epoll_loop/` (default) or by the glommio closed-loop client.

use super::super::cli::{Engine, MaxArgs};
use super::super::epoll_loop;
use super::super::pool::data_paths;
use super::super::report::RunReport;
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{measured, Setup};

/// Runs connections back to back and judges the result.
pub fn run(args: &MaxArgs) -> Result<RunReport, LoadError> {
    if args.pool.connections == 0 {
        return Err(LoadError::Usage("--connections must be at least 1".into()));
    }
    let setup = Setup::new(&args.common)?;
    let group = Group {
        clients: args.pool.connections,
        paths: data_paths(args.pool.ids),
        cycle_paths: true,
        think: Think::None,
        think_jitter_pct: 0.0,
        window_ns: (0, args.pool.duration.as_nanos() as u64),
    };
    let (m, ()) = measured(&setup, 1000, |start, live| {
        let recorders = match args.engine {
            Engine::Epoll => epoll_loop::run(
                &epoll_loop::Plan {
                    target: setup.target.clone(),
                    connections: group.clients,
                    paths: group.paths.clone(),
                    window_ns: group.window_ns,
                    timeout: setup.common.timeout,
                    threads: setup.executors,
                    bucket_ms: 1000,
                },
                start,
                live,
            )?,
            Engine::Glommio => run_groups(&setup, vec![group], 1000, start, live)?,
        };
        Ok((recorders, ()))
    })?;
    let mut report = RunReport::build(
        "max",
        &args.common.url,
        &m.recorder,
        args.pool.duration.as_secs_f64(),
        m.sampled.as_ref(),
        false,
    );
    let mut observed = report.observed(m.sampled.as_ref());
    observed.rps = Some(report.summary.rps);
    let cpu = observed
        .cpu_pct
        .take()
        .zip(observed.cpu_pct_of_cores.take());
    report.criteria = args.common.criteria.evaluate(&observed);
    if let Some((one, all)) = cpu {
        report.notes.push(format!(
            "server CPU {one:.1} % of one core = {all:.1} % of its {} cores (not judged: this \
             mode saturates the server on purpose)",
            observed.server_cores
        ));
    }
    report.notes.push(format!(
        "{} connections, no think time, cycling {} ids ({} engine)",
        args.pool.connections,
        args.pool.ids,
        match args.engine {
            Engine::Epoll => "epoll",
            Engine::Glommio => "glommio",
        }
    ));
    Ok(report)
}
