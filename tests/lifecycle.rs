//! The process around the server: one listening socket and one pinned thread
//! per shard, graceful shutdown on SIGTERM/SIGINT, and clear refusal of bad
//! settings.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, Instant};

use common::*;

/// Inodes of the sockets in LISTEN state on `port`, from /proc/net/tcp{,6}.
fn listening_inodes(port: u16) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state == "0A" {
                inodes.insert(inode.parse().expect("inode is a number"));
            }
        }
    }
    inodes
}

/// Inodes of the sockets among `pid`'s open file descriptors.
fn socket_inodes_of(pid: u32) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/<pid>/fd") {
        let Ok(target) = fs::read_link(fd.expect("fd entry").path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.insert(inode.parse().expect("socket inode is a number"));
        }
    }
    inodes
}

/// Each shard has its own SO_REUSEPORT listening socket: WORKERS=2 gives
/// exactly 2 sockets listening on the port, owned by the server; WORKERS=1
/// exactly 1.
#[test]
fn one_listening_socket_per_shard() {
    for workers in [1usize, 2] {
        let w = workers.to_string();
        let server = Server::start(&[("WORKERS", w.as_str())], &[]);
        let listening = listening_inodes(server.addr().port());
        let owned = socket_inodes_of(server.pid());
        let mine: BTreeSet<u64> = listening.intersection(&owned).copied().collect();
        assert_eq!(
            mine.len(),
            workers,
            "WORKERS={workers}: listening {listening:?}, server sockets {owned:?}"
        );
        assert_eq!(listening, mine, "another process listens on the port");
    }
}

/// Parses a `Cpus_allowed_list` such as `0-1,3` into CPU numbers.
fn parse_cpu_list(list: &str) -> BTreeSet<usize> {
    let mut cpus = BTreeSet::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => {
                cpus.insert(part.parse().unwrap());
            }
        }
    }
    cpus
}

/// With WORKERS=2 there are exactly two shard executors (threads named
/// `shard0-<n>` and `shard1-<n>`), each pinned to a single CPU, not the same
/// one. glommio's blocking-pool helper of each executor inherits its thread
/// name and pins itself a moment later, from a thread the executor spawned:
/// so the executor is the lowest thread id of each name.
#[test]
fn shard_threads_are_pinned_to_distinct_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("note: only {cores} core(s) available; skipping the pinning check");
        return;
    }
    let server = Server::start(&[("WORKERS", "2")], &[]);
    // Thread name -> (thread id, allowed CPUs) of its lowest thread id.
    let mut shards: BTreeMap<String, (u32, BTreeSet<usize>)> = BTreeMap::new();
    for task in fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap() {
        let dir = task.unwrap().path();
        let tid: u32 = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim().to_owned();
        if !comm.starts_with("shard") {
            continue;
        }
        let status = fs::read_to_string(dir.join("status")).unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list in status");
        let entry = (tid, parse_cpu_list(list));
        match shards.get(&comm) {
            Some((other, _)) if *other < tid => {}
            _ => {
                shards.insert(comm, entry);
            }
        }
    }
    let names: Vec<&String> = shards.keys().collect();
    assert_eq!(names.len(), 2, "shard threads: {shards:?}");
    assert!(names[0].starts_with("shard0-"), "{shards:?}");
    assert!(names[1].starts_with("shard1-"), "{shards:?}");
    for (name, (_, cpus)) in &shards {
        assert_eq!(cpus.len(), 1, "{name} is not pinned to one CPU: {shards:?}");
    }
    let cpus: Vec<&BTreeSet<usize>> = shards.values().map(|(_, c)| c).collect();
    assert_ne!(cpus[0], cpus[1], "both shards on one CPU: {shards:?}");
}

fn assert_exit_0(server: &mut Server, within: Duration, what: &str) {
    match server.wait_exit(within) {
        Some(status) => assert_eq!(
            status.code(),
            Some(0),
            "{what}: exit {status:?}; output:\n{}",
            server.output()
        ),
        None => panic!(
            "{what}: still running after {within:?}; output:\n{}",
            server.output()
        ),
    }
}

