//! The figures of a run that criteria are judged on, gathered by each
//! scenario from its recorders and the server samples; `None` where a
//! scenario does not measure one, so that its criterion is left out.

/// The figures criteria are evaluated on; `None` where not measured.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Successful share of all requests, %.
    pub success_pct: Option<f64>,
    /// p95 latency, ms.
    pub p95_ms: Option<f64>,
    /// p99 latency, ms.
    pub p99_ms: Option<f64>,
    /// Requests per second (only where throughput applies).
    pub rps: Option<f64>,
    /// Server CPU over the run, % of one core (docker's convention).
    pub cpu_pct: Option<f64>,
    /// Server CPU over the run, % of the server's cores.
    pub cpu_pct_of_cores: Option<f64>,
    /// The cores `cpu_pct_of_cores` is relative to.
    pub server_cores: usize,
    /// Server peak RSS, MiB.
    pub rss_mib: Option<f64>,
    /// Server peak open fds.
    pub fds: Option<f64>,
    /// Jitter, the seed's figure and the robust one (`spread.rs`), %.
    pub jitter: Option<super::super::spread::Jitter>,
    /// Recovery time, ms.
    pub recovery_ms: Option<f64>,
    /// Server cache hit rate over the run, %.
    pub cache_hit_pct: Option<f64>,
    /// Second half / first half.
    pub half_ratio: Option<f64>,
    /// Both halves in ms, where the tolerance applies (`health`): the
    /// difference the tolerance is judged on, shown beside the ratio.
    pub halves: Option<super::super::spread::Halves>,
    /// Worst latency growth per 10× clients.
    pub slowdown: Option<f64>,
}
