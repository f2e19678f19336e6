//! One thread's epoll loop: its share of the connections, each sending its
//! next request as soon as the previous response is in, with connects,
//! partial sends, reads, retries, failures and deadlines handled as events
//! come, and one recorder for all of them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::super::epoll::{self, Epoll, Interest};
use super::super::executors::now_ns;
use super::super::live::Live;
use super::super::outcome::{ErrorKind, Outcome};
use super::super::pool::first_path;
use super::super::recorder::Recorder;
use super::super::response_reader::{Progress, ResponseReader};
use super::conn::{Conn, State};
use super::plan::Plan;

/// How often request deadlines are checked (and the longest `epoll_wait`).
pub const SCAN_INTERVAL: Duration = Duration::from_millis(10);
/// Initial response buffer; a percore `/api/data` response is ~1 KiB.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Events taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

/// One thread's connections and measurements.
pub(super) struct Worker {
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
    pub(super) fn new(
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

    pub(super) fn run(mut self) -> Recorder {
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
