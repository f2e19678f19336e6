//! The live one-line progress (elapsed, req/s, p99, errors) shown while a run
//! is going, only when stdout is a terminal. Executors publish each finished
//! timeline bucket here (a few times per second, never per request); a side
//! thread redraws the line once per second.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::histogram::{new_bucket_histogram, quantile_ms};

/// Figures published by the executors since the last redraw.
#[derive(Debug)]
pub struct Live {
    requests: AtomicU64,
    errors: AtomicU64,
    window_us: Mutex<Histogram<u64>>,
}

impl Live {
    /// Nothing published yet.
    pub fn new() -> Live {
        Live {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            window_us: Mutex::new(new_bucket_histogram()),
        }
    }

    /// Adds one finished timeline bucket.
    pub fn add(&self, requests: u64, errors: u64, latency_us: &Histogram<u64>) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
        if let Ok(mut w) = self.window_us.lock() {
            let _ = w.add(latency_us);
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

/// The redrawing thread; stopped (and its line cleared) by [`Progress::stop`].
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing `live` once per second if stdout is a terminal.
    pub fn start(live: Arc<Live>, start: quanta::Instant) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stdout().is_terminal().then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || redraw_loop(&live, start, &stop))
        });
        Progress { stop, thread }
    }

    /// Stops the thread and clears the progress line.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}

fn redraw_loop(live: &Live, start: quanta::Instant, stop: &AtomicBool) {
    let mut last_requests = 0;
    let mut last_at = quanta::Instant::now();
    let mut p99_ms = 0.0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
        let now = quanta::Instant::now();
        let requests = live.requests.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        if let Ok(mut w) = live.window_us.lock() {
            if !w.is_empty() {
                p99_ms = quantile_ms(&w, 0.99);
            }
            w.reset();
        }
        let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let rps = (requests - last_requests) as f64 / secs;
        last_requests = requests;
        last_at = now;
        print!(
            "\r\x1b[2K  {:>6.1} s   {:>9.0} req/s   p99 {:>8.2} ms   errors {}",
            now.saturating_duration_since(start).as_secs_f64(),
            rps,
            p99_ms,
            errors
        );
        let _ = std::io::stdout().flush();
    }
}
