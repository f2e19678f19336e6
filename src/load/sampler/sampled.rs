//! What a run sampled from the server: its raw readings, and the figures
//! derived from consecutive ones (CPU, cache hit rate, per-second samples)
//! and from the first and the last (the server's request count).

use serde::Serialize;

use super::super::proc_pid;
use super::super::server_latency::Mark;
use crate::metrics::machine_cpu;
use crate::shard::routes::RouteClass;

/// One raw reading.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// Seconds since the run started (negative: before it).
    pub t_s: f64,
    /// Figures common to both sources.
    pub proc: proc_pid::ProcReading,
    /// Cumulative cache hits and misses (metrics source only).
    pub cache: Option<(u64, u64)>,
    /// `requests.total` (metrics source only).
    pub requests_total: Option<u64>,
    /// `requests.byRoute`, indexed by [`RouteClass::index`] (metrics source,
    /// and a server that counts by route, only).
    pub requests_by_route: Option<[u64; RouteClass::ALL.len()]>,
    /// This machine's CPU ticks (the load generator's: the server's too when
    /// both run here), for steal.
    pub machine: Option<machine_cpu::CpuTicks>,
}

/// One per-second server sample, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSample {
    /// End of the interval, seconds since the run started.
    pub t_s: f64,
    /// CPU use over the interval, % of one core (docker stats: 200 % is
    /// two cores busy).
    pub cpu_pct: f64,
    /// CPU use over the interval, % of the server's cores.
    pub cpu_pct_of_cores: f64,
    /// RSS at the end of the interval, bytes.
    pub rss_bytes: u64,
    /// Open fds at the end of the interval.
    pub fds_open: u64,
    /// Context switches per second over the interval.
    pub context_switches_per_s: f64,
    /// Cache hit rate over the interval (`None` without lookups or source).
    pub cache_hit_rate: Option<f64>,
    /// Steal over the interval, % of this machine's CPU time (the host ran
    /// something else while the VM wanted its cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_steal_pct: Option<f64>,
}

/// Everything sampled during a run.
#[derive(Clone, Debug, Default)]
pub struct Sampled {
    /// Readings in time order; the first precedes the load, the last follows it.
    pub readings: Vec<Reading>,
    /// Successful `/api/metrics` calls (each counted by the server).
    pub metrics_calls: u64,
    /// The route class the load requests, whose server count the run's
    /// request count is checked against.
    pub route: RouteClass,
    /// Failed sampling attempts.
    pub failures: u64,
    /// Cores `cpu_pct_of_cores` is relative to.
    pub server_cores: usize,
    /// The cores the server's shards are pinned to (`shards[].core`), when
    /// the server reports them.
    pub server_core_ids: Vec<usize>,
    /// The server's latency histogram at the first reading, the last, and
    /// the first reading at or after each mark asked for.
    pub latency_marks: Vec<Mark>,
}

impl Sampled {
    /// Per-second samples from consecutive readings.
    pub fn samples(&self) -> Vec<ServerSample> {
        self.readings
            .windows(2)
            .map(|w| {
                let (a, b) = (&w[0], &w[1]);
                let wall_s = (b.t_s - a.t_s).max(1e-6);
                let cpu_s = (b.proc.cpu_seconds - a.proc.cpu_seconds).max(0.0);
                let switches = b
                    .proc
                    .context_switches
                    .saturating_sub(a.proc.context_switches);
                let cpu_pct = 100.0 * cpu_s / wall_s;
                ServerSample {
                    t_s: b.t_s,
                    cpu_pct,
                    cpu_pct_of_cores: cpu_pct / self.server_cores.max(1) as f64,
                    rss_bytes: b.proc.rss_bytes,
                    fds_open: b.proc.fds_open,
                    context_switches_per_s: switches as f64 / wall_s,
                    cache_hit_rate: hit_rate(a.cache, b.cache),
                    machine_steal_pct: a
                        .machine
                        .zip(b.machine)
                        .and_then(|(x, y)| machine_cpu::steal_pct(x, y)),
                }
            })
            .collect()
    }

    /// CPU over the whole sampled span, % of one core (docker's convention).
    pub fn cpu_pct_overall(&self) -> Option<f64> {
        self.cpu_pct_between(f64::NEG_INFINITY, f64::INFINITY)
    }

    /// CPU between the first reading at or after `from_s` and the last at
    /// or before `to_s`, % of one core.
    pub fn cpu_pct_between(&self, from_s: f64, to_s: f64) -> Option<f64> {
        let a = self.readings.iter().find(|r| r.t_s >= from_s)?;
        let b = self.readings.iter().rev().find(|r| r.t_s <= to_s)?;
        let wall_s = b.t_s - a.t_s;
        (wall_s > 0.0).then(|| 100.0 * (b.proc.cpu_seconds - a.proc.cpu_seconds) / wall_s)
    }

    /// This machine's steal between the same readings as `cpu_pct_between`,
    /// % of its CPU time.
    pub fn steal_pct_between(&self, from_s: f64, to_s: f64) -> Option<f64> {
        let a = self.readings.iter().find(|r| r.t_s >= from_s)?;
        let b = self.readings.iter().rev().find(|r| r.t_s <= to_s)?;
        machine_cpu::steal_pct(a.machine?, b.machine?)
    }

    /// `pct_of_one_core` as a % of the server's cores.
    pub fn of_cores(&self, pct_of_one_core: f64) -> f64 {
        pct_of_one_core / self.server_cores.max(1) as f64
    }

