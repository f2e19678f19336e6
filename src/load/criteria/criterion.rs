//! One criterion: an observation compared with its threshold through a
//! [`Bound`], and the verdict with what the reader needs to weigh it. A
//! figure that was not measured (NaN) fails.

use serde::Serialize;

/// How an observation is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// observed < threshold
    Below,
    /// observed > threshold
    Above,
    /// observed ≥ threshold
    AtLeast,
}

impl Bound {
    /// The operator as shown in names.
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::Below => "<",
            Bound::Above => ">",
            Bound::AtLeast => ">=",
        }
    }

    fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Bound::Below => observed < threshold,
            Bound::Above => observed > threshold,
            Bound::AtLeast => observed >= threshold,
        }
    }
}

/// One evaluated criterion.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Criterion {
    /// What is measured, with its unit and operator, e.g. `p95 latency ms <`.
    pub name: String,
    /// The bound.
    pub threshold: f64,
    /// The measured value (NaN when it could not be measured: fails).
    pub observed: f64,
    /// Whether it held.
    pub pass: bool,
    /// What else the reader needs to weigh it: the other convention's
    /// figure, which statistic judges and why, how a bound was scaled.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Criterion {
    /// The same criterion with `detail` attached.
    pub fn with_detail(mut self, detail: String) -> Criterion {
        self.detail = detail;
        self
    }
}

/// Evaluates `observed` against `threshold`. An observation that is not a
/// number (nothing measured) fails.
pub fn check(what: &str, bound: Bound, threshold: f64, observed: f64) -> Criterion {
    Criterion {
        name: format!("{what} {}", bound.symbol()),
        threshold,
        observed,
        pass: !observed.is_nan() && bound.holds(observed, threshold),
        detail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_strict_except_throughput() {
        assert!(!check("x", Bound::Below, 200.0, 200.0).pass);
        assert!(check("x", Bound::Below, 200.0, 199.9).pass);
        assert!(!check("x", Bound::Above, 99.9, 99.9).pass);
        assert!(check("x", Bound::AtLeast, 1000.0, 1000.0).pass);
        assert!(!check("x", Bound::Below, 1.0, f64::NAN).pass);
        assert_eq!(
            check("p95 latency ms", Bound::Below, 1.0, 0.5).name,
            "p95 latency ms <"
        );
    }
}
