//! The `--html FILE` report: one self-contained page (inline CSS and SVG, no
//! script, nothing fetched) with the verdict, the figures, the criteria, and
//! charts of latency percentiles and throughput over time, server CPU and
//! RSS over time, and the latency distribution.

use std::fmt::Write;

use super::report::{Latency, RunReport, Step};
use super::svg::{escape, line_chart, Chart, Series};
use super::table::number;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1140px;\
color:#222;background:#fafafa}h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}\
.sub{color:#555;margin-bottom:16px}.badge{display:inline-block;padding:4px 14px;border-radius:4px;\
color:#fff;font-weight:700;margin-left:12px;font-size:16px}.pass{background:#1a7f37}.fail{background:#c62828}\
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;border-radius:6px;\
padding:10px 16px;min-width:120px}.card b{display:block;font-size:22px}.card span{color:#666;font-size:13px}\
table{border-collapse:collapse;background:#fff;font-size:14px}td,th{border:1px solid #ddd;padding:5px 10px;\
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}\
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin:12px 0}\
td.ok{color:#1a7f37;font-weight:700}td.bad{color:#c62828;font-weight:700}.note{color:#444;font-size:14px}";

/// The page.
pub fn render(r: &RunReport) -> String {
    let mut h = String::new();
    let passed = r.passed();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>percore-load {}</title>\
         <style>{STYLE}</style></head><body><h1>percore-load {}<span class=\"badge {}\">{}</span></h1>\
         <div class=\"sub\">{} &middot; {:.1} s</div>",
        escape(&r.scenario),
        escape(&r.scenario),
        if passed { "pass" } else { "fail" },
        if passed { "PASS" } else { "FAIL" },
        escape(&r.target),
        r.summary.duration_s
    );
    cards(&mut h, r);
    criteria_table(&mut h, r);
    h.push_str("<h2>Over time</h2>");
    chart(&mut h, &latency_chart(r));
    chart(&mut h, &throughput_chart(r));
    if !r.server.is_empty() {
        chart(&mut h, &server_chart(r, true));
        chart(&mut h, &server_chart(r, false));
    }
    h.push_str("<h2>Latency distribution</h2>");
    chart(&mut h, &distribution_chart(r));
    latency_table(&mut h, r);
    details(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn chart(h: &mut String, c: &Chart) {
    let _ = write!(h, "<div class=\"chart\">{}</div>", line_chart(c));
}

fn cards(h: &mut String, r: &RunReport) {
    let s = &r.summary;
    let success = if s.requests == 0 {
        0.0
    } else {
        100.0 * (s.requests - s.errors) as f64 / s.requests as f64
    };
    let items = [
        (format!("{}", s.requests), "requests"),
        (format!("{:.1}", s.rps), "requests / s"),
        (format!("{success:.3} %"), "success (2xx)"),
        (format!("{:.3} ms", r.latency_ms.p95), "p95 latency"),
        (format!("{:.3} ms", r.latency_ms.p99), "p99 latency"),
        (format!("{}", r.connections.reconnects), "reconnects"),
    ];
    h.push_str("<div class=\"cards\">");
    for (value, label) in items {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{value}</b><span>{label}</span></div>"
        );
    }
    h.push_str("</div>");
}

fn criteria_table(h: &mut String, r: &RunReport) {
    h.push_str("<h2>Criteria</h2><table><tr><th>criterion</th><th>threshold</th><th>observed</th><th>result</th><th>detail</th></tr>");
    for c in &r.criteria {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"note\" style=\"text-align:left\">{}</td></tr>",
            escape(&c.name),
            number(c.threshold),
            number(c.observed),
            if c.pass { "ok" } else { "bad" },
            if c.pass { "PASS" } else { "FAIL" },
            escape(&c.detail)
        );
    }
    h.push_str("</table>");
}

/// The x range of the charts over time: the whole run.
fn time_range(r: &RunReport) -> (f64, f64) {
    let last_sample = r.server.last().map_or(0.0, |s| s.t_s);
    (0.0, r.summary.duration_s.max(last_sample).ceil().max(1.0))
}

