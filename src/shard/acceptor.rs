//! A shard's accept loop: waits until its listening socket has connections
//! queued, takes them with non-blocking `accept4`, admits each up to the
//! shard's cap, backs off when the process is out of file descriptors, and
//! on drain takes every connection already queued before it closes the
//! socket.
//!
//! No accept is ever in flight in io_uring: the loop waits for the socket
//! to poll readable and accepts itself. An accept left in the ring would
//! take a connection whether or not the shard ever looks at it again: a
//! shard that panics would leave it with nobody to answer it (see
//! [`crate::shard::death`]), and a draining shard would have to wait for it.
//! `accept4` also costs one system call where glommio's accept costs four
//! (it toggles `O_NONBLOCK` around each call) before falling back to the ring.
//!
//! Closing a listening socket resets the connections still in its accept
//! queue (unless `net.ipv4.tcp_migrate_req=1` moves them to another socket of
//! the `SO_REUSEPORT` group). So a draining shard first accepts what is
//! queued, then closes the socket at once.

use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::{TcpListener, TcpStream};

use crate::shard::state::Shard;

/// Longest pause between accept retries when the process is out of file
/// descriptors (EMFILE/ENFILE): backing off instead of spinning on a core.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// First pause after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
/// Connections accepted in one go before the other tasks of the shard get
/// their turn (a burst of thousands would otherwise hold the core).
const ACCEPT_BATCH: usize = 64;

/// Starts serving an accepted connection, or refuses it over the cap.
pub fn admit(shard: &Rc<Shard>, stream: TcpStream) {
    use std::os::fd::AsRawFd;
    if shard.conns.borrow().len() >= shard.max_connections {
        shard.stats.connection_rejected();
        glommio::spawn_local(crate::shard::conn::reject(shard.clone(), stream)).detach();
        return;
    }
    shard.stats.connection_opened();
    let slot = shard.conns.borrow_mut().insert(stream.as_raw_fd());
    glommio::spawn_local(crate::shard::conn::serve(shard.clone(), stream, slot)).detach();
}

/// What one call of [`accept_queued`] found.
enum Batch {
    /// The queue is empty: wait until the socket polls readable.
    Empty,
    /// `limit` connections taken; more may be queued.
    Full,
    /// An error that persists until something changes (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM, or a broken socket): back off.
    Failed(std::io::Error),
}

/// Accepts until `drain` fires, then empties the accept queue and closes
/// the listener. `listen_fd` is `listener`'s fd (non-blocking).
pub async fn run(
    shard: &Rc<Shard>,
    listener: TcpListener,
    listen_fd: RawFd,
    drain: &LocalReceiver<()>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_error_log: Option<Instant> = None;
    loop {
        let failed = match accept_queued(shard, listen_fd, ACCEPT_BATCH) {
            Batch::Empty => until_drain(drain, listener.readable())
                .await
                .map(|polled| polled.map_err(std::io::Error::from)),
            Batch::Full => until_drain(drain, future::yield_now()).await.map(Ok),
            Batch::Failed(err) => Some(Err(err)),
        };
        let err = match failed {
            None => break, // drain
            Some(Ok(())) => {
                backoff = BACKOFF_MIN;
                continue;
            }
            Some(Err(err)) => err,
        };
        // EMFILE/ENFILE and the like persist until fds are freed: retrying
        // at once would spin the core.
        let now = Instant::now();
        if last_error_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            tracing::warn!(shard = shard.id, error = %err,
                backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
            last_error_log = Some(now);
        }
        if until_drain(drain, glommio::timer::sleep(backoff))
            .await
            .is_none()
        {
            break;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    accept_queued(shard, listen_fd, usize::MAX);
    crate::shard::death::listener_closed();
    drop(listener);
}

/// `work`'s output, or `None` once `drain` fires first.
async fn until_drain<T>(
    drain: &LocalReceiver<()>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        drain.recv().await;
        None
    })
    .await
}

/// Accepts, without waiting, up to `limit` connections queued on the
/// listener, and admits each.
fn accept_queued(shard: &Rc<Shard>, listen_fd: RawFd, limit: usize) -> Batch {
    let mut taken = 0;
    while taken < limit {
        let fd = match crate::os::listener::accept_queued(listen_fd) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Batch::Empty,
            Err(err) => return Batch::Failed(err),
        };
        // SAFETY: an accepted TCP socket, now owned by the stream.
        let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
        admit(shard, stream);
        taken += 1;
    }
    Batch::Full
}
