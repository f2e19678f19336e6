//! A shard and its request path: everything that runs on one pinned core.
//!
//! [`run`] starts a shard and [`state::Shard`] is what its tasks share;
//! [`acceptor`] admits connections, [`conn`] reads requests and writes
//! responses, [`handler`] answers one request through [`routes`],
//! [`cache`] and [`payload`]; [`registry`] tracks open connections for
//! timeouts and the drain, [`drain`] empties them on shutdown and [`death`]
//! cuts them if the shard panics.

pub mod acceptor;
pub mod cache;
pub mod conn;
pub mod death;
pub mod drain;
pub mod handler;
pub mod payload;
pub mod registry;
pub mod routes;
pub mod run;
pub mod state;
