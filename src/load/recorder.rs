//! What one executor measured: HDR latency histograms in microseconds (from
//! the intended send time, and raw from the actual send), counts by status
//! and error class, and a timeline of fixed-width buckets. Each executor owns
//! one recorder (no sharing on the request path); they are merged at the end.
//!
//! Recording allocates nothing, except the first request of a new timeline
//! bucket, which adds that bucket.

use std::sync::Arc;

use hdrhistogram::Histogram;

use super::histogram::{new_bucket_histogram, new_histogram};
use super::live::Live;
use super::outcome::{ErrorKind, Outcome};

/// Status codes are counted by index up to this (exclusive).
pub const STATUS_SLOTS: usize = 1000;

/// One slice of the timeline, by completion time.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Requests completed in the slice (any outcome).
    pub requests: u64,
    /// Of which not 2xx (status or transport error).
    pub errors: u64,
    /// Latencies (from the intended send time) of the responses in the slice.
    pub latency_us: Histogram<u64>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            requests: 0,
            errors: 0,
            latency_us: new_bucket_histogram(),
        }
    }
}

/// One executor's measurements.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Width of a timeline bucket, ns.
    pub bucket_ns: u64,
    /// Latency of every response from its intended send time, µs.
    pub latency_us: Histogram<u64>,
    /// Latency of every response from its actual send time, µs.
    pub raw_latency_us: Histogram<u64>,
    /// Responses by status code (index = code).
    pub status_counts: Vec<u64>,
    /// Transport errors by [`ErrorKind::index`].
    pub error_counts: [u64; 4],
    /// Requests completed (any outcome).
    pub requests: u64,
    /// Requests that did not end in a 2xx.
    pub errors: u64,
    /// TCP connections opened.
    pub connects: u64,
    /// Connections re-opened after the previous one closed.
    pub reconnects: u64,
    /// The timeline.
    pub buckets: Vec<Bucket>,
    /// Completion time of the last request, ns since start.
    pub last_done_ns: u64,
    live: Option<Arc<Live>>,
    /// Buckets before this index were already published to `live`.
    published: usize,
}

impl Recorder {
    /// An empty recorder with `bucket_ms` wide timeline buckets, publishing
    /// each finished bucket to `live` (progress display) when given.
    pub fn new(bucket_ms: u64, live: Option<Arc<Live>>) -> Recorder {
        Recorder {
            bucket_ns: bucket_ms.max(1) * 1_000_000,
            latency_us: new_histogram(),
            raw_latency_us: new_histogram(),
            status_counts: vec![0; STATUS_SLOTS],
            error_counts: [0; 4],
            requests: 0,
            errors: 0,
            connects: 0,
            reconnects: 0,
            buckets: Vec::new(),
            last_done_ns: 0,
            live,
            published: 0,
        }
    }

    /// Records one request: scheduled at `intended_ns`, sent at `sent_ns`,
    /// finished at `done_ns` (ns since the run started).
    pub fn record(&mut self, intended_ns: u64, sent_ns: u64, done_ns: u64, outcome: Outcome) {
        let index = (done_ns / self.bucket_ns) as usize;
        if index > self.published && self.live.is_some() {
            self.publish(index);
        }
        while self.buckets.len() <= index {
            self.buckets.push(Bucket::new());
        }
        let bucket = &mut self.buckets[index];
        bucket.requests += 1;
        self.requests += 1;
        self.last_done_ns = self.last_done_ns.max(done_ns);
        let failed = !outcome.is_success();
        if failed {
            bucket.errors += 1;
            self.errors += 1;
        }
        match outcome {
            Outcome::Status(code) => {
                let corrected_us = done_ns.saturating_sub(intended_ns) / 1000;
                let raw_us = done_ns.saturating_sub(sent_ns) / 1000;
                self.latency_us.saturating_record(corrected_us.max(1));
                self.raw_latency_us.saturating_record(raw_us.max(1));
                bucket.latency_us.saturating_record(corrected_us.max(1));
                self.status_counts[(code as usize).min(STATUS_SLOTS - 1)] += 1;
            }
            Outcome::Error(kind) => self.error_counts[kind.index()] += 1,
        }
    }

    /// Counts a transport error that is not tied to a request slot.
    pub fn count_error(&mut self, kind: ErrorKind) {
        self.error_counts[kind.index()] += 1;
    }

