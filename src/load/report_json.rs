//! The `--json FILE` report: the [`RunReport`] serialized. Its fields are
//! `summary{requests,errors,rps,duration_s}`,
//! `latency_ms{p50,p90,p95,p99,p999,max}`, `status_codes`, `errors`,
//! `timeline[]`, `server[]` (CPU both as `cpu_pct`, % of one core as
//! `docker stats` shows it, and `cpu_pct_of_cores`),
//! `criteria[{name,threshold,observed,pass,detail}]`,
//! `placement{server_cores,server_core_ids,load_cpus}`, plus `scenario`,
//! `target`, `connections` and, where they apply, `latency_raw_ms`,
//! `server_count`, `steps` (with `server_latency_ms` and per-step
//! `criteria`), `notes`, `samples_ms` (`health`: each sample's average) and
//! `halves{statistic,first_ms,second_ms,ratio,difference_ms,max_ratio,
//! tolerance_ms}` (`health`: what the half criterion judged).

use super::report::RunReport;

/// The report as pretty-printed JSON. Non-finite figures become `null`.
pub fn render(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::criteria::{Observed, Thresholds};
    use crate::load::outcome::{ErrorKind, Outcome};
    use crate::load::recorder::Recorder;
    use crate::load::report::HalfComparison;

    #[test]
    fn has_every_documented_field() {
        let mut rec = Recorder::new(1000, None);
        for i in 0..1000u64 {
            rec.record(
                i * 1_000_000,
                i * 1_000_000,
                i * 1_000_000 + 2_000_000,
                Outcome::Status(200),
            );
        }
        rec.record(0, 0, 1_500_000_000, Outcome::Status(503));
        rec.record(0, 0, 1_500_000_000, Outcome::Error(ErrorKind::Timeout));
        let mut report = RunReport::build("seed", "http://x:1", &rec, 2.0, None, true);
        report.criteria = Thresholds::default().evaluate(&Observed {
            p95_ms: Some(2.0),
            ..Observed::default()
        });
        report.samples_ms = vec![0.25, 0.3];
        report.halves = Some(HalfComparison {
            statistic: "median",
            first_ms: 0.25,
            second_ms: 0.3,
            ratio: 1.2,
            difference_ms: 0.05,
            max_ratio: 1.2,
            tolerance_ms: 0.5,
        });
        let v: serde_json::Value = serde_json::from_str(&render(&report)).unwrap();
        for path in [
            "/summary/requests",
            "/summary/errors",
            "/summary/rps",
            "/summary/duration_s",
            "/latency_ms/p50",
            "/latency_ms/p90",
            "/latency_ms/p95",
            "/latency_ms/p99",
            "/latency_ms/p999",
            "/latency_ms/max",
            "/latency_raw_ms/p99",
            "/status_codes/200",
            "/status_codes/503",
            "/errors/timeout",
            "/errors/connect",
            "/errors/reset",
            "/errors/http_503",
            "/timeline/0/t_s",
            "/timeline/0/rps",
            "/timeline/0/errors",
            "/timeline/0/p50_ms",
            "/timeline/0/p95_ms",
            "/timeline/0/p99_ms",
            "/server",
            "/criteria/0/name",
            "/criteria/0/threshold",
            "/criteria/0/observed",
            "/criteria/0/pass",
            "/placement/server_cores",
            "/placement/server_core_ids",
            "/placement/load_cpus",
            "/samples_ms/1",
            "/halves/statistic",
            "/halves/first_ms",
            "/halves/second_ms",
            "/halves/ratio",
            "/halves/difference_ms",
            "/halves/max_ratio",
            "/halves/tolerance_ms",
        ] {
            assert!(v.pointer(path).is_some(), "missing {path}");
        }
        assert_eq!(v["summary"]["requests"], 1002);
        assert_eq!(v["summary"]["errors"], 2);
        assert_eq!(v["summary"]["rps"], 501.0);
        assert_eq!(v["status_codes"]["503"], 1);
        assert_eq!(v["errors"]["timeout"], 1);
        assert_eq!(v["timeline"].as_array().unwrap().len(), 2);
        assert_eq!(v["timeline"][1]["errors"], 2);
        assert!((v["latency_ms"]["p50"].as_f64().unwrap() - 2.0).abs() < 0.01);
        assert_eq!(v["criteria"][0]["name"], "p95 latency ms <");
        assert_eq!(v["criteria"][0]["pass"], true);
        assert!(v["server"].as_array().unwrap().is_empty());
    }
}
