//! The last acts of a shard thread that panics.
//!
//! A panic unwinds the shard's executor thread, but glommio leaks the
//! executor's tasks rather than dropping them: the shard's listening socket
//! and its connections would stay open with nobody serving them. The task
//! that panicked, though, *is* dropped at once, so its client sees the close
//! while the thread is still unwinding; and until the listening socket
//! leaves the `SO_REUSEPORT` group, the kernel keeps queueing new
//! connections on it.
//!
//! So each shard thread keeps a guard in a thread-local, and a panic hook
//! ([`install_panic_hook`]) acts on it before anything unwinds:
//! 1. it accepts every connection queued on the listening socket (each
//!    one's request is still unread in its socket);
//! 2. it shuts the listening socket down, which takes it out of the group:
//!    new connections go to the other shards, or to the replacement;
//! 3. it shuts down every connection of the shard (clients see the close at
//!    once; what they sent was never answered, so they know to retry).
//!
//! As the thread exits, the guard's destructor writes the queued
//! connections' fds to a socket pair and drops its end, which tells the
//! supervisor the thread is gone; the supervisor hands those connections to
//! the shard's replacement, which serves them as if it had accepted them
//! ([`read_orphans`]). No connection can be stuck in between: the shard
//! never leaves an accept in flight in io_uring (see
//! [`crate::shard::acceptor`]), so every connection is either queued on the
//! socket, or was accepted by the shard itself and is cut in step 3.
//!
//! A panic that something catches would leave a live shard without its
//! listening socket; nothing on a shard thread catches panics (glommio
//! catches them only around a waker's `wake`).

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Weak;
use std::sync::Once;

use crate::shard::state::Shard;

/// Bytes of one fd as the guard writes it.
const FD_BYTES: usize = std::mem::size_of::<RawFd>();

struct Guard {
    shard: Weak<Shard>,
    /// The listening socket's fd while it is open; -1 once closed.
    listen_fd: RawFd,
    /// Set when the shard finished normally: nothing to clean up.
    clean: bool,
    /// Set once the panic hook (or the destructor) cleaned up.
    abandoned: bool,
    /// Connections taken from the listening socket's queue after the panic.
    orphans: Vec<RawFd>,
    /// Dropped last: its peer reads the orphans, then end-of-file.
    notice: UnixStream,
}

impl Guard {
    /// Steps 1–3 of the module doc, once.
    fn abandon(&mut self) {
        if self.clean || self.abandoned {
            return;
        }
        self.abandoned = true;
        if self.listen_fd >= 0 {
            accept_queued(self.listen_fd, &mut self.orphans);
            // SAFETY: the fd is the shard's listening socket, still open
            // (`listener_closed` resets it before the socket is closed).
            unsafe { libc::shutdown(self.listen_fd, libc::SHUT_RDWR) };
        }
        if let Some(shard) = self.shard.upgrade() {
            if let Ok(conns) = shard.conns.try_borrow() {
                conns.cut_all();
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.abandon();
        let bytes: Vec<u8> = self
            .orphans
            .iter()
            .flat_map(|fd| fd.to_ne_bytes())
            .collect();
        let mut written = 0;
        while written < bytes.len() {
            match self.notice.write(&bytes[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // The supervisor takes only the fds it read whole; the others would
        // stay open and unanswered, so close them.
        for &fd in &self.orphans[written / FD_BYTES..] {
            // SAFETY: accepted by `accept_queued` and given to nobody.
            unsafe { libc::close(fd) };
        }
    }
}

/// Accepts, without waiting, every connection queued on `listen_fd` (up to
/// the first error: nothing more can be taken then).
fn accept_queued(listen_fd: RawFd, into: &mut Vec<RawFd>) {
    while let Ok(Some(fd)) = crate::os::listener::accept_queued(listen_fd) {
        into.push(fd.into_raw_fd());
    }
}

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// Makes every panic first clean up after its shard, if it happened on a
/// shard thread (see the module doc), then report as before. Idempotent.
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = GUARD.try_with(|g| {
                if let Ok(mut g) = g.try_borrow_mut() {
                    if let Some(guard) = g.as_mut() {
                        guard.abandon();
                    }
                }
            });
            report(info);
        }));
    });
}

/// Arms the guard of this shard thread. `notice` is the shard's end of the
/// socket pair whose other end the supervisor watches.
pub fn arm(shard: Weak<Shard>, listen_fd: RawFd, notice: UnixStream) {
    GUARD.with(|g| {
        *g.borrow_mut() = Some(Guard {
            shard,
            listen_fd,
            clean: false,
            abandoned: false,
            orphans: Vec::new(),
            notice,
        })
    });
}

/// The listening socket is about to be closed: forget its fd, which the
/// kernel may hand to another socket afterwards.
pub fn listener_closed() {
    GUARD.with(|g| {
        if let Some(guard) = g.borrow_mut().as_mut() {
            guard.listen_fd = -1;
        }
    });
}

/// The shard finished normally: its sockets are already closed.
pub fn disarm() {
    GUARD.with(|g| {
        if let Some(guard) = g.borrow_mut().as_mut() {
            guard.clean = true;
        }
    });
}

/// The connections a dead shard left, from what its guard wrote to the
/// supervisor's end of the socket pair (everything read up to end-of-file).
pub fn read_orphans(bytes: &[u8]) -> Vec<OwnedFd> {
    bytes
        .chunks_exact(FD_BYTES)
        .filter_map(|b| b.try_into().ok().map(RawFd::from_ne_bytes))
        .filter(|&fd| fd >= 0)
        // SAFETY: each fd was accepted by the dead shard's guard, which gave
        // up ownership by writing it; it is read exactly once, here.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}
