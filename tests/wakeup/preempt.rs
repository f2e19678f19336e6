//! Preemption without a kernel timer: a running task queue still yields.
//!
//! The vendored glommio ends a turn at a deadline it reads from the clock
//! (`third_party/glommio/PATCHED.md`, change E) instead of a timeout armed on
//! its latency ring. If that deadline were never set or never read, a task
//! queue that always has a runnable task would keep the executor forever:
//! other task queues, timers and I/O would starve. Each test below waits for
//! an event that only preemption lets happen and fails after [`LOST_AFTER`]
//! (seconds, for a preempt duration of 10 ms) if it never comes.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use glommio::{Latency, Shares};

use super::{assert_ring, executor, Ring, LOST_AFTER};

/// The executors here end a turn after this long.
const PREEMPT: Duration = Duration::from_millis(10);

/// A task that busy-loops on `yield_if_needed` yields its task queue once
/// the turn's deadline passes, so a task in another queue runs.
pub(super) fn busy_task_yields_to_another_task_queue(ring: Ring) {
    executor("preempt-yield", ring)
        .preempt_timer(PREEMPT)
        .spawn(move || async move {
            assert_ring(ring);
            let ex = glommio::executor();
            let busy_queue = ex.create_task_queue(Shares::default(), Latency::NotImportant, "busy");
            let other_queue =
                ex.create_task_queue(Shares::default(), Latency::NotImportant, "other");
            let other_ran = Rc::new(Cell::new(false));
            let busy = glommio::spawn_local_into(
                {
                    let other_ran = other_ran.clone();
                    async move {
                        let start = Instant::now();
                        while !other_ran.get() {
                            assert!(
                                start.elapsed() < LOST_AFTER,
                                "the busy task was never preempted"
                            );
                            glommio::yield_if_needed().await;
                        }
                    }
                },
                busy_queue,
            )
            .expect("spawn busy task");
            // The other queue's task is spawned after the busy one, so the
            // busy task runs first and only a preemption lets this one run.
            let other = glommio::spawn_local_into(
                {
                    let other_ran = other_ran.clone();
                    async move { other_ran.set(true) }
                },
                other_queue,
            )
            .expect("spawn other task");
            busy.await;
            other.await;
        })
        .expect("spawn executor")
        .join()
        .expect("executor");
}

/// A task that is always runnable (it yields with `yield_now`, never
/// checking for preemption) does not keep a timer from firing: the turn ends
/// at its deadline, and the poll that follows processes the due timer.
pub(super) fn always_runnable_task_lets_a_timer_fire(ring: Ring) {
    executor("preempt-timer", ring)
        .preempt_timer(PREEMPT)
        .spawn(move || async move {
            assert_ring(ring);
            let fired = Rc::new(Cell::new(false));
            let timer = glommio::spawn_local({
                let fired = fired.clone();
                async move {
                    sleep(Duration::from_millis(5)).await;
                    fired.set(true);
                }
            });
            let start = Instant::now();
            while !fired.get() {
                assert!(
                    start.elapsed() < LOST_AFTER,
                    "a 5 ms timer never fired while a task stayed runnable"
                );
                futures_lite::future::yield_now().await;
            }
            timer.await;
        })
        .expect("spawn executor")
        .join()
        .expect("executor");
}
