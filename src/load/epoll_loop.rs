//! `max`'s engine: connections that send back to back, each thread running
//! one plain epoll loop over its share of them, as wrk does.
//!
//! Why not glommio here: in `max` the generator shares the machine with the
//! server it measures, so every cycle it spends per request is taken from
//! the server. glommio's stream re-arms an io_uring poll for every read
//! (a `POLL_ADD` per request). Here a socket is registered once,
//! level-triggered for reading, and a request costs one `send` and one
//! `recv` plus a share of one `epoll_wait`. (wrk additionally switches
//! `EPOLLOUT` on and off around every request: two `epoll_ctl` per request,
//! counted in README.)
//! `EPOLLOUT` is asked for only while a connect is in progress or a request
//! did not fit in the socket buffer.
//!
//! It measures what the closed-loop client of `scenarios/closed_loop.rs`
//! measures, the same way: latency from the actual send, responses by
//! status, errors by class, a reconnect when the server closed, one retry
//! of a request that met a keep-alive close before any byte of its
//! response, and a deadline per request (checked every [`SCAN_INTERVAL`]).
//! Buffers are allocated once per connection; the request bytes of every
//! path once per thread.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::epoll::{self, Epoll, Interest};
use super::executors::now_ns;
use super::live::Live;
use super::outcome::{ErrorKind, Outcome};
use super::pool::first_path;
use super::recorder::Recorder;
use super::response_reader::{Progress, ResponseReader};
use super::target::Target;
use super::LoadError;
use crate::os::limits;

/// How often request deadlines are checked (and the longest `epoll_wait`).
pub const SCAN_INTERVAL: Duration = Duration::from_millis(10);
/// Initial response buffer; a percore `/api/data` response is ~1 KiB.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Events taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The server.
    pub target: Target,
    /// Connections, spread over the threads.
    pub connections: usize,
    /// Request paths; connection `i` starts at [`first_path`] and cycles.
    pub paths: Arc<Vec<Vec<u8>>>,
    /// Requests are sent from `window_ns.0` until `window_ns.1` (ns since
    /// time zero); those in flight at the end are still awaited.
    pub window_ns: (u64, u64),
    /// Per-request deadline (connect, send and response).
    pub timeout: Duration,
    /// Threads, each with its own epoll loop.
    pub threads: usize,
    /// Timeline bucket width.
    pub bucket_ms: u64,
}

/// Runs the plan and returns each thread's recorder.
pub fn run(
    plan: &Plan,
    start: quanta::Instant,
    live: Arc<Live>,
) -> Result<Vec<Recorder>, LoadError> {
    let _ = limits::raise_nofile();
    let threads = plan.threads.max(1).min(plan.connections.max(1));
    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads {
        let plan = plan.clone();
        let live = live.clone();
        let handle = std::thread::Builder::new()
            .name(format!("load{index}"))
            .spawn(move || {
                let mine: Vec<usize> = (index..plan.connections).step_by(threads).collect();
                Worker::new(&plan, &mine, start, live).map(Worker::run)
            })
            .map_err(|e| LoadError::Internal(format!("cannot start load thread {index}: {e}")))?;
        handles.push(handle);
    }
    let mut recorders = Vec::with_capacity(threads);
    for (index, handle) in handles.into_iter().enumerate() {
        let result = handle
            .join()
            .map_err(|_| LoadError::Internal(format!("load thread {index} panicked")))?;
        recorders
            .push(result.map_err(|e| LoadError::Internal(format!("load thread {index}: {e}")))?);
    }
    Ok(recorders)
}

/// Where a connection is in its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting to send its next request (or to reconnect first).
    Ready,
    /// A non-blocking connect is in progress.
    Connecting,
    /// The request is partly sent.
    Sending,
    /// The request is sent; the response is being read.
    Reading,
    /// The window closed: no more requests.
    Done,
}

/// One connection and its request in flight.
struct Conn {
    socket: Option<Socket>,
    /// Bumped for every new socket, so that a stale event for a closed one
    /// (same fd number, same `epoll_wait` batch) is ignored.
    generation: u32,
    state: State,
    /// Whether `EPOLLOUT` is registered.
    wants_out: bool,
    path: usize,
    sent_ns: u64,
    deadline_ns: u64,
    /// Bytes of the request already sent.
    written: usize,
    response: ResponseReader,
    /// The socket already carried a complete exchange (a close before the
    /// response is then a keep-alive race, worth one retry).
    reused: bool,
    /// This request was already retried once.
    retried: bool,
    /// Sockets opened by this connection so far.
    connects: u64,
}

impl Conn {
    /// The epoll token of the current socket: index and generation.
    fn token(&self, index: usize) -> u64 {
        ((index as u64) << 32) | u64::from(self.generation)
    }
}

