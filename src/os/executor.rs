//! Starting a glommio executor thread and knowing that it started: an
//! executor whose io_uring cannot be set up fails on its own thread, so the
//! caller waits for a first sign of life and turns a failure into a message
//! that names the fix.

use std::sync::mpsc;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder};

/// Hint shown when an io_uring executor cannot start.
const IO_URING_HINT: &str = "io_uring could not be set up. percore needs Linux >= 5.10 with \
io_uring allowed: check `sysctl kernel.io_uring_disabled` (must be 0), that the container's \
seccomp profile allows io_uring_setup/io_uring_enter/io_uring_register (Docker >= 25 blocks them \
by default: use the shipped seccomp profile), and the memlock limit (`ulimit -l`)";

/// Spawns an executor thread and waits until it runs; an executor that
/// cannot start (io_uring refused, memlock) is an error naming the fix.
pub fn spawn_executor<F, Fut>(
    builder: LocalExecutorBuilder,
    what: &str,
    body: F,
) -> Result<ExecutorJoinHandle<()>, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let handle = builder
        .spawn(move || async move {
            let _ = ready_tx.send(());
            body().await
        })
        .map_err(|e| format!("cannot start {what}: {e}. {IO_URING_HINT}"))?;
    // The sender is dropped unsent when the executor failed to start.
    if ready_rx.recv().is_err() {
        let err = match handle.join() {
            Err(e) => e.to_string(),
            Ok(()) => "executor ended before starting".to_string(),
        };
        return Err(format!("cannot start {what}: {err}. {IO_URING_HINT}"));
    }
    Ok(handle)
}
