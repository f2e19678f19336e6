//! Looping keep-alive clients and what they saw, for the drain tests.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, try_read_response};

/// What a fleet of looping keep-alive clients saw.
#[derive(Default, Debug)]
pub struct Tally {
    /// Complete 200 responses.
    pub ok: AtomicU64,
    /// Connections the server closed after `Connection: close` (clean).
    pub reconnects: AtomicU64,
    /// Connects refused (allowed only once every listener is closed).
    pub refused: AtomicU64,
    /// Requests sent that got no complete response, and any other failure.
    pub failures: Mutex<Vec<String>>,
    /// When the last request was sent.
    pub last_request: Mutex<Option<Instant>>,
}

impl Tally {
    /// Records a failure; the test ends by asserting there was none.
    fn fail(&self, failure: String) {
        self.failures.lock().unwrap().push(failure);
    }
}

/// Runs `clients` threads, each looping `GET /api/data/c<i>` on one
/// keep-alive connection with `think` between requests, reconnecting after
/// a `Connection: close`; a refused connect ends that client. Runs until
/// `stop` is set.
pub fn run_clients(
    addr: SocketAddr,
    clients: usize,
    think: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<thread::JoinHandle<()>> {
    (0..clients)
        .map(|i| {
            let stop = stop.clone();
            let tally = tally.clone();
            thread::spawn(move || {
                let request = format!("GET /api/data/c{i} HTTP/1.1\r\nHost: t\r\n\r\n");
                let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        match TcpStream::connect(addr) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                s.set_nodelay(true).unwrap();
                                let r = BufReader::new(s.try_clone().unwrap());
                                conn = Some((s, r));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Err(e) => {
                                tally.fail(format!("client {i}: connect: {e}"));
                                return;
                            }
                        }
                    }
                    let Some((w, r)) = conn.as_mut() else {
                        continue;
                    };
                    *tally.last_request.lock().unwrap() = Some(Instant::now());
                    if let Err(e) = w.write_all(request.as_bytes()) {
                        tally.fail(format!("client {i}: write: {e}"));
                        conn = None;
                        continue;
                    }
                    match try_read_response(r, false) {
                        Ok(resp) if resp.status == 200 => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            if resp.header("connection") == Some("close") {
                                tally.reconnects.fetch_add(1, Ordering::Relaxed);
                                conn = None;
                            }
                        }
                        Ok(resp) => {
                            tally.fail(format!("client {i}: status {}", resp.status));
                            conn = None;
                        }
                        Err(e) => {
                            tally.fail(format!("client {i}: no response: {e}"));
                            conn = None;
                        }
                    }
                    thread::sleep(think);
                }
            })
        })
        .collect()
}

/// Stops the clients of [`run_clients`], waits for them, and asserts that
/// not one request went without a complete response.
pub fn stop_clients(stop: &AtomicBool, clients: Vec<thread::JoinHandle<()>>, tally: &Tally) {
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = tally.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

pub fn metrics(addr: SocketAddr) -> serde_json::Value {
    common::Client::connect(addr).get("/api/metrics").json()
}