    /// Publishes every bucket before `upto` to the live display.
    fn publish(&mut self, upto: usize) {
        let Some(live) = &self.live else { return };
        for bucket in self.buckets.iter().take(upto).skip(self.published) {
            live.add(bucket.requests, bucket.errors, &bucket.latency_us);
        }
        self.published = upto.min(self.buckets.len()).max(self.published);
    }

    /// Publishes what is left; call when the executor is done.
    pub fn finish(&mut self) {
        self.publish(self.buckets.len());
        self.live = None;
    }

    /// Adds `other`'s measurements to these.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.raw_latency_us.add(&other.raw_latency_us);
        for (a, b) in self.status_counts.iter_mut().zip(&other.status_counts) {
            *a += b;
        }
        for (a, b) in self.error_counts.iter_mut().zip(&other.error_counts) {
            *a += b;
        }
        self.requests += other.requests;
        self.errors += other.errors;
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        self.last_done_ns = self.last_done_ns.max(other.last_done_ns);
        while self.buckets.len() < other.buckets.len() {
            self.buckets.push(Bucket::new());
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.requests += b.requests;
            a.errors += b.errors;
            let _ = a.latency_us.add(&b.latency_us);
        }
    }

    /// Merges the recorders of all executors into one.
    pub fn merge_all(recorders: &[Recorder], bucket_ms: u64) -> Recorder {
        let mut total = Recorder::new(bucket_ms, None);
        for r in recorders {
            total.merge(r);
        }
        total
    }

    /// The timeline regrouped into buckets of `width_ms` (a multiple of the
    /// recorder's own width).
    pub fn regrouped(&self, width_ms: u64) -> Vec<Bucket> {
        let per = ((width_ms * 1_000_000) / self.bucket_ns).max(1) as usize;
        self.buckets
            .chunks(per)
            .map(|chunk| {
                let mut b = Bucket::new();
                for c in chunk {
                    b.requests += c.requests;
                    b.errors += c.errors;
                    let _ = b.latency_us.add(&c.latency_us);
                }
                b
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::histogram::quantile_ms;

    #[test]
    fn merge_adds_histograms_counts_and_timelines() {
        let mut a = Recorder::new(1000, None);
        let mut b = Recorder::new(1000, None);
        for i in 0..100u64 {
            // a: 1..=100 ms in second 0; b: 101..=200 ms in second 2.
            a.record(0, 0, (i + 1) * 1_000_000, Outcome::Status(200));
            b.record(
                2_000_000_000,
                2_000_000_000,
                2_000_000_000 + (i + 101) * 1_000_000,
                Outcome::Status(200),
            );
        }
        b.record(0, 0, 2_500_000_000, Outcome::Status(503));
        b.record(0, 0, 2_500_000_000, Outcome::Error(ErrorKind::Timeout));
        let m = Recorder::merge_all(&[a, b], 1000);
        assert_eq!(m.requests, 202);
        assert_eq!(m.errors, 2);
        assert_eq!(m.status_counts[200], 200);
        assert_eq!(m.status_counts[503], 1);
        assert_eq!(m.error_counts[ErrorKind::Timeout.index()], 1);
        // 201 latencies: 1..=200 ms and one 2.5 s response (the 503).
        assert_eq!(m.latency_us.len(), 201);
        let p50 = quantile_ms(&m.latency_us, 0.5);
        assert!((p50 - 101.0).abs() < 0.2, "p50 {p50}");
        assert!((m.latency_us.max() as f64 / 1000.0 - 2500.0).abs() < 2.0);
        assert_eq!(m.buckets.len(), 3);
        assert_eq!(m.buckets[0].requests, 100);
        assert_eq!(m.buckets[1].requests, 0);
        assert_eq!(m.buckets[2].requests, 102);
        assert_eq!(m.buckets[2].errors, 2);
    }

    #[test]
    fn corrected_and_raw_differ_by_the_wait() {
        let mut r = Recorder::new(1000, None);
        // Intended at 0, sent 900 ms late, answered 10 ms later.
        r.record(0, 900_000_000, 910_000_000, Outcome::Status(200));
        assert!((quantile_ms(&r.latency_us, 1.0) - 910.0).abs() < 1.0);
        assert!((quantile_ms(&r.raw_latency_us, 1.0) - 10.0).abs() < 0.1);
    }

    #[test]
    fn regrouping_sums_buckets() {
        let mut r = Recorder::new(100, None);
        for i in 0..25u64 {
            r.record(0, 0, i * 100_000_000, Outcome::Status(200));
        }
        let s = r.regrouped(1000);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].requests, 10);
        assert_eq!(s[2].requests, 5);
    }
}
