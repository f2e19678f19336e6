//! Each scenario's own flags, one struct per subcommand (with the
//! connection pool `rate` and `max` share, and the think-time jitter of the
//! closed-loop scenarios), each flattening [`CommonArgs`].

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::common::CommonArgs;
use super::values::{parse_duration, parse_pct, parse_stages, parse_tolerance_ms, StagePlan};

/// `seed` flags.
#[derive(Args, Clone, Debug)]
pub struct SeedArgs {
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How long the clients loop.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub jitter: ThinkJitterArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `--think-jitter`: what the closed-loop scenarios with think time
/// (`seed`, `stages`, `sweep`, `soak`) share, declared once so its help and
/// parsing cannot drift apart between them.
#[derive(Args, Clone, Debug)]
pub struct ThinkJitterArgs {
    /// Spread each think time uniformly over ±PCT % of itself (same mean):
    /// clients whose waits converge stop waking in lockstep. 0: off, the
    /// loop exactly as specified.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    pub think_jitter: f64,
}

/// `health` flags.
#[derive(Args, Clone, Debug)]
pub struct HealthArgs {
    /// How long to probe.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Concurrent probes per sample.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How each half's samples are summarised for the half ratio.
    #[arg(long, value_enum, default_value_t = HalfStatistic::Median)]
    pub half_statistic: HalfStatistic,
    /// The half criterion also holds when the second half is slower than
    /// the first by less than this, ms: half the 1 ms resolution of the
    /// seed's `Date.now()`, below which its test could not see a change.
    /// 0: judged on `--max-half-ratio` alone.
    #[arg(long, value_name = "MS", default_value_t = 0.5, value_parser = parse_tolerance_ms)]
    pub half_tolerance_ms: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// How a half of the health samples is summarised.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfStatistic {
    /// The median sample (robust to scheduling hiccups).
    Median,
    /// The mean sample (the seed's plain average).
    Mean,
}

/// `rate` flags.
#[derive(Args, Clone, Debug)]
pub struct RateArgs {
    /// Arrival rate, requests per second (> 0).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub pool: PoolArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Connections, ids and duration: what `rate` and `max` share.
#[derive(Args, Clone, Debug)]
pub struct PoolArgs {
    /// Connections (`rate`: the pool serving the schedule; `max`: each
    /// sending back to back).
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Distinct ids requested (`/api/data/client-0` .. `client-<ids-1>`); each
    /// connection cycles through all of them, the starts spread evenly.
    #[arg(long, default_value_t = 100)]
    pub ids: usize,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// `max` flags.
#[derive(Args, Clone, Debug)]
pub struct MaxArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub pool: PoolArgs,
    /// What drives the connections: `epoll`, one epoll loop per thread (the
    /// least work per request, so the most left for the server), or
    /// `glommio`, the executor tasks the other scenarios use.
    #[arg(long, value_enum, default_value_t = Engine::Epoll)]
    pub engine: Engine,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `max`'s engine.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// One epoll loop per thread (`epoll_loop/`).
    Epoll,
    /// One glommio task per connection (`scenarios/closed_loop.rs`).
    Glommio,
}

/// `stages` flags.
#[derive(Args, Clone, Debug)]
pub struct StagesArgs {
    /// Ramp plan: DURATION:TARGET_VUS,... ; VUs move linearly from the
    /// previous target to each stage's target over its duration.
    #[arg(long, default_value = "30s:50,1m:100,3m:100,30s:0", value_parser = parse_stages)]
    pub stages: StagePlan,
    /// Think time of a virtual user after each response.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub think: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub jitter: ThinkJitterArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `sweep` flags.
#[derive(Args, Clone, Debug)]
pub struct SweepArgs {
    /// Client counts, in order.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub clients: Vec<usize>,
    /// Duration of each step.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub step_duration: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub jitter: ThinkJitterArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `soak` flags.
#[derive(Args, Clone, Debug)]
pub struct SoakArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Think time after each response (fixed, so both halves see one rate).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub think: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub jitter: ThinkJitterArgs,
    /// How long to run.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Also report each consecutive window of this length as a step (a long
    /// soak read per 10 minutes); 0 or a window not shorter than the run: none.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub window: Duration,
    /// Points of steal (this machine's CPU time taken by the host) the
    /// second half may gain before a failed latency half criterion is
    /// judged on the server's own CPU per request instead.
    #[arg(long, default_value_t = 3.0)]
    pub steal_rise_points: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// `recovery` flags.
#[derive(Args, Clone, Debug)]
pub struct RecoveryArgs {
    /// Baseline arrival rate, requests per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Burst arrival rate, requests per second.
    #[arg(long, default_value_t = 20000.0)]
    pub burst_rate: f64,
    /// Connections in the pool.
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Baseline before the burst.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub baseline: Duration,
    /// Length of the burst.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub burst: Duration,
    /// Baseline rate again after the burst.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub after: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}
