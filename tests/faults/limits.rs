//! Resource limits: out of file descriptors the server backs off and
//! recovers; beyond the connection cap it answers 503 and closes.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, try_read_response, Server};

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    (f[11] + f[12]) as f64 / 100.0
}

/// With 64 file descriptors and 200 connections, accept fails with EMFILE:
/// the server backs off instead of spinning, and answers again once
/// connections close.
#[test]
fn out_of_file_descriptors_backs_off_and_recovers() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit not found: skipping");
        return;
    }
    // The cap is set high so that accept really runs out of fds.
    let server = Server::start_wrapped(
        &["prlimit", "--nofile=64:64", "--"],
        &[("WORKERS", "1"), ("MAX_CONNECTIONS", "1000")],
        &[],
    );
    let addr = server.addr();
    let conns: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(conns.len() > 100, "connects: {}", conns.len());
    thread::sleep(Duration::from_millis(300));
    let cpu0 = cpu_seconds(server.pid());
    thread::sleep(Duration::from_secs(2));
    let busy = (cpu_seconds(server.pid()) - cpu0) / 2.0;
    assert!(
        busy < 0.1,
        "server used {:.0} % of a core while out of fds",
        busy * 100.0
    );
    assert!(
        server.output().contains("accept failed; backing off"),
        "{}",
        server.output()
    );
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = common::Client::connect(addr);
        c.send_get("/api/health");
        if let Ok(r) = try_read_response(&mut c.reader, false) {
            assert_eq!(r.status, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not recover once fds were freed"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Beyond MAX_CONNECTIONS a connection is answered 503 with Retry-After and
/// closed at once; the connections already open keep working.
#[test]
fn beyond_the_connection_cap_503_and_close() {
    let server = Server::start(&[("WORKERS", "1"), ("MAX_CONNECTIONS", "10")], &[]);
    let mut open: Vec<common::Client> = (0..10)
        .map(|_| common::Client::connect(server.addr()))
        .collect();
    for c in open.iter_mut() {
        assert_eq!(c.get("/api/health").status, 200);
    }
    let started = Instant::now();
    let mut extra = common::Client::connect(server.addr());
    let r = extra.read();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
    extra.read_to_close();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusal took {:?}",
        started.elapsed()
    );
    for c in open.iter_mut() {
        assert_eq!(c.get("/api/health").status, 200);
    }
    let m = metrics_with_room(&mut open[0]);
    assert_eq!(m["connections"]["rejected"], 1, "{m}");
}

/// Reads the metrics over an already open connection (a new one would be
/// over the cap).
fn metrics_with_room(c: &mut common::Client) -> serde_json::Value {
    c.get("/api/metrics").json()
}
