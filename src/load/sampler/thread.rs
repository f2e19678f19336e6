//! The sampling thread: a first reading before the load, then one per
//! second until stopped, and a last one after the load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::reader::{elapsed_s, Reader, Source};
use super::sampled::Sampled;
use crate::shard::routes::RouteClass;

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
