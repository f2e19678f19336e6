//! The control executor: not a shard, it serves no connection. It owns the
//! cross-shard work: merging the shards' figures for the metrics endpoints and
//! ordering the drain on SIGTERM/SIGINT.
//!
//! A metrics request travels: shard → control (`Metrics`), control → every
//! shard (`Snapshot`), every shard → control (`Snapshot(..)`), then control
//! merges, reads `/proc/self`, renders, and sends the body back to the shard
//! that asked. A shard spends a counter copy on it; the rest happens here.
//! Requests that arrive while a round is gathering wait for the next round,
//! so every report is taken after its request arrived.

use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Instant;

use futures_lite::AsyncReadExt;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::UnixStream;

use crate::control::messages::{Event, ToControl, ToShard};
use crate::control::supervisor::{ShardPlan, Supervisor};
use crate::metrics::report::{self, ProcessInfo};
use crate::metrics::stats::{new_latency_histogram, Merged, ShardSnapshot};
use crate::shard::routes::MetricsFormat;

/// A gathering of snapshots under way.
struct Round {
    /// (shard, format) of the requests this round answers.
    requesters: Vec<(usize, MetricsFormat)>,
    /// Shards whose snapshot has not arrived.
    awaiting: Vec<bool>,
    snapshots: Vec<ShardSnapshot>,
}

/// Runs the control executor: starts a shard per listener (reporting the
/// outcome on `ready`), then serves metrics rounds, restarts dead shards and
/// orders the drain, until every shard has finished. `stop` is the read end
/// of the socket that signal handlers write a byte to. `failed` is set when
/// the server drained because a shard died past the restart budget.
pub async fn run(
    plan: ShardPlan,
    listeners: Vec<std::net::TcpListener>,
    stop: std::os::unix::net::UnixStream,
    started: Instant,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let (events_tx, events_rx) = local_channel::new_unbounded::<Event>();
    let events_tx = Rc::new(events_tx);
    let mut shards = Supervisor::new(plan, events_tx.clone());
    for (id, listener) in listeners.into_iter().enumerate() {
        if let Err(err) = shards.start(id, listener, Vec::new()).await {
            let _ = ready.send(Err(err));
            return;
        }
    }
    glommio::spawn_local(watch_stop(stop, events_tx.clone())).detach();
    drop(events_tx);
    let _ = ready.send(Ok(()));

    let count = shards.shard_count();
    // Every latency sample of each shard so far; shards send only new ones.
    let mut latency_totals: Vec<_> = (0..count).map(|_| new_latency_histogram()).collect();
    let mut pending: Vec<(usize, MetricsFormat)> = Vec::new();
    let mut round: Option<Round> = None;
    let mut draining = false;
    while shards.alive().iter().any(|a| *a) {
        let Some(event) = events_rx.recv().await else {
            break;
        };
        match event {
            Event::FromShard(id, generation, msg) if shards.is_current(id, generation) => match msg
            {
                ToControl::Metrics { shard_id, format } => pending.push((shard_id, format)),
                ToControl::Snapshot(mut snap) => {
                    let total = &mut latency_totals[id];
                    // Same bounds on both sides, so `add` cannot fail.
                    let _ = total.add(&snap.latency_us);
                    let mut spare = std::mem::replace(&mut snap.latency_us, total.clone());
                    spare.reset();
                    snap.restarts = shards.restarts(id);
                    if let Some(s) = shards.sender(id) {
                        let _ = s.send(ToShard::SpareHistogram(Box::new(spare))).await;
                    }
                    if let Some(r) = round.as_mut() {
                        r.awaiting[id] = false;
                        r.snapshots.push(*snap);
                    }
                }
            },
            Event::FromShard(..) => {} // from an incarnation that is gone
            Event::ShardGone(id, generation, orphans) => {
                if shards.is_current(id, generation) {
                    if let Some(r) = round.as_mut() {
                        r.awaiting[id] = false;
                    }
                    // Requests that shard was waiting on died with it.
                    pending.retain(|(s, _)| *s != id);
                    if let Some(r) = round.as_mut() {
                        r.requesters.retain(|(s, _)| *s != id);
                    }
                    if shards.on_gone(id, draining, orphans).await.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        draining = true;
                        drain_all(&shards).await;
                    }
                }
            }
            Event::Stop => {
                if draining {
                    tracing::warn!("second shutdown request: exiting now");
                    std::process::exit(1);
                }
                draining = true;
                tracing::info!("shutdown requested: draining");
                drain_all(&shards).await;
            }
        }
        if round
            .as_ref()
            .is_some_and(|r| !r.awaiting.iter().any(|a| *a))
        {
            if let Some(r) = round.take() {
                finish_round(r, &shards, started).await;
            }
        }
        if round.is_none() && !pending.is_empty() {
            let alive = shards.alive();
            let mut r = Round {
                requesters: std::mem::take(&mut pending),
                awaiting: alive.clone(),
                snapshots: Vec::with_capacity(count),
            };
            for (id, is_alive) in alive.iter().enumerate() {
                let sent = match shards.sender(id) {
                    Some(s) if *is_alive => s.send(ToShard::Snapshot).await.is_ok(),
                    _ => false,
                };
                r.awaiting[id] = sent;
            }
            if r.awaiting.iter().any(|a| *a) {
                round = Some(r);
            } else {
                finish_round(r, &shards, started).await;
            }
        }
    }
}

/// Orders every running shard to drain.
async fn drain_all(shards: &Supervisor) {
    for id in 0..shards.shard_count() {
        if let Some(s) = shards.sender(id) {
            let _ = s.send(ToShard::Drain).await;
        }
    }
}

/// Merges a round's snapshots and sends each requester its report.
async fn finish_round(round: Round, shards: &Supervisor, started: Instant) {
    let mut merged = Merged::from_shards(round.snapshots);
    let info = ProcessInfo {
        stats: crate::metrics::process::read(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        heap: crate::metrics::process::heap(),
    };
    for (shard_id, format) in round.requesters {
        // The report answers a request that is not yet counted: count it, so
        // `requests.total` includes the very request that reads it.
        merged.count_pending_ok(shard_id);
        let body = match format {
            MetricsFormat::Json => report::json(&merged, &info),
            MetricsFormat::Prometheus => crate::metrics::prometheus::render(&merged, &info),
        };
        merged.uncount_pending_ok(shard_id);
        if let Some(s) = shards.sender(shard_id) {
            let _ = s.send(ToShard::MetricsBody(body)).await;
        }
    }
}

/// Turns each byte written to the stop socket into a [`Event::Stop`].
async fn watch_stop(stop: std::os::unix::net::UnixStream, events: Rc<LocalSender<Event>>) {
    // SAFETY: the fd comes from a socket this function owns; the glommio
    // stream takes over closing it.
    let mut stop = unsafe { UnixStream::from_raw_fd(stop.into_raw_fd()) };
    let mut byte = [0u8; 1];
    loop {
        match stop.read(&mut byte).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if events.try_send(Event::Stop).is_err() {
                    return;
                }
            }
        }
    }
}
