//! The closed-loop virtual client shared by `seed`, `max`, `stages`, `sweep`
//! and `soak`: send, wait for the response, think, repeat, on one keep-alive
//! connection. Its latency is measured from the actual send (a closed loop
//! only sends when the previous response came back).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::super::client::Client;
use super::super::executors::{now_ns, run_on_executors, sleep_until, wait_for_start};
use super::super::live::Live;
use super::super::recorder::Recorder;
use super::super::target::Target;
use super::super::LoadError;
use super::Setup;

/// The pause after each response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Think {
    /// The seed's adaptive wait: `max(10, 100 - responses_so_far)` ms, where
    /// `responses_so_far` counts this client's responses.
    Seed,
    /// A fixed pause.
    Fixed(Duration),
    /// None: the next request goes out at once (as wrk does).
    None,
}

impl Think {
    /// The pause after the `responses`-th response, ns.
    pub fn pause_ns(self, responses: u64) -> u64 {
        match self {
            Think::Seed => 100u64.saturating_sub(responses).max(10) * 1_000_000,
            Think::Fixed(d) => d.as_nanos() as u64,
            Think::None => 0,
        }
    }
}

/// Spreads a client's pauses uniformly over `pause × (1 ± jitter_pct/100)`
/// (`--think-jitter`): the mean pause, and so the offered load, stays the
/// same, but clients whose pauses converge to one value (the seed's wait
/// reaches 10 ms for everyone) stop waking in lockstep. A per-client
/// xorshift generator: no allocation, no sharing.
#[derive(Clone, Copy, Debug)]
pub struct ThinkJitter {
    /// Half-width of the spread, % of the pause (0: the pause as given).
    pub pct: f64,
    state: u64,
}

impl ThinkJitter {
    /// A spread of ±`pct` %, seeded per client so that clients differ.
    pub fn new(pct: f64, client: usize) -> ThinkJitter {
        ThinkJitter {
            pct: pct.clamp(0.0, 100.0),
            // splitmix64 of the client index: a nonzero, well-mixed seed.
            state: {
                let mut z = (client as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) | 1
            },
        }
    }

