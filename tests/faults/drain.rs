//! SIGTERM under keep-alive load loses no request; a second instance on the
//! same port takes over with none refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::Server;
use crate::load::{metrics, run_clients, stop_clients, Tally};

/// SIGTERM under 100 looping keep-alive clients: every request sent gets a
/// complete response (only refused connects after the listeners closed are
/// allowed), and the server exits 0 soon after the last request.
#[test]
fn drain_loses_no_request_under_keep_alive_load() {
    let mut server = Server::start(&[("WORKERS", "2")], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = run_clients(
        server.addr(),
        100,
        Duration::from_millis(10),
        stop.clone(),
        tally.clone(),
    );
    thread::sleep(Duration::from_millis(1500));
    let before = tally.ok.load(Ordering::Relaxed);
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit within 10 s");
    let exited = Instant::now();
    stop_clients(&stop, clients, &tally);
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.output()
    );
    assert!(
        before > 1000,
        "load was running: {before} responses before SIGTERM"
    );
    assert_eq!(
        tally.reconnects.load(Ordering::Relaxed),
        100,
        "every connection closed with Connection: close"
    );
    let last = tally
        .last_request
        .lock()
        .unwrap()
        .expect("requests were sent");
    let lag = exited.saturating_duration_since(last);
    assert!(
        lag < Duration::from_secs(2),
        "exited {lag:?} after the last request"
    );
}

/// A second instance started on the same port takes over while the first
/// drains: no refused connect, no reset, no lost response, and the new
/// instance served requests.
#[test]
fn zero_downtime_restart_on_the_same_port() {
    let mut old = Server::start(&[("WORKERS", "2")], &[]);
    let port = old.addr().port();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = run_clients(
        old.addr(),
        100,
        Duration::from_millis(10),
        stop.clone(),
        tally.clone(),
    );
    thread::sleep(Duration::from_millis(500));
    let new = Server::start_on(port, &[("WORKERS", "2")], &[]);
    thread::sleep(Duration::from_millis(300));
    old.sigterm();
    let status = old
        .wait_exit(Duration::from_secs(10))
        .expect("old instance did not exit");
    thread::sleep(Duration::from_millis(500));
    stop_clients(&stop, clients, &tally);
    assert_eq!(
        tally.refused.load(Ordering::Relaxed),
        0,
        "no refused connect while the new instance listens"
    );
    assert!(status.success(), "old instance exit status {status:?}");
    let served = metrics(new.addr())["requests"]["byStatus"]["200"]
        .as_u64()
        .unwrap_or(0);
    assert!(served > 100, "the new instance served {served} requests");
}
