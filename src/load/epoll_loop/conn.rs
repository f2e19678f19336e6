//! One connection of an epoll loop: its socket, where it is in its request,
//! and what a retry or a stale event needs to know. The worker owns a slice
//! of these and drives them; nothing here does I/O.

use socket2::Socket;

use super::super::response_reader::ResponseReader;

/// Where a connection is in its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
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
pub(super) struct Conn {
    pub(super) socket: Option<Socket>,
    /// Bumped for every new socket, so that a stale event for a closed one
    /// (same fd number, same `epoll_wait` batch) is ignored.
    pub(super) generation: u32,
    pub(super) state: State,
    /// Whether `EPOLLOUT` is registered.
    pub(super) wants_out: bool,
    pub(super) path: usize,
    pub(super) sent_ns: u64,
    pub(super) deadline_ns: u64,
    /// Bytes of the request already sent.
    pub(super) written: usize,
    pub(super) response: ResponseReader,
    /// The socket already carried a complete exchange (a close before the
    /// response is then a keep-alive race, worth one retry).
    pub(super) reused: bool,
    /// This request was already retried once.
    pub(super) retried: bool,
    /// Sockets opened by this connection so far.
    pub(super) connects: u64,
}

impl Conn {
    /// The epoll token of the current socket: index and generation.
    pub(super) fn token(&self, index: usize) -> u64 {
        ((index as u64) << 32) | u64::from(self.generation)
    }
}
