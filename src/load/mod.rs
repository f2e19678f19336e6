//! The load generator `percore-load` (the seed's "Load Generator" box).
//!
//! A library module so that the integration tests and benches drive the very
//! same code as the binary, in-process. One glommio executor per core runs the
//! virtual clients as tasks over non-buffered io_uring sockets; every executor
//! records into its own HDR histograms, merged once at the end. A side thread
//! samples the server's `/api/metrics` (or `/proc/<pid>`) each second. The run
//! ends in a [`report::RunReport`]: a table on stdout, optional JSON and HTML
//! files, and pass/fail criteria that decide the exit code.

pub mod cli;
pub(crate) mod client;
pub(crate) mod criteria;
pub(crate) mod epoll;
pub(crate) mod epoll_loop;
pub(crate) mod executors;
pub(crate) mod histogram;
pub(crate) mod live;
pub(crate) mod outcome;
pub(crate) mod pool;
pub(crate) mod proc_pid;
pub(crate) mod rate;
pub(crate) mod recorder;
pub mod report;
pub(crate) mod report_html;
pub(crate) mod report_json;
pub(crate) mod response_reader;
pub(crate) mod sampler;
pub mod scenarios;
pub(crate) mod server_latency;
pub(crate) mod spread;
pub(crate) mod svg;
pub mod table;
pub(crate) mod target;
pub(crate) mod watchdog;

use std::process::ExitCode;

/// Exit code when every criterion held.
pub const EXIT_PASS: u8 = 0;
/// Exit code when the run completed but a criterion failed.
pub const EXIT_CRITERIA_FAILED: u8 = 99;
/// Exit code on bad usage or an unreachable server.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the generator itself failed (executors, output files).
pub const EXIT_INTERNAL: u8 = 1;

/// Why a run could not produce a verdict.
#[derive(Debug)]
pub enum LoadError {
    /// A flag or URL was not acceptable.
    Usage(String),
    /// Nothing accepts connections at the target address.
    Unreachable(String),
    /// The generator could not run (io_uring, files).
    Internal(String),
}

impl LoadError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Usage(_) | LoadError::Unreachable(_) => EXIT_USAGE,
            LoadError::Internal(_) => EXIT_INTERNAL,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Usage(m) => write!(f, "{m}"),
            LoadError::Unreachable(m) => write!(f, "server unreachable: {m}"),
            LoadError::Internal(m) => write!(f, "{m}"),
        }
    }
}

/// Runs a parsed command line: the scenario, then the table, the files and
/// the verdict. Returns the process exit code.
pub fn run_cli(cli: cli::Cli) -> ExitCode {
    let common = cli.command.common().clone();
    let report = match scenarios::run(&cli.command) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("percore-load: {err}");
            return ExitCode::from(err.exit_code());
        }
    };
    print!("{}", table::render(&report));
    if let Some(path) = &common.json {
        if let Err(e) = std::fs::write(path, report_json::render(&report)) {
            eprintln!("percore-load: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_INTERNAL);
        }
    }
    if let Some(path) = &common.html {
        if let Err(e) = std::fs::write(path, report_html::render(&report)) {
            eprintln!("percore-load: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_INTERNAL);
        }
    }
    if report.passed() {
        ExitCode::from(EXIT_PASS)
    } else {
        ExitCode::from(EXIT_CRITERIA_FAILED)
    }
}
