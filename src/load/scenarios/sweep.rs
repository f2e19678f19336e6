//! `sweep`: the seed's client loop at 10, 100, 1,000 ... clients, one step
//! after the other, and how latency and throughput change per 10× clients:
//! the seed's "10× load, at most 2× slower". The slowdown of a step is its
//! p95 over the previous step's, scaled to a 10× step when the counts grow
//! by another factor; the worst one is judged against `--max-slowdown`.

use super::super::cli::SweepArgs;
use super::super::criteria::{check, Bound, Criterion, Observed, Thresholds};
use super::super::pool::data_paths;
use super::super::report::{step_between, RunReport, Step};
use super::super::sampler::{Reading, Sampled};
use super::super::server_latency;
use super::super::LoadError;
use super::closed_loop::{run_groups, Group, Think};
use super::{measured_with_marks, Setup};

/// p95 growth between two steps, normalised to a 10× growth in clients.
pub fn slowdown_per_10x(before: &Step, after: &Step) -> Option<f64> {
    let load = after.clients as f64 / before.clients.max(1) as f64;
    if load <= 1.0 || before.p95_ms <= 0.0 || after.p95_ms <= 0.0 {
        return None;
    }
    Some((after.p95_ms / before.p95_ms).powf(1.0 / load.log10()))
}

/// The thresholds of a step of `clients`: the seed's, written for 100
/// clients, with the per-connection bounds scaled by `clients / 100` above
/// 100 clients — open fds (each client holds one connection) — and at every
/// count for throughput (the seed's 1,000 req/s from 100 clients is 10 req/s
/// per client, which a closed loop with think time can only offer in
/// proportion to its clients). Latency, success, CPU, memory and cache hit
/// rate are budgets of the server and keep the seed's values at every step.
pub fn step_thresholds(seed: &Thresholds, clients: usize) -> Thresholds {
    let per_100 = clients as f64 / 100.0;
    Thresholds {
        max_fds: seed.max_fds * per_100.max(1.0),
        min_rps: seed.min_rps * per_100,
        ..seed.clone()
    }
}

/// What the server did between `from_s` and `to_s`, judged as a step.
fn step_observed(st: &Step, sampled: Option<&Sampled>, from_s: f64, to_s: f64) -> Observed {
    let mut o = Observed {
        success_pct: Some(if st.requests == 0 {
            0.0
        } else {
            100.0 * (st.requests - st.errors) as f64 / st.requests as f64
        }),
        p95_ms: Some(st.p95_ms),
        p99_ms: Some(st.p99_ms),
        rps: Some(st.rps),
        ..Observed::default()
    };
    let Some(s) = sampled else { return o };
    // Readings come a few ms after each whole second: the step's are those
    // from its start to just after its end.
    let inside: Vec<&Reading> = s
        .readings
        .iter()
        .filter(|r| r.t_s >= from_s - 0.5 && r.t_s <= to_s + 0.5)
        .collect();
    if inside.len() < 2 {
        return o;
    }
    o.cpu_pct = s.cpu_pct_between(from_s - 0.5, to_s + 0.5);
    o.cpu_pct_of_cores = o.cpu_pct.map(|c| s.of_cores(c));
    o.server_cores = s.server_cores;
    let peak = |f: fn(&Reading) -> u64| inside.iter().map(|r| f(r)).max().unwrap_or(0) as f64;
    o.rss_mib = Some(peak(|r| r.proc.rss_bytes) / 1048576.0);
    o.fds = Some(peak(|r| r.proc.fds_open));
    let (first, last) = (inside[0], inside[inside.len() - 1]);
    if let (Some((h0, m0)), Some((h1, m1))) = (first.cache, last.cache) {
        let (h, m) = (h1.saturating_sub(h0), m1.saturating_sub(m0));
        o.cache_hit_pct = (h + m > 0).then(|| 100.0 * h as f64 / (h + m) as f64);
    }
    o
}

