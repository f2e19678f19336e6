//! The executor's park/wake path never loses a wake-up.
//!
//! The vendored glommio (`third_party/glommio/PATCHED.md`) parks with fewer
//! system calls: it submits the main ring's entries in the call that sleeps,
//! keeps its throughput and latency-ring timers armed across turns, preempts at
//! a deadline read from the clock instead of a kernel timer, and orders
//! "I am going to sleep" against remote wakers with fences instead of a
//! `membarrier`. Each of those can lose a wake-up if done wrong: an executor
//! that sleeps with no timer armed although a timer is due, or that misses a
//! message from another executor. Such an executor sleeps until some unrelated
//! event, or forever. These tests run glommio executors directly, make the
//! executor park and wake thousands of times around the moment a timer is due
//! or a message arrives, and give every expected event a generous bound (10 s
//! for a timer of a few ms): a lost wake-up fails the test, a busy machine
//! does not.
//!
//! Every test runs twice, in module `defer` with the main ring set up
//! `SINGLE_ISSUER | DEFER_TASKRUN` (the default: completions are posted only
//! when the executor enters the kernel to reap or to sleep, so a reap missed
//! before sleeping is a lost wake-up) and in module `coop` with the fallback
//! forced (`COOP_TASKRUN`, what a kernel older than 6.1 gets). Each executor
//! first checks that it runs the set-up asked for.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::shared_channel;
use glommio::net::TcpListener;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

/// No expected wake-up may take longer than this (the events waited for are
/// due within milliseconds).
const LOST_AFTER: Duration = Duration::from_secs(10);

/// A small deterministic pseudo-random sequence (xorshift), so that each run
/// places events at the same spread of offsets around a deadline.
struct Jitter(u64);

impl Jitter {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// glommio's smallest I/O memory (what percore's shards ask for too).
const IO_MEMORY_BYTES: usize = 64 * 1024;

/// How a test's executors set up their main ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ring {
    /// `SINGLE_ISSUER | DEFER_TASKRUN`, glommio's default here.
    Defer,
    /// The fallback, forced with `defer_taskrun(false)`.
    Coop,
}

/// Linux 6.1 or later: the kernel accepts `DEFER_TASKRUN`.
fn kernel_has_defer_taskrun() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).expect("major");
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).expect("minor");
    (major, minor) >= (6, 1)
}

/// Inside an executor: fails unless its main ring runs the set-up `ring`
/// asked for (on a kernel older than 6.1, `Defer` falls back too).
fn assert_ring(ring: Ring) {
    let expected = ring == Ring::Defer && kernel_has_defer_taskrun();
    assert_eq!(
        glommio::executor().defer_taskrun(),
        expected,
        "{ring:?}: the main ring's set-up"
    );
}

/// Runs each test body once per [`Ring`], as `defer::name` and `coop::name`.
macro_rules! on_both_rings {
    ($($name:ident),+ $(,)?) => {
        mod defer {
            $(#[test]
            fn $name() {
                super::$name(super::Ring::Defer)
            })+
        }
        mod coop {
            $(#[test]
            fn $name() {
                super::$name(super::Ring::Coop)
            })+
        }
    };
}

#[path = "wakeup/woken_task.rs"]
mod woken_task;
use woken_task::timer_due_while_a_woken_task_runs_wakes_its_task;

#[path = "wakeup/preempt.rs"]
mod preempt;
use preempt::{always_runnable_task_lets_a_timer_fire, busy_task_yields_to_another_task_queue};

on_both_rings!(
    timer_due_while_parking_after_a_network_wake_is_never_lost,
    timer_due_while_a_woken_task_runs_wakes_its_task,
    timer_armed_after_a_network_wake_fires,
    shared_channel_wakes_a_parked_executor,
    foreign_thread_waker_wakes_a_parked_executor,
    blocking_pool_result_wakes_a_parked_executor,
    busy_task_yields_to_another_task_queue,
    always_runnable_task_lets_a_timer_fire,
);

/// A glommio executor for a test, unpinned, its main ring set up as `ring`
/// says. Locked memory is raised to its hard limit first, as the server does:
/// glommio needs 512 KiB per executor.
fn executor(name: &str, ring: Ring) -> LocalExecutorBuilder {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a
    // live, initialised rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
    LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .io_memory(IO_MEMORY_BYTES)
        .defer_taskrun(ring == Ring::Defer)
}

/// Runs `serve` on a new executor (see [`executor`]) with a loopback listener
/// bound there; returns the executor's handle and the listener's address.
fn serve_on_loopback<S, F>(name: &str, ring: Ring, serve: S) -> (ExecutorJoinHandle<()>, SocketAddr)
where
    S: FnOnce(TcpListener) -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = executor(name, ring)
        .spawn(move || async move {
            assert_ring(ring);
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send addr");
            serve(listener).await;
        })
        .expect("spawn executor");
    (server, addr_rx.recv().expect("server address"))
}

