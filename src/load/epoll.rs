//! A minimal safe wrapper over epoll and non-blocking socket I/O for
//! `epoll_loop/`: an owned epoll instance whose events carry a `u64`
//! token, and `send`/`recv` on a raw socket that report "would block" as
//! `None` instead of an error.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Interest in reading, writing or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// `EPOLLIN` (level-triggered).
    Read,
    /// `EPOLLIN | EPOLLOUT` (level-triggered).
    ReadWrite,
}

impl Interest {
    fn bits(self) -> u32 {
        match self {
            Interest::Read => libc::EPOLLIN as u32,
            Interest::ReadWrite => (libc::EPOLLIN | libc::EPOLLOUT) as u32,
        }
    }
}

/// One ready socket.
pub type Event = libc::epoll_event;

/// An empty event buffer of `len` entries for [`Epoll::wait`].
pub fn events(len: usize) -> Vec<Event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; len]
}

/// The token and the error flag (`EPOLLERR`) of an event.
pub fn token_and_error(event: &Event) -> (u64, bool) {
    (event.u64, event.events & (libc::EPOLLERR as u32) != 0)
}

/// An epoll instance, closed on drop.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd`; its events carry `token`. A socket leaves the set when
    /// it is closed.
    pub fn add(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest, token)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest, token)
    }

    fn ctl(&self, op: i32, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for events; returns how many of `events`
    /// were filled (0 on timeout or interruption).
    pub fn wait(&self, events: &mut [Event], timeout_ms: i32) -> usize {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is valid for `max` entries during the call.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
        n.max(0) as usize
    }
}

/// Sends from `buf`: `Some(Ok(n))`, `Some(Err(_))` on a failed or closed
/// connection (never a SIGPIPE), or `None` when the socket buffer is full.
pub fn send(fd: RawFd, buf: &[u8]) -> Option<io::Result<usize>> {
    // SAFETY: `buf` is valid for reads of its length.
    retrying(|| unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

/// Receives into `buf`: `Some(Ok(0))` at end of stream, `Some(Err(_))` on a
/// failed connection, or `None` when nothing is there yet.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
    // SAFETY: `buf` is valid for writes of its length.
    retrying(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// Runs a byte-count syscall again while it is interrupted; "would block"
/// becomes `None`.
fn retrying(mut call: impl FnMut() -> isize) -> Option<io::Result<usize>> {
    loop {
        let n = call();
        if n >= 0 {
            return Some(Ok(n as usize));
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => continue,
            e if e.kind() == io::ErrorKind::WouldBlock => return None,
            e => return Some(Err(e)),
        }
    }
}
