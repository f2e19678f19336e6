//! Lifecycle under faults, one module per kind:
//! - `drain`: zero-loss drain under keep-alive load, a zero-downtime restart
//!   on the same port;
//! - `shards`: a shard that panics (restarted, its queued connections handed
//!   to its successor, the restart budget) or hangs (the drain's timeout);
//! - `limits`: running out of file descriptors, the connection cap.
//!
//! `load` holds the looping keep-alive clients the drain tests run.
//! The shard tests need the test-only `fault-injection` feature:
//! `cargo test --release --features fault-injection --test faults`.

mod common;

#[path = "faults/load.rs"]
mod load;

#[path = "faults/drain.rs"]
mod drain;

#[cfg(feature = "fault-injection")]
#[path = "faults/shards.rs"]
mod shards;

#[path = "faults/limits.rs"]
mod limits;
