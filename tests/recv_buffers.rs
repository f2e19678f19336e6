//! The multishot receive path (`IO_URING_RECV_MULTISHOT`, on by default):
//! every byte reaches the parser in order when the shard's ring of provided
//! buffers runs dry (`ENOBUFS`), when one request spans many buffers, and
//! when a connection is reset with received data not yet read. The same
//! requests through the poll + `recv` fallback give the same answers.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Concurrent connections, each sending its requests at the same instants as
/// the others, so that completions pile up within one turn of the shard.
const CONNECTIONS: usize = 64;
/// Pipelined requests per connection and write.
const PIPELINED: usize = 10;
/// Writes per connection.
const ROUNDS: usize = 5;
/// A header that makes each request span three 2 KiB provided buffers.
const PAD_BYTES: usize = 5000;

fn request(conn: usize, round: usize, k: usize) -> String {
    format!(
        "GET /api/data/c{conn}-r{round}-k{k} HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(if k % 3 == 0 { PAD_BYTES } else { 10 })
    )
}

/// Runs the load and checks every response against its request.
fn every_response_in_order(server: &Server) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(CONNECTIONS));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let addr = server.addr();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.set_read_timeout(Duration::from_secs(20));
                for round in 0..ROUNDS {
                    let batch: String = (0..PIPELINED).map(|k| request(conn, round, k)).collect();
                    barrier.wait();
                    // Two writes, split inside a head, so a head also
                    // arrives in pieces.
                    let (a, b) = batch.as_bytes().split_at(batch.len() / 2 + 7);
                    c.send(a);
                    c.send(b);
                    for k in 0..PIPELINED {
                        let r = c.read();
                        assert_eq!(r.status, 200, "c{conn} r{round} k{k}: {r:?}");
                        assert_eq!(
                            r.json()["clientId"],
                            format!("c{conn}-r{round}-k{k}"),
                            "response order on connection {conn}"
                        );
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a connection failed");
    }
}

/// A per-shard counter of `/api/metrics`, summed over the shards.
fn shards_sum(server: &Server, key: &str) -> u64 {
    let v = get(server.addr(), "/api/metrics").json();
    v["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s[key].as_u64().unwrap_or_else(|| panic!("no {key} in {s}")))
        .sum()
}

fn exhausted_count(server: &Server) -> u64 {
    shards_sum(server, "recvBuffersExhausted")
}

fn held_count(server: &Server) -> u64 {
    shards_sum(server, "recvBuffersHeld")
}

/// Buffers held once the server has settled: asked again every 50 ms while
/// some are held, for up to 5 s. A stall of this VM can delay the shard
/// past any fixed wait; buffers that never come back still fail the check.
fn held_at_rest(server: &Server) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let held = held_count(server);
        if held == 0 || Instant::now() >= deadline {
            return held;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// With a ring of one buffer, 64 connections sending at once find it taken
/// over and over: every request is still answered, in order, and the
/// exhaustion is counted (so the fallback did run).
#[test]
fn a_dry_buffer_ring_loses_no_byte() {
    let server = Server::start(&[("WORKERS", "1"), ("IO_URING_RECV_BUFFERS", "1")], &[]);
    every_response_in_order(&server);
    assert_eq!(held_at_rest(&server), 0, "buffers still held at rest");
    let exhausted = exhausted_count(&server);
    assert!(
        exhausted > 0,
        "the ring never ran dry: the test proved nothing"
    );
    println!("receives that found no free buffer: {exhausted}");
}

/// The default ring serves the same load; how often it ran dry is printed.
#[test]
fn the_default_ring_serves_the_same_load() {
    let server = Server::start(&[("WORKERS", "2")], &[]);
    every_response_in_order(&server);
    println!(
        "receives that found no free buffer: {}",
        exhausted_count(&server)
    );
}

/// The poll + `recv` fallback answers the same requests the same way and
/// never counts an exhaustion.
#[test]
fn the_fallback_serves_the_same_load() {
    let server = Server::start(&[("WORKERS", "2"), ("IO_URING_RECV_MULTISHOT", "0")], &[]);
    every_response_in_order(&server);
    assert_eq!(exhausted_count(&server), 0);
}

/// Connections reset by their clients right after a burst of requests are
/// dropped by the shard with received data it never read: a burst of ~80 KB
/// fills some 40 buffers at once, one read takes at most the 16 KiB head
/// limit, and the first response's write fails on the reset. Those buffers
/// go back to the ring: at rest none is held, and the ring still serves the
/// load above.
#[test]
fn reset_connections_give_their_buffers_back() {
    let server = Server::start(&[("WORKERS", "1"), ("IO_URING_RECV_BUFFERS", "64")], &[]);
    let burst: String = (0..40).map(|k| request(0, 0, k)).collect();
    for _ in 0..50 {
        let s = socket2::Socket::from(connect(server.addr()));
        let _ = (&s).write_all(burst.as_bytes());
        // SO_LINGER 0: the close is a reset, whatever the server still reads.
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    }
    assert_eq!(held_at_rest(&server), 0, "buffers still held at rest");
    every_response_in_order(&server);
    assert_eq!(held_at_rest(&server), 0, "buffers still held at rest");
}
