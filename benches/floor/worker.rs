//! One worker: a pinned thread with its own listener and its own io_uring,
//! one `io_uring_enter` per loop turn.
//!
//! Each turn submits everything the previous turn queued and waits for at
//! least one completion in the same call (`submit_and_wait(1)`), then handles
//! every completion that is there. A connection has at most one chain of
//! operations in flight: a recv, or a send linked to the next recv. The send
//! carries `MSG_WAITALL` (the kernel retries a short send itself) and
//! `IOSQE_CQE_SKIP_SUCCESS` (no completion unless it fails), so the recv's
//! completion is the only one a request produces, and it proves the send
//! finished: only then is the output buffer reused. A failed send cancels the
//! linked recv (`-ECANCELED`), which closes the connection; a recv of 0
//! (peer closed) or an error closes it too. A connection's fd is closed only
//! when its chain has ended, so no completion can arrive for a reused fd,
//! except a failed send's, which carries nothing the worker needs.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::conn::{Conn, Next};
use crate::date::Response;

/// Submission queue entries; the completion queue is twice as large.
const RING_ENTRIES: u32 = 4096;

/// After a failed accept (e.g. out of descriptors), wait this long before
/// accepting again, so the worker never spins.
const ACCEPT_RETRY_NS: u32 = 10_000_000;

// user_data: the operation in the high 32 bits, the fd in the low 32 bits.
const ACCEPT: u64 = 1 << 32;
const ACCEPT_RETRY: u64 = 2 << 32;
const RECV: u64 = 3 << 32;
const SEND: u64 = 4 << 32;
const KIND_MASK: u64 = !0 << 32;

fn token(kind: u64, fd: RawFd) -> u64 {
    kind | u64::from(fd as u32)
}

/// The submission side of the ring for one turn: entries pushed here go out
/// with the turn's `io_uring_enter`; only a full queue costs an extra one.
struct Queue<'a> {
    submitter: io_uring::Submitter<'a>,
    sq: io_uring::SubmissionQueue<'a>,
}

impl Queue<'_> {
    /// Queues `entry`, whose buffers stay valid until its completion.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built in this file points at memory that
            // outlives the operation: a connection's boxed buffers (freed only
            // once its chain has completed) or the worker's retry timespec.
            if unsafe { self.sq.push(entry) }.is_ok() {
                return Ok(());
            }
            self.sq.sync();
            self.submitter.submit()?;
            self.sq.sync();
        }
    }
}

/// The worker's connections, indexed by fd.
struct Conns(Vec<Option<Box<Conn>>>);

impl Conns {
    fn get(&mut self, fd: RawFd) -> Option<&mut Conn> {
        self.0.get_mut(fd as usize).and_then(|c| c.as_deref_mut())
    }

    fn insert(&mut self, fd: RawFd) -> &mut Conn {
        let i = fd as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        self.0[i].insert(Box::new(Conn::new()))
    }

    fn close(&mut self, fd: RawFd) {
        if let Some(slot) = self.0.get_mut(fd as usize) {
            if slot.take().is_some() {
                // SAFETY: `fd` was returned by accept, is owned by this
                // worker, and has no operation in flight (its chain ended).
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn accept(listener: RawFd) -> squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(token(ACCEPT, listener))
}

fn recv(fd: RawFd, conn: &mut Conn) -> squeue::Entry {
    let (ptr, len) = conn.recv_target();
    opcode::Recv::new(types::Fd(fd), ptr, len)
        .build()
        .user_data(token(RECV, fd))
}

fn send_linked(fd: RawFd, conn: &Conn) -> squeue::Entry {
    let (ptr, len) = conn.output();
    opcode::Send::new(types::Fd(fd), ptr, len)
        .flags(libc::MSG_WAITALL | libc::MSG_NOSIGNAL)
        .build()
        .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
        .user_data(token(SEND, fd))
}

/// The worker's ring; fails on kernels older than 6.1 (DEFER_TASKRUN).
pub fn ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(entries * 2)
        .build(entries)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("io_uring with SINGLE_ISSUER | DEFER_TASKRUN (Linux >= 6.1): {e}"),
            )
        })
}

