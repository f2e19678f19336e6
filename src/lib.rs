//! percore: a thread-per-core HTTP/1.1 JSON server on glommio (io_uring).
//!
//! One pinned executor per core ("shard") accepts on its own `SO_REUSEPORT`
//! listener, parses HTTP/1.1 with httparse and answers from a shard-local cache.
//! A separate control executor starts the shards, merges their figures for the
//! metrics endpoints and orders the drain on shutdown. Nothing on the request
//! path is shared between shards.
//!
//! # Layout
//!
//! Folders by role. Imports between files run one way (no cycle): `server`
//! → `control` → `shard/run.rs` → acceptor → conn → handler → `Shard`.
//!
//! ```text
//! server.rs        start and stop the whole server; the handle main holds
//! control/         the control executor (not a shard, serves no connection)
//!   run.rs         metrics rounds over all shards, the drain order
//!   supervisor.rs  starts each shard's pinned executor, restarts dead ones
//!   messages.rs    what control and shards send each other (a leaf)
//! shard/           one pinned core: the request path
//!   run.rs         builds the Shard, starts its side tasks, accept, drain
//!   state.rs       Shard: the state every file below reads (a leaf)
//!   acceptor.rs    accept loop, connection cap, EMFILE back-off
//!   conn.rs        one connection: read, answer what is buffered, write once
//!   handler.rs     admission control and the endpoints
//!   routes.rs      method + path -> endpoint
//!   cache/         LRU + TTL cache of serialized bodies (stats.rs: its
//!                  counters, a leaf metrics reads)
//!   payload.rs     the seed's /api/data body, written into the cache entry
//!   dashboard.rs   GET /dashboard: a static page that polls /api/metrics
//!   registry.rs    open connections: idle/headers timeouts, drain, cut
//!   drain.rs       graceful drain of a shard's connections
//!   death.rs       a panicking shard's last acts: takes its queued connections
//!                  for its successor, shuts its sockets
//! http/            the protocol without I/O (RFC 9112)
//!   request/       head parsing and checks      body.rs   body framing
//!   chunked.rs     the chunked coding's grammar  syntax.rs byte classes
//!   reader.rs      a connection's read side without its socket: where
//!                  each request starts and ends
//!   version.rs     an HTTP-version httparse refused: 400, 505 or 1.1
//!   response.rs    status lines and head encoding
//! metrics/         stats.rs (per-shard counters, merge), report.rs
//!                  (/api/metrics JSON), prometheus.rs (/metrics),
//!                  process.rs (/proc figures), procfs.rs (/proc read
//!                  without allocating)
//! os/              listener.rs (SO_REUSEPORT sockets), limits.rs (nofile,
//!                  memlock), executor.rs (start an executor thread),
//!                  memory.rs (freed heap back to the kernel)
//! config.rs        every setting: flag, environment, default
//! clock.rs         cached time and Date header
//! healthcheck.rs   `percore healthcheck`, for container HEALTHCHECKs
//! fuzz.rs          fuzz targets of the request path and their invariants
//! load/            the load generator `percore-load` (its own mod.rs)
//! ```
//!
//! Public: what the binaries, benches and tests use (`server`, `config`,
//! `healthcheck`, `load`, and the hot-path pieces the benches time); the rest
//! is `pub(crate)`.
//!
//! # A request's path
//!
//! Start-up, once: `main` → [`server::start`] (`server.rs`) binds one socket
//! per shard (`os/listener.rs`, `bind_shards`) and starts the control executor
//! (`os/executor.rs`, `spawn_executor`), whose `control::run::run`
//! (`control/run.rs`) starts every shard through `Supervisor::start`
//! (`control/supervisor.rs`): a pinned executor running `shard::run::run`
//! (`shard/run.rs`), which builds the `Shard` (`shard/state.rs`).
//!
//! Then, for each connection and request, all on one shard's thread:
//!
//! 1. `shard/acceptor.rs`, `run`: accepts; `admit` counts the connection
//!    against the cap and spawns its task (or `conn::reject`: 503).
//! 2. `shard/conn.rs`, `serve` → `answer_buffered`: reads into the
//!    connection's reused buffer (`http/reader.rs`, `RequestReader`) and
//!    answers every complete request in it.
//! 3. `http/request/`, `parse_head`: the head, parsed and checked (RFC 9112);
//!    a body is framed by `http/body.rs` (`BodySkipper`; chunked by
//!    `http/chunked.rs`) and discarded.
//! 4. `shard/handler.rs`, `respond`: admission (in-flight cap, 503), then
//!    `shard/routes.rs`, `route`: method and path to an endpoint.
//! 5. `handler.rs`, `data`: `shard/cache/`, `Cache::get`; on a miss
//!    `Cache::insert` and `shard/payload.rs`, `write_body`, serialize the body
//!    into the cache entry's reused buffer.
//! 6. `http/response.rs`, `Response::write`: the head and body appended to
//!    the output buffer.
//! 7. Back in `conn.rs`: `metrics/stats.rs`, `ShardStats::record_response`,
//!    counts it by status and by route class (`routes.rs`,
//!    `RouteClass::of_path`); one write sends every response of the batch.
//!
//! `/api/metrics` and `/metrics` leave the shard: `Shard::metrics` asks the
//! control executor, which gathers every shard's snapshot, merges them
//! (`metrics/stats.rs`) and renders (`metrics/report.rs`,
//! `metrics/prometheus.rs`).

pub mod clock;
pub mod config;
pub(crate) mod control;
pub mod fuzz;
pub mod healthcheck;
pub mod http;
pub mod load;
pub mod metrics;
pub(crate) mod os;
pub mod server;
pub mod shard;
