//! The flags every scenario shares: the target, the output files, how server
//! figures are sampled, where the generator runs, the request timeout and
//! the pass/fail thresholds.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::super::criteria::Thresholds;
use super::values::{parse_cpu_list, parse_duration, CpuList};

/// Flags of every scenario.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// The server: http://host:port.
    #[arg(long, env = "PERCORE_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Read server figures from /proc/PID instead of GET /api/metrics.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Do not sample server figures at all (no resource criteria).
    #[arg(long)]
    pub no_server_metrics: bool,
    /// Cores the server may use, for CPU % of all its cores (CPU is also
    /// reported as % of one core, docker's convention). 0: the `workers` the
    /// server reports, else the cores available to this process.
    #[arg(long, default_value_t = 0)]
    pub server_cores: usize,
    /// Pin the generator (its executors, sampler and progress threads) to
    /// these CPUs, e.g. `1` or `2-3,6`; by default it runs on any core,
    /// sharing them with a server on this machine. The server's own cores
    /// are reported from `/api/metrics`.
    #[arg(long, value_name = "CPUS", value_parser = parse_cpu_list, default_value = "")]
    pub load_cpus: CpuList,
    /// Per-request timeout (connect, write and read).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Load executors (threads). 0: one per available core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Pass/fail thresholds.
    #[command(flatten)]
    pub criteria: Thresholds,
}
