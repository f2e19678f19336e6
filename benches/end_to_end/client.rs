//! The built-in closed-loop load: keep-alive connections that each send one
//! request, read its whole response, and send the next, driven by one epoll
//! instance per thread (or one blocking thread per connection, to compare).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

/// One response per request; the largest we expect is well under this, bytes.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// epoll events fetched per `epoll_wait`.
const MAX_EVENTS: usize = 256;

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
pub struct Tally {
    pub requests: u64,
    /// Non-200 responses, connection errors and closes (each error also
    /// retires its connection).
    pub errors: u64,
    pub latency_us: Option<Histogram<u64>>,
}

/// One keep-alive connection of the load: the request it sends, how much of
/// it is sent, and the response read so far.
pub struct Conn {
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
pub fn epoll_loop(
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
pub fn blocking_loop(
    mut c: Conn,
    clients: usize,
    stop: &AtomicBool,
    counting: &AtomicBool,
) -> Tally {
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

/// Opens `n` keep-alive connections; each sends one request and reads its
/// response (blocking), so the server has allocated its per-connection state.
pub fn open_connections(port: u16, n: usize, clients: usize) -> (Vec<Conn>, u64) {
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
