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

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One response per request; the largest we expect is well under this, bytes.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// epoll events fetched per `epoll_wait`.
const MAX_EVENTS: usize = 256;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// The release server binary, or `None` with the reason.
fn server_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("PERCORE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("release").join("percore");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release` first (or set PERCORE_BIN)",
            path.display()
        ))
    }
}

/// A port that was free a moment ago (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The server process; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: drains and exits 0; fall back to SIGKILL.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(bin: &PathBuf, port: u16, workers: Option<usize>) -> Server {
    let mut cmd = Command::new(bin);
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(w) = workers {
        cmd.env("WORKERS", w.to_string());
    }
    let server = Server(cmd.spawn().expect("start the server"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// utime + stime of a process, µs (from clock ticks).
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    // Fields after the parenthesised command; utime and stime are fields 14
    // and 15 of the line, i.e. 12 and 13 after the closing ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000 / hz
}

fn request_for(client: usize) -> Vec<u8> {
    format!("GET /api/data/client-{client} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// What the start of a read buffer holds.
enum Parsed {
    /// Not a whole response yet.
    Partial,
    /// A whole 200 response of this many bytes.
    Ok(usize),
    /// A whole response with another status, of this many bytes.
    NotOk(usize),
}

/// Frames the first response in `buf` (by its `Content-Length`).
fn parse_response(buf: &[u8]) -> Parsed {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Parsed::Partial;
    };
    let head = &buf[..head_end + 4];
    let name = b"Content-Length: ";
    let len = match head.windows(name.len()).position(|w| w == name) {
        Some(at) => head[at + name.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0usize, |n, d| n * 10 + (d - b'0') as usize),
        None => 0,
    };
    let total = head.len() + len;
    if buf.len() < total {
        Parsed::Partial
    } else if head.starts_with(b"HTTP/1.1 200 ") {
        Parsed::Ok(total)
    } else {
        Parsed::NotOk(total)
    }
}

/// Per-thread results.
#[derive(Default)]
struct Tally {
    requests: u64,
    /// Non-200 responses, connection errors and closes (each error also
    /// retires its connection).
    errors: u64,
    latency_us: Option<Histogram<u64>>,
}

struct Conn {
    stream: TcpStream,
    next_client: usize,
    request: Vec<u8>,
    sent: usize,
    buf: Vec<u8>,
    filled: usize,
    started: Instant,
}

impl Conn {
    fn prepare(&mut self, clients: usize) {
        self.request = request_for(self.next_client);
        self.next_client = (self.next_client + 1) % clients;
        self.sent = 0;
        self.started = Instant::now();
    }

    /// Writes what is left of the request; false on error.
    fn send(&mut self) -> bool {
        while self.sent < self.request.len() {
            match self.stream.write(&self.request[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }
}

/// The closed loop: one epoll instance over `conns`, until `stop`.
fn epoll_loop(
    mut conns: Vec<Conn>,
    clients: usize,
    stop: &AtomicBool,
    counting: &AtomicBool,
) -> Tally {
    // SAFETY: plain syscalls on fds this function owns; `events` outlives
    // every epoll_wait that writes into it.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1");
    for (i, c) in conns.iter_mut().enumerate() {
        c.stream.set_nonblocking(true).unwrap();
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), &mut ev) };
        assert_eq!(rc, 0, "epoll_ctl");
        c.prepare(clients);
        assert!(c.send(), "first request");
    }
    let mut tally = Tally {
        latency_us: Some(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        ..Tally::default()
    };
    let hist = tally.latency_us.as_mut().unwrap();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    while !stop.load(Ordering::Relaxed) {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), MAX_EVENTS as i32, 100) };
        if n < 0 {
            continue; // EINTR
        }
        for ev in &events[..n as usize] {
            let c = &mut conns[ev.u64 as usize];
            let mut failed = false;
            loop {
                if c.filled == c.buf.len() {
                    c.buf.resize(c.buf.len() * 2, 0);
                }
                match c.stream.read(&mut c.buf[c.filled..]) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => c.filled += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            // Closed loop: one request in flight per connection, so a
            // complete response is the whole buffer.
            let done = match parse_response(&c.buf[..c.filled]) {
                Parsed::Partial => None,
                Parsed::Ok(len) => Some((len, true)),
                Parsed::NotOk(len) => Some((len, false)),
            };
            if let Some((len, ok)) = done {
                failed |= len != c.filled || !ok;
                c.filled = 0;
                if ok && counting.load(Ordering::Relaxed) {
                    tally.requests += 1;
                    let _ = hist.record(c.started.elapsed().as_micros().max(1) as u64);
                }
                if !failed {
                    c.prepare(clients);
                    // A ~60-byte request always fits the empty socket buffer.
                    failed = !c.send();
                }
            }
            if failed {
                // Count it and retire the connection (no reconnect).
                if counting.load(Ordering::Relaxed) {
                    tally.errors += 1;
                }
                unsafe {
                    libc::epoll_ctl(
                        ep,
                        libc::EPOLL_CTL_DEL,
                        c.stream.as_raw_fd(),
                        std::ptr::null_mut(),
                    )
                };
            }
        }
    }
    unsafe { libc::close(ep) };
    tally
}

/// Blocking read of one whole 200 response; false on anything else.
fn read_one(c: &mut Conn) -> bool {
    c.filled = 0;
    loop {
        match c.stream.read(&mut c.buf[c.filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => c.filled += n,
        }
        match parse_response(&c.buf[..c.filled]) {
            Parsed::Partial if c.filled < c.buf.len() => {}
            Parsed::Partial | Parsed::NotOk(_) => return false,
            Parsed::Ok(len) => return len == c.filled,
        }
    }
}

/// The comparison variant: one blocking thread per connection.
fn blocking_loop(mut c: Conn, clients: usize, stop: &AtomicBool, counting: &AtomicBool) -> Tally {
    let mut tally = Tally {
        latency_us: Some(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        ..Tally::default()
    };
    let hist = tally.latency_us.as_mut().unwrap();
    while !stop.load(Ordering::Relaxed) {
        c.prepare(clients);
        let ok = c.stream.write_all(&c.request).is_ok() && read_one(&mut c);
        if counting.load(Ordering::Relaxed) {
            if ok {
                tally.requests += 1;
                let _ = hist.record(c.started.elapsed().as_micros().max(1) as u64);
            } else {
                tally.errors += 1;
            }
        }
        if !ok {
            break;
        }
    }
    tally
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

/// Opens `n` keep-alive connections; each sends one request and reads its
/// response (blocking), so the server has allocated its per-connection state.
fn open_connections(port: u16, n: usize, clients: usize) -> (Vec<Conn>, u64) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut errors = 0;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let Ok(stream) = TcpStream::connect(addr) else {
            errors += 1;
            continue;
        };
        stream.set_nodelay(true).unwrap();
        let mut c = Conn {
            stream,
            next_client: i % clients,
            request: Vec::new(),
            sent: 0,
            buf: vec![0; READ_BUFFER_BYTES],
            filled: 0,
            started: Instant::now(),
        };
        c.prepare(clients);
        if c.stream.write_all(&c.request).is_ok() && read_one(&mut c) {
            c.filled = 0;
            conns.push(c);
        } else {
            errors += 1;
        }
    }
    (conns, errors)
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

/// Resident set of a process, bytes (`VmRSS` of /proc/<pid>/status).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Raises this process's soft fd limit to the hard one: the client side of
/// 10,000 connections needs 10,000 fds of its own.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid, owned struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `BENCH_MODE=idle`: server RSS before and after `connections` idle
/// keep-alive connections (each did one request), per connection.
fn idle(bin: &PathBuf, workers: Option<usize>, s: &Settings) {
    let port = free_port();
    let server = start_server(bin, port, workers);
    let pid = server.0.id();
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
    let run = drive(port, server.0.id(), &settings);
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
