//! `max`'s engine: connections that send back to back, each thread running
//! one plain epoll loop over its share of them, as wrk does.
//!
//! Why not glommio here: in `max` the generator shares the machine with the
//! server it measures, so every cycle it spends per request is taken from
//! the server. glommio's stream re-arms an io_uring poll for every read
//! (a `POLL_ADD` per request). Here a socket is registered once,
//! level-triggered for reading, and a request costs one `send` and one
//! `recv` plus a share of one `epoll_wait`. (wrk additionally switches
//! `EPOLLOUT` on and off around every request: two `epoll_ctl` per request,
//! counted in README, "Load generator".)
//! `EPOLLOUT` is asked for only while a connect is in progress or a request
//! did not fit in the socket buffer.
//!
//! It measures what the closed-loop client of `scenarios/closed_loop.rs`
//! measures, the same way: latency from the actual send, responses by
//! status, errors by class, a reconnect when the server closed, one retry
//! of a request that met a keep-alive close before any byte of its
//! response, and a deadline per request (checked every
//! [`SCAN_INTERVAL`](worker::SCAN_INTERVAL)).
//! Buffers are allocated once per connection; the request bytes of every
//! path once per thread.
//!
//! `plan.rs`: what to run. `worker.rs`: one thread's loop. `conn.rs`: one
//! connection's state in it. `tests.rs`: the loop against small servers.

mod conn;
mod plan;
mod worker;

pub use plan::Plan;

use std::sync::Arc;

use super::live::Live;
use super::recorder::Recorder;
use super::LoadError;
use crate::os::limits;
use worker::Worker;

/// Runs the plan and returns each thread's recorder.
pub fn run(
    plan: &Plan,
    start: quanta::Instant,
    live: Arc<Live>,
) -> Result<Vec<Recorder>, LoadError> {
    let _ = limits::raise_nofile();
    let threads = plan.threads.max(1).min(plan.connections.max(1));
    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads {
        let plan = plan.clone();
        let live = live.clone();
        let handle = std::thread::Builder::new()
            .name(format!("load{index}"))
            .spawn(move || {
                let mine: Vec<usize> = (index..plan.connections).step_by(threads).collect();
                Worker::new(&plan, &mine, start, live).map(Worker::run)
            })
            .map_err(|e| LoadError::Internal(format!("cannot start load thread {index}: {e}")))?;
        handles.push(handle);
    }
    let mut recorders = Vec::with_capacity(threads);
    for (index, handle) in handles.into_iter().enumerate() {
        let result = handle
            .join()
            .map_err(|_| LoadError::Internal(format!("load thread {index} panicked")))?;
        recorders
            .push(result.map_err(|e| LoadError::Internal(format!("load thread {index}: {e}")))?);
    }
    Ok(recorders)
}

#[cfg(test)]
mod tests;
