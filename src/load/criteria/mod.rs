//! Pass/fail criteria: the seed's acceptance thresholds as defaults, each
//! overridable by a flag, and their evaluation against a run's figures. A
//! run's exit code is 0 when every criterion that applies holds, 99 when one
//! fails.
//!
//! Every bound is strict (`<`, `>`) as the seed wrote them, except
//! throughput, which is "at least". The half criterion may also hold on an
//! absolute tolerance (`health --half-tolerance-ms`, see
//! [`Thresholds::half_tolerance_ms`]).
//!
//! `thresholds.rs`: the bounds and their flags. `observed.rs`: the figures
//! they are judged on. `criterion.rs`: one comparison and its verdict.
//! `evaluate.rs`: every criterion of a run, in report order.

mod criterion;
mod evaluate;
mod observed;
mod thresholds;

pub use criterion::{check, Bound, Criterion};
pub use observed::Observed;
pub use thresholds::Thresholds;
