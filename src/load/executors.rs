//! Runs a scenario's per-executor body on one glommio executor per core and
//! collects what each measured.
//!
//! Executors are unbound (the server under test is pinned to the same cores;
//! the kernel balances the two), ask for the same small registered I/O memory
//! as the server (`limits::IO_MEMORY_BYTES`) so that several fit under an
//! 8 MiB `RLIMIT_MEMLOCK`, and are raised out of the default fd limit so
//! that a thousand clients can connect.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

use super::LoadError;
use crate::os::limits;

/// Executors to use: `requested`, or one per core in the affinity mask.
pub fn executor_count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `body(index)` on `count` executors and returns their results in
/// executor order. `body` runs on the executor's own thread.
pub fn run_on_executors<T, F, Fut>(count: usize, body: F) -> Result<Vec<T>, LoadError>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    limits::ensure_memlock(count).map_err(LoadError::Internal)?;
    let _ = limits::raise_nofile();
    let mut handles = Vec::with_capacity(count);
    for index in 0..count {
        let body = body.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("load{index}"))
            .io_memory(limits::IO_MEMORY_BYTES)
            .spawn(move || body(index))
            .map_err(|e| {
                LoadError::Internal(format!(
                    "cannot start load executor {index}: {e} (io_uring and the memlock limit, \
                     `ulimit -l`, are needed as for percore itself)"
                ))
            })?;
        handles.push(handle);
    }
    let mut results = Vec::with_capacity(count);
    for (index, handle) in handles.into_iter().enumerate() {
        let result = handle
            .join()
            .map_err(|e| LoadError::Internal(format!("load executor {index} failed: {e}")))?;
        results.push(result);
    }
    Ok(results)
}

/// Nanoseconds from `start` to now (0 before `start`).
pub fn now_ns(start: quanta::Instant) -> u64 {
    quanta::Instant::now()
        .saturating_duration_since(start)
        .as_nanos() as u64
}

/// Sleeps on the current executor until `at_ns` after `start`, reusing
/// `timer` (no allocation per wait).
pub async fn sleep_until(timer: &mut glommio::timer::Timer, start: quanta::Instant, at_ns: u64) {
    let now = now_ns(start);
    if at_ns > now {
        timer.reset(std::time::Duration::from_nanos(at_ns - now));
        (&mut *timer).await;
    }
}

/// Sleeps until the run's start instant (executors start a little early so
/// that the first request is not late).
pub async fn wait_for_start(start: quanta::Instant) {
    if let Some(wait) = start.checked_duration_since(quanta::Instant::now()) {
        glommio::timer::sleep(wait).await;
    }
}
