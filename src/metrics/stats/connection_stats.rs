//! Connection counters, as a shard reports them and as they are summed.

use serde::Serialize;

/// Connection counters of one shard (or, merged, of the server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Connections open now.
    pub active: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections closed since start.
    pub closed: u64,
    /// Connections refused with 503 because the connection cap was reached.
    pub rejected: u64,
}

impl ConnectionStats {
    /// Adds `other`'s counters to these (merging shards).
    pub(super) fn add(&mut self, other: &ConnectionStats) {
        self.active += other.active;
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.rejected += other.rejected;
    }
}
