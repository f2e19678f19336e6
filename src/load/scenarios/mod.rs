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

/// How long executors get to start before the run's time zero.
const START_LEAD: Duration = Duration::from_millis(100);

/// Runs the scenario of `command`.
pub fn run(command: &Command) -> Result<RunReport, LoadError> {
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
    /// Cores CPU % is relative to.
    pub server_cores: usize,
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
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Setup {
            target,
            executors: super::executors::executor_count(common.threads),
            source,
            server_cores: if common.server_cores > 0 {
                common.server_cores
            } else {
                available
            },
            common: common.clone(),
        })
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
    let start = quanta::Instant::now()
        .checked_add(START_LEAD)
        .unwrap_or_else(quanta::Instant::now);
    let sampler = setup
        .source
        .clone()
        .map(|s| Sampler::start(s, start, setup.server_cores));
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