    /// `pause_ns` spread by the jitter.
    pub fn apply(&mut self, pause_ns: u64) -> u64 {
        if self.pct <= 0.0 || pause_ns == 0 {
            return pause_ns;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let unit = (self.state >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let factor = 1.0 + self.pct / 100.0 * (2.0 * unit - 1.0);
        (pause_ns as f64 * factor) as u64
    }
}

/// One client's loop.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// The server.
    pub target: Target,
    /// Request paths, cycled through.
    pub paths: Arc<Vec<Vec<u8>>>,
    /// Index of the first path this client requests.
    pub first_path: usize,
    /// Move on to the next path after each request (else keep the first).
    pub cycle_paths: bool,
    /// The pause after each response.
    pub think: Think,
    /// Spread of the pause, ± % (0: none).
    pub think_jitter_pct: f64,
    /// When the client starts and stops, ns since time zero.
    pub window_ns: (u64, u64),
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Runs one client until its window closes or `keep_going(now_ns)` says
/// stop; records into `recorder`.
pub async fn client_loop<F>(
    spec: ClientSpec,
    start: quanta::Instant,
    recorder: Rc<RefCell<Recorder>>,
    keep_going: F,
) where
    F: Fn(u64) -> bool,
{
    let mut client = Client::new(spec.target.addr, &spec.target.host_header, spec.timeout);
    let mut timer = glommio::timer::Timer::new(Duration::from_millis(1));
    sleep_until(&mut timer, start, spec.window_ns.0).await;
    let mut responses = 0u64;
    let mut path = spec.first_path % spec.paths.len().max(1);
    let mut jitter = ThinkJitter::new(spec.think_jitter_pct, spec.first_path);
    loop {
        let sent_ns = now_ns(start);
        if sent_ns >= spec.window_ns.1 || !keep_going(sent_ns) {
            break;
        }
        let outcome = client.get(&spec.paths[path]).await;
        let done_ns = now_ns(start);
        recorder
            .borrow_mut()
            .record(sent_ns, sent_ns, done_ns, outcome);
        if matches!(outcome, super::super::outcome::Outcome::Status(_)) {
            responses += 1;
        }
        if spec.cycle_paths {
            path = (path + 1) % spec.paths.len();
        }
        let pause_ns = jitter.apply(spec.think.pause_ns(responses));
        if pause_ns > 0 {
            let wake_ns = (done_ns + pause_ns).min(spec.window_ns.1);
            sleep_until(&mut timer, start, wake_ns).await;
        }
    }
    let mut r = recorder.borrow_mut();
    r.connects += client.connects;
    r.reconnects += client.reconnects;
}

/// One group of clients over a time window.
#[derive(Clone, Debug)]
pub struct Group {
    /// Clients in the group.
    pub clients: usize,
    /// Paths; client `i` starts at path `i` (modulo their number).
    pub paths: Arc<Vec<Vec<u8>>>,
    /// Cycle through the paths (else client `i` always asks for path `i`).
    pub cycle_paths: bool,
    /// The pause after each response.
    pub think: Think,
    /// Spread of the pause, ± % (0: none).
    pub think_jitter_pct: f64,
    /// When the group runs, ns since time zero.
    pub window_ns: (u64, u64),
}

/// Runs `groups` one after the other (each group's clients spread over the
/// executors) and returns every executor's recorder.
pub fn run_groups(
    setup: &Setup,
    groups: Vec<Group>,
    bucket_ms: u64,
    start: quanta::Instant,
    live: Arc<Live>,
) -> Result<Vec<Recorder>, LoadError> {
    let executors = setup.executors;
    let target = setup.target.clone();
    let timeout = setup.common.timeout;
    run_on_executors(executors, move |index| {
        let groups = groups.clone();
        let target = target.clone();
        let live = live.clone();
        async move {
            wait_for_start(start).await;
            let recorder = Rc::new(RefCell::new(Recorder::new(bucket_ms, Some(live))));
            for group in groups {
                let tasks: Vec<_> = (index..group.clients)
                    .step_by(executors)
                    .map(|i| {
                        let spec = ClientSpec {
                            target: target.clone(),
                            paths: group.paths.clone(),
                            first_path: i,
                            cycle_paths: group.cycle_paths,
                            think: group.think,
                            think_jitter_pct: group.think_jitter_pct,
                            window_ns: group.window_ns,
                            timeout,
                        };
                        glommio::spawn_local(client_loop(spec, start, recorder.clone(), |_| true))
                    })
                    .collect();
                for task in tasks {
                    task.await;
                }
            }
            let mut r = recorder.replace(Recorder::new(bucket_ms, None));
            r.finish();
            r
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_wait_shrinks_to_ten_ms() {
        assert_eq!(Think::Seed.pause_ns(0), 100_000_000);
        assert_eq!(Think::Seed.pause_ns(1), 99_000_000);
        assert_eq!(Think::Seed.pause_ns(90), 10_000_000);
        assert_eq!(Think::Seed.pause_ns(500), 10_000_000);
        assert_eq!(Think::None.pause_ns(5), 0);
    }

    #[test]
    fn think_jitter_spreads_pauses_around_the_same_mean() {
        let mut off = ThinkJitter::new(0.0, 3);
        assert_eq!(off.apply(10_000_000), 10_000_000);
        let mut j = ThinkJitter::new(50.0, 3);
        let pauses: Vec<u64> = (0..10_000).map(|_| j.apply(10_000_000)).collect();
        assert!(pauses
            .iter()
            .all(|&p| (5_000_000..=15_000_000).contains(&p)));
        let mean = pauses.iter().sum::<u64>() as f64 / pauses.len() as f64;
        assert!((mean - 10e6).abs() < 0.02 * 10e6, "mean {mean}");
        // Spread over the range, not stuck in one part of it.
        assert!(pauses.iter().any(|&p| p < 6_000_000));
        assert!(pauses.iter().any(|&p| p > 14_000_000));
        // Two clients do not draw the same sequence.
        let mut other = ThinkJitter::new(50.0, 4);
        let mut again = ThinkJitter::new(50.0, 3);
        assert_ne!(other.apply(10_000_000), again.apply(10_000_000));
    }
}
