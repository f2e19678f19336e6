//! `rate`: open loop. Requests arrive at a constant `--rate` over a pool of
//! `--connections` keep-alive connections, whatever the server does; each
//! latency is measured from the request's intended send time, so a stalled
//! server shows as the latency its users would see (coordinated omission
//! corrected). The raw latency (from the actual send) is reported next to it.
//! Judged on success, corrected p95/p99, jitter and the server's resources.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::super::cli::RateArgs;
use super::super::executors::run_on_executors;
use super::super::pool::{data_paths, run_share, PoolPlan};
use super::super::rate::TokenBucket;
use super::super::recorder::Recorder;
use super::super::report::RunReport;
use super::super::LoadError;
use super::{measured, Setup};

/// Runs an open-loop pool over `plan` on every executor.
pub fn run_pool(
    setup: &Setup,
    plan: PoolPlan,
    bucket_ms: u64,
    start: quanta::Instant,
    live: Arc<super::super::live::Live>,
) -> Result<Vec<Recorder>, LoadError> {
    let executors = setup.executors;
    run_on_executors(executors, move |index| {
        let plan = plan.clone();
        let live = live.clone();
        async move {
            let recorder = Rc::new(RefCell::new(Recorder::new(bucket_ms, Some(live))));
            run_share(plan, index, executors, start, recorder.clone()).await;
            let mut r = recorder.replace(Recorder::new(bucket_ms, None));
            r.finish();
            r
        }
    })
}

/// Runs the open loop and judges it.
pub fn run(args: &RateArgs) -> Result<RunReport, LoadError> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err(LoadError::Usage(
            "--rate must be > 0 (for no limit use `percore-load max`)".into(),
        ));
    }
    if args.pool.connections == 0 {
        return Err(LoadError::Usage("--connections must be at least 1".into()));
    }
    let setup = Setup::new(&args.common)?;
    let plan = PoolPlan {
        target: setup.target.clone(),
        connections: args.pool.connections,
        paths: data_paths(args.pool.ids),
        bucket: Arc::new(TokenBucket::constant(args.rate)),
        end_ns: args.pool.duration.as_nanos() as u64,
        timeout: setup.common.timeout,
    };
    let (m, ()) = measured(&setup, 1000, |start, live| {
        Ok((run_pool(&setup, plan, 1000, start, live)?, ()))
    })?;
    let mut report = RunReport::build(
        "rate",
        &args.common.url,
        &m.recorder,
        args.pool.duration.as_secs_f64(),
        m.sampled.as_ref(),
        true,
    );
    let mut observed = report.observed(m.sampled.as_ref());
    observed.jitter = Some(report.jitter());
    report.criteria = args.common.criteria.evaluate(&observed);
    report.notes.push(format!(
        "open loop at {} req/s over {} connections; latency_ms is from the intended send \
         time (coordinated omission corrected), latency_raw_ms from the actual send",
        args.rate, args.pool.connections
    ));
    Ok(report)
}
