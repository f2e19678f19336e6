//! A shard that panics is restarted, hands its queued connections to its
//! successor and, past the restart budget, drains the server; a shard that
//! hangs cannot hold the drain past its timeout. Faults come from the
//! test-only `/__fault/...` paths of the `fault-injection` feature.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, try_read_response, Server};
use crate::load::metrics;

/// Killing one of two shards under load: the other shard's connections see
/// no error, the dead shard serves again within 100 ms, restarts = 1.
#[test]
fn a_dead_shard_is_restarted_and_the_other_keeps_serving() {
    // A panic with RUST_BACKTRACE set first symbolizes a backtrace from the
    // debug info, which can take seconds on a loaded machine: not what the
    // 100 ms restart bound is about.
    let server = Server::start(&[("WORKERS", "2"), ("RUST_BACKTRACE", "0")], &[]);
    let addr = server.addr();
    // Find a connection on each shard.
    let mut by_shard: [Option<common::Client>; 2] = [None, None];
    for _ in 0..200 {
        let mut c = common::Client::connect(addr);
        let w = c.get("/api/health").json()["worker"].as_u64().unwrap() as usize;
        if by_shard[w].is_none() {
            by_shard[w] = Some(c);
        }
        if by_shard.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(mut victim), Some(mut survivor)] = by_shard else {
        panic!("connections did not reach both shards")
    };
    // Keep the surviving shard busy while the other dies.
    let survivor_errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (errors, stop) = (survivor_errors.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                survivor.send_get("/api/health");
                match try_read_response(&mut survivor.reader, false) {
                    Ok(r) if r.status == 200 && r.json()["worker"] == 1 => n += 1,
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return n;
                    }
                }
            }
            n
        })
    };
    thread::sleep(Duration::from_millis(200));
    victim.send_get("/__fault/panic");
    let killed = Instant::now();
    assert!(
        try_read_response(&mut victim.reader, false).is_err(),
        "the dying shard's connection closes"
    );
    // Back within 100 ms: a new connection lands on shard 0 and is served.
    let mut back = None;
    while killed.elapsed() < Duration::from_secs(2) {
        let mut c = common::Client::connect(addr);
        c.send_get("/api/health");
        if let Ok(r) = try_read_response(&mut c.reader, false) {
            if r.status == 200 && r.json()["worker"] == 0 {
                back = Some(killed.elapsed());
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let served = load.join().unwrap();
    let back = back
        .unwrap_or_else(|| panic!("shard 0 did not come back within 2 s:\n{}", server.output()));
    assert!(
        back < Duration::from_millis(100),
        "shard 0 back after {back:?}"
    );
    assert_eq!(
        survivor_errors.load(Ordering::Relaxed),
        0,
        "the surviving shard's connection saw an error"
    );
    assert!(served > 10, "survivor served {served}");
    assert_eq!(shard_restarts(addr), vec![1, 0]);
    assert!(server.output().contains("shard died; restarting it"));
}

/// Connections that queue on a shard's socket while it is stuck, and that
/// it never accepted before it panicked, are served by its replacement: none
/// is reset, none hangs.
#[test]
fn a_dead_shard_hands_its_queued_connections_to_its_successor() {
    let server = Server::start(&[("WORKERS", "2"), ("RUST_BACKTRACE", "0")], &[]);
    let addr = server.addr();
    let mut victim = connection_to_shard(addr, 0);
    victim.send_get("/__fault/stall-then-panic");
    // Shard 0 is stuck for 500 ms from about now: new connections that the
    // kernel routes to its socket wait in the socket's queue.
    thread::sleep(Duration::from_millis(100));
    let mut queued: Vec<common::Client> = (0..16)
        .map(|_| {
            let mut c = common::Client::connect(addr);
            c.send_get("/api/health");
            c
        })
        .collect();
    let mut by_worker = [0u32; 2];
    for (i, c) in queued.iter_mut().enumerate() {
        match try_read_response(&mut c.reader, false) {
            Ok(r) if r.status == 200 => {
                let w = r.json()["worker"].as_u64().unwrap() as usize;
                by_worker[w] += 1;
            }
            Ok(r) => panic!("connection {i} answered {}:\n{}", r.status, server.output()),
            Err(e) => panic!("connection {i} got no answer ({e}):\n{}", server.output()),
        }
    }
    // With 16 connections, all of them landing on shard 1 has odds 2^-16.
    assert!(
        by_worker[0] > 0,
        "no connection was queued on shard 0: {by_worker:?}"
    );
    assert!(
        try_read_response(&mut victim.reader, false).is_err(),
        "the dying shard's connection closes"
    );
    assert!(
        server
            .output()
            .contains("handing queued connections to the new shard"),
        "{}",
        server.output()
    );
    assert_eq!(shard_restarts(addr), vec![1, 0]);
}

/// `shards[].restarts` of the metrics, by shard id.
fn shard_restarts(addr: SocketAddr) -> Vec<u64> {
    metrics(addr)["shards"]
        .as_array()
        .expect("shards is an array")
        .iter()
        .map(|s| s["restarts"].as_u64().expect("restarts is a count"))
        .collect()
}

/// A keep-alive connection that the kernel routed to shard `id` (tried over
/// up to 200 connections; the others are closed).
fn connection_to_shard(addr: SocketAddr, id: u64) -> common::Client {
    (0..200)
        .map(|_| common::Client::connect(addr))
        .find_map(|mut c| (c.get("/api/health").json()["worker"] == id).then_some(c))
        .unwrap_or_else(|| panic!("no connection reached shard {id}"))
}

/// Kills shard 0 of `server` through a connection that lands on it, and
/// waits until that connection closes.
fn kill_shard_0(addr: SocketAddr) {
    let mut victim = connection_to_shard(addr, 0);
    victim.send_get("/__fault/panic");
    assert!(
        try_read_response(&mut victim.reader, false).is_err(),
        "the dying shard's connection closes"
    );
}

/// Past `MAX_SHARD_RESTARTS`, a shard's death drains the server, which exits
/// with status 70 (only once every shard has ended); within the budget the
/// shard is restarted and the other one serves.
#[test]
fn a_dead_shard_past_the_restart_budget_drains_the_server() {
    let mut server = Server::start(
        &[
            ("WORKERS", "2"),
            ("RUST_BACKTRACE", "0"),
            ("MAX_SHARD_RESTARTS", "1"),
        ],
        &[],
    );
    let addr = server.addr();
    let mut survivor = connection_to_shard(addr, 1);
    kill_shard_0(addr); // within the budget: restarted
    let killed = Instant::now();
    while shard_restarts(addr)[0] != 1 {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "{}",
            server.output()
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(survivor.get("/api/health").status, 200);
    kill_shard_0(addr); // past the budget: the server drains
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the server did not exit:\n{}", server.output()));
    assert_eq!(status.code(), Some(70), "{}", server.output());
    assert!(
        server.output().contains("restart budget is spent"),
        "{}",
        server.output()
    );
}

/// A shard stuck for good cannot hold the drain: the process exits with
/// status 1 once `DRAIN_TIMEOUT_MS` and the watchdog's 5 s of slack have
/// passed, not before.
#[test]
fn a_hung_shard_cannot_hold_the_drain_past_its_timeout() {
    let mut server = Server::start(&[("WORKERS", "1"), ("DRAIN_TIMEOUT_MS", "500")], &[]);
    let mut stuck = common::Client::connect(server.addr());
    stuck.send_get("/__fault/hang");
    thread::sleep(Duration::from_millis(100));
    server.sigterm();
    let signalled = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the server did not exit:\n{}", server.output()));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(1), "{}", server.output());
    assert!(
        took >= Duration::from_millis(5_500),
        "exited after {took:?}, before the drain timeout and the slack"
    );
    assert!(
        server.output().contains("drain overran its timeout"),
        "{}",
        server.output()
    );
}