/// Runs the steps and judges each of them.
pub fn run(args: &SweepArgs) -> Result<RunReport, LoadError> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        return Err(LoadError::Usage(
            "--clients needs counts > 0, e.g. 10,100,1000".into(),
        ));
    }
    let setup = Setup::new(&args.common)?;
    let step_ns = args.step_duration.as_nanos() as u64;
    let step_s = step_ns as f64 / 1e9;
    let most = args.clients.iter().copied().max().unwrap_or(1);
    let groups: Vec<Group> = args
        .clients
        .iter()
        .enumerate()
        .map(|(k, &clients)| Group {
            clients,
            paths: data_paths(most),
            cycle_paths: false,
            think: Think::Seed,
            think_jitter_pct: args.jitter.think_jitter,
            window_ns: (k as u64 * step_ns, (k as u64 + 1) * step_ns),
        })
        .collect();
    let marks_s = (1..=args.clients.len())
        .map(|k| k as f64 * step_s)
        .collect();
    let (m, ()) = measured_with_marks(&setup, 1000, marks_s, |start, live| {
        Ok((run_groups(&setup, groups, 1000, start, live)?, ()))
    })?;
    let duration_s = step_s * args.clients.len() as f64;
    let sampled = m.sampled.as_ref();
    let mut report = RunReport::build(
        "sweep",
        &args.common.url,
        &m.recorder,
        duration_s,
        sampled,
        false,
    );
    let seed = &args.common.criteria;
    for (k, &clients) in args.clients.iter().enumerate() {
        let from = k as u64 * step_ns;
        let (from_s, to_s) = (k as f64 * step_s, (k + 1) as f64 * step_s);
        let label = format!("{clients} clients");
        let mut st = step_between(&label, clients, &m.recorder, from, from + step_ns);
        st.server_latency_ms =
            sampled.and_then(|s| server_latency::between(&s.latency_marks, from_s, to_s));
        let limits = step_thresholds(seed, clients);
        st.criteria = limits.evaluate(&step_observed(&st, sampled, from_s, to_s));
        for c in &mut st.criteria {
            if c.name.starts_with("throughput") {
                c.detail = format!("{} req/s per 100 clients x {clients}/100", seed.min_rps);
            } else if c.name.starts_with("server fds") && clients > 100 {
                c.detail = format!("{} per 100 clients x {clients}/100", seed.max_fds);
            }
        }
        report.steps.push(st);
    }
    let mut slowdowns = Vec::new();
    for pair in report.steps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let Some(growth) = slowdown_per_10x(a, b) else {
            continue;
        };
        let server = a
            .server_latency_ms
            .as_ref()
            .zip(b.server_latency_ms.as_ref());
        let server_growth =
            server.and_then(|(x, y)| p99_growth_per_10x(a.clients, x.p99, b.clients, y.p99));
        let mut c = check(
            &format!("{} -> {} clients: p95 growth per 10x", a.clients, b.clients),
            Bound::Below,
            seed.max_slowdown,
            growth,
        );
        c.detail = match (server, server_growth) {
            (Some((x, y)), Some(g)) => format!(
                "client p95 {:.3} -> {:.3} ms; server-side p99 {:.3} -> {:.3} ms, x{g:.2} per 10x",
                a.p95_ms, b.p95_ms, x.p99, y.p99
            ),
            _ => format!("client p95 {:.3} -> {:.3} ms", a.p95_ms, b.p95_ms),
        };
        if !c.pass && server_growth.is_some_and(|g| g < seed.max_slowdown) {
            report.notes.push(format!(
                "{} -> {} clients: the client-side p95 grew x{growth:.2} per 10x while the \
                 server's own p99 grew x{:.2}: the time was spent outside percore's request \
                 handling (queueing in the generator, the kernel, or for a core the generator \
                 shares with the server; --load-cpus separates them, --think-jitter stops the \
                 clients' waits converging in lockstep)",
                a.clients,
                b.clients,
                server_growth.unwrap_or(f64::NAN)
            ));
        }
        slowdowns.push(c);
    }
    report.criteria = report
        .steps
        .iter()
        .flat_map(|st| {
            st.criteria.iter().map(move |c| Criterion {
                name: format!("{} clients: {}", st.clients, c.name),
                ..c.clone()
            })
        })
        .chain(slowdowns)
        .collect();
    report.notes.push(format!(
        "each step runs the seed loop (adaptive wait{}) and is judged on its own: the seed's \
         thresholds, with the per-connection bounds scaled by clients/100 (fds above 100 \
         clients, throughput at every step); the seed's 100-client step keeps them as written",
        if args.jitter.think_jitter > 0.0 {
            format!(", spread ±{} %", args.jitter.think_jitter)
        } else {
            String::new()
        }
    ));
    Ok(report)
}

/// Server-side p99 growth between two steps, per 10× clients.
fn p99_growth_per_10x(
    before_clients: usize,
    before_ms: f64,
    after_clients: usize,
    after_ms: f64,
) -> Option<f64> {
    let load = after_clients as f64 / before_clients.max(1) as f64;
    (load > 1.0 && before_ms > 0.0 && after_ms > 0.0)
        .then(|| (after_ms / before_ms).powf(1.0 / load.log10()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(clients: usize, p95_ms: f64) -> Step {
        Step {
            label: String::new(),
            clients,
            requests: 0,
            errors: 0,
            rps: 0.0,
            mean_ms: 0.0,
            p50_ms: 0.0,
            p95_ms,
            p99_ms: 0.0,
            server_latency_ms: None,
            server_cpu_us_per_request: None,
            machine_steal_pct: None,
            criteria: Vec::new(),
        }
    }

    #[test]
    fn slowdown_is_per_10x() {
        let s = slowdown_per_10x(&step(10, 1.0), &step(100, 2.0)).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        // 100x more clients, 4x slower: 2x per 10x.
        let s = slowdown_per_10x(&step(10, 1.0), &step(1000, 4.0)).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        assert!(slowdown_per_10x(&step(10, 1.0), &step(10, 4.0)).is_none());
    }

    #[test]
    fn per_connection_bounds_scale_with_the_step() {
        let seed = Thresholds::default();
        let at = |clients| step_thresholds(&seed, clients);
        // The 100-client step is judged by the seed's thresholds as written.
        assert_eq!(at(100).max_fds, 500.0);
        assert_eq!(at(100).min_rps, 1000.0);
        // fds scale above 100 clients only; throughput at every count.
        assert_eq!(at(10).max_fds, 500.0);
        assert_eq!(at(10).min_rps, 100.0);
        assert_eq!(at(1000).max_fds, 5000.0);
        assert_eq!(at(1000).min_rps, 10_000.0);
        // Server budgets do not scale.
        assert_eq!(at(1000).max_p95_ms, 200.0);
        assert_eq!(at(1000).max_cpu_pct, 60.0);
        assert_eq!(at(1000).max_rss_mib, 1024.0);
        // A 1,000-client step with 1,020 fds passes where the seed's 500 failed.
        let o = Observed {
            fds: Some(1020.0),
            ..Observed::default()
        };
        assert!(!seed.evaluate(&o)[0].pass);
        assert!(at(1000).evaluate(&o)[0].pass);
    }
}