    /// Cache hit rate (0..1) over the whole sampled span.
    pub fn cache_hit_rate_overall(&self) -> Option<f64> {
        hit_rate(self.readings.first()?.cache, self.readings.last()?.cache)
    }

    /// Requests the server answered for the load, and which counter says
    /// so: the delta of `requests.byRoute.<the load's class>` between the
    /// first and the last reading, or, from a server that does not count by
    /// route, the `requests.total` delta minus the `/api/metrics` calls made
    /// after the first reading.
    pub fn server_requests(&self) -> Option<ServerRequests> {
        let (first, last) = (self.readings.first()?, self.readings.last()?);
        let delta = |a: u64, b: u64| b - a.min(b);
        if let (Some(a), Some(b)) = (first.requests_by_route, last.requests_by_route) {
            let i = self.route.index();
            return Some(ServerRequests {
                count: delta(a[i], b[i]),
                counter: format!("requests.byRoute.{} delta", self.route.name()),
            });
        }
        let own_calls = self.metrics_calls.saturating_sub(1);
        Some(ServerRequests {
            count: delta(first.requests_total?, last.requests_total?).saturating_sub(own_calls),
            counter: format!("requests.total delta minus {own_calls} own metrics calls"),
        })
    }
}

/// The server's count of the requests a run sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRequests {
    /// Requests.
    pub count: u64,
    /// Which server counter it was derived from, and how.
    pub counter: String,
}

fn hit_rate(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    let ((h0, m0), (h1, m1)) = (a?, b?);
    let (hits, misses) = (h1.saturating_sub(h0), m1.saturating_sub(m0));
    (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(t_s: f64, cpu: f64, total: u64, hits: u64, misses: u64) -> Reading {
        Reading {
            t_s,
            proc: proc_pid::ProcReading {
                cpu_seconds: cpu,
                rss_bytes: 1 << 20,
                fds_open: 10,
                context_switches: (t_s * 100.0) as u64,
            },
            cache: Some((hits, misses)),
            requests_total: Some(total),
            requests_by_route: None,
            // 200 ticks a second on two cores, 2 of them stolen per second
            // until 1 s and 20 after: 1 % steal, then 10 %.
            machine: Some(machine_cpu::CpuTicks {
                steal: if t_s <= 1.0 {
                    (t_s * 2.0) as u64
                } else {
                    2 + ((t_s - 1.0) * 20.0) as u64
                },
                total: (t_s * 200.0) as u64,
            }),
        }
    }

    #[test]
    fn derives_cpu_cache_and_request_count() {
        let s = Sampled {
            readings: vec![
                reading(0.0, 1.0, 5, 0, 0),
                reading(1.0, 1.5, 1006, 90, 10),
                reading(2.0, 2.5, 2007, 180, 20),
            ],
            metrics_calls: 3,
            failures: 0,
            server_cores: 2,
            ..Sampled::default()
        };
        let samples = s.samples();
        assert_eq!(samples.len(), 2);
        // Half a core, then one core: 50 % and 100 % in docker's
        // convention, 25 % and 50 % of the server's two cores.
        assert!((samples[0].cpu_pct - 50.0).abs() < 1e-9);
        assert!((samples[1].cpu_pct - 100.0).abs() < 1e-9);
        assert!((samples[0].cpu_pct_of_cores - 25.0).abs() < 1e-9);
        assert!((samples[1].cpu_pct_of_cores - 50.0).abs() < 1e-9);
        assert!((s.cpu_pct_overall().unwrap() - 75.0).abs() < 1e-9);
        assert!((s.of_cores(75.0) - 37.5).abs() < 1e-9);
        assert!((s.cpu_pct_between(1.0, 2.0).unwrap() - 100.0).abs() < 1e-9);
        assert!((s.cache_hit_rate_overall().unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(samples[0].machine_steal_pct, Some(1.0));
        assert_eq!(samples[1].machine_steal_pct, Some(10.0));
        assert_eq!(s.steal_pct_between(0.0, 2.0), Some(5.5));
        assert_eq!(s.steal_pct_between(1.0, 2.0), Some(10.0));
        // From a server that does not count by route: 2002 more counted,
        // 2 of which were the sampler's own calls.
        assert_eq!(
            s.server_requests(),
            Some(ServerRequests {
                count: 2000,
                counter: "requests.total delta minus 2 own metrics calls".into()
            })
        );
    }

    /// With `byRoute`, the count is the load's own class: requests of other
    /// classes (health probes, scrapes, the sampler's calls) do not change it.
    #[test]
    fn counts_the_load_route_only() {
        let at = |t_s: f64, total: u64, by_route: [u64; 4]| Reading {
            requests_by_route: Some(by_route),
            ..reading(t_s, 0.0, total, 0, 0)
        };
        let mut s = Sampled {
            readings: vec![
                at(0.0, 10, [0, 3, 5, 2]),
                at(1.0, 1_020, [1_000, 8, 8, 4]),
                at(2.0, 2_031, [2_000, 15, 11, 5]),
            ],
            metrics_calls: 3,
            ..Sampled::default()
        };
        assert_eq!(
            s.server_requests(),
            Some(ServerRequests {
                count: 2_000,
                counter: "requests.byRoute.data delta".into()
            })
        );
        s.route = RouteClass::Health;
        assert_eq!(s.server_requests().map(|r| r.count), Some(12));
    }
}
