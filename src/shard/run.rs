//! One shard's life: a glommio executor pinned to one core, its own listening
//! socket, its own cache, counters and clock, and the connections it accepted.
//! `run` builds the [`Shard`] state, starts its side tasks (control messages,
//! timeout sweep), runs the accept loop until the drain, then drains.
//!
//! Its only link to the rest of the process is a pair of channels to the
//! control executor (metrics and drain).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Instant;

use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use glommio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::control::messages::{ToControl, ToShard};
use crate::metrics::stats::ShardStats;
use crate::shard::cache::Cache;
use crate::shard::payload::Rng;
use crate::shard::registry::Registry;
use crate::shard::state::Shard;

/// What a shard is started with.
pub struct ShardSetup {
    /// Shard id.
    pub id: usize,
    /// Core to report (the executor is already pinned to it).
    pub core: usize,
    /// Settings.
    pub config: Config,
    /// Connections allowed on this shard.
    pub max_connections: usize,
    /// This shard's listening socket.
    pub listener: std::net::TcpListener,
    /// Connections accepted for this shard id by an incarnation that died
    /// before serving them: served first.
    pub orphans: Vec<std::os::fd::OwnedFd>,
    /// Messages to the control executor.
    pub to_control: SharedSender<ToControl>,
    /// Messages from the control executor.
    pub from_control: SharedReceiver<ToShard>,
    /// Dropped when the shard thread ends, however it ends (see [`crate::shard::death`]).
    pub death_notice: std::os::unix::net::UnixStream,
}

/// Runs a shard until it has drained. Call inside its pinned executor.
pub async fn run(setup: ShardSetup) {
    // Same order as the control executor connects its ends (its sender to
    // our receiver first): each connect waits for its peer.
    let from_control = setup.from_control.connect().await;
    let to_control = setup.to_control.connect().await;
    // SAFETY: the fd comes from a listening socket this function owns; the
    // glommio listener takes over closing it.
    let listen_fd = setup.listener.into_raw_fd();
    let listener = unsafe { TcpListener::from_raw_fd(listen_fd) };
    let config = setup.config;
    let shard = Rc::new(Shard {
        id: setup.id,
        core: setup.core,
        max_connections: setup.max_connections,
        clock: RefCell::new(Clock::new()),
        cache: RefCell::new(Cache::new(config.cache_capacity, config.cache_ttl_ms)),
        stats: ShardStats::new(),
        rng: RefCell::new(Rng::new(seed(setup.id))),
        scratch: RefCell::new(Vec::with_capacity(4096)),
        draining: Cell::new(false),
        conns: RefCell::new(Registry::default()),
        to_control,
        metrics_waiters: RefCell::new(VecDeque::new()),
        config,
    });
    crate::shard::death::arm(Rc::downgrade(&shard), listen_fd, setup.death_notice);
    let (drain_tx, drain_rx) = local_channel::new_bounded::<()>(1);
    glommio::spawn_local(control_messages(shard.clone(), from_control, drain_tx)).detach();
    glommio::spawn_local(sweep_timeouts(shard.clone())).detach();
    let recv_multishot = shard.config.io_uring_recv_multishot
        && glommio::executor()
            .enable_recv_multishot(shard.config.io_uring_recv_buffers, RECV_BUFFER_BYTES);
    if shard.config.io_uring_ring_send {
        glommio::executor().enable_ring_send();
    }
    tracing::debug!(
        shard = shard.id,
        core = shard.core,
        defer_taskrun = glommio::executor().defer_taskrun(),
        recv_multishot,
        ring_send = shard.config.io_uring_ring_send,
        "shard started"
    );

    for orphan in setup.orphans {
        // SAFETY: an accepted TCP socket this shard now owns.
        let stream = unsafe { glommio::net::TcpStream::from_raw_fd(orphan.into_raw_fd()) };
        crate::shard::acceptor::admit(&shard, stream);
    }
    crate::shard::acceptor::run(&shard, listener, listen_fd, &drain_rx).await;
    crate::shard::drain::connections(&shard).await;
    crate::shard::death::disarm();
    // Tell the control executor this shard is gone (the detached tasks that
    // still hold the shard may outlive this future).
    shard.to_control.close();
    tracing::debug!(shard = shard.id, "shard drained");
}

/// One provided buffer of the multishot receives (their number is
/// `IO_URING_RECV_BUFFERS`): a typical request head is a few hundred bytes, 16
/// pipelined wrk requests about 930; longer input spans buffers.
const RECV_BUFFER_BYTES: usize = 2048;

/// How far this shard's open connections must fall below their peak (as the
/// sweep samples it) before the sweep gives the freed heap back to the
/// kernel ([`crate::os::memory::trim`]). A drop, not a count of closes: a
/// steady stream of short connections does not trim, an attack that leaves
/// does. A trim took 2.2–6.5 ms after 5,000 connections closed (2 shards).
const TRIM_AFTER_FALL_CONNECTIONS: usize = 100;

/// Ends the reads that passed their keep-alive or headers deadline, every
/// `registry::sweep_interval`, for as long as the shard runs; trims the heap
/// after many connections closed.
async fn sweep_timeouts(shard: Rc<Shard>) {
    let interval = crate::shard::registry::sweep_interval(
        shard.config.keep_alive_timeout_ms,
        shard.config.headers_timeout_ms,
    );
    let mut timer = glommio::timer::Timer::new(interval);
    let mut peak_open = 0;
    loop {
        (&mut timer).await;
        let open = {
            let mut conns = shard.conns.borrow_mut();
            conns.expire(Instant::now());
            conns.len()
        };
        peak_open = peak_open.max(open);
        if peak_open - open >= TRIM_AFTER_FALL_CONNECTIONS {
            peak_open = open;
            let took = crate::os::memory::trim();
            tracing::debug!(
                shard = shard.id,
                took_us = took.as_micros() as u64,
                "heap trimmed"
            );
        }
        timer.reset(interval);
    }
}

fn seed(shard_id: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ ((shard_id as u64 + 1) << 48) ^ (std::process::id() as u64)
}

/// Handles the control executor's messages: snapshot requests, metrics
/// reports for waiting requests, and the drain order.
async fn control_messages(
    shard: Rc<Shard>,
    from_control: glommio::channels::shared_channel::ConnectedReceiver<ToShard>,
    drain_tx: LocalSender<()>,
) {
    while let Some(msg) = from_control.recv().await {
        match msg {
            ToShard::Snapshot => {
                let cache = shard.cache.borrow().stats();
                let mut snap = shard.stats.snapshot(shard.id, shard.core, cache);
                snap.recv_buffers_exhausted = glommio::executor().recv_buffers_exhausted();
                snap.recv_buffers_held = glommio::executor().recv_buffers_held().into();
                snap.ring_sends_short = glommio::executor().ring_sends_short();
                if shard
                    .to_control
                    .send(ToControl::Snapshot(Box::new(snap)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            ToShard::MetricsBody(body) => {
                let waiter = shard.metrics_waiters.borrow_mut().pop_front();
                if let Some(waiter) = waiter {
                    let _ = waiter.try_send(body);
                }
            }
            ToShard::SpareHistogram(spare) => shard.stats.give_spare(*spare),
            ToShard::Drain => {
                shard.draining.set(true);
                let _ = drain_tx.try_send(());
            }
        }
    }
}
