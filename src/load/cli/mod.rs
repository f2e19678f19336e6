//! The command line: one subcommand per scenario, the flags every scenario
//! shares (target, outputs, server sampling, criteria thresholds), and the
//! parsers for durations (`10s`, `1m`, `500ms`) and stage plans.
//!
//! Here: [`Cli`] and [`Command`], the tree clap parses. `common.rs`: the
//! flags every scenario shares. `scenario_args.rs`: each scenario's own.
//! `values.rs`: the value types and parsers of flags (durations, CPU lists,
//! percentages, stage plans).

mod common;
mod scenario_args;
mod values;

pub use common::CommonArgs;
pub use scenario_args::{
    Engine, HalfStatistic, HealthArgs, MaxArgs, PoolArgs, RateArgs, RecoveryArgs, SeedArgs,
    SoakArgs, StagesArgs, SweepArgs, ThinkJitterArgs,
};
pub use values::{
    parse_cpu_list, parse_duration, parse_pct, parse_stages, parse_tolerance_ms, CpuList, Stage,
    StagePlan,
};

use clap::{Parser, Subcommand};

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
    /// The seed's first test: each client loops `GET /api/data/client-<i>` on
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn think_jitter_is_a_flag_of_the_scenarios_with_think_time_only() {
        let jitter = |scenario: &str, extra: &[&str]| {
            let mut argv = vec!["percore-load", scenario];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Seed(a)) => Ok(a.jitter.think_jitter),
                Ok(Command::Stages(a)) => Ok(a.jitter.think_jitter),
                Ok(Command::Sweep(a)) => Ok(a.jitter.think_jitter),
                Ok(Command::Soak(a)) => Ok(a.jitter.think_jitter),
                Ok(other) => panic!("parsed as {other:?}"),
                Err(e) => Err(e.exit_code()),
            }
        };
        for scenario in ["seed", "stages", "sweep", "soak"] {
            assert_eq!(jitter(scenario, &[]), Ok(0.0), "{scenario}");
            assert_eq!(
                jitter(scenario, &["--think-jitter", "25"]),
                Ok(25.0),
                "{scenario}"
            );
            assert_eq!(
                jitter(scenario, &["--think-jitter", "x"]),
                Err(2),
                "{scenario}"
            );
        }
        for scenario in ["health", "rate", "max", "recovery"] {
            assert_eq!(
                jitter(scenario, &["--think-jitter", "25"]),
                Err(2),
                "{scenario}"
            );
        }
    }
}
