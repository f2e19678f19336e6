//! The load generator's HDR histogram shapes and how it reads them: one
//! place for the bounds and precision that every recorder, the live
//! progress line and the reports share, so they merge and compare.

use hdrhistogram::Histogram;

/// Largest latency a histogram holds: one hour, in µs. Larger values are
/// clamped (an open-loop run behind by more than an hour is not a measurement).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram with 3 significant digits (whole-run figures).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// A smaller histogram with 2 significant digits (per timeline bucket).
pub fn new_bucket_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static histogram bounds are valid")
}

/// Value at quantile `q`, in milliseconds; 0 for an empty histogram.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}
