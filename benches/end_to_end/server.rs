//! The server under test: finding the release binary, starting it on a free
//! port, killing it on drop, and what `/proc` says of a process (CPU, RSS)
//! and of the machine (load average, the fd limit).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release server binary, or `None` with the reason.
pub fn server_binary() -> Result<PathBuf, String> {
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
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The server process; killed on drop.
pub struct Server(Child);

impl Server {
    /// The server process's pid, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

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

/// Starts `bin` on 127.0.0.1:`port` with `workers` shards (the server's
/// default if `None`) and waits until it accepts connections.
pub fn start_server(bin: &PathBuf, port: u16, workers: Option<usize>) -> Server {
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
pub fn cpu_us(pid: u32) -> u64 {
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

/// Resident set of a process, bytes (`VmRSS` of /proc/<pid>/status).
pub fn rss_bytes(pid: u32) -> u64 {
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
pub fn raise_nofile() -> u64 {
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

/// The machine's 1, 5 and 15-minute load averages, printed beside each
/// figure: a busy machine explains a slow run.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
