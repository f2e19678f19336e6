//! The last act of a shard thread, however it ends.
//!
//! When a shard panics, the panic unwinds its executor thread, but glommio
//! leaks the executor's tasks rather than dropping them: the shard's
//! listening socket and its connections would stay open with nobody serving
//! them (new connections queued forever, clients hanging). So each shard
//! thread keeps a guard in a thread-local, whose destructor runs as the
//! thread exits — after a panic too. On an abnormal end it shuts down the
//! listening socket (the kernel stops routing connections to it) and every
//! connection of the shard (clients see the close at once). Either way it
//! then drops its end of a socket pair, which tells the supervisor the
//! thread is gone.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::rc::Weak;

use crate::shard::state::Shard;

struct Guard {
    shard: Weak<Shard>,
    /// The listening socket's fd while it is open; -1 once closed.
    listen_fd: RawFd,
    /// Set when the shard finished normally: nothing to clean up.
    clean: bool,
    /// Dropped last: its peer reads end-of-file.
    _notice: UnixStream,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.clean {
            return;
        }
        if self.listen_fd >= 0 {
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

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// Arms the guard of this shard thread. `notice` is the shard's end of the
/// socket pair whose other end the supervisor watches.
pub fn arm(shard: Weak<Shard>, listen_fd: RawFd, notice: UnixStream) {
    GUARD.with(|g| {
        *g.borrow_mut() = Some(Guard {
            shard,
            listen_fd,
            clean: false,
            _notice: notice,
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