fn latency_chart(r: &RunReport) -> Chart {
    let line = |name: &str, color, f: fn(&super::report::TimelinePoint) -> f64| Series {
        name: name.into(),
        color,
        points: r.timeline.iter().map(|p| (p.t_s, f(p))).collect(),
    };
    Chart {
        title: "Latency percentiles per second".into(),
        x_label: "time since start (s)".into(),
        y_label: "latency (ms)".into(),
        series: vec![
            line("p50", "#1f77b4", |p| p.p50_ms),
            line("p95", "#ff7f0e", |p| p.p95_ms),
            line("p99", "#d62728", |p| p.p99_ms),
        ],
        x_ticks: None,
        x_range: Some(time_range(r)),
    }
}

fn throughput_chart(r: &RunReport) -> Chart {
    let points = |f: fn(&super::report::TimelinePoint) -> f64| -> Vec<(f64, f64)> {
        r.timeline.iter().map(|p| (p.t_s, f(p))).collect()
    };
    Chart {
        title: "Throughput per second".into(),
        x_label: "time since start (s)".into(),
        y_label: "requests / s".into(),
        series: vec![
            Series {
                name: "responses/s".into(),
                color: "#2ca02c",
                points: points(|p| p.rps),
            },
            Series {
                name: "errors/s".into(),
                color: "#d62728",
                points: points(|p| p.errors as f64),
            },
        ],
        x_ticks: None,
        x_range: Some(time_range(r)),
    }
}

fn server_chart(r: &RunReport, cpu: bool) -> Chart {
    let line = |name: String, color, f: &dyn Fn(&super::sampler::ServerSample) -> f64| Series {
        name,
        color,
        points: r.server.iter().map(|s| (s.t_s, f(s))).collect(),
    };
    let cores = r.placement.server_cores.max(1);
    let (title, y_label, series) = if cpu {
        let mut series = vec![
            line("% of one core".into(), "#9467bd", &|s| s.cpu_pct),
            line(format!("% of its {cores} cores"), "#17becf", &|s| {
                s.cpu_pct_of_cores
            }),
        ];
        // The host's share of this machine, where it was read: latency
        // that rises with it is the host's doing, not the server's.
        if r.server.iter().any(|s| s.machine_steal_pct.is_some()) {
            series.push(Series {
                name: "steal, % of this machine".into(),
                color: "#7f7f7f",
                points: r
                    .server
                    .iter()
                    .filter_map(|s| Some((s.t_s, s.machine_steal_pct?)))
                    .collect(),
            });
        }
        (
            "Server CPU (docker stats: 100 % = one core)",
            "CPU (%)",
            series,
        )
    } else {
        (
            "Server resident memory",
            "RSS (MiB)",
            vec![line("RSS".into(), "#8c564b", &|s| {
                s.rss_bytes as f64 / 1048576.0
            })],
        )
    };
    Chart {
        title: title.into(),
        x_label: "time since start (s)".into(),
        y_label: y_label.into(),
        series,
        x_ticks: None,
        x_range: Some(time_range(r)),
    }
}

/// x position of quantile `q` on the "nines" axis (90 % = 1, 99 % = 2 ...).
fn nines(q: f64, cap: f64) -> f64 {
    if q >= 1.0 {
        cap
    } else {
        (-(1.0 - q).log10()).min(cap)
    }
}

fn distribution_chart(r: &RunReport) -> Chart {
    let cap = r
        .distribution
        .iter()
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, _)| -(1.0 - q).log10())
        .fold(1.0, f64::max);
    let series = |name: &str, color, d: &[(f64, f64)]| Series {
        name: name.into(),
        color,
        points: d.iter().map(|&(q, ms)| (nines(q, cap), ms)).collect(),
    };
    let mut lines = vec![series(
        if r.raw_distribution.is_empty() {
            "latency"
        } else {
            "from intended send (corrected)"
        },
        "#d62728",
        &r.distribution,
    )];
    if !r.raw_distribution.is_empty() {
        lines.push(series(
            "from actual send (raw)",
            "#1f77b4",
            &r.raw_distribution,
        ));
    }
    let labels = [
        "0 %",
        "90 %",
        "99 %",
        "99.9 %",
        "99.99 %",
        "99.999 %",
        "99.9999 %",
    ];
    let ticks = (0..=cap.floor() as usize)
        .filter(|i| cap - *i as f64 > 0.35)
        .filter_map(|i| labels.get(i).map(|l| (i as f64, l.to_string())))
        .chain(std::iter::once((cap, "max".to_string())))
        .collect();
    Chart {
        title: "Latency by percentile (whole run)".into(),
        x_label: "percentile (log scale of nines)".into(),
        y_label: "latency (ms)".into(),
        series: lines,
        x_ticks: Some(ticks),
        x_range: None,
    }
}

