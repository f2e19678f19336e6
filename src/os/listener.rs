//! Listening sockets, one per shard, built by hand with socket2.
//!
//! glommio's `TcpListener::bind` hard-codes a backlog of 1024; a burst of
//! 10,000 connects overflows that, so each shard's socket is made here with
//! `SO_REUSEADDR`, `SO_REUSEPORT` and the configured backlog, then handed to
//! its executor as a raw fd. With `SO_REUSEPORT` the kernel spreads new
//! connections over the shards' accept queues: no shared accept lock.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Makes one non-blocking listening socket bound to `addr`.
pub fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Responses are written once per batch; Nagle would only delay them.
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Takes one connection from the queue of the non-blocking listening socket
/// `listen_fd`, as a non-blocking socket; `None` when the queue is empty.
/// Connections that went away while queued (and signals) are skipped; any
/// other error (EMFILE, ENFILE, ENOBUFS, a broken socket) is returned.
pub fn accept_queued(listen_fd: RawFd) -> io::Result<Option<OwnedFd>> {
    loop {
        // SAFETY: accept4 with no address out-params; the caller vouches that
        // `listen_fd` is an open listening socket.
        let fd = unsafe {
            libc::accept4(
                listen_fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: `fd` was just returned by accept4 and is owned by nobody else.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            Some(libc::ECONNABORTED | libc::EPROTO | libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// Binds `count` reuseport listeners on one address. With port 0 the first
/// socket picks a free port and the others join it, so every shard serves the
/// same port.
pub fn bind_shards(addr: SocketAddr, backlog: u32, count: usize) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let listener = bind_reuseport(addr, backlog)?;
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_is_shared_by_every_shard() {
        let ls = bind_shards("127.0.0.1:0".parse().unwrap(), 128, 3).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap().port(), port);
        }
    }
}
