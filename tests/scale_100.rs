//! The seed's three Red-phase acceptance tests, at the seed's own durations
//! and thresholds, against the real `percore` binary, driven in-process by
//! the load generator's library (`percore::load`):
//!
//! 1. 100 clients for 10 s (the seed loop): success > 99.9 %, p95 < 200 ms,
//!    p99 < 500 ms; and the generator's request count equals the server's
//!    `requests.total` delta minus the sampler's own `/api/metrics` calls.
//! 2. The 60 s health probe (10 concurrent `/api/health` per second): the
//!    second half's samples < 1.2 × the first half's, or slower by less
//!    than 0.5 ms (each half by its median sample,
//!    `percore::load::scenarios::health`). The tolerance is the seed's own:
//!    it timed the probes with `Date.now()`, whole milliseconds, so its test
//!    could not see a difference below that resolution (0.5 ms is half of
//!    it, its rounding error); our samples, about 0.25 ms, are 4× smaller
//!    than that resolution and almost all kernel loopback and wake-ups, and
//!    their ratio alone swings 0.4–1.3 between quiet runs. A stand-in server
//!    that answers 1 ms, then 3 ms per request fails the criterion; one that
//!    goes from 0.2 to 0.5 ms passes only by the tolerance and fails with
//!    `--half-tolerance-ms 0`.
//! 3. Resources during a 10 s 100-client run: CPU < 60 %, memory < 1 GiB,
//!    open fds < 500, cache hit rate > 50 %. CPU in the seed's convention,
//!    `docker stats`'s (100 % = one core), with the share of the server's
//!    cores shown beside it.
//!
//! Each test starts its own server, and they run one at a time, as the seed's
//! Jest tests in one file do: run together on two cores, the 100-client loads
//! would be measured by the health probe as a slowdown of the server.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use common::Server;

use clap::Parser;
use percore::load::cli::Cli;
use percore::load::report::{HalfComparison, RunReport};

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
    let (halves, pass, detail) = half_verdict(&report);
    assert!(
        pass,
        "second half / first half (median samples) = {:.3}, difference {:+.3} ms: \
         must be < 1.2 or < +0.5 ms ({detail}); {:?}",
        halves.ratio, halves.difference_ms, report.notes
    );
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

