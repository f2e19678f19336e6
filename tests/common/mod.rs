//! Shared helpers of the integration tests: a `percore` child process with a
//! guard, and a tiny raw HTTP/1.1 client that reads exactly one response at a
//! time (so pipelined responses can be read one by one).
//!
//! Std only, plus `serde_json` to parse bodies and `libc` to send signals.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    "ORIGIN_DELAY_MS",
    "ORIGIN_CPU_US",
    "LOG_FORMAT",
    "ACCESS_LOG",
    "RUST_LOG",
];

/// How long a server may take to print its `listening addr=` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of every client socket: no test waits longer for a byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

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
fn set_env(cmd: &mut Command, env: &[(&str, &str)]) {
    for var in SETTING_VARS {
        cmd.env_remove(var);
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

/// A client connection with a 5 s read timeout and TCP_NODELAY.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One HTTP response as read off the wire.
#[derive(Clone)]
pub struct Response {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Field lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}

impl Response {
    /// Values of every field named `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the field named `name`; panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "{name} appears {} times: {self:?}",
            all.len()
        );
        all.first().copied()
    }

    /// Field names in order.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one CRLF-terminated line, without the CRLF. A bare LF or EOF is an
/// error: the server must end every line with CRLF.
fn read_crlf_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response line",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads exactly one response: status line, field lines, and a body of
/// `Content-Length` bytes (none for HEAD requests, 1xx, 204 and 304). Never
/// reads past the response, so the next pipelined response stays buffered.
pub fn try_read_response<R: BufRead>(r: &mut R, head_request: bool) -> io::Result<Response> {
    let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let status_line = read_crlf_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_crlf_line(r)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad field line {line:?}")))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(bad(format!("bad field name in {line:?}")));
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let mut response = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    if !no_body {
        let lengths = response.header_all("content-length");
        if lengths.len() != 1 {
            return Err(bad(format!(
                "need exactly one Content-Length: {response:?}"
            )));
        }
        let len: usize = lengths[0]
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {:?}", lengths[0])))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        response.body = body;
    }
    Ok(response)
}

/// [`try_read_response`] that panics on failure.
pub fn read_response<R: BufRead>(r: &mut R) -> Response {
    try_read_response(r, false).unwrap_or_else(|e| panic!("cannot read a response: {e}"))
}

/// Reads the response to a HEAD request (no body bytes).
pub fn read_head_response<R: BufRead>(r: &mut R) -> Response {
    try_read_response(r, true).unwrap_or_else(|e| panic!("cannot read a HEAD response: {e}"))
}

/// Reads until the server closes the connection and returns the bytes
/// received meanwhile. Panics on a timeout (the server kept the connection
/// open) or any other error such as a reset.
pub fn read_to_close<R: Read>(r: &mut R) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "expected the server to close the connection, got {e} after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// A client connection: a buffered reader and a writer on one socket.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = connect(addr);
        Client {
            writer: stream.try_clone().expect("clone socket"),
            reader: BufReader::new(stream),
        }
    }

    /// Writes `bytes` in one write call (as far as the kernel takes them).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.writer
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("write failed: {e}"));
        self.writer.flush().unwrap();
    }

    /// Sends `GET path HTTP/1.1` with a Host header.
    pub fn send_get(&mut self, path: &str) {
        self.send(get_request(path));
    }

    pub fn read(&mut self) -> Response {
        read_response(&mut self.reader)
    }

    pub fn read_head(&mut self) -> Response {
        read_head_response(&mut self.reader)
    }

    /// Sends a GET and reads its response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send_get(path);
        self.read()
    }

    /// Reads until EOF (see [`read_to_close`]).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        read_to_close(&mut self.reader)
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.writer.set_read_timeout(Some(timeout)).unwrap();
    }
}

/// `GET path HTTP/1.1` with a Host header and nothing else.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// One GET on a new connection (keep-alive, dropped after the response).
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).get(path)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7)
/// strictly, into Unix seconds; checks the day name matches the date.
pub fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29 || &s[3..5] != ", " || !s.ends_with(" GMT") {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let sep_ok = b[7] == b' ' && b[11] == b' ' && b[16] == b' ' && b[19] == b':' && b[22] == b':';
    if !sep_ok {
        return None;
    }
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u64 + 1;
    let year = num(12..16)?;
    let (h, mi, se) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), for years >= 1970.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    if DAYS[(days % 7) as usize] != &s[0..3] {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Checks that `response` is a JSON error: `Content-Type: application/json`
/// and a body that is an object with exactly one non-empty string `error`.
pub fn assert_json_error(response: &Response) {
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json"),
        "{response:?}"
    );
    let v = response.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    assert_eq!(obj.len(), 1, "error body has extra keys: {v}");
    let msg = obj["error"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "error body without a message: {v}");
}
