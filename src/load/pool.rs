//! The open-loop connection pool: a fixed set of keep-alive connections that
//! together serve one global schedule of intended send times (the shared
//! [`TokenBucket`]). A free connection takes the next token, waits for its
//! time if it is still ahead, sends, and records the latency from the
//! token's time. When the server stalls, every connection is busy, tokens
//! fall behind, and the requests sent late are charged with the wait: the
//! latency a user arriving at that rate would have seen (no coordinated
//! omission). The raw latency (from the actual send) is recorded as well.
//!
//! Connections are spread over the executors; a connection the server
//! closes is re-opened by its [`Client`] and counted.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::client::Client;
use super::executors::{now_ns, sleep_until, wait_for_start};
use super::rate::TokenBucket;
use super::recorder::Recorder;
use super::target::Target;

/// What an executor's share of the pool needs.
#[derive(Clone, Debug)]
pub struct PoolPlan {
    /// The server.
    pub target: Target,
    /// Connections over all executors.
    pub connections: usize,
    /// Request paths, cycled through by each connection.
    pub paths: Arc<Vec<Vec<u8>>>,
    /// The shared schedule.
    pub bucket: Arc<TokenBucket>,
    /// No token due at or after this is sent, ns since start.
    pub end_ns: u64,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Runs connections `executor, executor + executors, ...` of the pool on the
/// current executor until the schedule reaches `end_ns`.
pub async fn run_share(
    plan: PoolPlan,
    executor: usize,
    executors: usize,
    start: quanta::Instant,
    recorder: Rc<RefCell<Recorder>>,
) {
    wait_for_start(start).await;
    let plan = Rc::new(plan);
    let tasks: Vec<_> = (executor..plan.connections)
        .step_by(executors.max(1))
        .map(|index| {
            let plan = plan.clone();
            let recorder = recorder.clone();
            glommio::spawn_local(connection(plan, index, start, recorder))
        })
        .collect();
    for task in tasks {
        task.await;
    }
}

async fn connection(
    plan: Rc<PoolPlan>,
    index: usize,
    start: quanta::Instant,
    recorder: Rc<RefCell<Recorder>>,
) {
    let mut client = Client::new(plan.target.addr, &plan.target.host_header, plan.timeout);
    let mut timer = glommio::timer::Timer::new(Duration::from_millis(1));
    let mut next_path = first_path(index, plan.connections, plan.paths.len());
    loop {
        let due_ns = plan.bucket.take(now_ns(start));
        if due_ns >= plan.end_ns {
            break;
        }
        sleep_until(&mut timer, start, due_ns).await;
        let sent_ns = now_ns(start);
        let outcome = client.get(&plan.paths[next_path]).await;
        let done_ns = now_ns(start);
        recorder
            .borrow_mut()
            .record(due_ns, sent_ns, done_ns, outcome);
        next_path = (next_path + 1) % plan.paths.len();
    }
    let mut r = recorder.borrow_mut();
    r.connects += client.connects;
    r.reconnects += client.reconnects;
}

/// The id connection `index` of `connections` starts at. With no more ids
/// than connections, connection `i` starts at id `i` (every id in use from
/// the first request, as the seed's clients). With more ids, the starts are
/// spread evenly over them, so each id comes back once per full cycle of
/// every connection: the key space is visited uniformly, as a cache sized
/// below it would see real clients, not as one window of `connections`
/// neighbouring ids sliding along (where every id is requested by all
/// connections within a few requests and any cache looks hot).
pub fn first_path(index: usize, connections: usize, ids: usize) -> usize {
    let ids = ids.max(1);
    if ids <= connections {
        index % ids
    } else {
        index * ids / connections.max(1) % ids
    }
}

/// `/api/data/client-0` .. `client-<ids-1>`.
pub fn data_paths(ids: usize) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        (0..ids.max(1))
            .map(|i| format!("/api/data/client-{i}").into_bytes())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::histogram::quantile_ms;
    use crate::load::outcome::Outcome;
    use crate::load::recorder::Recorder;
    use hdrhistogram::Histogram;

