//! A shard's own figures, and the snapshots the control executor merges.
//!
//! Counters are plain `Cell`s: a shard is one thread, so counting costs an
//! add, with no atomics and no cache lines shared between cores. The control
//! executor asks each shard for a [`ShardSnapshot`] and merges them: counters
//! summed, histograms added, never percentiles averaged.
//!
//! A latency histogram is ~190 KiB of counts; copying it would stall the
//! shard for tens of microseconds per metrics request. Instead the shard
//! *swaps* its live histogram for a cleared spare (a pointer swap) and sends
//! the filled one, holding only the samples since the last snapshot. The
//! control executor adds it to the shard's running total, clears it and sends
//! it back as the next spare: the copying and clearing happen off the shard.

use std::cell::{Cell, RefCell};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::http::response::Status;
use crate::shard::cache::CacheStats;
use crate::shard::routes::RouteClass;

/// Highest latency the histograms track, in µs (one hour); larger values
/// are clamped to it rather than lost.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant figures kept by the latency histograms.
pub const LATENCY_SIGFIG: u8 = 3;

/// A new, empty latency histogram in µs.
pub fn new_latency_histogram() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's accepted range.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Connection counters of one shard (or, merged, of the server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Connections open now.
    pub active: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections closed since start.
    pub closed: u64,
    /// Connections refused with 503 because the connection cap was reached.
    pub rejected: u64,
}

impl ConnectionStats {
    fn add(&mut self, other: &ConnectionStats) {
        self.active += other.active;
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.rejected += other.rejected;
    }
}

