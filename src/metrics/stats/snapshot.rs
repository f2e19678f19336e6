//! What one shard reports, copied at one instant.

use hdrhistogram::Histogram;

use super::connection_stats::ConnectionStats;
use crate::http::response::Status;
use crate::shard::cache::CacheStats;
use crate::shard::routes::RouteClass;

/// Everything one shard reports, copied at one instant.
#[derive(Clone, Debug)]
pub struct ShardSnapshot {
    /// Which shard.
    pub shard_id: usize,
    /// The core it is pinned to.
    pub core: usize,
    /// Responses by status, indexed by [`Status::index`].
    pub requests_by_status: [u64; Status::ALL.len()],
    /// Responses by the class of the request's path, indexed by
    /// [`RouteClass::index`]; they add up to the responses by status.
    pub requests_by_route: [u64; RouteClass::ALL.len()],
    /// Connection counters.
    pub connections: ConnectionStats,
    /// Requests in flight.
    pub active_requests: u64,
    /// Its cache's counters.
    pub cache: CacheStats,
    /// Server-side latency, µs: as sent by the shard, the samples since its
    /// previous snapshot; once the control executor has added them to its
    /// running total, every sample since the shard started.
    pub latency_us: Histogram<u64>,
    /// Times this shard was restarted after a panic.
    pub restarts: u64,
    /// Times a connection's multishot receive found no free provided buffer
    /// (`ENOBUFS`) and fell back to a poll: a sign `IO_URING_RECV_BUFFERS` is
    /// too small for the load. Set by the shard when it takes the snapshot.
    pub recv_buffers_exhausted: u64,
    /// Provided receive buffers holding data not read yet (0 at rest). Set
    /// by the shard when it takes the snapshot.
    pub recv_buffers_held: u64,
    /// Ring sends (`IO_URING_RING_SEND`) that did not go out whole: the
    /// client's socket buffer was full, and the rest was written with a poll
    /// and `send`. A count of slow readers, not an error. Set by the shard
    /// when it takes the snapshot.
    pub ring_sends_short: u64,
}

impl ShardSnapshot {
    /// Responses of every status.
    pub fn requests_total(&self) -> u64 {
        self.requests_by_status.iter().sum()
    }
}
