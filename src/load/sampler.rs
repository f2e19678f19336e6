//! Samples the server's own figures once per second while a run goes: from
//! percore's `/api/metrics` (CPU seconds, RSS, open fds, context switches,
//! cache hits and misses, `requests.total` and `requests.byRoute`) or from
//! `/proc/<pid>`.
//!
//! It runs on a plain thread with a blocking keep-alive connection, apart
//! from the load executors. A run checks that its own request count agrees
//! with the server's for the route class its load requests
//! (`requests.byRoute.data`, or `.health` for `health`): health probes,
//! metrics scrapes and this sampler's own calls land in other classes, so
//! they cannot disturb it. Against a server without `byRoute`, the check
//! falls back to `requests.total` minus this sampler's own calls, which any
//! other client's requests do disturb.
//!
//! CPU is reported both ways: `cpu_pct` is CPU seconds used per wall second
//! × 100, so 100 % is one core busy and two busy cores read 200 % — what
//! `docker stats` shows (`cpu_delta / system_delta × online_cpus × 100`);
//! `cpu_pct_of_cores` divides that by the server's cores (`--server-cores`,
//! else the `workers` the server reports), so 100 % is all of them busy.
//!
//! The server's cumulative latency histogram (`latency.histogramUs`) is kept
//! only at the marks a scenario asks for (its part boundaries), not every
//! second: an hour of readings would otherwise hold an hour of histograms.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::proc_pid;
use super::server_latency::{self, Mark};
use super::target::Target;
use crate::shard::routes::RouteClass;

/// Where server figures come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `GET /api/metrics` on the target.
    Metrics(Target),
    /// `/proc/<pid>` on this machine.
    Proc(u32),
}

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

/// A running sampler thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Sampled>,
}

impl Sampler {
    /// Takes a first reading now (before the load), then one per second
    /// after `start` until stopped. `server_cores`: the cores CPU % of all
    /// cores is relative to (`None`: the workers the server reports, else
    /// the cores this process may use). `marks_s`: when to keep the server's
    /// latency histogram (seconds since `start`, ascending). `route`: the
    /// class of the load's requests, for the request count check.
    pub fn start(
        source: Source,
        start: quanta::Instant,
        server_cores: Option<usize>,
        marks_s: Vec<f64>,
        route: RouteClass,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = Reader::new(source, marks_s);
        let mut sampled = Sampled {
            route,
            ..Sampled::default()
        };
        reader.sample(start, &mut sampled);
        sampled.server_cores = server_cores
            .or(reader.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next_s = 1.0;
            loop {
                while elapsed_s(start) < next_s && !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let last = flag.load(Ordering::Relaxed);
                reader.keep_histogram |= last;
                reader.sample(start, &mut sampled);
                if last {
                    return sampled;
                }
                next_s = (elapsed_s(start).floor() + 1.0).max(next_s + 1.0);
            }
        });
        Sampler { stop, thread }
    }

    /// Takes a last reading (after the load) and returns all of them.
    pub fn finish(self) -> Sampled {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn elapsed_s(start: quanta::Instant) -> f64 {
    let now = quanta::Instant::now();
    match now.checked_duration_since(start) {
        Some(d) => d.as_secs_f64(),
        None => -start.saturating_duration_since(now).as_secs_f64(),
    }
}

struct Reader {
    source: Source,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    /// Marks not yet reached, ascending.
    marks_s: std::collections::VecDeque<f64>,
    /// Keep the next reading's histogram (the first and the last reading).
    keep_histogram: bool,
    /// `process.workers`, from the first metrics reading.
    workers: Option<usize>,
}

impl Reader {
    fn new(source: Source, marks_s: Vec<f64>) -> Reader {
        Reader {
            source,
            conn: None,
            buf: Vec::with_capacity(16 * 1024),
            marks_s: marks_s.into(),
            keep_histogram: true,
            workers: None,
        }
    }

    fn sample(&mut self, start: quanta::Instant, into: &mut Sampled) {
        let t_s = elapsed_s(start);
        let reading = match self.source.clone() {
            Source::Proc(pid) => proc_pid::read(pid).map(|proc| Reading {
                t_s,
                proc,
                cache: None,
                requests_total: None,
                requests_by_route: None,
            }),
            Source::Metrics(target) => {
                let value = self
                    .fetch_metrics(&target)
                    .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok());
                let reading = value.as_ref().and_then(|v| parse_value(v, t_s));
                if let (Some(v), Some(_)) = (&value, &reading) {
                    into.metrics_calls += 1;
                    self.note_extras(v, t_s, into);
                }
                reading
            }
        };
        match reading {
            Some(r) => into.readings.push(r),
            None => into.failures += 1,
        }
    }

    /// The server's cores (once) and its latency histogram (at marks).
    fn note_extras(&mut self, v: &serde_json::Value, t_s: f64, into: &mut Sampled) {
        if self.workers.is_none() {
            self.workers = v
                .pointer("/process/workers")
                .and_then(|w| w.as_u64())
                .map(|w| w as usize);
            into.server_core_ids = v
                .get("shards")
                .and_then(|s| s.as_array())
                .map(|shards| {
                    shards
                        .iter()
                        .filter_map(|s| s.get("core")?.as_u64().map(|c| c as usize))
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut keep = std::mem::take(&mut self.keep_histogram);
        while self.marks_s.front().is_some_and(|&m| t_s >= m) {
            self.marks_s.pop_front();
            keep = true;
        }
        if keep {
            if let Some(pairs) = server_latency::pairs_of(v) {
                into.latency_marks.push(Mark { t_s, pairs });
            }
        }
    }

    fn fetch_metrics(&mut self, target: &Target) -> Option<Vec<u8>> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&target.addr, Duration::from_secs(2)).ok()?;
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_nodelay(true);
            self.conn = Some(s);
        }
        let body = self.exchange(target);
        if body.is_none() {
            self.conn = None;
        }
        body
    }

    fn exchange(&mut self, target: &Target) -> Option<Vec<u8>> {
        let conn = self.conn.as_mut()?;
        let request = format!(
            "GET /api/metrics HTTP/1.1\r\nHost: {}\r\n\r\n",
            target.host_header
        );
        conn.write_all(request.as_bytes()).ok()?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = conn.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                if resp.code != Some(200) {
                    return None;
                }
                let length: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())?;
                if self.buf.len() >= head + length {
                    return Some(self.buf[head..head + length].to_vec());
                }
            }
        }
    }
}

