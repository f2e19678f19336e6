//! A shard's accept loop: admits connections up to the shard's cap, backs off
//! when the process is out of file descriptors, and on drain takes every
//! connection already queued before it closes the socket.
//!
//! Closing a listening socket resets the connections still in its accept
//! queue (unless `net.ipv4.tcp_migrate_req=1` moves them to another socket of
//! the `SO_REUSEPORT` group). So a draining shard first accepts what is
//! queued, then shuts the socket down, and lets its pending io_uring accept
//! finish rather than cancelling it: a cancelled accept that had already
//! completed would leave a connection nobody serves.

use std::os::fd::{FromRawFd, RawFd};
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
/// How long the pending accept may take to notice its socket was shut down.
const PENDING_ACCEPT_WAIT: Duration = Duration::from_millis(200);

/// Starts serving an accepted connection, or refuses it over the cap.
fn admit(shard: &Rc<Shard>, stream: TcpStream) {
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

/// Accepts until `drain` fires, then empties the accept queue and closes
/// the listener. `listen_fd` is `listener`'s fd.
pub async fn run(
    shard: &Rc<Shard>,
    listener: TcpListener,
    listen_fd: RawFd,
    drain: &LocalReceiver<()>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut last_error_log: Option<Instant> = None;
    let mut pending = Box::pin(listener.accept());
    loop {
        // The accept future is polled by reference: the drain must not
        // cancel it (see the module doc).
        let accepted = future::or(async { Some((&mut pending).await) }, async {
            drain.recv().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { break };
        pending = Box::pin(listener.accept());
        match accepted {
            Ok(stream) => {
                backoff = BACKOFF_MIN;
                admit(shard, stream);
            }
            Err(err) => {
                // EMFILE/ENFILE and the like persist until fds are freed:
                // retrying at once would spin the core.
                let now = Instant::now();
                if last_error_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                    tracing::warn!(shard = shard.id, error = %err,
                        backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    last_error_log = Some(now);
                }
                let slept = future::or(
                    async {
                        glommio::timer::sleep(backoff).await;
                        true
                    },
                    async {
                        drain.recv().await;
                        false
                    },
                )
                .await;
                if !slept {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    accept_queued(shard, listen_fd);
    // SAFETY: `listen_fd` is the listener's open socket (it is closed when
    // `listener` drops, below).
    unsafe { libc::shutdown(listen_fd, libc::SHUT_RD) };
    let last = future::or(async { Some(pending.await) }, async {
        glommio::timer::sleep(PENDING_ACCEPT_WAIT).await;
        None
    })
    .await;
    if let Some(Ok(stream)) = last {
        admit(shard, stream);
    }
    crate::shard::death::listener_closed();
    drop(listener);
}

/// Accepts, without waiting, every connection in the listener's queue.
fn accept_queued(shard: &Rc<Shard>, listen_fd: RawFd) {
    loop {
        // SAFETY: accept4 on a listening socket we own, with no address out-params.
        let fd = unsafe {
            libc::accept4(
                listen_fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return; // EAGAIN: the queue is empty (or an error: nothing more to take)
        }
        // SAFETY: `fd` was just returned by accept4 and is owned by nobody else.
        let stream = unsafe { TcpStream::from_raw_fd(fd) };
        admit(shard, stream);
    }
}
