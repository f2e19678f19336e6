//! A shard's live counters and latency histogram, updated on its request
//! path with plain `Cell`s, and the snapshot it hands the control executor.

use std::cell::{Cell, RefCell};

use hdrhistogram::Histogram;

use super::connection_stats::ConnectionStats;
use super::histogram::new_latency_histogram;
use super::snapshot::ShardSnapshot;
use crate::http::response::Status;
use crate::shard::cache::CacheStats;
use crate::shard::routes::RouteClass;

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

#[cfg(test)]
mod tests {
    use super::*;

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
