//! The server under test as a child process: the real `percore` binary with
//! a clean environment, started on an ephemeral port, its output captured,
//! signalled, and SIGKILLed by a guard if a test ends without stopping it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Every environment variable the server reads a setting from, plus the log
/// filter: all removed from the child so a developer's shell cannot change
/// what a test sees.
pub const SETTING_VARS: &[&str] = &[
    "HOST",
    "PORT",
    "WORKERS",
    "BACKLOG",
    "MAX_CONNECTIONS",
    "MAX_CONCURRENT_REQUESTS",
    "CACHE_TTL_MS",
    "CACHE_CAPACITY",
    "KEEP_ALIVE_TIMEOUT_MS",
    "HEADERS_TIMEOUT_MS",
    "MAX_HEAD_BYTES",
    "MAX_HEADERS",
    "MAX_URI_BYTES",
    "MAX_BODY_BYTES",
    "DRAIN_TIMEOUT_MS",
    "DRAIN_IDLE_GRACE_MS",
    "MAX_SHARD_RESTARTS",
    "ORIGIN_DELAY_MS",
    "ORIGIN_CPU_US",
    "LOG_FORMAT",
    "ACCESS_LOG",
    "IO_URING_DEFER_TASKRUN",
    "IO_URING_RECV_MULTISHOT",
    "IO_URING_RECV_BUFFERS",
    "IO_URING_RING_SEND",
    "RUST_LOG",
];

/// How long a server may take to print its `listening addr=` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The `percore` binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_percore")
}

/// A `percore` command with every setting variable removed and `env` set.
pub fn command(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    set_env(&mut cmd, env);
    cmd.args(args);
    cmd
}

/// Removes every setting variable from `cmd`'s environment, then sets `env`.
/// `PERCORE_TEST_RECV_MULTISHOT` and `PERCORE_TEST_RING_SEND`, if set,
/// become every server's `IO_URING_RECV_MULTISHOT` and `IO_URING_RING_SEND`
/// unless `env` names them: CI runs the wire tests once more with `0`,
/// through the poll + `recv` read path and the `send` write path.
fn set_env(cmd: &mut Command, env: &[(&str, &str)]) {
    for var in SETTING_VARS {
        cmd.env_remove(var);
    }
    if let Ok(v) = std::env::var("PERCORE_TEST_RECV_MULTISHOT") {
        cmd.env("IO_URING_RECV_MULTISHOT", v);
    }
    if let Ok(v) = std::env::var("PERCORE_TEST_RING_SEND") {
        cmd.env("IO_URING_RING_SEND", v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// A running server; SIGKILLed on drop if it is still running.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `percore --host 127.0.0.1 --port 0 <args>` with `env` and waits
    /// for its `listening addr=` line (10 s at most, then panics with what it
    /// printed). A thread keeps draining stdout afterwards.
    pub fn start(env: &[(&str, &str)], args: &[&str]) -> Server {
        Self::launch(&[], 0, env, args)
    }

    /// [`Server::start`] on a given port (e.g. a second instance sharing a
    /// running one's port through SO_REUSEPORT).
    pub fn start_on(port: u16, env: &[(&str, &str)], args: &[&str]) -> Server {
        Self::launch(&[], port, env, args)
    }

    /// [`Server::start`] through a wrapper that execs the server, such as
    /// `["prlimit", "--nofile=64:64", "--"]`; the pid stays the server's.
    pub fn start_wrapped(wrapper: &[&str], env: &[(&str, &str)], args: &[&str]) -> Server {
        Self::launch(wrapper, 0, env, args)
    }

    fn launch(wrapper: &[&str], port: u16, env: &[(&str, &str)], args: &[&str]) -> Server {
        let port = port.to_string();
        let mut cmd = match wrapper.split_first() {
            None => Command::new(binary()),
            Some((program, wrapper_args)) => {
                let mut cmd = Command::new(program);
                cmd.args(wrapper_args).arg(binary());
                cmd
            }
        };
        set_env(&mut cmd, env);
        cmd.args(["--host", "127.0.0.1", "--port", &port])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot spawn percore");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();

        let stdout = child.stdout.take().expect("stdout is piped");
        let out = output.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut tx = Some(tx);
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                out.lock().unwrap().push_str(&line);
                if tx.is_some() {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.take().map(|tx| tx.send(addr));
                    }
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let out = output.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => out.lock().unwrap().push_str(&line),
                }
            }
        });

        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                // Give the reader threads a moment to collect the last lines.
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "percore did not report `listening addr=` within {START_TIMEOUT:?} \
                     (env {env:?}, args {args:?}, exit {status:?}); output:\n{}",
                    output.lock().unwrap()
                );
            }
        };
        Server {
            child,
            addr,
            output,
        }
    }

    /// The address every shard listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` + the address, for the load generator's `--url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own child, which is not reaped before `wait_exit`/drop.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.child.id());
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT.
    pub fn sigint(&self) {
        self.signal(libc::SIGINT);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait failed") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL
            let _ = self.child.wait();
        }
    }
}

/// The address in a `... listening addr=127.0.0.1:1234 shards=...` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let rest = &line[line.find("addr=")? + "addr=".len()..];
    let token = rest.split_whitespace().next()?;
    token.trim_matches('"').parse().ok()
}

/// A finished process: exit status and everything it printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `percore` with `env` and `args` (nothing else added) and waits up to
/// `timeout` for it to exit; panics (after killing it) if it does not.
pub fn run_to_exit(env: &[(&str, &str)], args: &[&str], timeout: Duration) -> Finished {
    let mut child = command(env, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot spawn percore");
    let collect = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("piped")));
    let err = collect(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait failed") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("percore {args:?} (env {env:?}) still running after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Finished {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
