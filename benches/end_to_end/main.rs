//! End-to-end benchmark: the release `percore` binary on loopback under a
//! closed-loop keep-alive load, reporting requests/s, client-side latency
//! percentiles and the server's CPU time per request.
//!
//! Why: the criterion benches (`hot_path`) time the user-space stages only;
//! on this path the kernel's TCP work and the syscalls dominate, so the
//! figure that matters is server CPU µs per request measured on the real
//! process: `(utime + stime)` from `/proc/<pid>/stat`, delta over the run,
//! divided by the requests answered.
//!
//! The load is built in (no dependency on `percore-load` or `wrk`): a
//! wrk-style closed loop, `BENCH_CLIENT_THREADS` OS threads (default 2) each
//! driving its share of `BENCH_CONNECTIONS` (default 100) non-blocking
//! keep-alive connections with one `epoll` instance. Each connection sends
//! one `GET /api/data/client-<n>` (n cycling over `BENCH_CLIENTS`, default
//! 100), waits for the whole response, and sends the next. An epoll loop was
//! chosen over one blocking thread per connection because, on 2 cores
//! shared with the server, 100 threads spend their time context switching
//! (`BENCH_CLIENT=threads` runs that variant for comparison).
//!
//! ```sh
//! cargo build --release
//! cargo bench --bench end_to_end                 # 5 s, all cores
//! BENCH_SECONDS=10 BENCH_WORKERS=1 cargo bench --bench end_to_end
//! ```
//!
//! `BENCH_MODE=idle` measures memory instead: the server's RSS before and
//! after `BENCH_CONNECTIONS` keep-alive connections that each made one
//! request and stay idle, per connection (see `benches/idle_connections.sh`).
//! The bench raises its own soft fd limit to the hard one for 10,000
//! connections. Errors (non-200, resets, closes) are counted, and retire
//! their connection.
//!
//! Environment: `BENCH_SECONDS` (measured run, default 5),
//! `BENCH_WARMUP_SECONDS` (default 1, not counted), `BENCH_WORKERS`
//! (server shards, default: the server's default, every core),
//! `BENCH_CONNECTIONS`, `BENCH_CLIENTS`, `BENCH_CLIENT_THREADS`,
//! `BENCH_CLIENT` (`epoll` or `threads`), `PERCORE_BIN` (the server binary;
//! default `$CARGO_TARGET_DIR/release/percore`, else
//! `<crate>/target/release/percore`).
//!
//! Here: the settings, a measured run and its report, idle mode. `client.rs`:
//! the closed-loop load. `server.rs`: the server process and what `/proc`
//! says of it.

mod client;
mod server;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use client::{blocking_loop, epoll_loop, open_connections, Conn};
use server::{
    cpu_us, free_port, load_average, raise_nofile, rss_bytes, server_binary, start_server,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// The settings of one invocation.
struct Settings {
    seconds: f64,
    warmup: f64,
    connections: usize,
    clients: usize,
    threads: usize,
    blocking: bool,
}

struct Run {
    requests: u64,
    errors: u64,
    seconds: f64,
    server_cpu_us: u64,
    latency_us: Histogram<u64>,
}

fn drive(port: u16, server_pid: u32, s: &Settings) -> Run {
    let (conns, connect_errors) = open_connections(port, s.connections, s.clients);
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let clients = s.clients;
    if s.blocking {
        for c in conns {
            let (stop, counting) = (stop.clone(), counting.clone());
            handles.push(std::thread::spawn(move || {
                blocking_loop(c, clients, &stop, &counting)
            }));
        }
    } else {
        let mut shares: Vec<Vec<Conn>> = (0..s.threads).map(|_| Vec::new()).collect();
        for (i, c) in conns.into_iter().enumerate() {
            shares[i % s.threads].push(c);
        }
        for share in shares {
            let (stop, counting) = (stop.clone(), counting.clone());
            handles.push(std::thread::spawn(move || {
                epoll_loop(share, clients, &stop, &counting)
            }));
        }
    }
    std::thread::sleep(Duration::from_secs_f64(s.warmup));
    let cpu_before = cpu_us(server_pid);
    let started = Instant::now();
    counting.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(s.seconds));
    counting.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu_us = cpu_us(server_pid) - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let mut latency_us = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut requests = 0;
    let mut errors = connect_errors;
    for h in handles {
        let t = h.join().expect("client thread");
        requests += t.requests;
        errors += t.errors;
        latency_us.add(t.latency_us.unwrap()).unwrap();
    }
    Run {
        requests,
        errors,
        seconds,
        server_cpu_us,
        latency_us,
    }
}