/// Extracts a reading from a parsed `/api/metrics` body.
pub fn parse_value(v: &serde_json::Value, t_s: f64) -> Option<Reading> {
    let u = |p: &str| v.pointer(p).and_then(|x| x.as_u64());
    let f = |p: &str| v.pointer(p).and_then(|x| x.as_f64());
    Some(Reading {
        t_s,
        proc: proc_pid::ProcReading {
            cpu_seconds: f("/cpu/userSeconds")? + f("/cpu/systemSeconds")?,
            rss_bytes: u("/memory/rss")?,
            fds_open: u("/fds/open").unwrap_or(0),
            context_switches: u("/contextSwitches/voluntary").unwrap_or(0)
                + u("/contextSwitches/involuntary").unwrap_or(0),
        },
        cache: u("/cache/hits").zip(u("/cache/misses")),
        requests_total: u("/requests/total"),
        requests_by_route: by_route(v),
    })
}

/// `requests.byRoute`, when the server reports every class.
fn by_route(v: &serde_json::Value) -> Option<[u64; RouteClass::ALL.len()]> {
    let routes = v.pointer("/requests/byRoute")?;
    let mut counts = [0; RouteClass::ALL.len()];
    for (count, class) in counts.iter_mut().zip(RouteClass::ALL) {
        *count = routes.get(class.name())?.as_u64()?;
    }
    Some(counts)
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

    #[test]
    fn parses_the_metrics_body() {
        let body = br#"{"memory":{"rss":123},"cpu":{"userSeconds":1.5,"systemSeconds":0.5},
            "fds":{"open":7},"contextSwitches":{"voluntary":3,"involuntary":4},
            "cache":{"hits":9,"misses":1},"requests":{"total":42,
            "byRoute":{"data":30,"health":7,"metrics":4,"other":1}}}"#;
        let r = parse_value(&serde_json::from_slice(body).unwrap(), 1.0).unwrap();
        assert_eq!(r.proc.rss_bytes, 123);
        assert_eq!(r.proc.cpu_seconds, 2.0);
        assert_eq!(r.proc.context_switches, 7);
        assert_eq!(r.cache, Some((9, 1)));
        assert_eq!(r.requests_total, Some(42));
        assert_eq!(r.requests_by_route, Some([30, 7, 4, 1]));
        let old = br#"{"memory":{"rss":1},"cpu":{"userSeconds":1,"systemSeconds":0},
            "requests":{"total":42,"byStatus":{"200":42}}}"#;
        let r = parse_value(&serde_json::from_slice(old).unwrap(), 1.0).unwrap();
        assert_eq!(r.requests_total, Some(42));
        assert_eq!(r.requests_by_route, None, "a server without byRoute");
    }
}
