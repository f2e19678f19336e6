//! The result of a run, as every output renders it (table, JSON, HTML): the
//! merged figures of all executors, the per-second timeline, the server
//! samples and the evaluated criteria. Built once from the merged
//! `Recorder` and the `Sampled` server figures.
//!
//! By file: `run_report.rs` holds the whole report (`RunReport`) and how it
//! is built; `sections.rs` its sections (totals, latency, timeline,
//! placement, connections, the request count check, `health`'s halves);
//! `step.rs` the figures of one part of a multi-part scenario.

mod run_report;
mod sections;
mod step;

pub use run_report::{distribution, RunReport};
pub use sections::{
    Connections, HalfComparison, Latency, Placement, ServerCount, Summary, TimelinePoint,
};
pub use step::{step, step_between, Step};
