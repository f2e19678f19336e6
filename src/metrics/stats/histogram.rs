//! The bounds and precision of every latency histogram the server keeps,
//! so that any two of them can be added.

use hdrhistogram::Histogram;

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
