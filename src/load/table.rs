//! The summary table printed on stdout at the end of a run: totals, latency
//! percentiles, status codes and errors, the server's figures, the parts of
//! the scenario, and the criteria with the verdict.

use std::fmt::Write;

use super::report::{Latency, RunReport, Step};

/// The whole table as text.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\npercore-load {} -> {}   ({:.1} s)\n",
        r.scenario, r.target, s.duration_s
    );
    let error_pct = if s.requests == 0 {
        0.0
    } else {
        100.0 * s.errors as f64 / s.requests as f64
    };
    let _ = writeln!(
        out,
        "  requests     {:<12} errors {} ({error_pct:.3} %)   throughput {:.1} req/s",
        s.requests, s.errors, s.rps
    );
    let _ = writeln!(
        out,
        "  connections  {} opened, {} reconnects",
        r.connections.opened, r.connections.reconnects
    );
    if let Some(c) = &r.server_count {
        let _ = writeln!(
            out,
            "  server count {} requests ({}): {}",
            c.server_requests,
            c.counter,
            if c.agrees { "agrees" } else { "DIFFERS" }
        );
    }
    let _ = writeln!(
        out,
        "\n  {:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency ms", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    let label = if r.latency_raw_ms.is_some() {
        "from intended"
    } else {
        "measured"
    };
    latency_row(&mut out, label, &r.latency_ms);
    if let Some(raw) = &r.latency_raw_ms {
        latency_row(&mut out, "raw (from send)", raw);
    }
    let codes: Vec<String> = r
        .status_codes
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect();
    let _ = writeln!(out, "\n  status       {}", none_if_empty(codes.join("   ")));
    let errors: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let _ = writeln!(out, "  errors       {}", none_if_empty(errors.join("   ")));
    server_rows(&mut out, r);
    if !r.steps.is_empty() {
        let judged = r.steps.iter().any(|s| !s.criteria.is_empty());
        // Server CPU per request and steal, where the scenario measured
        // them (soak).
        let costs = Step::any_costs(&r.steps);
        let _ = writeln!(
            out,
            "\n  {:<26} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}{}{}",
            "part",
            "clients",
            "requests",
            "req/s",
            "mean ms",
            "p95 ms",
            "p99 ms",
            "server p50",
            "server p99",
            if costs {
                " server us/req    steal %"
            } else {
                ""
            },
            if judged { "   verdict" } else { "" }
        );
        for st in &r.steps {
            let server = |f: fn(&super::server_latency::ServerLatency) -> f64| {
                st.server_latency_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format!("{:.3}", f(l)))
            };
            let verdict = match (judged, st.passed()) {
                (false, _) => "",
                (true, true) => "   PASS",
                (true, false) => "   FAIL",
            };
            let cost = if costs {
                let (cpu_us, steal_pct) = st.cost_cells();
                format!(" {cpu_us:>14} {steal_pct:>10}")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {:<26} {:>7} {:>10} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>10}{cost}{verdict}",
                st.label,
                st.clients,
                st.requests,
                st.rps,
                st.mean_ms,
                st.p95_ms,
                st.p99_ms,
                server(|l| l.p50),
                server(|l| l.p99)
            );
        }
        if r.steps.iter().any(|s| s.server_latency_ms.is_some()) {
            let _ = writeln!(
                out,
                "  (server p50/p99: ms from the server's own histogram over the part, /api/metrics)"
            );
        }
        if costs {
            let _ = writeln!(
                out,
                "  (server us/req: the server's CPU time over the part per request answered; \
                 steal %: this machine's CPU time the host took, /proc/stat)"
            );
        }
    }
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    let width = r
        .criteria
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(24);
    let _ = writeln!(
        out,
        "\n  {:<width$} {:>12} {:>12}   result",
        "criterion", "threshold", "observed"
    );
    for c in &r.criteria {
        let _ = writeln!(
            out,
            "  {:<width$} {:>12} {:>12}   {}{}",
            c.name,
            number(c.threshold),
            number(c.observed),
            if c.pass { "PASS" } else { "FAIL" },
            if c.detail.is_empty() {
                String::new()
            } else {
                format!("   ({})", c.detail)
            }
        );
    }
    let held = r.criteria.iter().filter(|c| c.pass).count();
    let _ = writeln!(
        out,
        "\n  RESULT: {} ({held}/{} criteria held)\n",
        if r.passed() { "PASS" } else { "FAIL" },
        r.criteria.len()
    );
    out
}

fn latency_row(out: &mut String, label: &str, l: &Latency) {
    let _ = writeln!(
        out,
        "  {label:<15} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    );
}

fn server_rows(out: &mut String, r: &RunReport) {
    if r.server.is_empty() {
        let _ = writeln!(out, "  server       not sampled");
        return;
    }
    let n = r.server.len() as f64;
    let cpu_mean = r.server.iter().map(|s| s.cpu_pct).sum::<f64>() / n;
    let cpu_peak = r.server.iter().map(|s| s.cpu_pct).fold(0.0, f64::max);
    let cores = r.placement.server_cores.max(1);
    let of_cores = |pct: f64| pct / cores as f64;
    let rss_peak = r.server.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
    let fds_peak = r.server.iter().map(|s| s.fds_open).max().unwrap_or(0);
    let switches = r
        .server
        .iter()
        .map(|s| s.context_switches_per_s)
        .sum::<f64>()
        / n;
    let _ = writeln!(
        out,
        "  server       CPU mean {cpu_mean:.1} % / peak {cpu_peak:.1} % of one core (docker stats) \
         = {:.1} % / {:.1} % of its {cores} cores\n               \
         RSS peak {:.1} MiB   fds peak {fds_peak}   {switches:.0} ctx switches/s",
        of_cores(cpu_mean),
        of_cores(cpu_peak),
        rss_peak as f64 / (1024.0 * 1024.0)
    );
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() {
        "none".to_string()
    } else {
        s
    }
}

/// A figure with as many decimals as its size deserves.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "n/a".to_string()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
