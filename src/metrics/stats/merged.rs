//! The server's figures: every shard's snapshot and their merge (counters
//! summed, histograms added).

use hdrhistogram::Histogram;

use super::connection_stats::ConnectionStats;
use super::histogram::new_latency_histogram;
use super::snapshot::ShardSnapshot;
use crate::http::response::Status;
use crate::shard::cache::CacheStats;
use crate::shard::routes::RouteClass;

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
    use crate::metrics::stats::ShardStats;

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
}