/// `BENCH_MODE=idle`: server RSS before and after `connections` idle
/// keep-alive connections (each did one request), per connection.
fn idle(bin: &PathBuf, workers: Option<usize>, s: &Settings) {
    let port = free_port();
    let server = start_server(bin, port, workers);
    let pid = server.pid();
    // Warm the cache and every shard's buffers with a few connections first,
    // so the delta is the connections' own memory.
    drop(open_connections(port, 200, s.clients));
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_bytes(pid);
    let started = Instant::now();
    let (conns, errors) = open_connections(port, s.connections, s.clients);
    let opened_in = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_bytes(pid);
    let open = conns.len();
    println!();
    println!("end_to_end (idle): {}", bin.display());
    println!(
        "  workers {}, load average {}",
        workers.map_or("all cores".to_string(), |w| w.to_string()),
        load_average()
    );
    println!();
    println!("  | metric                         | value        |");
    println!("  |--------------------------------|--------------|");
    println!("  | idle keep-alive connections    | {open:>12} |");
    println!("  | errors (connect/first request) | {errors:>12} |");
    println!("  | opened (+1 request each) in, s | {opened_in:>12.2} |");
    println!(
        "  | server RSS before, KiB         | {:>12} |",
        before / 1024
    );
    println!(
        "  | server RSS after, KiB          | {:>12} |",
        after / 1024
    );
    println!(
        "  | RSS per connection, bytes      | {:>12.0} |",
        after.saturating_sub(before) as f64 / open.max(1) as f64
    );
    println!();
    drop(conns);
    drop(server);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // of the kind and must not start a server: run only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        println!("end_to_end: run with `cargo bench --bench end_to_end`");
        return;
    }
    let bin = match server_binary() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("end_to_end: {why}");
            std::process::exit(1);
        }
    };
    let settings = Settings {
        seconds: env_or("BENCH_SECONDS", 5.0),
        warmup: env_or("BENCH_WARMUP_SECONDS", 1.0),
        connections: env_or("BENCH_CONNECTIONS", 100),
        clients: env_or("BENCH_CLIENTS", 100),
        threads: env_or("BENCH_CLIENT_THREADS", 2),
        blocking: match std::env::var("BENCH_CLIENT").as_deref() {
            Ok("threads") => true,
            Ok("epoll") | Err(_) => false,
            Ok(other) => panic!("BENCH_CLIENT={other:?}: expected epoll or threads"),
        },
    };
    let workers: Option<usize> = std::env::var("BENCH_WORKERS").ok().map(|w| {
        w.parse()
            .unwrap_or_else(|_| panic!("BENCH_WORKERS={w:?} is not a number"))
    });
    let nofile = raise_nofile();
    if settings.connections as u64 + 64 > nofile {
        eprintln!(
            "end_to_end: {} connections need more than the fd limit {nofile}",
            settings.connections
        );
        std::process::exit(1);
    }
    match std::env::var("BENCH_MODE").as_deref() {
        Ok("idle") => return idle(&bin, workers, &settings),
        Ok("load") | Err(_) => {}
        Ok(other) => panic!("BENCH_MODE={other:?}: expected load or idle"),
    }

    let port = free_port();
    let server = start_server(&bin, port, workers);
    let run = drive(port, server.pid(), &settings);
    drop(server);

    let Settings {
        seconds,
        warmup,
        connections,
        clients,
        threads,
        blocking,
    } = settings;
    let rps = run.requests as f64 / run.seconds;
    let cpu_per_req = run.server_cpu_us as f64 / run.requests.max(1) as f64;
    let client = if blocking {
        format!("{connections} blocking threads")
    } else {
        format!("{threads} epoll threads")
    };
    println!();
    println!("end_to_end: {}", bin.display());
    println!(
        "  workers {}, {connections} keep-alive connections over {clients} client ids, \
         client: {client}, {seconds} s (+{warmup} s warm-up)",
        workers.map_or("all cores".to_string(), |w| w.to_string()),
    );
    println!("  load average at the end: {}", load_average());
    println!();
    println!("  | metric                    | value        |");
    println!("  |---------------------------|--------------|");
    println!("  | requests (200)            | {:>12} |", run.requests);
    println!("  | errors                    | {:>12} |", run.errors);
    println!("  | requests/s                | {:>12.0} |", rps);
    println!(
        "  | latency p50, µs           | {:>12} |",
        run.latency_us.value_at_quantile(0.50)
    );
    println!(
        "  | latency p99, µs           | {:>12} |",
        run.latency_us.value_at_quantile(0.99)
    );
    println!(
        "  | server CPU, s             | {:>12.2} |",
        run.server_cpu_us as f64 / 1e6
    );
    println!("  | server CPU µs/request     | {:>12.2} |", cpu_per_req);
    println!();
}