/// A timer due while the executor parks after a network wake is not lost.
///
/// The executor runs a timer task (a 2 ms timer, then one notification byte
/// to the client) and a reader task on a second connection. For each timer
/// the executor publishes its deadline; the client sends one byte timed to
/// arrive within tens of microseconds of that deadline (a different offset
/// each round), so the executor wakes for it and parks again right as the
/// timer falls due: the window in which a kept latency-ring timer can
/// complete while the executor decides how to sleep. Nothing else can wake the
/// executor afterwards, so a lost timer is a notification that never comes.
/// (The latency-ring timer kept across turns failed here in every run until
/// the executor stopped parking when a timer's completion preempted it before
/// the task that timer woke could run: see `third_party/glommio/PATCHED.md`,
/// change C, and `woken_task.rs`.)
fn timer_due_while_parking_after_a_network_wake_is_never_lost(ring: Ring) {
    const ROUNDS: u32 = 1000;
    const TIMER: Duration = Duration::from_millis(2);
    let base = Instant::now();
    let deadline_ns = Arc::new(AtomicU64::new(0));
    let published = Arc::clone(&deadline_ns);
    let (server, addr) = serve_on_loopback("wake-timer", ring, move |listener| async move {
        let mut notify = listener.accept().await.expect("accept notify");
        let mut pokes = listener.accept().await.expect("accept pokes");
        let reader = glommio::spawn_local(async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = pokes.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        for _ in 0..ROUNDS {
            let timer = glommio::timer::Timer::new(TIMER);
            let due = Instant::now() + TIMER - base;
            published.store(due.as_nanos() as u64, Ordering::SeqCst);
            notify.write_all(&[1]).await.expect("notify");
            timer.await;
        }
        notify.write_all(&[2]).await.expect("last notify");
        reader.await;
    });
    let mut notify = TcpStream::connect(addr).expect("connect notify");
    let mut pokes = TcpStream::connect(addr).expect("connect pokes");
    notify.set_read_timeout(Some(LOST_AFTER)).expect("timeout");
    pokes.set_nodelay(true).expect("nodelay");
    let mut byte = [0u8; 1];
    for round in 0..=ROUNDS {
        notify
            .read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("round {round}: the 2 ms timer never fired ({e})"));
        if round == ROUNDS {
            assert_eq!(byte[0], 2, "the last notification");
            break;
        }
        // Arrive between 70 us before and 10 us after the deadline (a
        // loopback byte takes ~10-30 us to wake the executor).
        let due = base + Duration::from_nanos(deadline_ns.load(Ordering::SeqCst));
        let at = due + Duration::from_micros(u64::from(round % 80)) - Duration::from_micros(70);
        if let Some(early) = at.checked_duration_since(Instant::now()) {
            thread::sleep(early.saturating_sub(Duration::from_micros(300)));
        }
        while Instant::now() < at {
            std::hint::spin_loop();
        }
        pokes.write_all(&[0]).expect("poke");
    }
    drop(pokes);
    server.join().expect("server executor");
}

/// A timer armed by a task that a network completion woke fires: the server
/// reads one byte, sleeps 3 ms, answers one byte; the client sends the next
/// byte after a varying pause, so the executor parks between every exchange.
fn timer_armed_after_a_network_wake_fires(ring: Ring) {
    const ROUNDS: usize = 300;
    let (server, addr) = serve_on_loopback("wake-net", ring, move |listener| async move {
        let mut conn = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1];
        for _ in 0..ROUNDS {
            conn.read_exact(&mut buf).await.expect("read");
            glommio::timer::sleep(Duration::from_millis(3)).await;
            conn.write_all(&buf).await.expect("write");
        }
    });
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(LOST_AFTER)).expect("timeout");
    conn.set_nodelay(true).expect("nodelay");
    let mut jitter = Jitter(0x2545_f491_4f6c_dd1d);
    let mut byte = [0u8; 1];
    for round in 0..ROUNDS {
        conn.write_all(&[round as u8]).expect("send");
        conn.read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("round {round}: no answer after a 3 ms timer ({e})"));
        assert_eq!(byte[0], round as u8, "answers in order");
        thread::sleep(Duration::from_micros(jitter.next_below(2_000)));
    }
    server.join().expect("server executor");
}

