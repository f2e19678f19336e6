//! What a `max` run asks of the epoll loop: the server, the connections and
//! their paths, the send window, the deadline and the threads. Built by the
//! scenario, cloned into every thread.

use std::sync::Arc;
use std::time::Duration;

use super::super::target::Target;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The server.
    pub target: Target,
    /// Connections, spread over the threads.
    pub connections: usize,
    /// Request paths; connection `i` starts at
    /// [`first_path`](super::super::pool::first_path) and cycles.
    pub paths: Arc<Vec<Vec<u8>>>,
    /// Requests are sent from `window_ns.0` until `window_ns.1` (ns since
    /// time zero); those in flight at the end are still awaited.
    pub window_ns: (u64, u64),
    /// Per-request deadline (connect, send and response).
    pub timeout: Duration,
    /// Threads, each with its own epoll loop.
    pub threads: usize,
    /// Timeline bucket width.
    pub bucket_ms: u64,
}
