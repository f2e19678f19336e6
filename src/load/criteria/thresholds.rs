//! The thresholds a run is judged by: the seed's acceptance numbers as
//! defaults, each a flag every scenario shares, and the conventions that
//! say which figure the CPU and jitter bounds apply to.

use clap::{Args, ValueEnum};
use serde::Serialize;

/// What 100 % of server CPU means.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuConvention {
    /// `docker stats`: 100 % is one core busy, two full cores show 200 %
    /// (`cpu_delta / system_delta × online_cpus × 100`). The seed watched its
    /// run with `docker stats`, so its "CPU < 60 %" is 0.6 of one core.
    OneCore,
    /// 100 % is every core the server may use busy (`--server-cores`).
    ServerCores,
}

/// Which jitter figure the jitter criterion judges.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JitterStatistic {
    /// Robust: 1.4826 × the median absolute deviation of the per-second
    /// medians over their median (see `spread.rs`). A scheduling hiccup of a
    /// few ms moves neither a second's median nor the MAD.
    Robust,
    /// The seed's figure: coefficient of variation of the per-second means.
    Seed,
}

/// The thresholds (flags shared by every subcommand).
#[derive(Args, Clone, Debug)]
pub struct Thresholds {
    /// Success rate (2xx of all requests) must exceed this, %.
    #[arg(long, default_value_t = 99.9)]
    pub min_success_pct: f64,
    /// p95 latency must stay below this, ms.
    #[arg(long, default_value_t = 200.0)]
    pub max_p95_ms: f64,
    /// p99 latency must stay below this, ms.
    #[arg(long, default_value_t = 500.0)]
    pub max_p99_ms: f64,
    /// Throughput must reach at least this where throughput applies
    /// (`max`, `sweep`), requests per second.
    #[arg(long, default_value_t = 1000.0)]
    pub min_rps: f64,
    /// Server CPU over the run must stay below this, % in the convention of
    /// `--cpu-pct-of` (default: docker's, 100 % = one core).
    #[arg(long, default_value_t = 60.0)]
    pub max_cpu_pct: f64,
    /// What 100 % CPU means for the CPU criterion: `one-core` (docker
    /// stats, the seed's convention) or `server-cores` (all of the server's
    /// cores). Both figures are always reported.
    #[arg(long, value_enum, default_value_t = CpuConvention::OneCore)]
    pub cpu_pct_of: CpuConvention,
    /// Server RSS must stay below this, MiB.
    #[arg(long, default_value_t = 1024.0)]
    pub max_rss_mib: f64,
    /// Server open fds must stay below this.
    #[arg(long, default_value_t = 500.0)]
    pub max_fds: f64,
    /// Jitter (the figure `--jitter-statistic` names) must stay below this, %.
    #[arg(long, default_value_t = 20.0)]
    pub max_jitter_pct: f64,
    /// Which jitter figure is judged: `robust` (MAD of per-second medians
    /// over their median) or `seed` (coefficient of variation of per-second
    /// means). Both are always reported.
    #[arg(long, value_enum, default_value_t = JitterStatistic::Robust)]
    pub jitter_statistic: JitterStatistic,
    /// The jitter criterion also holds when the same statistic's spread in
    /// ms is below this (0: the % alone). The seed timed requests with
    /// `Date.now()`, to the millisecond: a spread under half of that was
    /// below what it could see, while at percore's sub-ms latencies a
    /// few µs of scheduler noise make 20 %.
    #[arg(long, default_value_t = 0.5)]
    pub jitter_tolerance_ms: f64,
    /// Recovery after a burst must take less than this, ms.
    #[arg(long, default_value_t = 1000.0)]
    pub max_recovery_ms: f64,
    /// Server cache hit rate over the run must exceed this, %.
    #[arg(long, default_value_t = 50.0)]
    pub min_cache_hit_pct: f64,
    /// Second half / first half (latency) must stay below this ratio.
    #[arg(long, default_value_t = 1.2)]
    pub max_half_ratio: f64,
    /// The half criterion also holds when the second half is slower than
    /// the first by less than this, ms (0: the ratio alone). Not a shared
    /// flag: `health` sets it from `--half-tolerance-ms`, whose samples are
    /// far below the 1 ms resolution the seed measured them with; the other
    /// scenarios judge the ratio alone.
    #[arg(skip = 0.0)]
    pub half_tolerance_ms: f64,
    /// Per 10× more clients, latency may grow by less than this factor
    /// (`sweep`: the seed's "10× load, at most 2× slower").
    #[arg(long, default_value_t = 2.0)]
    pub max_slowdown: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_success_pct: 99.9,
            max_p95_ms: 200.0,
            max_p99_ms: 500.0,
            min_rps: 1000.0,
            max_cpu_pct: 60.0,
            cpu_pct_of: CpuConvention::OneCore,
            max_rss_mib: 1024.0,
            max_fds: 500.0,
            max_jitter_pct: 20.0,
            jitter_statistic: JitterStatistic::Robust,
            jitter_tolerance_ms: 0.5,
            max_recovery_ms: 1000.0,
            min_cache_hit_pct: 50.0,
            max_half_ratio: 1.2,
            half_tolerance_ms: 0.0,
            max_slowdown: 2.0,
        }
    }
}
