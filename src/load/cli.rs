//! The command line: one subcommand per scenario, the flags every scenario
//! shares (target, outputs, server sampling, criteria thresholds), and the
//! parsers for durations (`10s`, `1m`, `500ms`) and stage plans.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::criteria::Thresholds;

/// percore-load: load generator and acceptance checker for percore.
///
/// Exit codes: 0 every criterion held, 99 a criterion failed, 2 bad usage or
/// unreachable server, 1 the generator itself failed.
#[derive(Parser, Debug)]
#[command(name = "percore-load", version, about, long_about)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The seed's first test: each client loops GET /api/data/client-<i> on
    /// its own keep-alive connection, waiting max(10, 100 - responses) ms
    /// between requests.
    Seed(SeedArgs),
    /// The seed's second test: N concurrent GET /api/health every interval;
    /// compares the average of the second half with the first half.
    Health(HealthArgs),
    /// Open loop: a constant arrival rate over a connection pool, latency
    /// measured from each request's intended send time.
    Rate(RateArgs),
    /// Closed loop without think time: every connection sends its next
    /// request as soon as the previous response arrived (as wrk does).
    Max(MaxArgs),
    /// k6-style ramping virtual users with think time.
    Stages(StagesArgs),
    /// Seed clients at 10, 100, 1000 ... : how latency and throughput
    /// degrade per 10x load.
    Sweep(SweepArgs),
    /// A steady load for a long time: second half against first half.
    Soak(SoakArgs),
    /// Open loop: baseline rate, a burst, back to baseline: time until p99
    /// is back within 20 % of the baseline.
    Recovery(RecoveryArgs),
}

impl Command {
    /// The flags shared by every scenario.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Command::Seed(a) => &a.common,
            Command::Health(a) => &a.common,
            Command::Rate(a) => &a.common,
            Command::Max(a) => &a.common,
            Command::Stages(a) => &a.common,
            Command::Sweep(a) => &a.common,
            Command::Soak(a) => &a.common,
            Command::Recovery(a) => &a.common,
        }
    }
}

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

/// `seed` flags.
#[derive(Args, Clone, Debug)]
pub struct SeedArgs {
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How long the clients loop.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Spread each think time uniformly over ±PCT % of itself (same mean):
    /// clients whose waits converge stop waking in lockstep. 0: off, the
    /// loop exactly as specified.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    pub think_jitter: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
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
    /// Distinct ids requested (/api/data/client-0 .. client-<ids-1>); each
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
    /// Spread each think time uniformly over ±PCT % of itself (same mean):
    /// clients whose waits converge stop waking in lockstep. 0: off, the
    /// loop exactly as specified.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    pub think_jitter: f64,
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
    /// Spread each think time uniformly over ±PCT % of itself (same mean):
    /// clients whose waits converge stop waking in lockstep. 0: off, the
    /// loop exactly as specified.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    pub think_jitter: f64,
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
    /// Spread each think time uniformly over ±PCT % of itself (same mean):
    /// clients whose waits converge stop waking in lockstep. 0: off, the
    /// loop exactly as specified.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    pub think_jitter: f64,
    /// How long to run.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Also report each consecutive window of this length as a step (a long
    /// soak read per 10 minutes); 0 or a window not shorter than the run: none.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub window: Duration,
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

/// One ramp stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// Length of the stage.
    pub duration: Duration,
    /// Virtual users at its end.
    pub target_vus: usize,
}

/// A whole ramp plan.
#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan(pub Vec<Stage>);

/// A list of CPU ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses `1`, `0,2`, `2-3,6`; empty: no CPUs.
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {text:?} (e.g. 1 or 2-3,6)");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let c: usize = part.parse().map_err(|_| bad())?;
                (c, c)
            }
        };
        if lo > hi || hi >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(CpuList(cpus))
}

/// Parses a percentage: `50`, `50%`, within 0..=100.
pub fn parse_pct(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("bad percentage {text:?}"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("percentage {text:?} is not within 0..100"))
    }
}

/// Parses a tolerance in ms: `0.5`, `0.5ms`, `0`; not negative.
pub fn parse_tolerance_ms(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches("ms")
        .parse()
        .map_err(|_| format!("bad tolerance {text:?} (ms, e.g. 0.5)"))?;
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("tolerance {text:?} must be a number of ms >= 0"))
    }
}

/// Parses `10s`, `1m`, `500ms`, `2h`, `1m30s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("bad duration {text:?}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} lacks a unit (ms, s, m, h)"))?;
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {text:?}"))?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        let factor = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("bad unit {unit:?} in {text:?} (ms, s, m, h)")),
        };
        total += Duration::from_secs_f64(value * factor);
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// Parses `30s:50,1m:100,...`.
pub fn parse_stages(text: &str) -> Result<StagePlan, String> {
    let stages: Result<Vec<Stage>, String> = text
        .split(',')
        .map(|part| {
            let (d, v) = part
                .split_once(':')
                .ok_or_else(|| format!("stage {part:?} is not DURATION:VUS"))?;
            Ok(Stage {
                duration: parse_duration(d)?,
                target_vus: v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad VU count in stage {part:?}"))?,
            })
        })
        .collect();
    let stages = stages?;
    if stages.iter().all(|s| s.duration.is_zero()) {
        return Err("the stages last no time".to_string());
    }
    Ok(StagePlan(stages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cpu_lists_and_percentages() {
        assert_eq!(parse_cpu_list(""), Ok(CpuList(vec![])));
        assert_eq!(parse_cpu_list("1"), Ok(CpuList(vec![1])));
        assert_eq!(parse_cpu_list("2-3,0,3"), Ok(CpuList(vec![0, 2, 3])));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert_eq!(parse_pct("50%"), Ok(50.0));
        assert_eq!(parse_pct("0"), Ok(0.0));
        assert!(parse_pct("101").is_err());
        assert_eq!(parse_tolerance_ms("0.5"), Ok(0.5));
        assert_eq!(parse_tolerance_ms("0.5ms"), Ok(0.5));
        assert_eq!(parse_tolerance_ms("0"), Ok(0.0));
        assert!(parse_tolerance_ms("-1").is_err());
        assert!(parse_tolerance_ms("inf").is_err());
        assert!(parse_tolerance_ms("x").is_err());
    }

    #[test]
    fn stages() {
        let s = parse_stages("30s:50,1m:100").unwrap().0;
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].duration, Duration::from_secs(60));
        assert_eq!(s[1].target_vus, 100);
        assert!(parse_stages("30s").is_err());
    }

    #[test]
    fn every_subcommand_parses_and_has_help() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "percore-load",
            "seed",
            "--url",
            "http://127.0.0.1:1",
            "--max-p95-ms",
            "50",
        ])
        .unwrap();
        assert_eq!(cli.command.common().criteria.max_p95_ms, 50.0);
        let health = |extra: &[&str]| {
            let mut argv = vec!["percore-load", "health"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Health(a)) => Ok(a.half_tolerance_ms),
                Ok(other) => panic!("parsed as {other:?}"),
                Err(e) => Err(e.exit_code()),
            }
        };
        assert_eq!(health(&[]), Ok(0.5));
        assert_eq!(health(&["--half-tolerance-ms", "0"]), Ok(0.0));
        assert_eq!(health(&["--half-tolerance-ms", "-0.1"]), Err(2));
        // Not a shared flag: the other scenarios judge the ratio alone.
        assert!(Cli::try_parse_from(["percore-load", "soak", "--half-tolerance-ms", "1"]).is_err());
        let err = Cli::try_parse_from(["percore-load", "seed", "--clients", "x"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
