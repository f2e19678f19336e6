//! `recovery`: open loop at a baseline rate, a burst at a higher rate, then
//! the baseline again; how long after the burst until p99 is back within
//! 20 % of its baseline. Latency is from the intended send time, so a backlog
//! the burst left behind counts until it has drained.
//!
//! The timeline has 100 ms buckets. Baseline p99: the baseline phase without
//! its first second. Recovered: the first 100 ms step after the burst from
//! which the p99 of the next second is at most 1.2 × the baseline p99.

use std::sync::Arc;

use super::super::cli::RecoveryArgs;
use super::super::pool::{data_paths, PoolPlan};
use super::super::rate::{Phase, TokenBucket};
use super::super::recorder::Recorder;
use super::super::report::{step_between, RunReport};
use super::super::LoadError;
use super::rate::run_pool;
use super::{measured, Setup};

/// Timeline resolution of this scenario.
const BUCKET_MS: u64 = 100;
/// Window over which "back to baseline" is judged.
const WINDOW_NS: u64 = 1_000_000_000;
/// p99 may exceed the baseline by this factor once recovered.
const RECOVERED_FACTOR: f64 = 1.2;

/// Time from `burst_end_ns` until the p99 of the following second is within
/// `RECOVERED_FACTOR` (1.2×) of `baseline_p99_ms`; `None` if it never is
/// before `end_ns`.
pub fn recovery_ns(
    recorder: &Recorder,
    baseline_p99_ms: f64,
    burst_end_ns: u64,
    end_ns: u64,
) -> Option<u64> {
    let mut at = burst_end_ns;
    while at + WINDOW_NS <= end_ns {
        let window = step_between("", 0, recorder, at, at + WINDOW_NS);
        if window.requests > 0 && window.p99_ms <= baseline_p99_ms * RECOVERED_FACTOR {
            return Some(at - burst_end_ns);
        }
        at += BUCKET_MS * 1_000_000;
    }
    None
}

/// Runs baseline, burst and after, and judges the recovery.
pub fn run(args: &RecoveryArgs) -> Result<RunReport, LoadError> {
    let rates_ok = [args.rate, args.burst_rate]
        .iter()
        .all(|r| *r > 0.0 && r.is_finite());
    if !rates_ok || args.connections == 0 || args.after.as_nanos() < WINDOW_NS as u128 {
        return Err(LoadError::Usage(
            "recovery needs --rate and --burst-rate > 0, --connections > 0, --after >= 1s".into(),
        ));
    }
    let setup = Setup::new(&args.common)?;
    let baseline_end = args.baseline.as_nanos() as u64;
    let burst_end = baseline_end + args.burst.as_nanos() as u64;
    let end_ns = burst_end + args.after.as_nanos() as u64;
    let phase = |until_ns, rate_per_s| Phase {
        until_ns,
        rate_per_s,
    };
    let bucket = TokenBucket::phased(
        vec![
            phase(baseline_end, args.rate),
            phase(burst_end, args.burst_rate),
            phase(u64::MAX, args.rate),
        ],
        None,
    );
    let plan = PoolPlan {
        target: setup.target.clone(),
        connections: args.connections,
        paths: data_paths(100),
        bucket: Arc::new(bucket),
        end_ns,
        timeout: setup.common.timeout,
    };
    let (m, ()) = measured(&setup, BUCKET_MS, |start, live| {
        Ok((run_pool(&setup, plan, BUCKET_MS, start, live)?, ()))
    })?;
    let mut report = RunReport::build(
        "recovery",
        &args.common.url,
        &m.recorder,
        end_ns as f64 / 1e9,
        m.sampled.as_ref(),
        true,
    );
    let settle_ns = if baseline_end >= 2 * WINDOW_NS {
        WINDOW_NS
    } else {
        0
    };
    let rec = &m.recorder;
    let c = args.connections;
    let base = step_between("baseline", c, rec, settle_ns, baseline_end);
    report.steps.push(base.clone());
    report
        .steps
        .push(step_between("burst", c, rec, baseline_end, burst_end));
    report
        .steps
        .push(step_between("after", c, rec, burst_end, end_ns));
    let recovered = recovery_ns(rec, base.p99_ms, burst_end, end_ns);
    let mut observed = report.observed(m.sampled.as_ref());
    observed.p95_ms = None;
    observed.p99_ms = None;
    observed.cpu_pct = None;
    observed.recovery_ms = Some(recovered.map_or(f64::NAN, |ns| ns as f64 / 1e6));
    report.criteria = args.common.criteria.evaluate(&observed);
    report.notes.push(match recovered {
        Some(ns) => format!(
            "p99 back within 20 % of the baseline's {:.3} ms {:.0} ms after the burst",
            base.p99_ms,
            ns as f64 / 1e6
        ),
        None => format!(
            "p99 never came back within 20 % of the baseline's {:.3} ms (observed n/a)",
            base.p99_ms
        ),
    });
    report.notes.push(format!(
        "open loop: {} req/s, burst {} req/s for {:?}, {} connections",
        args.rate, args.burst_rate, args.burst, args.connections
    ));
    Ok(report)
}
