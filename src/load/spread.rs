//! How much a run's per-second figures vary or drift: the jitter figures
//! (the seed's coefficient of variation of per-second means, and a robust
//! one) and the second half against the first, as a ratio and as a
//! difference in ms ([`Halves`]).
//!
//! Why a robust jitter figure: in a one-hour soak here (100 clients, 10 ms
//! think, per-second mean latency ~0.3 ms) the seed's figure read 30–36 % in
//! quiet periods, because one scheduling hiccup of a few ms moves a second's
//! mean by more than 15 %. A second's median is not moved by a few slow
//! requests, and the median absolute deviation across seconds is not moved
//! by a few slow seconds.

use serde::Serialize;

/// Both jitter figures of one run, %.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Jitter {
    /// The seed's: coefficient of variation of the per-second mean latency.
    pub seed_pct: f64,
    /// Robust: 1.4826 × MAD of the per-second median latency over their
    /// median (the factor makes it equal the CV for normally spread data).
    pub robust_pct: f64,
    /// The seed's spread in ms: the standard deviation of the per-second
    /// means.
    pub seed_ms: f64,
    /// The robust spread in ms: 1.4826 × MAD of the per-second medians.
    pub robust_ms: f64,
}

impl Jitter {
    /// All figures from per-second (mean, median) latencies.
    pub fn of(means: &[f64], medians: &[f64]) -> Jitter {
        Jitter {
            seed_pct: coefficient_of_variation_pct(means),
            robust_pct: robust_cv_pct(medians),
            seed_ms: coefficient_of_variation_pct(means) / 100.0 * mean(means),
            robust_ms: robust_cv_pct(medians) / 100.0 * median(medians),
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Coefficient of variation of `values`, % (0 for fewer than two values).
pub fn coefficient_of_variation_pct(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return 0.0;
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    100.0 * var.sqrt() / mean
}

/// Mean of the second half of `values` divided by the mean of the first
/// (the middle value of an odd count goes to the second half).
pub fn half_ratio(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let (first, second) = values.split_at(values.len() / 2);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(first);
    (base > 0.0).then(|| mean(second) / base)
}

/// The two halves of a series of latencies (ms), each summarised by one
/// statistic: what the half criterion compares, as a ratio and as an
/// absolute difference (a ratio alone makes a few µs of a 0.25 ms sample
/// look like a slowdown).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Halves {
    /// The first half's summary, ms.
    pub first_ms: f64,
    /// The second half's summary, ms.
    pub second_ms: f64,
}

impl Halves {
    /// The halves of `values` (the middle value of an odd count goes to the
    /// second half) by their medians, which a few outliers (an OS hiccup on
    /// a shared machine) do not move; `None` for fewer than two values.
    pub fn by_median(values: &[f64]) -> Option<Halves> {
        Halves::by(values, median)
    }

    /// The halves of `values` by their means; `None` for fewer than two.
    pub fn by_mean(values: &[f64]) -> Option<Halves> {
        Halves::by(values, |v| v.iter().sum::<f64>() / v.len() as f64)
    }

    fn by(values: &[f64], summary: fn(&[f64]) -> f64) -> Option<Halves> {
        if values.len() < 2 {
            return None;
        }
        let (first, second) = values.split_at(values.len() / 2);
        Some(Halves {
            first_ms: summary(first),
            second_ms: summary(second),
        })
    }

    /// Second over first (NaN when the first is not positive).
    pub fn ratio(&self) -> f64 {
        if self.first_ms > 0.0 {
            self.second_ms / self.first_ms
        } else {
            f64::NAN
        }
    }

    /// How much slower the second half is, ms (negative when faster).
    pub fn difference_ms(&self) -> f64 {
        self.second_ms - self.first_ms
    }
}

/// Median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Robust coefficient of variation, %: 1.4826 × the median absolute
/// deviation from the median, over the median (0 for fewer than two values
/// or a median of 0).
pub fn robust_cv_pct(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = median(values);
    if m <= 0.0 {
        return 0.0;
    }
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    100.0 * 1.4826 * median(&deviations) / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_in_ms() {
        // Means 1 and 3 ms: CV 50 %, standard deviation 1 ms.
        let j = Jitter::of(&[1.0, 3.0], &[2.0, 2.0, 2.0, 4.0]);
        assert!((j.seed_pct - 50.0).abs() < 1e-9);
        assert!((j.seed_ms - 1.0).abs() < 1e-9);
        // Medians 2, 2, 2, 4: median 2, MAD 0.
        assert_eq!((j.robust_pct, j.robust_ms), (0.0, 0.0));
        let j = Jitter::of(&[1.0], &[1.0, 2.0, 3.0]);
        // Median 2, MAD 1: 74.13 % of 2 ms is 1.4826 ms.
        assert!((j.robust_ms - 1.4826).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn jitter_and_halves() {
        assert_eq!(coefficient_of_variation_pct(&[5.0, 5.0, 5.0]), 0.0);
        let cv = coefficient_of_variation_pct(&[1.0, 3.0]);
        assert!((cv - 50.0).abs() < 1e-9);
        assert_eq!(half_ratio(&[1.0, 1.0, 1.5, 1.5]), Some(1.5));
        assert_eq!(half_ratio(&[2.0]), None);
        // One 10x outlier moves the mean ratio, not the median one.
        let v = [1.0, 1.0, 1.0, 1.0, 1.0, 10.0];
        assert!(half_ratio(&v).unwrap() > 3.0);
        let h = Halves::by_median(&v).unwrap();
        assert_eq!(h.ratio(), 1.0);
        assert_eq!(h.difference_ms(), 0.0);
        let h = Halves::by_mean(&[1.0, 1.0, 1.5, 1.5]).unwrap();
        assert_eq!((h.first_ms, h.second_ms), (1.0, 1.5));
        assert_eq!(h.ratio(), 1.5);
        assert_eq!(h.difference_ms(), 0.5);
        assert_eq!(Halves::by_median(&[2.0]), None);
        let zero = Halves::by_median(&[0.0, 1.0]).unwrap();
        assert!(zero.ratio().is_nan());
    }

    #[test]
    fn robust_jitter_ignores_a_few_hiccups() {
        // Seconds with a 0.3 ms mean, 3 of 60 of them with a hiccup that
        // holds the requests in flight for a few ms (mean 0.7 ms, median
        // unmoved): the seed's figure jumps past 20 %, the robust one stays 0.
        let mut means = vec![0.3; 60];
        for i in [7, 30, 51] {
            means[i] = 0.7;
        }
        let j = Jitter::of(&means, &[0.3; 60]);
        assert!(j.seed_pct > 20.0, "{j:?}");
        assert_eq!(j.robust_pct, 0.0);
        // Normal-ish spread: both read about the same.
        let v: Vec<f64> = (0..1000)
            .map(|i| 1.0 + 0.1 * ((i as f64) * 0.7).sin())
            .collect();
        let (cv, rcv) = (coefficient_of_variation_pct(&v), robust_cv_pct(&v));
        assert!(rcv > 0.5 * cv && rcv < 2.0 * cv, "cv {cv} robust {rcv}");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
