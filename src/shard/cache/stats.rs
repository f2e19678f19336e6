//! The cache's counters, apart from the cache: the metrics code that merges
//! and renders them (`metrics/stats.rs`, `report.rs`, `prometheus.rs`) reads
//! this plain value and nothing of the cache's storage.

/// Counters a shard reports in its metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries currently stored (fresh, or expired but not yet looked up).
    pub entries: u64,
    /// Lookups that returned a fresh body.
    pub hits: u64,
    /// Lookups that found no fresh body (absent or expired).
    pub misses: u64,
    /// Least recently used entries dropped to make room for a new key.
    pub evictions: u64,
    /// Expired entries found and removed by a lookup.
    pub expirations: u64,
}
