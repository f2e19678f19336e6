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
use glommio::channels::shared_channel::{ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::UnixStream;

use crate::report::{self, ProcessInfo};
use crate::routes::MetricsFormat;
use crate::stats::{new_latency_histogram, Merged, ShardSnapshot};

/// Messages from a shard to the control executor.
pub enum ToControl {
    /// A request on `shard_id` wants a report in `format`.
    Metrics {
        /// The shard asking.
        shard_id: usize,
        /// Report format.
        format: MetricsFormat,
    },
    /// The shard's figures, answering [`ToShard::Snapshot`].
    Snapshot(Box<ShardSnapshot>),
}

/// Messages from the control executor to a shard.
pub enum ToShard {
    /// Send your figures.
    Snapshot,
    /// The report for the oldest metrics request waiting on this shard.
    MetricsBody(Vec<u8>),
    /// Stop accepting and drain.
    Drain,
    /// A cleared latency histogram for the shard's next snapshot to swap in
    /// (see [`crate::stats`]).
    SpareHistogram(Box<hdrhistogram::Histogram<u64>>),
}

/// Capacity of each channel between the control executor and a shard.
pub const CHANNEL_CAPACITY: usize = 1024;

/// The control executor's ends of one shard's channels.
pub struct ShardLink {
    /// Messages from the shard.
    pub from_shard: SharedReceiver<ToControl>,
    /// Messages to the shard.
    pub to_shard: SharedSender<ToShard>,
}

/// Makes the channel pair between the control executor and one shard:
/// returns (control's ends, shard's sender, shard's receiver).
pub fn link() -> (ShardLink, SharedSender<ToControl>, SharedReceiver<ToShard>) {
    let (to_control, from_shard) = glommio::channels::shared_channel::new_bounded(CHANNEL_CAPACITY);
    let (to_shard, from_control) = glommio::channels::shared_channel::new_bounded(CHANNEL_CAPACITY);
    (
        ShardLink {
            from_shard,
            to_shard,
        },
        to_control,
        from_control,
    )
}

/// What the control loop reacts to.
enum Event {
    FromShard(usize, ToControl),
    ShardGone(usize),
    Stop,
}

/// A gathering of snapshots under way.
struct Round {
    /// (shard, format) of the requests this round answers.
    requesters: Vec<(usize, MetricsFormat)>,
    /// Shards whose snapshot has not arrived.
    awaiting: Vec<bool>,
    snapshots: Vec<ShardSnapshot>,
}

/// Runs the control executor until every shard has finished.
/// `stop` is the read end of the socket that signal handlers (and
/// [`crate::server::ServerHandle::shutdown`]) write a byte to.
pub async fn run(links: Vec<ShardLink>, stop: std::os::unix::net::UnixStream, started: Instant) {
    let shards = links.len();
    let (events_tx, events_rx) = local_channel::new_unbounded::<Event>();
    let events_tx = Rc::new(events_tx);
    let mut senders: Vec<ConnectedSender<ToShard>> = Vec::with_capacity(shards);
    for (id, link) in links.into_iter().enumerate() {
        senders.push(link.to_shard.connect().await);
        let rx = link.from_shard.connect().await;
        let tx = events_tx.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                let _ = tx.try_send(Event::FromShard(id, msg));
            }
            let _ = tx.try_send(Event::ShardGone(id));
        })
        .detach();
    }
    glommio::spawn_local(watch_stop(stop, events_tx.clone())).detach();
    drop(events_tx);

    let mut alive = vec![true; shards];
    // Every latency sample of each shard so far; shards send only new ones.
    let mut latency_totals: Vec<_> = (0..shards).map(|_| new_latency_histogram()).collect();
    let mut pending: Vec<(usize, MetricsFormat)> = Vec::new();
    let mut round: Option<Round> = None;
    let mut stops = 0;
    while alive.iter().any(|a| *a) {
        let Some(event) = events_rx.recv().await else {
            break;
        };
        match event {
            Event::FromShard(_, ToControl::Metrics { shard_id, format }) => {
                pending.push((shard_id, format))
            }
            Event::FromShard(id, ToControl::Snapshot(mut snap)) => {
                let total = &mut latency_totals[id];
                // Same bounds on both sides, so `add` cannot fail.
                let _ = total.add(&snap.latency_us);
                let mut spare = std::mem::replace(&mut snap.latency_us, total.clone());
                spare.reset();
                let _ = senders[id]
                    .send(ToShard::SpareHistogram(Box::new(spare)))
                    .await;
                if let Some(r) = round.as_mut() {
                    r.awaiting[id] = false;
                    r.snapshots.push(*snap);
                }
            }
            Event::ShardGone(id) => {
                alive[id] = false;
                if let Some(r) = round.as_mut() {
                    r.awaiting[id] = false;
                }
            }
            Event::Stop => {
                stops += 1;
                if stops == 1 {
                    tracing::info!("shutdown requested: draining");
                    for (id, s) in senders.iter().enumerate() {
                        if alive[id] {
                            let _ = s.send(ToShard::Drain).await;
                        }
                    }
                } else {
                    tracing::warn!("second shutdown request: exiting now");
                    std::process::exit(1);
                }
            }
        }
        if round
            .as_ref()
            .is_some_and(|r| !r.awaiting.iter().any(|a| *a))
        {
            if let Some(r) = round.take() {
                finish_round(r, &senders, started).await;
            }
        }
        if round.is_none() && !pending.is_empty() {
            let mut r = Round {
                requesters: std::mem::take(&mut pending),
                awaiting: alive.clone(),
                snapshots: Vec::with_capacity(shards),
            };
            for (id, s) in senders.iter().enumerate() {
                if alive[id] && s.send(ToShard::Snapshot).await.is_err() {
                    r.awaiting[id] = false;
                }
            }
            if r.awaiting.iter().any(|a| *a) {
                round = Some(r);
            } else {
                finish_round(r, &senders, started).await;
            }
        }
    }
}

/// Merges a round's snapshots and sends each requester its report.
async fn finish_round(round: Round, senders: &[ConnectedSender<ToShard>], started: Instant) {
    let merged = Merged::from_shards(round.snapshots);
    let info = ProcessInfo {
        stats: crate::process::read(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        heap: crate::process::heap(),
    };
    for (shard_id, format) in round.requesters {
        // The report answers a request that is not yet counted: count it, so
        // `requests.total` includes the very request that reads it.
        let mut m = merged.clone();
        m.count_pending_ok(shard_id);
        let body = match format {
            MetricsFormat::Json => report::json(&m, &info),
            MetricsFormat::Prometheus => crate::prometheus::render(&m, &info),
        };
        if let Some(s) = senders.get(shard_id) {
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