    /// Up to one id per connection, connection `i` starts at id `i` (the
    /// seed's layout, unchanged); with more ids the starts are spread evenly,
    /// so one cycle of every connection covers each id exactly once.
    #[test]
    fn first_paths_cover_the_key_space_evenly() {
        for (index, connections, ids, want) in [
            (0, 100, 100, 0),
            (7, 100, 100, 7),
            (7, 100, 10, 7),
            (0, 100, 2400, 0),
            (1, 100, 2400, 24),
            (99, 100, 2400, 2376),
            (2, 3, 10, 6),
            (5, 0, 0, 0),
        ] {
            assert_eq!(
                first_path(index, connections, ids),
                want,
                "{index} of {connections}, {ids} ids"
            );
        }
        // 100 connections, 2,400 ids, 24 requests each: every id once.
        let mut seen = vec![0u32; 2400];
        for c in 0..100 {
            for step in 0..24 {
                seen[(first_path(c, 100, 2400) + step) % 2400] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    /// Samples of at least `ms` milliseconds.
    fn at_least(h: &Histogram<u64>, ms: u64) -> u64 {
        h.iter_recorded()
            .filter(|v| v.value_iterated_to() >= ms * 1000)
            .map(|v| v.count_at_value())
            .sum()
    }

    /// The pool's loop on a simulated clock: one connection, rate 100/s for
    /// 3 s, a server answering in 1 ms except that it holds every request
    /// arriving between 1 s and 2 s until 2 s.
    #[test]
    fn a_1s_stall_at_rate_r_shows_r_stalled_samples_simulated() {
        const R: u64 = 100;
        let ms = 1_000_000u64;
        let service = |sent: u64| {
            if (1000 * ms..2000 * ms).contains(&sent) {
                2000 * ms + ms
            } else {
                sent + ms
            }
        };
        let bucket = TokenBucket::constant(R as f64);
        let mut rec = Recorder::new(1000, None);
        let mut now = 0;
        loop {
            let due = bucket.take(now);
            if due >= 3000 * ms {
                break;
            }
            let sent = due.max(now);
            let done = service(sent);
            rec.record(due, sent, done, Outcome::Status(200));
            now = done;
        }
        assert_eq!(
            rec.requests,
            3 * R,
            "open loop: every scheduled request is sent"
        );
        // Corrected: the R requests due during the stall waited for its end,
        // from ~1 s down to ~0, linearly spread; draining that backlog at
        // 1 ms each delays the next 10 % too: R / (1 - 0.1) = 111 samples.
        let stalled = at_least(&rec.latency_us, 10);
        assert!(
            (R..=R * 115 / 100).contains(&stalled),
            "stalled samples {stalled}"
        );
        // The k-th held request was due at 1 s + 10k ms and is answered at
        // 2 s + (k + 1) ms: latency ~ 1 s - 9k ms, so k <= 55 are >= 500 ms.
        let half = at_least(&rec.latency_us, 500);
        assert!((54..=57).contains(&half), "samples >= 500 ms: {half}");
        let max = quantile_ms(&rec.latency_us, 1.0);
        assert!((1000.0..=1003.0).contains(&max), "max {max} ms");
        // Raw (from the actual send) hides all but the one request in flight.
        assert_eq!(at_least(&rec.raw_latency_us, 10), 1);
    }

    /// The same through real sockets and executors: a local server thread
    /// that stalls for 1 s, rate 200/s over 4 connections.
    #[test]
    fn a_1s_stall_at_rate_r_shows_r_stalled_samples_over_tcp() {
        use std::io::{Read, Write};
        const R: u64 = 200;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let first = Arc::new(std::sync::OnceLock::<std::time::Instant>::new());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let first = first.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut buf = [0u8; 4096];
                    let mut held = Vec::new();
                    loop {
                        let Ok(n) = stream.read(&mut buf) else { return };
                        if n == 0 {
                            return;
                        }
                        held.extend_from_slice(&buf[..n]);
                        while let Some(end) = held.windows(4).position(|w| w == b"\r\n\r\n") {
                            held.drain(..end + 4);
                            let t0 = *first.get_or_init(std::time::Instant::now);
                            let since = t0.elapsed();
                            if since >= Duration::from_secs(1) && since < Duration::from_secs(2) {
                                std::thread::sleep(Duration::from_secs(2) - since);
                            }
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                            if stream.write_all(reply).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let plan = PoolPlan {
            target: Target {
                addr,
                host_header: addr.to_string(),
            },
            connections: 4,
            paths: data_paths(1),
            bucket: Arc::new(TokenBucket::constant(R as f64)),
            end_ns: 3_000_000_000,
            timeout: Duration::from_secs(5),
        };
        let start = quanta::Instant::now()
            .checked_add(Duration::from_millis(50))
            .unwrap();
        let mut recs = crate::load::executors::run_on_executors(1, move |i| {
            let plan = plan.clone();
            async move {
                let rec = Rc::new(RefCell::new(Recorder::new(1000, None)));
                run_share(plan, i, 1, start, rec.clone()).await;
                rec.replace(Recorder::new(1000, None))
            }
        })
        .unwrap();
        let rec = recs.pop().unwrap();
        assert_eq!(rec.errors, 0);
        assert!(rec.requests >= 3 * R - 2, "requests {}", rec.requests);
        let stalled = at_least(&rec.latency_us, 50);
        assert!(
            (R * 8 / 10..=R * 11 / 10).contains(&stalled),
            "corrected samples >= 50 ms: {stalled}, expected ~{R}"
        );
        let max = quantile_ms(&rec.latency_us, 1.0);
        assert!((900.0..1300.0).contains(&max), "max {max} ms");
        let raw_stalled = at_least(&rec.raw_latency_us, 50);
        assert!(
            raw_stalled <= 4,
            "raw hides the stall: {raw_stalled} samples"
        );
    }
}
