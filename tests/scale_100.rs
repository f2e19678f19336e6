//! The seed's three Red-phase acceptance tests, at the seed's own durations
//! and thresholds, against the real `percore` binary, driven in-process by
//! the load generator's library (`percore::load`):
//!
//! 1. 100 clients for 10 s (the seed loop): success > 99.9 %, p95 < 200 ms,
//!    p99 < 500 ms; and the generator's request count equals the server's
//!    `requests.total` delta minus the sampler's own `/api/metrics` calls.
//! 2. The 60 s health probe (10 concurrent `/api/health` per second): the
//!    second half's average < 1.2 × the first half's.
//! 3. Resources during a 10 s 100-client run: CPU < 60 %, memory < 1 GiB,
//!    open fds < 500, cache hit rate > 50 %. CPU in the seed's convention,
//!    `docker stats`'s (100 % = one core), with the share of the server's
//!    cores shown beside it.
//!
//! Each test starts its own server, and they run one at a time, as the seed's
//! Jest tests in one file do: run together on two cores, the 100-client loads
//! would be measured by the health probe as a slowdown of the server.

mod common;

use std::sync::{Mutex, MutexGuard};

use common::Server;

use clap::Parser;
use percore::load::cli::Cli;
use percore::load::report::RunReport;

/// Runs `percore-load <args>` in-process and prints its table.
fn run(args: &[&str]) -> RunReport {
    let mut argv = vec!["percore-load"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("valid arguments");
    let report = percore::load::scenarios::run(&cli.command).expect("the run completes");
    println!("{}", percore::load::table::render(&report));
    report
}

fn criterion(report: &RunReport, name: &str) -> (f64, bool) {
    let c = report
        .criteria
        .iter()
        .find(|c| c.name.starts_with(name))
        .unwrap_or_else(|| panic!("no criterion {name:?} in {:?}", report.criteria));
    (c.observed, c.pass)
}

/// The seed's first test: 100 clients looping for 10 s against `server`.
fn seed_100_clients_for_10s(server: &Server) -> RunReport {
    run(&[
        "seed",
        "--url",
        &server.url(),
        "--clients",
        "100",
        "--duration",
        "10s",
    ])
}

/// Held by each test for its whole run, so the tests run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next test still runs alone.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn seed_100_clients_10s_meet_latency_and_success() {
    let _alone = one_at_a_time();
    let server = Server::start(&[], &[]);
    let report = seed_100_clients_for_10s(&server);
    for (name, bound) in [
        ("success rate %", "> 99.9"),
        ("p95 latency ms", "< 200"),
        ("p99 latency ms", "< 500"),
    ] {
        let (observed, pass) = criterion(&report, name);
        assert!(pass, "{name} {bound} failed: observed {observed}");
    }
    assert!(
        report.summary.requests > 10_000,
        "100 seed clients for 10 s make ~50k requests, got {}",
        report.summary.requests
    );
    let count = report.server_count.as_ref().expect("server count sampled");
    assert_eq!(
        count.server_requests, report.summary.requests,
        "server requests.total delta minus {} metrics calls",
        count.metrics_calls
    );
}

#[test]
fn health_probe_60s_second_half_not_slower() {
    let _alone = one_at_a_time();
    let server = Server::start(&[], &[]);
    let report = run(&[
        "health",
        "--url",
        &server.url(),
        "--duration",
        "60s",
        "--concurrency",
        "10",
        "--no-server-metrics",
    ]);
    assert_eq!(report.summary.requests, 600, "10 probes x 60 samples");
    let (ratio, pass) = criterion(&report, "second/first half");
    assert!(pass, "second half / first half = {ratio:.3}, must be < 1.2");
    let (success, pass) = criterion(&report, "success rate %");
    assert!(pass, "health success {success} %");
}

#[test]
fn resources_during_100_clients_10s_stay_in_budget() {
    let _alone = one_at_a_time();
    let server = Server::start(&[], &[]);
    let report = seed_100_clients_for_10s(&server);
    assert!(report.server.len() >= 9, "one server sample per second");
    let (cpu_one_core, _) = criterion(&report, "server CPU %");
    let cores = report.placement.server_cores;
    let cpu = report
        .criteria
        .iter()
        .find(|c| c.name.starts_with("server CPU %"))
        .expect("a CPU criterion");
    assert_eq!(
        cpu.name, "server CPU % (100 = one core) <",
        "docker's convention"
    );
    let of_cores = format!(
        "{:.1} % of the server's {cores} cores",
        cpu_one_core / cores as f64
    );
    assert_eq!(cpu.detail, of_cores, "both figures are shown");
    println!("server CPU: {cpu_one_core:.1} % of one core = {of_cores}");
    for (name, bound) in [
        ("server CPU %", "< 60"),
        ("server RSS MiB", "< 1024"),
        ("server fds", "< 500"),
        ("cache hit %", "> 50"),
    ] {
        let (observed, pass) = criterion(&report, name);
        assert!(pass, "{name} {bound} failed: observed {observed}");
    }
}