/// One thread's connections and measurements.
struct Worker {
    epoll: Epoll,
    addr: SocketAddr,
    conns: Vec<Conn>,
    requests: Vec<Vec<u8>>,
    /// Connections to (re)start; filled by completions and failures.
    ready: Vec<usize>,
    /// Connections not yet `Done`.
    active: usize,
    recorder: Recorder,
    start: quanta::Instant,
    window_ns: (u64, u64),
    timeout_ns: u64,
}

impl Worker {
    fn new(
        plan: &Plan,
        mine: &[usize],
        start: quanta::Instant,
        live: Arc<Live>,
    ) -> io::Result<Worker> {
        let requests = plan
            .paths
            .iter()
            .map(|path| {
                let mut r = Vec::with_capacity(path.len() + plan.target.host_header.len() + 32);
                r.extend_from_slice(b"GET ");
                r.extend_from_slice(path);
                r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
                r.extend_from_slice(plan.target.host_header.as_bytes());
                r.extend_from_slice(b"\r\n\r\n");
                r
            })
            .collect::<Vec<_>>();
        let paths = requests.len().max(1);
        let conns = mine
            .iter()
            .map(|&i| Conn {
                socket: None,
                generation: 0,
                state: State::Ready,
                wants_out: false,
                path: first_path(i, plan.connections, paths),
                sent_ns: 0,
                deadline_ns: 0,
                written: 0,
                response: ResponseReader::new(READ_BUFFER_BYTES),
                reused: false,
                retried: false,
                connects: 0,
            })
            .collect::<Vec<_>>();
        Ok(Worker {
            epoll: Epoll::new()?,
            addr: plan.target.addr,
            ready: (0..conns.len()).rev().collect(),
            active: conns.len(),
            conns,
            requests,
            recorder: Recorder::new(plan.bucket_ms, Some(live)),
            start,
            window_ns: plan.window_ns,
            timeout_ns: plan.timeout.as_nanos() as u64,
        })
    }

    fn run(mut self) -> Recorder {
        if let Some(wait) = self.start.checked_duration_since(quanta::Instant::now()) {
            std::thread::sleep(wait);
        }
        let wait_start = self.window_ns.0.saturating_sub(now_ns(self.start));
        std::thread::sleep(Duration::from_nanos(wait_start));
        if self.requests.is_empty() {
            self.active = 0;
        }
        let mut events = epoll::events(EVENTS_PER_WAIT);
        let mut next_scan_ns = 0;
        while self.active > 0 {
            while let Some(i) = self.ready.pop() {
                self.start_request(i);
            }
            if self.active == 0 {
                break;
            }
            let now = now_ns(self.start);
            if now >= next_scan_ns {
                self.expire(now);
                next_scan_ns = now + SCAN_INTERVAL.as_nanos() as u64;
                continue;
            }
            let wait_ms = (next_scan_ns - now).div_ceil(1_000_000).max(1) as i32;
            let n = self.epoll.wait(&mut events, wait_ms);
            for event in &events[..n] {
                let (token, error) = epoll::token_and_error(event);
                let i = (token >> 32) as usize;
                if self.conns.get(i).is_some_and(|c| c.token(i) == token) {
                    self.on_event(i, error);
                }
            }
        }
        for conn in &self.conns {
            self.recorder.connects += conn.connects;
            self.recorder.reconnects += conn.connects.saturating_sub(1);
        }
        self.recorder.finish();
        self.recorder
    }

    /// Sends connection `i`'s next request, or ends it when the window closed.
    fn start_request(&mut self, i: usize) {
        let now = now_ns(self.start);
        if now >= self.window_ns.1 {
            self.close(i);
            self.conns[i].state = State::Done;
            self.active -= 1;
            return;
        }
        let conn = &mut self.conns[i];
        conn.sent_ns = now;
        conn.deadline_ns = now.saturating_add(self.timeout_ns);
        conn.retried = false;
        self.send_or_connect(i);
    }

    /// Sends the prepared request, connecting first if needed.
    fn send_or_connect(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.written = 0;
        conn.response.reset();
        if conn.socket.is_some() {
            conn.state = State::Sending;
            self.send(i);
        } else {
            self.connect(i);
        }
    }