/// A stand-in for a server whose `/api/health` gets slower with time: every
/// request on a keep-alive connection is answered after `first_half_delay`
/// until `slow_after` requests were answered, after `second_half_delay`
/// from then on. Std only, a thread per connection; runs until the test
/// process ends. Returns its URL.
fn slowing_health_server(
    slow_after: usize,
    first_half_delay: Duration,
    second_half_delay: Duration,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    let answered = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answered = answered.clone();
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    head.extend_from_slice(&buf[..n]);
                    // One request per head (GETs without bodies); the probe
                    // sends the next one only after this answer.
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        let delay = if answered.load(Ordering::Relaxed) < slow_after {
                            first_half_delay
                        } else {
                            second_half_delay
                        };
                        thread::sleep(delay);
                        answered.fetch_add(1, Ordering::Relaxed);
                        let response = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 15\r\n\r\n{\"status\":\"ok\"}";
                        if stream.write_all(response).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

/// The half criterion of a health report: the halves as judged, whether it
/// held, and its detail.
fn half_verdict(report: &RunReport) -> (HalfComparison, bool, String) {
    let c = report
        .criteria
        .iter()
        .find(|c| c.name.starts_with("second/first half"))
        .unwrap_or_else(|| panic!("no half criterion in {:?}", report.criteria));
    let halves = report.halves.clone().expect("health reports its halves");
    assert_eq!(c.observed, halves.ratio, "the criterion observes the ratio");
    (halves, c.pass, c.detail.clone())
}

/// The health probe against [`slowing_health_server`] with `flags`, 60
/// samples of 10, one per 50 ms (3 s).
fn probe_slowing_server(
    first_half: Duration,
    second_half: Duration,
    flags: &[&str],
) -> (HalfComparison, bool, String) {
    let url = slowing_health_server(300, first_half, second_half);
    let mut args = vec![
        "health",
        "--url",
        &url,
        "--duration",
        "3s",
        "--interval",
        "50ms",
        "--concurrency",
        "10",
        "--no-server-metrics",
    ];
    args.extend_from_slice(flags);
    let report = run(&args);
    assert_eq!(report.summary.requests, 600, "10 probes x 60 samples");
    assert_eq!(report.samples_ms.len(), 60, "one average per sample");
    half_verdict(&report)
}

/// [`probe_slowing_server`] until `expected` holds of the result, at most
/// five times; returns the last result, which the caller asserts on. A 3 s
/// probe of a stand-in that answers in a millisecond is at the mercy of the
/// machine: a virtual machine that its host slows down for a few seconds
/// moves one half by more than the slowdown under test. Three probes were
/// not always enough: in one CI run all three read +0.54, +2.9 and +2.7 ms
/// against a +0.3 ms slowdown (its stand-in's 0.5 ms sleeps took ~3 ms),
/// and the next three runs passed at the first probe. A criterion that is
/// wrong is wrong in every probe and still fails the test.
fn probe_expecting(
    first_half: Duration,
    second_half: Duration,
    flags: &[&str],
    expected: impl Fn(&HalfComparison, bool, &str) -> bool,
) -> (HalfComparison, bool, String) {
    let mut result = probe_slowing_server(first_half, second_half, flags);
    for _ in 1..5 {
        if expected(&result.0, result.1, &result.2) {
            break;
        }
        eprintln!("probe again (the machine, or the criterion?): {}", result.2);
        result = probe_slowing_server(first_half, second_half, flags);
    }
    result
}

/// The criterion the 60 s test relies on, ratio or 0.5 ms tolerance, still
/// catches a server whose answers get slower in the second half (1 ms, then
/// 3 ms per request: about +2 ms, ratio about 3), and passes one whose
/// answers take the same time throughout.
#[test]
fn health_criterion_fails_a_server_slower_in_the_second_half() {
    let _alone = one_at_a_time();
    let ms = Duration::from_millis;
    let (h, pass, detail) = probe_expecting(ms(1), ms(3), &[], |h, pass, _| {
        !pass && h.ratio > 1.5 && h.difference_ms > 1.5
    });
    assert!(!pass, "a 3x slower second half passed: {detail}");
    assert!(h.ratio > 1.5, "ratio {:.3}", h.ratio);
    assert!(
        h.difference_ms > 1.5,
        "difference {:+.3} ms",
        h.difference_ms
    );
    assert_eq!(h.tolerance_ms, 0.5, "the default tolerance");
    let (_, pass, detail) = probe_expecting(ms(1), ms(1), &[], |_, pass, _| pass);
    assert!(pass, "a steady server failed: {detail}");
}

/// A slowdown smaller than the tolerance, 0.2 ms then 0.5 ms per request
/// (+0.3 ms; with the stand-in's own ~0.3 ms per request the ratio reads
/// about 1.6, well above 1.2, where 1.0 -> 1.3 ms would read about 1.2):
/// it passes only because of the tolerance, and fails with
/// `--half-tolerance-ms 0`.
#[test]
fn health_criterion_passes_a_slowdown_below_the_tolerance_only_by_it() {
    let _alone = one_at_a_time();
    let (first, second) = (Duration::from_micros(200), Duration::from_micros(500));
    let (h, pass, detail) = probe_expecting(first, second, &[], |h, pass, detail| {
        h.ratio > 1.2
            && h.difference_ms < 0.5
            && pass
            && detail.contains("held by the tolerance alone")
    });
    assert!(h.ratio > 1.2, "ratio {:.3}: the ratio alone fails", h.ratio);
    assert!(
        h.difference_ms < 0.5,
        "difference {:+.3} ms",
        h.difference_ms
    );
    assert!(pass, "+0.3 ms within the 0.5 ms tolerance failed: {detail}");
    assert!(detail.contains("held by the tolerance alone"), "{detail}");
    let (h, pass, detail) = probe_expecting(
        first,
        second,
        &["--half-tolerance-ms", "0"],
        |h, pass, _| h.ratio > 1.2 && !pass,
    );
    assert_eq!(h.tolerance_ms, 0.0);
    assert!(h.ratio > 1.2, "ratio {:.3}", h.ratio);
    assert!(!pass, "the ratio alone passed a ratio above 1.2: {detail}");
}
