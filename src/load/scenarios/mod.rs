//! The scenarios, one file each, and what they share: resolving and checking
//! the target, starting the server sampler and the live progress around the
//! load, merging the executors' recorders, and the closed-loop client.

pub mod closed_loop;
pub mod health;
pub mod max;
pub mod rate;
pub mod recovery;
pub mod seed;
pub mod soak;
mod soak_steal;
pub mod stages;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use super::cli::{Command, CommonArgs};
use super::live::{Live, Progress};
use super::recorder::Recorder;
use super::report::RunReport;
use super::sampler::{Sampled, Sampler, Source};
use super::target::Target;
use super::LoadError;
use crate::shard::routes::RouteClass;

/// How long executors get to start before the run's time zero.
const START_LEAD: Duration = Duration::from_millis(100);

/// Runs the scenario of `command`.
pub fn run(command: &Command) -> Result<RunReport, LoadError> {
    let mut report = run_scenario(command)?;
    report.placement.load_cpus = command.common().load_cpus.0.clone();
    if let Some(note) = placement_note(&report.placement) {
        report.notes.push(note);
    }
    Ok(report)
}

/// Where the generator ran against the server's cores, when known.
fn placement_note(p: &super::report::Placement) -> Option<String> {
    if p.server_core_ids.is_empty() {
        return None;
    }
    let server = format!("server shards on cores {:?}", p.server_core_ids);
    Some(if p.load_cpus.is_empty() {
        format!("{server}; generator not pinned (it shares those cores when on this machine; --load-cpus separates them)")
    } else if p.load_cpus.iter().any(|c| p.server_core_ids.contains(c)) {
        format!(
            "{server}; generator pinned to CPUs {:?}, OVERLAPPING the server's",
            p.load_cpus
        )
    } else {
        format!(
            "{server}; generator pinned to CPUs {:?}, apart from them",
            p.load_cpus
        )
    })
}

/// A note's ending describing `--think-jitter`.
pub fn jitter_note(pct: f64) -> String {
    if pct > 0.0 {
        format!(", each wait spread uniformly over ±{pct} % (--think-jitter)")
    } else {
        String::new()
    }
}

fn run_scenario(command: &Command) -> Result<RunReport, LoadError> {
    match command {
        Command::Seed(a) => seed::run(a),
        Command::Health(a) => health::run(a),
        Command::Rate(a) => rate::run(a),
        Command::Max(a) => max::run(a),
        Command::Stages(a) => stages::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Soak(a) => soak::run(a),
        Command::Recovery(a) => recovery::run(a),
    }
}

/// The checked target and the settings every scenario needs.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The server.
    pub target: Target,
    /// Load executors.
    pub executors: usize,
    /// Where server figures come from, if sampled.
    pub source: Option<Source>,
    /// Cores CPU % of all the server's cores is relative to (`None`: as the
    /// server reports its workers).
    pub server_cores: Option<usize>,
    /// The route class the load requests: the run's request count is
    /// checked against the server's count for it alone. `data` unless the
    /// scenario says otherwise.
    pub route: RouteClass,
    /// The flags.
    pub common: CommonArgs,
}

impl Setup {
    /// Resolves the URL and checks that the server accepts connections.
    pub fn new(common: &CommonArgs) -> Result<Setup, LoadError> {
        let target = Target::parse(&common.url)?;
        target.check_reachable()?;
        let source = match (common.no_server_metrics, common.pid) {
            (true, _) => None,
            (false, Some(pid)) => Some(Source::Proc(pid)),
            (false, None) => Some(Source::Metrics(target.clone())),
        };
        let load_cpus = &common.load_cpus.0;
        if !load_cpus.is_empty() {
            pin_this_thread(load_cpus)?;
        }
        let threads = if common.threads == 0 && !load_cpus.is_empty() {
            load_cpus.len()
        } else {
            common.threads
        };
        Ok(Setup {
            target,
            executors: super::executors::executor_count(threads),
            source,
            server_cores: (common.server_cores > 0).then_some(common.server_cores),
            route: RouteClass::Data,
            common: common.clone(),
        })
    }
}

/// Restricts the calling thread to `cpus`; threads it starts afterwards (the
/// executors, the sampler, the progress line) inherit the mask.
fn pin_this_thread(cpus: &[usize]) -> Result<(), LoadError> {
    // SAFETY: cpu_set_t is plain data, zeroed is the empty set; CPU_SET
    // indexes are below CPU_SETSIZE (checked by the CLI parser); the set
    // outlives the call.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(LoadError::Usage(format!(
            "--load-cpus {cpus:?}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// What the load measured, merged.
pub struct Measured {
    /// All executors' recorders, merged.
    pub recorder: Recorder,
    /// Server figures, when sampled.
    pub sampled: Option<Sampled>,
    /// Wall time from time zero to the end of the load, seconds.
    pub elapsed_s: f64,
}

/// Runs `load(start, live)` with the sampler and the progress line around
/// it. `load` returns the recorders of its executors.
pub fn measured<F, T>(setup: &Setup, bucket_ms: u64, load: F) -> Result<(Measured, T), LoadError>
where
    F: FnOnce(quanta::Instant, Arc<Live>) -> Result<(Vec<Recorder>, T), LoadError>,
{
    measured_with_marks(setup, bucket_ms, Vec::new(), load)
}

/// [`measured`], keeping the server's latency histogram at `marks_s`
/// (seconds since time zero: the scenario's part boundaries).
pub fn measured_with_marks<F, T>(
    setup: &Setup,
    bucket_ms: u64,
    marks_s: Vec<f64>,
    load: F,
) -> Result<(Measured, T), LoadError>
where
    F: FnOnce(quanta::Instant, Arc<Live>) -> Result<(Vec<Recorder>, T), LoadError>,
{
    let start = quanta::Instant::now()
        .checked_add(START_LEAD)
        .unwrap_or_else(quanta::Instant::now);
    let sampler = setup
        .source
        .clone()
        .map(|s| Sampler::start(s, start, setup.server_cores, marks_s, setup.route));
    let live = Arc::new(Live::new());
    let progress = Progress::start(live.clone(), start);
    let result = load(start, live);
    let elapsed_s = quanta::Instant::now()
        .saturating_duration_since(start)
        .as_secs_f64();
    progress.stop();
    let sampled = sampler.map(Sampler::finish);
    let (recorders, extra) = result?;
    Ok((
        Measured {
            recorder: Recorder::merge_all(&recorders, bucket_ms),
            sampled,
            elapsed_s,
        },
        extra,
    ))
}
