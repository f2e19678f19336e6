//! Samples the server's own figures once per second while a run goes: from
//! percore's `/api/metrics` (CPU seconds, RSS, open fds, context switches,
//! cache hits and misses, `requests.total` and `requests.byRoute`) or from
//! `/proc/<pid>`.
//!
//! It runs on a plain thread with a blocking keep-alive connection, apart
//! from the load executors. A run checks that its own request count agrees
//! with the server's for the route class its load requests
//! (`requests.byRoute.data`, or `.health` for `health`): health probes,
//! metrics scrapes and this sampler's own calls land in other classes, so
//! they cannot disturb it. Against a server without `byRoute`, the check
//! falls back to `requests.total` minus this sampler's own calls, which any
//! other client's requests do disturb.
//!
//! CPU is reported both ways: `cpu_pct` is CPU seconds used per wall second
//! × 100, so 100 % is one core busy and two busy cores read 200 % — what
//! `docker stats` shows (`cpu_delta / system_delta × online_cpus × 100`);
//! `cpu_pct_of_cores` divides that by the server's cores (`--server-cores`,
//! else the `workers` the server reports), so 100 % is all of them busy.
//!
//! The server's cumulative latency histogram (`latency.histogramUs`) is kept
//! only at the marks a scenario asks for (its part boundaries), not every
//! second: an hour of readings would otherwise hold an hour of histograms.
//!
//! By file: `sampled.rs` holds the readings and the figures derived from
//! them (CPU, cache hit rate, the server's request count); `thread.rs` the
//! sampling thread (`Sampler`); `reader.rs` takes one reading from a source;
//! `metrics_body.rs` turns an `/api/metrics` body into a reading.

mod metrics_body;
mod reader;
mod sampled;
mod thread;

pub use reader::Source;
pub use sampled::{Reading, Sampled, ServerSample};
pub use thread::Sampler;