fn latency_row(h: &mut String, label: &str, l: &Latency) {
    let _ = write!(
        h,
        "<tr><td>{label}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
        l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    );
}

fn latency_table(h: &mut String, r: &RunReport) {
    h.push_str("<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let label = if r.latency_raw_ms.is_some() {
        "from intended send"
    } else {
        "measured"
    };
    latency_row(h, label, &r.latency_ms);
    if let Some(raw) = &r.latency_raw_ms {
        latency_row(h, "from actual send (raw)", raw);
    }
    h.push_str("</table>");
}

fn details(h: &mut String, r: &RunReport) {
    if !r.steps.is_empty() {
        let costs = Step::any_costs(&r.steps);
        h.push_str("<h2>Parts</h2><table><tr><th>part</th><th>clients</th><th>requests</th><th>req/s</th><th>mean ms</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>server p50 ms</th><th>server p99 ms</th>");
        if costs {
            h.push_str("<th>server CPU µs/req</th><th>steal %</th>");
        }
        h.push_str("<th>verdict</th></tr>");
        for s in &r.steps {
            let server = |f: fn(&super::server_latency::ServerLatency) -> f64| {
                s.server_latency_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format!("{:.3}", f(l)))
            };
            let verdict = match (s.criteria.is_empty(), s.passed()) {
                (true, _) => "<td>-</td>",
                (false, true) => "<td class=\"ok\">PASS</td>",
                (false, false) => "<td class=\"bad\">FAIL</td>",
            };
            let cost = if costs {
                let (cpu_us, steal_pct) = s.cost_cells();
                format!("<td>{cpu_us}</td><td>{steal_pct}</td>")
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td>{cost}{verdict}</tr>",
                escape(&s.label), s.clients, s.requests, s.rps, s.mean_ms, s.p50_ms, s.p95_ms, s.p99_ms,
                server(|l| l.p50), server(|l| l.p99)
            );
        }
        h.push_str("</table><p class=\"note\">server p50/p99: the server's own latency over the part, from the histogram in /api/metrics.");
        if costs {
            h.push_str(" server CPU µs/req: the server's CPU time over the part per request answered. steal %: the share of this machine's CPU time the host took (/proc/stat), which slows the clients and the server alike.");
        }
        h.push_str("</p>");
    }
    h.push_str("<h2>Responses and errors</h2><table><tr><th>kind</th><th>count</th></tr>");
    for (code, n) in &r.status_codes {
        let _ = write!(h, "<tr><td>HTTP {}</td><td>{n}</td></tr>", escape(code));
    }
    for (kind, n) in r.errors.iter().filter(|(k, _)| !k.starts_with("http_")) {
        let _ = write!(h, "<tr><td>{} errors</td><td>{n}</td></tr>", escape(kind));
    }
    let _ = write!(
        h,
        "<tr><td>connections opened</td><td>{}</td></tr><tr><td>reconnects</td><td>{}</td></tr></table>",
        r.connections.opened, r.connections.reconnects
    );
    if let Some(c) = &r.server_count {
        let _ = write!(
            h,
            "<p class=\"note\">Server counted {} requests ({}): {} the generator's {}.</p>",
            c.server_requests,
            escape(&c.counter),
            if c.agrees {
                "agrees with"
            } else {
                "DIFFERS from"
            },
            r.summary.requests
        );
    }
    for note in &r.notes {
        let _ = write!(h, "<p class=\"note\">{}</p>", escape(note));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::Outcome;
    use crate::load::recorder::Recorder;

    #[test]
    fn page_is_self_contained_with_charts() {
        let mut rec = Recorder::new(1000, None);
        for i in 0..3000u64 {
            rec.record(
                i * 1_000_000,
                i * 1_000_000,
                i * 1_000_000 + 500_000,
                Outcome::Status(200),
            );
        }
        let r = RunReport::build("rate", "http://x:1", &rec, 3.0, None, true);
        let page = render(&r);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.matches("<svg").count() >= 3);
        assert!(!page.contains("http://") || !page.contains("src=\"http"));
        assert!(!page.contains("<script"));
        assert!(page.contains("from actual send (raw)"));
    }
}