    fn connect(&mut self, i: usize) {
        let domain = Domain::for_address(self.addr);
        let socket = match Socket::new(domain, Type::STREAM, Some(Protocol::TCP)) {
            Ok(s) if s.set_nonblocking(true).is_ok() => s,
            _ => return self.fail(i, ErrorKind::Connect),
        };
        let _ = socket.set_nodelay(true);
        match socket.connect(&SockAddr::from(self.addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(_) => return self.fail(i, ErrorKind::Connect),
        }
        let conn = &mut self.conns[i];
        conn.generation = conn.generation.wrapping_add(1);
        let added = self
            .epoll
            .add(socket.as_raw_fd(), Interest::ReadWrite, conn.token(i));
        conn.socket = Some(socket);
        conn.wants_out = true;
        conn.state = State::Connecting;
        if added.is_err() {
            self.fail(i, ErrorKind::Connect);
        }
    }

    /// Registers or drops interest in `EPOLLOUT` for connection `i`.
    fn want_out(&mut self, i: usize, out: bool) {
        let conn = &mut self.conns[i];
        if conn.wants_out == out {
            return;
        }
        if let Some(socket) = conn.socket.as_ref() {
            let interest = if out {
                Interest::ReadWrite
            } else {
                Interest::Read
            };
            let _ = self
                .epoll
                .modify(socket.as_raw_fd(), interest, conn.token(i));
            conn.wants_out = out;
        }
    }

    fn on_event(&mut self, i: usize, error: bool) {
        match self.conns[i].state {
            State::Connecting => {
                let failed = self.conns[i]
                    .socket
                    .as_ref()
                    .is_none_or(|s| !matches!(s.take_error(), Ok(None)));
                if failed || error {
                    return self.fail(i, ErrorKind::Connect);
                }
                let conn = &mut self.conns[i];
                // A new socket: `close` already cleared `reused`.
                conn.connects += 1;
                conn.state = State::Sending;
                self.send(i);
            }
            State::Sending => self.send(i),
            State::Reading => self.receive(i),
            State::Ready | State::Done => {}
        }
    }

    fn send(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let request = &self.requests[conn.path];
        let Some(fd) = conn.socket.as_ref().map(|s| s.as_raw_fd()) else {
            return self.fail(i, ErrorKind::Reset);
        };
        while conn.written < request.len() {
            match epoll::send(fd, &request[conn.written..]) {
                Some(Ok(n)) if n > 0 => conn.written += n,
                None => return self.want_out(i, true),
                Some(_) => return self.closed_early(i),
            }
        }
        conn.state = State::Reading;
        self.want_out(i, false);
    }

    fn receive(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        let Some(fd) = conn.socket.as_ref().map(|s| s.as_raw_fd()) else {
            return self.fail(i, ErrorKind::Reset);
        };
        let spare = match conn.response.spare() {
            Ok(spare) => spare,
            Err(kind) => return self.fail(i, kind),
        };
        let progress = match epoll::recv(fd, spare) {
            None => return,
            Some(Ok(0)) => match conn.response.closed() {
                Ok(progress) => progress,
                Err(_) => return self.closed_early(i),
            },
            Some(Ok(n)) => match conn.response.received(n) {
                Ok(progress) => progress,
                Err(kind) => return self.fail(i, kind),
            },
            Some(Err(_)) => return self.closed_early(i),
        };
        if let Progress::Complete { status, keep_alive } = progress {
            self.complete(i, status, keep_alive);
        }
    }

    /// The response is complete: record it and go on.
    fn complete(&mut self, i: usize, status: u16, keep_alive: bool) {
        let done = now_ns(self.start);
        let conn = &mut self.conns[i];
        self.recorder
            .record(conn.sent_ns, conn.sent_ns, done, Outcome::Status(status));
        conn.reused = true;
        conn.path = (conn.path + 1) % self.requests.len();
        conn.state = State::Ready;
        if !keep_alive {
            self.close(i);
        }
        self.ready.push(i);
    }

    /// The connection closed (or failed) before the response was complete.
    /// On a reused connection with nothing of the response read, this is
    /// the keep-alive race: the server closed an idle connection as the
    /// request left. The request is retried once on a new connection.
    fn closed_early(&mut self, i: usize) {
        let conn = &self.conns[i];
        if conn.reused && conn.response.nothing_read() && !conn.retried {
            self.close(i);
            self.conns[i].retried = true;
            return self.send_or_connect(i);
        }
        self.fail(i, ErrorKind::Reset);
    }

    /// The request failed: record it, drop the socket and go on.
    fn fail(&mut self, i: usize, kind: ErrorKind) {
        let done = now_ns(self.start);
        let sent = self.conns[i].sent_ns;
        self.recorder.record(sent, sent, done, Outcome::Error(kind));
        self.close(i);
        let conn = &mut self.conns[i];
        conn.path = (conn.path + 1) % self.requests.len();
        conn.state = State::Ready;
        self.ready.push(i);
    }

    /// Closes connection `i`'s socket (closing removes it from the epoll set).
    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.socket = None;
        conn.wants_out = false;
        conn.reused = false;
    }

