//! A shard's own figures, and the snapshots the control executor merges.
//!
//! Counters are plain `Cell`s: a shard is one thread, so counting costs an
//! add, with no atomics and no cache lines shared between cores. The control
//! executor asks each shard for a [`ShardSnapshot`] and merges them: counters
//! summed, histograms added, never percentiles averaged.
//!
//! A latency histogram is ~190 KiB of counts; copying it would stall the
//! shard for tens of microseconds per metrics request. Instead the shard
//! *swaps* its live histogram for a cleared spare (a pointer swap) and sends
//! the filled one, holding only the samples since the last snapshot. The
//! control executor adds it to the shard's running total, clears it and sends
//! it back as the next spare: the copying and clearing happen off the shard.
//!
//! By file: `shard_stats.rs` holds a shard's live counters (`ShardStats`),
//! `snapshot.rs` the copy it sends (`ShardSnapshot`), `merged.rs` the
//! server's merge of all of them (`Merged`), `connection_stats.rs` the
//! connection counters both carry, and `histogram.rs` the latency
//! histogram's bounds.

mod connection_stats;
mod histogram;
mod merged;
mod shard_stats;
mod snapshot;

pub use connection_stats::ConnectionStats;
pub use histogram::{new_latency_histogram, LATENCY_MAX_US, LATENCY_SIGFIG};
pub use merged::{hit_rate, Merged};
pub use shard_stats::ShardStats;
pub use snapshot::ShardSnapshot;