/// Live counters of one shard, updated on its request path.
pub struct ShardStats {
    requests_by_status: [Cell<u64>; Status::ALL.len()],
    requests_by_route: [Cell<u64>; RouteClass::ALL.len()],
    accepted: Cell<u64>,
    closed: Cell<u64>,
    rejected: Cell<u64>,
    in_flight: Cell<u64>,
    latency_us: RefCell<Histogram<u64>>,
    /// A cleared histogram to swap in at the next snapshot.
    spare_latency_us: RefCell<Option<Histogram<u64>>>,
}

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardStats {
    /// All counters at zero.
    pub fn new() -> Self {
        ShardStats {
            requests_by_status: Default::default(),
            requests_by_route: Default::default(),
            accepted: Cell::new(0),
            closed: Cell::new(0),
            rejected: Cell::new(0),
            in_flight: Cell::new(0),
            latency_us: RefCell::new(new_latency_histogram()),
            spare_latency_us: RefCell::new(Some(new_latency_histogram())),
        }
    }

    /// Hands back a histogram, cleared by the caller (clearing ~190 KiB is
    /// the control executor's work, not the shard's), for the next snapshot.
    pub fn give_spare(&self, spare: Histogram<u64>) {
        debug_assert!(spare.is_empty());
        *self.spare_latency_us.borrow_mut() = Some(spare);
    }

    /// One response written to a request of class `route`, with its
    /// server-side latency.
    pub fn record_response(&self, route: RouteClass, status: Status, latency_us: u64) {
        let c = &self.requests_by_status[status.index()];
        c.set(c.get() + 1);
        let r = &self.requests_by_route[route.index()];
        r.set(r.get() + 1);
        // `saturating_record` clamps outliers instead of failing.
        self.latency_us
            .borrow_mut()
            .saturating_record(latency_us.max(1));
    }

    /// A response already recorded as `old` was replaced, before it was
    /// sent, by an error response `new` (its request's body turned out
    /// malformed): one request, one count. The latency sample and the route
    /// count stay, as they are the same request's.
    pub fn replace_response(&self, old: Status, new: Status) {
        let o = &self.requests_by_status[old.index()];
        o.set(o.get().saturating_sub(1));
        let n = &self.requests_by_status[new.index()];
        n.set(n.get() + 1);
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.accepted.set(self.accepted.get() + 1);
    }

    /// A connection was closed.
    pub fn connection_closed(&self) {
        self.closed.set(self.closed.get() + 1);
    }

    /// A connection was refused because the connection cap was reached.
    pub fn connection_rejected(&self) {
        self.rejected.set(self.rejected.get() + 1);
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get()
    }

    /// A request was admitted.
    pub fn request_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    /// An admitted request was answered.
    pub fn request_finished(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    fn take_latency(&self) -> Histogram<u64> {
        let fresh = self
            .spare_latency_us
            .borrow_mut()
            .take()
            .unwrap_or_else(new_latency_histogram);
        std::mem::replace(&mut *self.latency_us.borrow_mut(), fresh)
    }

    /// Connections open now.
    pub fn active_connections(&self) -> u64 {
        self.accepted.get() - self.closed.get()
    }

    /// A copy of the counters and the latency samples recorded since the
    /// previous snapshot (see the module doc), for the control executor.
    pub fn snapshot(&self, shard_id: usize, core: usize, cache: CacheStats) -> ShardSnapshot {
        let mut requests_by_status = [0; Status::ALL.len()];
        for (dst, src) in requests_by_status.iter_mut().zip(&self.requests_by_status) {
            *dst = src.get();
        }
        let mut requests_by_route = [0; RouteClass::ALL.len()];
        for (dst, src) in requests_by_route.iter_mut().zip(&self.requests_by_route) {
            *dst = src.get();
        }
        ShardSnapshot {
            shard_id,
            core,
            requests_by_status,
            requests_by_route,
            connections: ConnectionStats {
                active: self.active_connections(),
                accepted: self.accepted.get(),
                closed: self.closed.get(),
                rejected: self.rejected.get(),
            },
            active_requests: self.in_flight.get(),
            cache,
            latency_us: self.take_latency(),
            restarts: 0,
            recv_buffers_exhausted: 0,
            recv_buffers_held: 0,
            ring_sends_short: 0,
        }
    }
}

/// Everything one shard reports, copied at one instant.
#[derive(Clone, Debug)]
pub struct ShardSnapshot {
    /// Which shard.
    pub shard_id: usize,
    /// The core it is pinned to.
    pub core: usize,
    /// Responses by status, indexed by [`Status::index`].
    pub requests_by_status: [u64; Status::ALL.len()],
    /// Responses by the class of the request's path, indexed by
    /// [`RouteClass::index`]; they add up to the responses by status.
    pub requests_by_route: [u64; RouteClass::ALL.len()],
    /// Connection counters.
    pub connections: ConnectionStats,
    /// Requests in flight.
    pub active_requests: u64,
    /// Its cache's counters.
    pub cache: CacheStats,
    /// Server-side latency, µs: as sent by the shard, the samples since its
    /// previous snapshot; once the control executor has added them to its
    /// running total, every sample since the shard started.
    pub latency_us: Histogram<u64>,
    /// Times this shard was restarted after a panic.
    pub restarts: u64,
    /// Times a connection's multishot receive found no free provided buffer
    /// (`ENOBUFS`) and fell back to a poll: a sign `IO_URING_RECV_BUFFERS` is
    /// too small for the load. Set by the shard when it takes the snapshot.
    pub recv_buffers_exhausted: u64,
    /// Provided receive buffers holding data not read yet (0 at rest). Set
    /// by the shard when it takes the snapshot.
    pub recv_buffers_held: u64,
    /// Ring sends (`IO_URING_RING_SEND`) that did not go out whole: the
    /// client's socket buffer was full, and the rest was written with a poll
    /// and `send`. A count of slow readers, not an error. Set by the shard
    /// when it takes the snapshot.
    pub ring_sends_short: u64,
}

impl ShardSnapshot {
    /// Responses of every status.
    pub fn requests_total(&self) -> u64 {
        self.requests_by_status.iter().sum()
    }
}

/// The server's figures: every shard's snapshot and their merge.
#[derive(Clone, Debug)]
pub struct Merged {
    /// One entry per shard, by shard id.
    pub shards: Vec<ShardSnapshot>,
    /// Sum of the shards' responses by status.
    pub requests_by_status: [u64; Status::ALL.len()],
    /// Sum of the shards' responses by route class.
    pub requests_by_route: [u64; RouteClass::ALL.len()],
    /// Sum of the shards' connection counters.
    pub connections: ConnectionStats,
    /// Sum of in-flight requests.
    pub active_requests: u64,
    /// Sum of the shards' cache counters.
    pub cache: CacheStats,
    /// The shards' histograms added together.
    pub latency_us: Histogram<u64>,
    /// Sum of shard restarts.
    pub restarts: u64,
}

impl Merged {
    /// Merges shard snapshots (in any order; kept sorted by shard id).
    pub fn from_shards(mut shards: Vec<ShardSnapshot>) -> Merged {
        shards.sort_by_key(|s| s.shard_id);
        let mut merged = Merged {
            requests_by_status: [0; Status::ALL.len()],
            requests_by_route: [0; RouteClass::ALL.len()],
            connections: ConnectionStats::default(),
            active_requests: 0,
            cache: CacheStats::default(),
            latency_us: new_latency_histogram(),
            restarts: 0,
            shards: Vec::new(),
        };
        for s in &shards {
            for (dst, src) in merged
                .requests_by_status
                .iter_mut()
                .zip(&s.requests_by_status)
            {
                *dst += src;
            }
            for (dst, src) in merged
                .requests_by_route
                .iter_mut()
                .zip(&s.requests_by_route)
            {
                *dst += src;
            }
            merged.connections.add(&s.connections);
            merged.active_requests += s.active_requests;
            merged.cache.entries += s.cache.entries;
            merged.cache.hits += s.cache.hits;
            merged.cache.misses += s.cache.misses;
            merged.cache.evictions += s.cache.evictions;
            merged.cache.expirations += s.cache.expirations;
            // Same bounds on both sides, so `add` cannot fail.
            let _ = merged.latency_us.add(&s.latency_us);
            merged.restarts += s.restarts;
        }
        merged.shards = shards;
        merged
    }

    /// Responses of every status.
    pub fn requests_total(&self) -> u64 {
        self.requests_by_status.iter().sum()
    }

    /// Counts one more 200 to a metrics request on `shard_id`: the metrics
    /// response being built, which the snapshot could not yet contain.
    pub fn count_pending_ok(&mut self, shard_id: usize) {
        self.add_pending_ok(shard_id, 1);
    }

    /// Undoes [`Merged::count_pending_ok`] once that response is rendered,
    /// so the next requester of the same round is counted on the same
    /// figures without a copy of them (a copy is three ~180 KiB histograms).
    pub fn uncount_pending_ok(&mut self, shard_id: usize) {
        self.add_pending_ok(shard_id, -1);
    }

    fn add_pending_ok(&mut self, shard_id: usize, n: i64) {
        let ok = Status::Ok.index();
        let metrics = RouteClass::Metrics.index();
        self.requests_by_status[ok] = self.requests_by_status[ok].saturating_add_signed(n);
        self.requests_by_route[metrics] = self.requests_by_route[metrics].saturating_add_signed(n);
        if let Some(s) = self.shards.iter_mut().find(|s| s.shard_id == shard_id) {
            s.requests_by_status[ok] = s.requests_by_status[ok].saturating_add_signed(n);
            s.requests_by_route[metrics] = s.requests_by_route[metrics].saturating_add_signed(n);
        }
    }
}

/// hits / (hits + misses), 0 before any lookup.
pub fn hit_rate(cache: &CacheStats) -> f64 {
    let lookups = cache.hits + cache.misses;
    if lookups == 0 {
        0.0
    } else {
        cache.hits as f64 / lookups as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merging per-shard histograms gives the percentiles of one histogram fed
    /// every sample: merging adds counts, it does not average percentiles.
    #[test]
    fn merged_percentiles_equal_single_histogram() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut one = new_latency_histogram();
        let shards: Vec<ShardSnapshot> = (0..4)
            .map(|id| {
                let stats = ShardStats::new();
                for _ in 0..5_000 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Shards with different latency profiles.
                    let v = 1 + rng % (100 * (id as u64 + 1) * (id as u64 + 1));
                    stats.record_response(RouteClass::Data, Status::Ok, v);
                    one.record(v).unwrap();
                }
                stats.snapshot(id, id, CacheStats::default())
            })
            .collect();
        let merged = Merged::from_shards(shards);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.latency_us.value_at_quantile(q),
                one.value_at_quantile(q)
            );
        }
        assert_eq!(merged.latency_us.len(), 20_000);
        assert_eq!(merged.requests_total(), 20_000);
    }

    /// Replacing an unsent response moves its count to the new status.
    #[test]
    fn a_replaced_response_counts_once() {
        let stats = ShardStats::new();
        stats.record_response(RouteClass::Data, Status::Ok, 10);
        stats.replace_response(Status::Ok, Status::BadRequest);
        let snap = stats.snapshot(0, 0, CacheStats::default());
        assert_eq!(snap.requests_total(), 1);
        assert_eq!(snap.requests_by_status[Status::Ok.index()], 0);
        assert_eq!(snap.requests_by_status[Status::BadRequest.index()], 1);
        assert_eq!(
            snap.requests_by_route,
            [1, 0, 0, 0],
            "still one data request"
        );
        assert_eq!(snap.latency_us.len(), 1);
    }

    /// A snapshot carries only the samples since the previous one, and the
    /// shard swaps in the spare it was given instead of allocating.
    #[test]
    fn snapshots_hand_over_latency_deltas() {
        let stats = ShardStats::new();
        stats.record_response(RouteClass::Data, Status::Ok, 10);
        stats.record_response(RouteClass::Data, Status::Ok, 20);
        let mut first = stats.snapshot(0, 0, CacheStats::default());
        assert_eq!(first.latency_us.len(), 2);
        stats.record_response(RouteClass::Data, Status::Ok, 30);
        let second = stats.snapshot(0, 0, CacheStats::default());
        assert_eq!(second.latency_us.len(), 1);
        assert_eq!(second.requests_total(), 3, "counters stay cumulative");
        first.latency_us.reset();
        stats.give_spare(first.latency_us);
        assert!(stats.spare_latency_us.borrow().is_some());
        stats.record_response(RouteClass::Data, Status::Ok, 40);
        let third = stats.snapshot(0, 0, CacheStats::default());
        assert_eq!(third.latency_us.len(), 1);
        assert!(stats.spare_latency_us.borrow().is_none(), "spare was used");
    }

    #[test]
    fn counters_sum() {
        let a = ShardStats::new();
        let b = ShardStats::new();
        a.connection_opened();
        a.connection_opened();
        a.connection_closed();
        b.connection_opened();
        b.connection_rejected();
        a.record_response(RouteClass::Other, Status::NotFound, 10);
        b.record_response(RouteClass::Health, Status::Ok, 10);
        let cache = CacheStats {
            entries: 1,
            hits: 3,
            misses: 1,
            evictions: 0,
            expirations: 0,
        };
        let mut m = Merged::from_shards(vec![b.snapshot(1, 1, cache), a.snapshot(0, 0, cache)]);
        assert_eq!(m.shards[0].shard_id, 0);
        assert_eq!(
            m.connections,
            ConnectionStats {
                active: 2,
                accepted: 3,
                closed: 1,
                rejected: 1
            }
        );
        assert_eq!(m.cache.hits, 6);
        assert_eq!(hit_rate(&m.cache), 0.75);
        // Data, health, metrics, other.
        assert_eq!(m.requests_by_route, [0, 1, 0, 1]);
        assert_eq!(m.shards[0].requests_by_route, [0, 0, 0, 1]);
        assert_eq!(m.shards[1].requests_by_route, [0, 1, 0, 0]);
        m.count_pending_ok(1);
        assert_eq!(m.requests_total(), 3);
        assert_eq!(m.shards[1].requests_total(), 2);
        assert_eq!(
            m.requests_by_route,
            [0, 1, 1, 1],
            "the pending one is a metrics request"
        );
        assert_eq!(m.shards[1].requests_by_route, [0, 1, 1, 0]);
        m.uncount_pending_ok(1);
        assert_eq!(m.requests_total(), 2);
        assert_eq!(m.shards[1].requests_total(), 1);
        assert_eq!(m.requests_by_route, [0, 1, 0, 1]);
        assert_eq!(m.shards[1].requests_by_route, [0, 1, 0, 0]);
    }

    /// Every class is counted apart, and the classes add up to the total.
    #[test]
    fn responses_count_by_route_class() {
        let stats = ShardStats::new();
        for (route, n) in [
            (RouteClass::Data, 5),
            (RouteClass::Health, 3),
            (RouteClass::Metrics, 2),
            (RouteClass::Other, 1),
        ] {
            for _ in 0..n {
                stats.record_response(route, Status::Ok, 10);
            }
        }
        let snap = stats.snapshot(0, 0, CacheStats::default());
        assert_eq!(snap.requests_by_route, [5, 3, 2, 1]);
        assert_eq!(
            snap.requests_by_route.iter().sum::<u64>(),
            snap.requests_total()
        );
    }
}
