//! A shard and its request path: everything that runs on one pinned core.
//!
//! `run.rs` starts a shard and `state.rs` holds the `Shard` its tasks share;
//! `acceptor.rs` admits connections, `conn.rs` reads requests and writes
//! responses, `handler.rs` answers one request through `routes.rs`,
//! `cache/`, `payload.rs` and `dashboard.rs` (a static page);
//! `registry.rs` tracks open connections for timeouts and the drain,
//! `drain.rs` empties them on shutdown and `death.rs` cuts them if the shard
//! panics (and hands the connections still queued to its successor). Only `cache`, `payload` and `routes` are public, for the benches
//! (and `routes` for the load generator's request count check).

pub(crate) mod acceptor;
pub mod cache;
pub(crate) mod conn;
pub(crate) mod dashboard;
pub(crate) mod death;
pub(crate) mod drain;
pub(crate) mod handler;
pub mod payload;
pub(crate) mod registry;
pub mod routes;
pub(crate) mod run;
pub(crate) mod state;
