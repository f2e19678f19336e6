//! The global rate limiter: a token bucket shared by every executor, in its
//! GCRA form (one atomic "theoretical arrival time"), so taking a token is one
//! compare-and-swap and no lock.
//!
//! A token is handed out *with its scheduled time*: the open-loop modes send
//! each request at that time and measure its latency from it, so a request
//! that had to wait for a free connection (because the server stalled) is
//! charged with that wait: coordinated omission is not hidden. The rate may
//! change in phases (the `recovery` scenario's baseline, burst and drop).
//!
//! Times are nanoseconds since the start of the run.

use std::sync::atomic::{AtomicU64, Ordering};

/// One phase of the arrival plan: `rate_per_s` until `until_ns`.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// End of the phase, ns since the run started.
    pub until_ns: u64,
    /// Tokens per second during the phase (> 0).
    pub rate_per_s: f64,
}

/// A token bucket shared by all executors.
#[derive(Debug)]
pub struct TokenBucket {
    /// When the next token is due (GCRA's theoretical arrival time).
    next_ns: AtomicU64,
    /// The arrival plan; after the last phase its rate continues.
    phases: Vec<Phase>,
    /// How far behind "now" the schedule may fall before the tokens are
    /// forfeited (the bucket's depth in time). `None`: never forfeit, every
    /// scheduled token is handed out, however late.
    burst_ns: Option<u64>,
}

impl TokenBucket {
    /// A constant rate from time 0; no token is ever forfeited (open loop).
    pub fn constant(rate_per_s: f64) -> TokenBucket {
        TokenBucket::phased(
            vec![Phase {
                until_ns: u64::MAX,
                rate_per_s,
            }],
            None,
        )
    }

    /// A plan of phases starting at time 0. `burst_ns`: bucket depth.
    pub fn phased(phases: Vec<Phase>, burst_ns: Option<u64>) -> TokenBucket {
        assert!(!phases.is_empty(), "a plan needs a phase");
        assert!(
            phases.iter().all(|p| p.rate_per_s > 0.0),
            "rates must be positive"
        );
        TokenBucket {
            next_ns: AtomicU64::new(0),
            phases,
            burst_ns,
        }
    }

    /// Nanoseconds between two tokens at time `at_ns`.
    pub fn interval_ns_at(&self, at_ns: u64) -> u64 {
        let phase = self
            .phases
            .iter()
            .find(|p| at_ns < p.until_ns)
            .or(self.phases.last())
            .map_or(1.0, |p| p.rate_per_s);
        ((1e9 / phase).round() as u64).max(1)
    }

    /// Takes the next token and returns its scheduled time (ns). The time may
    /// lie in the future (wait for it) or in the past (send at once and
    /// charge the lateness to the request).
    pub fn take(&self, now_ns: u64) -> u64 {
        let mut current = self.next_ns.load(Ordering::Relaxed);
        loop {
            let due = match self.burst_ns {
                Some(depth) => current.max(now_ns.saturating_sub(depth)),
                None => current,
            };
            let next = due + self.interval_ns_at(due);
            match self.next_ns.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return due,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_spaces_tokens_evenly() {
        let b = TokenBucket::constant(1000.0);
        let times: Vec<u64> = (0..5).map(|_| b.take(0)).collect();
        assert_eq!(times, vec![0, 1_000_000, 2_000_000, 3_000_000, 4_000_000]);
    }

    #[test]
    fn open_loop_never_forfeits_late_tokens() {
        let b = TokenBucket::constant(10.0);
        // Taken 5 s late: the token keeps its time 0.
        assert_eq!(b.take(5_000_000_000), 0);
        assert_eq!(b.take(5_000_000_000), 100_000_000);
    }

    #[test]
    fn bounded_bucket_forfeits_beyond_its_depth() {
        let b = TokenBucket::phased(
            vec![Phase {
                until_ns: u64::MAX,
                rate_per_s: 10.0,
            }],
            Some(200_000_000),
        );
        assert_eq!(b.take(1_000_000_000), 800_000_000);
        assert_eq!(b.take(1_000_000_000), 900_000_000);
        assert_eq!(b.take(1_000_000_000), 1_000_000_000);
        assert_eq!(b.take(1_000_000_000), 1_100_000_000);
    }

    #[test]
    fn phases_change_the_spacing() {
        let b = TokenBucket::phased(
            vec![
                Phase {
                    until_ns: 1_000_000_000,
                    rate_per_s: 2.0,
                },
                Phase {
                    until_ns: u64::MAX,
                    rate_per_s: 10.0,
                },
            ],
            None,
        );
        let times: Vec<u64> = (0..4).map(|_| b.take(0)).collect();
        assert_eq!(times, vec![0, 500_000_000, 1_000_000_000, 1_100_000_000]);
    }

    #[test]
    fn shared_between_threads_hands_out_each_slot_once() {
        let b = std::sync::Arc::new(TokenBucket::constant(1e6));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1000).map(|_| b.take(0)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4000);
        assert_eq!(*all.last().unwrap(), 3999 * 1000);
    }
}