/// Serves `listener` until an unrecoverable ring error.
pub fn run(listener: TcpListener, body: &[u8]) -> io::Result<()> {
    let mut ring = ring(RING_ENTRIES)?;
    let mut response = Response::new(body);
    let mut conns = Conns(Vec::new());
    let listen_fd = listener.as_raw_fd();
    let retry = types::Timespec::new().nsec(ACCEPT_RETRY_NS);
    let retry_entry = opcode::Timeout::new(&retry).build().user_data(ACCEPT_RETRY);
    // SAFETY: the accept entry refers to the listener, open for the whole run.
    unsafe { ring.submission().push(&accept(listen_fd)) }
        .map_err(|_| io::Error::other("fresh submission queue full"))?;
    loop {
        let (submitter, sq, mut cq) = ring.split();
        let mut queue = Queue { submitter, sq };
        queue.sq.sync();
        match queue.submitter.submit_and_wait(1) {
            Ok(_) => {}
            // A signal, or completions waiting for room in the CQ: handle
            // what is there and enter again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        queue.sq.sync();
        cq.sync();
        response.refresh();
        for cqe in &mut cq {
            let fd = (cqe.user_data() & !KIND_MASK) as u32 as RawFd;
            let result = cqe.result();
            match cqe.user_data() & KIND_MASK {
                ACCEPT => {
                    if result >= 0 {
                        let conn = conns.insert(result);
                        queue.push(&recv(result, conn))?;
                    }
                    if !cqueue::more(cqe.flags()) {
                        // The multishot accept ended: re-arm it, after a pause
                        // if it ended on an error (EMFILE and the like).
                        if result >= 0 {
                            queue.push(&accept(listen_fd))?;
                        } else {
                            queue.push(&retry_entry)?;
                        }
                    }
                }
                ACCEPT_RETRY => queue.push(&accept(listen_fd))?,
                RECV => {
                    let Some(conn) = conns.get(fd) else { continue };
                    // 0: the peer closed; < 0: an error, or -ECANCELED after
                    // the linked send failed.
                    let next = match usize::try_from(result) {
                        Ok(n) if n > 0 => conn.answer(n, response.bytes()),
                        _ => Next::Close,
                    };
                    match next {
                        Next::SendThenRecv => {
                            queue.push(&send_linked(fd, conn))?;
                            queue.push(&recv(fd, conn))?;
                        }
                        Next::Recv => queue.push(&recv(fd, conn))?,
                        Next::Close => conns.close(fd),
                    }
                }
                // Only a failed send completes (SKIP_SUCCESS); its linked
                // recv completes with -ECANCELED and closes the connection.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    const GET: &[u8] = b"GET /api/data/client-1 HTTP/1.1\r\nHost: x\r\n\r\n";

    /// A worker on its own thread and ring, on an ephemeral port. The thread
    /// serves until the test process ends.
    fn start() -> SocketAddr {
        let listener = crate::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 64).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        std::thread::spawn(move || super::run(listener, b"{}"));
        addr
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
    }

    /// Reads until `count` whole responses arrived (each ends with the body).
    fn read_responses(stream: &mut TcpStream, count: usize) -> usize {
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        while seen.windows(6).filter(|w| w == b"\r\n\r\n{}").count() < count {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        seen.windows(6).filter(|w| w == b"\r\n\r\n{}").count()
    }

    /// Through the ring: 100 pipelined requests in one write get 100
    /// responses; the connection stays open for more; a request in two
    /// writes gets one; garbage is closed (read returns 0, no hang).
    #[test]
    fn serves_pipelined_and_split_requests_and_closes_on_garbage() {
        if let Err(e) = super::ring(8) {
            // The floor needs Linux >= 6.1; percore itself runs on older kernels.
            eprintln!("skipped: this kernel cannot set up the floor's ring: {e}");
            return;
        }
        let addr = start();
        let mut a = connect(addr);
        a.write_all(&GET.repeat(100)).expect("write");
        assert_eq!(read_responses(&mut a, 100), 100);
        a.write_all(GET).expect("write");
        assert_eq!(read_responses(&mut a, 1), 1);

        let mut b = connect(addr);
        b.write_all(&GET[..9]).expect("write");
        std::thread::sleep(Duration::from_millis(20));
        b.write_all(&GET[9..]).expect("write");
        assert_eq!(read_responses(&mut b, 1), 1);

        let mut c = connect(addr);
        c.write_all(b"\x00garbage\r\n\r\n").expect("write");
        let mut byte = [0u8; 1];
        assert_eq!(c.read(&mut byte).expect("closed, not timed out"), 0);
    }
}