/// A message on a shared channel wakes a parked executor, both ways: a
/// "control" executor sends to a "shard" executor that has nothing else to do
/// (no timer, no I/O), which answers on a second channel. 2,000 round trips,
/// the sender pausing a varying few microseconds so the shard is sometimes
/// parked, sometimes about to park. A lost wake-up leaves the round trip
/// unanswered.
fn shared_channel_wakes_a_parked_executor(ring: Ring) {
    const ROUNDS: u32 = 2_000;
    let (to_shard, from_control) = shared_channel::new_bounded::<u32>(8);
    let (to_control, from_shard) = shared_channel::new_bounded::<u32>(8);
    let shard = executor("wake-shard", ring)
        .spawn(move || async move {
            assert_ring(ring);
            let rx = from_control.connect().await;
            let tx = to_control.connect().await;
            while let Some(n) = rx.recv().await {
                tx.send(n).await.expect("answer");
            }
        })
        .expect("spawn shard");
    let control = executor("wake-control", ring)
        .spawn(move || async move {
            assert_ring(ring);
            let tx = to_shard.connect().await;
            let rx = from_shard.connect().await;
            let mut jitter = Jitter(0x1234_5678_9abc_def1);
            for n in 0..ROUNDS {
                tx.send(n).await.expect("send");
                let answer = glommio::timer::timeout(LOST_AFTER, async {
                    Ok(rx.recv().await.expect("shard alive"))
                })
                .await
                .unwrap_or_else(|e| panic!("round {n}: the shard never answered ({e})"));
                assert_eq!(answer, n, "answers in order");
                let pause = Duration::from_micros(jitter.next_below(300));
                let start = Instant::now();
                while start.elapsed() < pause {
                    std::hint::spin_loop();
                }
            }
        })
        .expect("spawn control");
    control.join().expect("control executor");
    shard.join().expect("shard executor");
}

/// A waker called from another thread (glommio's `queue_waker` path: a
/// foreign thread queues the waker and writes the executor's eventfd if it
/// sleeps) wakes a parked executor, 2,000 times, the other thread waking it
/// after a varying pause.
fn foreign_thread_waker_wakes_a_parked_executor(ring: Ring) {
    const ROUNDS: usize = 2_000;
    /// One hand-off: the flag the other thread sets, the waker it calls.
    #[derive(Default)]
    struct Slot {
        done: AtomicBool,
        waker: Mutex<Option<Waker>>,
    }
    let (slot_tx, slot_rx) = std::sync::mpsc::channel::<Arc<Slot>>();
    let waker_thread = thread::spawn(move || {
        let mut jitter = Jitter(0xdead_beef_cafe_f00d);
        while let Ok(slot) = slot_rx.recv() {
            let pause = Duration::from_micros(jitter.next_below(300));
            let start = Instant::now();
            while start.elapsed() < pause {
                std::hint::spin_loop();
            }
            slot.done.store(true, Ordering::SeqCst);
            if let Some(waker) = slot.waker.lock().expect("lock").take() {
                waker.wake();
            }
        }
    });
    let ex = executor("wake-foreign", ring)
        .spawn(move || async move {
            assert_ring(ring);
            for round in 0..ROUNDS {
                let slot = Arc::new(Slot::default());
                let mut handed_over = false;
                // Registers the waker before handing the slot over, so the
                // other thread always has a waker to call.
                let wait = futures_lite::future::poll_fn(|cx| {
                    if slot.done.load(Ordering::SeqCst) {
                        return Poll::Ready(Ok(()));
                    }
                    *slot.waker.lock().expect("lock") = Some(cx.waker().clone());
                    if !handed_over {
                        handed_over = true;
                        slot_tx.send(Arc::clone(&slot)).expect("send slot");
                    }
                    Poll::Pending
                });
                glommio::timer::timeout(LOST_AFTER, wait)
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: the foreign wake was lost ({e})"));
            }
            drop(slot_tx);
        })
        .expect("spawn executor");
    ex.join().expect("executor");
    waker_thread.join().expect("waker thread");
}

/// glommio's blocking pool (a thread that runs a closure and then notifies
/// the executor) wakes a parked executor, 1,000 times.
fn blocking_pool_result_wakes_a_parked_executor(ring: Ring) {
    const ROUNDS: u64 = 1_000;
    let ex = executor("wake-blocking", ring)
        .spawn(move || async move {
            assert_ring(ring);
            for round in 0..ROUNDS {
                let job = glommio::executor().spawn_blocking(move || {
                    thread::sleep(Duration::from_micros(round % 300));
                    round
                });
                let got = glommio::timer::timeout(LOST_AFTER, async { Ok(job.await) })
                    .await
                    .unwrap_or_else(|e| {
                        panic!("round {round}: the blocking result never woke us ({e})")
                    });
                assert_eq!(got, round);
            }
        })
        .expect("spawn executor");
    ex.join().expect("executor");
}
