//! `percore-load`: the load generator's command line. All of the work is in
//! the library module `percore::load`, so tests run the same code in-process.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    percore::load::run_cli(percore::load::cli::Cli::parse())
}
