//! percore: a thread-per-core HTTP/1.1 JSON server on glommio (io_uring).
//!
//! One pinned executor per core ("shard") accepts on its own `SO_REUSEPORT`
//! listener, parses HTTP/1.1 with httparse and answers from a shard-local cache.
//! A separate control executor merges the shards' figures for the metrics
//! endpoints and orders the drain on shutdown. Nothing on the request path is
//! shared between shards.

pub mod clock;
pub mod config;
pub mod control;
pub mod healthcheck;
pub mod http;
pub mod load;
pub mod metrics;
pub mod os;
pub mod server;
pub mod shard;