/// SIGTERM and SIGINT each stop a server that has served a request with exit
/// status 0.
#[test]
fn sigterm_and_sigint_exit_0() {
    let mut server = Server::start(&[("WORKERS", "2")], &[]);
    assert_eq!(get(server.addr(), "/api/health").status, 200);
    server.sigterm();
    assert_exit_0(&mut server, Duration::from_secs(10), "SIGTERM");

    let mut server = Server::start(&[("WORKERS", "2")], &[]);
    assert_eq!(get(server.addr(), "/api/health").status, 200);
    server.sigint();
    assert_exit_0(&mut server, Duration::from_secs(10), "SIGINT");
}

/// An idle keep-alive connection does not hold a SIGTERM back: the server
/// closes it and exits 0 well within the drain timeout.
#[test]
fn sigterm_with_idle_keep_alive_connection() {
    let mut server = Server::start(&[("WORKERS", "2"), ("DRAIN_TIMEOUT_MS", "3000")], &[]);
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/api/health").status, 200);
    let signalled = Instant::now();
    server.sigterm();
    let rest = c.read_to_close();
    assert!(
        rest.is_empty(),
        "bytes on the idle connection: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_exit_0(
        &mut server,
        Duration::from_secs(5),
        "SIGTERM with idle conn",
    );
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

/// A request in flight at SIGTERM still gets its 200, marked
/// `Connection: close`, then the connection closes and the process exits 0.
#[test]
fn sigterm_with_request_in_flight() {
    let mut server = Server::start(
        &[
            ("WORKERS", "1"),
            ("ORIGIN_DELAY_MS", "1000"),
            ("CACHE_TTL_MS", "0"),
        ],
        &[],
    );
    let mut c = Client::connect(server.addr());
    c.send_get("/api/data/in-flight");
    // Wait until the shard reports it in flight (the health request itself
    // makes the second one).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let active = get(server.addr(), "/api/health").json()["activeRequests"].clone();
        if active == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "request never in flight");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.sigterm();
    let r = c.read();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["clientId"], "in-flight");
    let closed = c.read_to_close();
    assert!(closed.is_empty(), "bytes after the response");
    assert_exit_0(&mut server, Duration::from_secs(5), "SIGTERM in flight");
    assert_eq!(
        r.header("Connection"),
        Some("close"),
        "the last response before the close must say so: {r:?}"
    );
}

/// Bad settings are refused before serving: non-zero exit within 5 s and a
/// message naming the setting (matched case-sensitively, so the startup log
/// line that prints every setting in lower case cannot satisfy it).
#[test]
fn bad_settings_are_refused() {
    /// Environment, flags, and what the error message must contain.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 5] = [
        (&[], &["--port", "70000"], "--port"),
        (&[("WORKERS", "99")], &[], "WORKERS=99"),
        (&[], &["--max-headers", "65"], "--max-headers"),
        (
            &[("MAX_CONCURRENT_REQUESTS", "0")],
            &[],
            "MAX_CONCURRENT_REQUESTS",
        ),
        (&[], &["--workers", "two"], "--workers"),
    ];
    for (env, args, needle) in cases {
        let mut all_args = vec!["--host", "127.0.0.1"];
        all_args.extend_from_slice(args);
        if !args.contains(&"--port") {
            all_args.extend_from_slice(&["--port", "0"]);
        }
        let done = run_to_exit(env, &all_args, Duration::from_secs(5));
        let output = format!("{}{}", done.stdout, done.stderr);
        assert!(
            !done.status.success() && done.status.code().is_some(),
            "{env:?} {args:?}: exit {:?}; output:\n{output}",
            done.status
        );
        assert!(
            output.contains(needle),
            "{env:?} {args:?}: output does not name {needle:?}:\n{output}"
        );
        assert!(
            !output.contains("listening"),
            "{env:?} {args:?}: started listening:\n{output}"
        );
    }
}

/// `--help` exits 0 and documents the flags with their environment variables.
#[test]
fn help_lists_flags_and_env_vars() {
    let done = run_to_exit(&[], &["--help"], Duration::from_secs(5));
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    for needle in ["--port", "[env: PORT=]", "--workers", "[env: WORKERS=]"] {
        assert!(
            done.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            done.stdout
        );
    }
}