    /// Fails every request past its deadline.
    fn expire(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            let in_flight = matches!(
                conn.state,
                State::Connecting | State::Sending | State::Reading
            );
            if in_flight && now > conn.deadline_ns {
                self.fail(i, ErrorKind::Timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A server on a thread per connection; `answer` gets each request's
    /// path and the stream, and returns whether to keep the connection.
    fn server<F>(answer: F) -> SocketAddr
    where
        F: Fn(&str, &mut TcpStream) -> bool + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().expect("clone");
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        while line != "\r\n" {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        if !answer(&path, &mut writer) {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn plan(addr: SocketAddr, connections: usize, window_ms: u64, timeout_ms: u64) -> Plan {
        Plan {
            target: Target {
                addr,
                host_header: addr.to_string(),
            },
            connections,
            paths: Arc::new(vec![b"/a".to_vec(), b"/b".to_vec(), b"/c".to_vec()]),
            window_ns: (0, window_ms * 1_000_000),
            timeout: Duration::from_millis(timeout_ms),
            threads: 2,
            bucket_ms: 100,
        }
    }

    fn run_merged(plan: &Plan) -> Recorder {
        let recorders = run(plan, quanta::Instant::now(), Arc::new(Live::new())).expect("run");
        let threads = plan.threads.min(plan.connections);
        assert_eq!(recorders.len(), threads, "one recorder per thread");
        Recorder::merge_all(&recorders, plan.bucket_ms)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn every_response_is_counted_and_paths_cycle() {
        let answered = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let (a, s) = (answered.clone(), seen.clone());
        let addr = server(move |path, out| {
            s.lock().expect("lock").insert(path.to_string());
            // Head and body in two writes: the reader must join them.
            let ok = out.write_all(&OK[..OK.len() - 5]).is_ok() && out.write_all(b"hello").is_ok();
            a.fetch_add(1, Ordering::SeqCst);
            ok
        });
        let r = run_merged(&plan(addr, 4, 300, 1000));
        assert!(r.requests > 10, "{} requests", r.requests);
        assert_eq!(
            r.requests,
            answered.load(Ordering::SeqCst),
            "in-flight responses awaited"
        );
        assert_eq!(r.status_counts[200], r.requests);
        assert_eq!((r.errors, r.connects, r.reconnects), (0, 4, 0));
        let seen = seen.lock().expect("lock");
        assert_eq!(
            seen.iter().map(String::as_str).collect::<Vec<_>>(),
            ["/a", "/b", "/c"]
        );
    }

    #[test]
    fn connection_close_reconnects_without_errors() {
        let addr = server(|_, out| {
            let _ = out
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
            false
        });
        let r = run_merged(&plan(addr, 3, 200, 1000));
        assert!(r.requests > 3);
        assert_eq!(r.errors, 0);
        assert_eq!(r.connects, r.requests, "one connection per request");
        assert_eq!(r.reconnects, r.connects - 3);
    }

    #[test]
    fn a_close_before_the_next_response_is_retried_once() {
        // Answers one request per connection, without saying it will close:
        // every second request meets the keep-alive race.
        let addr = server(|_, out| {
            let _ = out.write_all(OK);
            false
        });
        let r = run_merged(&plan(addr, 2, 200, 1000));
        assert!(r.requests > 2);
        assert_eq!(r.errors, 0, "races are retried, not errors");
        assert_eq!(r.status_counts[200], r.requests);
    }

    #[test]
    fn a_silent_server_times_out() {
        let addr = server(|_, _| {
            std::thread::sleep(Duration::from_secs(5));
            false
        });
        // 2 connections, each request cut at ~100 ms (+ up to one scan
        // interval), sent at ~0, ~105 and ~210 ms of a 250 ms window: 6.
        let r = run_merged(&plan(addr, 2, 250, 100));
        assert!((4..=8).contains(&r.requests), "{} requests", r.requests);
        assert_eq!(r.error_counts[ErrorKind::Timeout.index()], r.requests);
    }

    #[test]
    fn refused_connections_are_connect_errors() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let r = run_merged(&plan(addr, 2, 50, 1000));
        assert!(r.requests > 0);
        assert_eq!(r.error_counts[ErrorKind::Connect.index()], r.requests);
        assert_eq!(r.connects, 0);
    }

    #[test]
    fn chunked_responses_are_protocol_errors() {
        let addr = server(|_, out| {
            let _ =
                out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
            true
        });
        let r = run_merged(&plan(addr, 1, 100, 1000));
        assert!(r.requests > 0);
        assert_eq!(r.error_counts[ErrorKind::Protocol.index()], r.requests);
    }
}
