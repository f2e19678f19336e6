//! The messages between the control executor and the shards, and the
//! events the control loop reacts to. A leaf: both sides import it; it
//! imports neither side's code, only the types the messages carry.

use crate::metrics::stats::ShardSnapshot;
use crate::shard::routes::MetricsFormat;

/// Messages from a shard to the control executor.
pub enum ToControl {
    /// A request on `shard_id` wants a report in `format`.
    Metrics {
        /// The shard asking.
        shard_id: usize,
        /// Report format.
        format: MetricsFormat,
    },
    /// The shard's figures, answering [`ToShard::Snapshot`].
    Snapshot(Box<ShardSnapshot>),
}

/// Messages from the control executor to a shard.
pub enum ToShard {
    /// Send your figures.
    Snapshot,
    /// The report for the oldest metrics request waiting on this shard.
    MetricsBody(Vec<u8>),
    /// Stop accepting and drain.
    Drain,
    /// A cleared latency histogram for the shard's next snapshot to swap in
    /// (see [`crate::metrics::stats`]).
    SpareHistogram(Box<hdrhistogram::Histogram<u64>>),
}

/// Capacity of each channel between the control executor and a shard.
pub const CHANNEL_CAPACITY: usize = 1024;

/// What the control loop reacts to.
pub enum Event {
    /// A message from incarnation `.1` of shard `.0`.
    FromShard(usize, u64, ToControl),
    /// Incarnation `.1` of shard `.0` ended (drained or died), leaving the
    /// connections `.2` it had queued but not served (see [`crate::shard::death`]).
    ShardGone(usize, u64, Vec<std::os::fd::OwnedFd>),
    /// SIGTERM/SIGINT (or [`crate::server::ServerHandle::shutdown`]).
    Stop,
}
