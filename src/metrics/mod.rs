//! What the server knows about itself: each shard's counters and latency
//! histogram, their merge over all shards, the `/proc/self` figures, and the
//! two renderings of it all (`/api/metrics` JSON, `/metrics` Prometheus text).
//! The shards only count; merging and rendering run on the control executor.

pub(crate) mod machine_cpu;
pub(crate) mod process;
mod procfs;
pub(crate) mod prometheus;
pub(crate) mod report;
pub mod stats;