/// Linux 6.1 or later: the kernel accepts `IORING_SETUP_DEFER_TASKRUN`.
fn kernel_has_defer_taskrun() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).expect("major");
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).expect("minor");
    (major, minor) >= (6, 1)
}

/// With `IO_URING_DEFER_TASKRUN=<setting>` every shard runs the main-ring
/// set-up `expected` says (its debug line), answers 100 pipelined requests in
/// order and a request split at every byte offset, and exits 0 on SIGTERM
/// with a keep-alive connection open.
fn serves_and_drains_with_ring_setup(setting: &str, expected: bool) {
    let mut server = Server::start(
        &[
            ("WORKERS", "2"),
            ("IO_URING_DEFER_TASKRUN", setting),
            ("RUST_LOG", "percore=debug"),
        ],
        &[],
    );
    let mut c = Client::connect(server.addr());
    let mut batch = String::new();
    for i in 0..100 {
        batch.push_str(&get_request(&format!("/api/data/pipe-{i}")));
    }
    c.send(batch);
    for i in 0..100 {
        let r = c.read();
        assert_eq!(r.status, 200, "pipelined {i}: {r:?}");
        assert_eq!(r.json()["clientId"], format!("pipe-{i}"), "in order");
    }
    let request = get_request("/api/data/split");
    for at in 1..request.len() {
        c.send(&request[..at]);
        std::thread::sleep(Duration::from_millis(1));
        c.send(&request[at..]);
        let r = c.read();
        assert_eq!(r.status, 200, "split at {at}: {r:?}");
        assert_eq!(r.json()["clientId"], "split");
    }
    let wanted = format!("defer_taskrun={expected}");
    let output = server.output();
    for shard in 0..2 {
        let line = output
            .lines()
            .find(|l| l.contains("shard started") && l.contains(&format!("shard={shard} ")))
            .unwrap_or_else(|| panic!("no start line for shard {shard}:\n{output}"));
        assert!(line.contains(&wanted), "shard {shard}: {line}");
    }
    server.sigterm();
    assert!(c.read_to_close().is_empty(), "bytes on the idle connection");
    assert_exit_0(&mut server, Duration::from_secs(10), "SIGTERM");
}

/// The fallback forced (`IO_URING_DEFER_TASKRUN=0`, what a kernel older than
/// 6.1 gets on its own): the main rings run without DEFER_TASKRUN and serve.
#[test]
fn the_fallback_ring_setup_serves_and_drains() {
    serves_and_drains_with_ring_setup("0", false);
}

/// The default (`IO_URING_DEFER_TASKRUN=1`): DEFER_TASKRUN where the kernel
/// has it, and the same service.
#[test]
fn the_default_ring_setup_serves_and_drains() {
    serves_and_drains_with_ring_setup("1", kernel_has_defer_taskrun());
}

/// Connections that queue while the shard is busy (here, 600 of them behind
/// a 300 ms cache miss of simulated origin CPU) are accepted in batches once
/// it is free, and every one is answered.
#[test]
fn a_burst_queued_while_the_shard_is_busy_is_all_answered() {
    const BURST: usize = 600;
    let server = Server::start(&[("WORKERS", "1"), ("ORIGIN_CPU_US", "300000")], &[]);
    let addr = server.addr();
    let mut busy = Client::connect(addr);
    busy.send_get("/api/data/burst-miss");
    // The shard spins for 300 ms from about now: what connects meanwhile
    // waits in the socket's queue (backlog 4096).
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let mut burst: Vec<Client> = (0..BURST)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.send_get("/api/health");
            c
        })
        .collect();
    let queued_within = started.elapsed();
    assert_eq!(busy.read().status, 200);
    for (i, c) in burst.iter_mut().enumerate() {
        let r = try_read_response(&mut c.reader, false)
            .unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        assert_eq!(r.status, 200, "connection {i}");
    }
    let accepted =
        Client::connect(addr).get("/api/metrics").json()["connections"]["accepted"].as_u64();
    assert!(
        accepted.is_some_and(|n| n > BURST as u64),
        "accepted {accepted:?} (the burst connected within {queued_within:?})"
    );
}
