//! `stages`: k6-style ramping virtual users. The plan `30s:50,1m:100,...`
//! moves the number of VUs linearly from one target to the next; each VU
//! loops `GET /api/data/client-<vu>` with `--think` after every response.
//! Each executor runs a controller that starts its share of VUs as the
//! target rises; a VU above the target stops after its current iteration.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::super::cli::{Stage, StagesArgs};
use super::super::executors::{now_ns, run_on_executors, sleep_until, wait_for_start};
use super::super::pool::data_paths;
use super::super::recorder::Recorder;
use super::super::report::{step_between, RunReport};
use super::super::LoadError;
use super::closed_loop::{client_loop, ClientSpec, Think};
use super::{measured, Setup};

/// How often a controller compares running VUs with the target.
const CONTROL_TICK_NS: u64 = 100_000_000;

/// VUs wanted at `t_ns` after the start: linear within each stage, from the
/// previous stage's target (0 before the first), 0 after the last.
pub fn target_vus(stages: &[Stage], t_ns: u64) -> usize {
    let mut from = 0.0;
    let mut begin_ns = 0u64;
    for s in stages {
        let len_ns = s.duration.as_nanos() as u64;
        let to = s.target_vus as f64;
        if t_ns < begin_ns + len_ns {
            let f = (t_ns - begin_ns) as f64 / len_ns as f64;
            return (from + (to - from) * f).round() as usize;
        }
        from = to;
        begin_ns += len_ns;
    }
    0
}

/// Runs the ramp and judges it.
pub fn run(args: &StagesArgs) -> Result<RunReport, LoadError> {
    let stages = Arc::new(args.stages.0.clone());
    let end_ns: u64 = stages.iter().map(|s| s.duration.as_nanos() as u64).sum();
    let max_vus = stages.iter().map(|s| s.target_vus).max().unwrap_or(0);
    if max_vus == 0 {
        return Err(LoadError::Usage("no stage has any VU".into()));
    }
    let setup = Setup::new(&args.common)?;
    let executors = setup.executors;
    let think = Think::Fixed(args.think);
    let base = ClientSpec {
        target: setup.target.clone(),
        paths: data_paths(max_vus),
        first_path: 0,
        cycle_paths: false,
        think,
        think_jitter_pct: args.jitter.think_jitter,
        window_ns: (0, end_ns),
        timeout: setup.common.timeout,
    };
    let plan = stages.clone();
    let (m, ()) = measured(&setup, 1000, move |start, live| {
        let recorders = run_on_executors(executors, move |index| {
            let (plan, base, live) = (plan.clone(), base.clone(), live.clone());
            async move {
                wait_for_start(start).await;
                let recorder = Rc::new(RefCell::new(Recorder::new(1000, Some(live))));
                let running = Rc::new(RefCell::new(vec![false; max_vus]));
                let plan = Rc::new(plan.to_vec());
                let mut timer = glommio::timer::Timer::new(Duration::from_millis(1));
                let mut tick = 0u64;
                while now_ns(start) < end_ns {
                    let target = target_vus(&plan, now_ns(start));
                    for vu in (index..target).step_by(executors) {
                        if running.borrow()[vu] {
                            continue;
                        }
                        running.borrow_mut()[vu] = true;
                        let spec = ClientSpec {
                            first_path: vu,
                            window_ns: (now_ns(start), end_ns),
                            ..base.clone()
                        };
                        let (plan, running, recorder) =
                            (plan.clone(), running.clone(), recorder.clone());
                        glommio::spawn_local(async move {
                            let keep = |t| vu < target_vus(&plan, t);
                            client_loop(spec, start, recorder, keep).await;
                            running.borrow_mut()[vu] = false;
                        })
                        .detach();
                    }
                    tick += 1;
                    sleep_until(&mut timer, start, tick * CONTROL_TICK_NS).await;
                }
                while running.borrow().iter().any(|r| *r) {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                let mut r = recorder.replace(Recorder::new(1000, None));
                r.finish();
                r
            }
        })?;
        Ok((recorders, ()))
    })?;
    let duration_s = end_ns as f64 / 1e9;
    let mut report = RunReport::build(
        "stages",
        &args.common.url,
        &m.recorder,
        duration_s,
        m.sampled.as_ref(),
        false,
    );
    let mut begin_ns = 0;
    let mut from = 0;
    for s in stages.iter() {
        let len_ns = s.duration.as_nanos() as u64;
        let label = format!("{:?}: {} -> {} VUs", s.duration, from, s.target_vus);
        let step = step_between(
            &label,
            s.target_vus,
            &m.recorder,
            begin_ns,
            begin_ns + len_ns,
        );
        report.steps.push(step);
        begin_ns += len_ns;
        from = s.target_vus;
    }
    let observed = report.observed(m.sampled.as_ref());
    report.criteria = args.common.criteria.evaluate(&observed);
    report.notes.push(format!(
        "ramping VUs, think time {:?} after each response",
        args.think
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_linearly_between_targets() {
        let s = |secs, vus| Stage {
            duration: Duration::from_secs(secs),
            target_vus: vus,
        };
        let plan = [s(10, 50), s(10, 100), s(10, 0)];
        let at = |secs: f64| target_vus(&plan, (secs * 1e9) as u64);
        assert_eq!(at(0.0), 0);
        assert_eq!(at(5.0), 25);
        assert_eq!(at(10.0), 50);
        assert_eq!(at(15.0), 75);
        assert_eq!(at(25.0), 50);
        assert_eq!(at(31.0), 0);
    }
}
