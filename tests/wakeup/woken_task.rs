//! A timer that falls due while a task woken from another thread runs: the
//! executor must not park with the timer's task runnable (see the test).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use super::{assert_ring, executor, Ring};

/// A timer that falls due while a task woken from another thread runs wakes
/// its own task.
///
/// Each round one task awaits a 1 ms timer; the executor parks with it armed.
/// Another thread wakes a second task 300 us before the deadline, and that
/// task busy-waits (never yielding) until a few microseconds around the
/// deadline, a different offset each round. When it ends just after glommio's
/// clock says the timer is due but before the kernel's timeout for it fires,
/// the executor wakes the timer's task and is then preempted by that timeout
/// before it runs anything: an executor that took "ran nothing" for "nothing
/// to run" parked there with the task runnable and nothing left to wake it
/// (found with the latency-ring timer kept across turns,
/// `third_party/glommio/PATCHED.md`). The only other timer is a 3 s guard, so
/// a lost wake-up shows as a timer task that runs seconds late.
pub(super) fn timer_due_while_a_woken_task_runs_wakes_its_task(ring: Ring) {
    const ROUNDS: u32 = 1_000;
    const TIMER: Duration = Duration::from_millis(1);
    const GUARD: Duration = Duration::from_secs(3);
    /// One hand-off: when to wake, the flag the other thread sets, the waker.
    struct Slot {
        at: Instant,
        done: AtomicBool,
        waker: Mutex<Option<Waker>>,
    }
    let (slot_tx, slot_rx) = std::sync::mpsc::channel::<Arc<Slot>>();
    let waker_thread = thread::spawn(move || {
        while let Ok(slot) = slot_rx.recv() {
            if let Some(early) = slot.at.checked_duration_since(Instant::now()) {
                thread::sleep(early.saturating_sub(Duration::from_micros(200)));
            }
            while Instant::now() < slot.at {
                std::hint::spin_loop();
            }
            slot.done.store(true, Ordering::SeqCst);
            if let Some(waker) = slot.waker.lock().expect("lock").take() {
                waker.wake();
            }
        }
    });
    let ex = executor("wake-busy", ring)
        .spawn(move || async move {
            assert_ring(ring);
            for round in 0..ROUNDS {
                let timer = glommio::timer::Timer::new(TIMER);
                let due = Instant::now() + TIMER;
                // From 10 us before to 30 us after the deadline.
                let spin_until =
                    due + Duration::from_micros(u64::from(round % 40)) - Duration::from_micros(10);
                let slot = Arc::new(Slot {
                    at: due - Duration::from_micros(300),
                    done: AtomicBool::new(false),
                    waker: Mutex::new(None),
                });
                let slot_tx = slot_tx.clone();
                let busy = glommio::spawn_local(async move {
                    let mut handed_over = false;
                    futures_lite::future::poll_fn(|cx| {
                        if slot.done.load(Ordering::SeqCst) {
                            return Poll::Ready(());
                        }
                        *slot.waker.lock().expect("lock") = Some(cx.waker().clone());
                        if !handed_over {
                            handed_over = true;
                            slot_tx.send(Arc::clone(&slot)).expect("send slot");
                        }
                        Poll::Pending
                    })
                    .await;
                    while Instant::now() < spin_until {
                        std::hint::spin_loop();
                    }
                });
                let _ = glommio::timer::timeout(GUARD, async {
                    timer.await;
                    Ok(())
                })
                .await;
                let late = Instant::now().saturating_duration_since(due);
                assert!(
                    late < Duration::from_secs(1),
                    "round {round}: the 1 ms timer's task ran {late:?} after its deadline"
                );
                busy.await;
            }
            drop(slot_tx);
        })
        .expect("spawn executor");
    ex.join().expect("executor");
    waker_thread.join().expect("waker thread");
}
