//! The epoll loop against small blocking servers on loopback: every response
//! counted and paths cycled, reconnects after `Connection: close`, one retry
//! of a keep-alive race, timeouts, refused connects, chunked responses.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::super::outcome::ErrorKind;
use super::super::target::Target;

/// A server on a thread per connection; `answer` gets each request's
/// path and the stream, and returns whether to keep the connection.
fn server<F>(answer: F) -> SocketAddr
where
    F: Fn(&str, &mut TcpStream) -> bool + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    while line != "\r\n" {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    if !answer(&path, &mut writer) {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn plan(addr: SocketAddr, connections: usize, window_ms: u64, timeout_ms: u64) -> Plan {
    Plan {
        target: Target {
            addr,
            host_header: addr.to_string(),
        },
        connections,
        paths: Arc::new(vec![b"/a".to_vec(), b"/b".to_vec(), b"/c".to_vec()]),
        window_ns: (0, window_ms * 1_000_000),
        timeout: Duration::from_millis(timeout_ms),
        threads: 2,
        bucket_ms: 100,
    }
}

fn run_merged(plan: &Plan) -> Recorder {
    let recorders = run(plan, quanta::Instant::now(), Arc::new(Live::new())).expect("run");
    let threads = plan.threads.min(plan.connections);
    assert_eq!(recorders.len(), threads, "one recorder per thread");
    Recorder::merge_all(&recorders, plan.bucket_ms)
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn every_response_is_counted_and_paths_cycle() {
    let answered = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let (a, s) = (answered.clone(), seen.clone());
    let addr = server(move |path, out| {
        s.lock().expect("lock").insert(path.to_string());
        // Head and body in two writes: the reader must join them.
        let ok = out.write_all(&OK[..OK.len() - 5]).is_ok() && out.write_all(b"hello").is_ok();
        a.fetch_add(1, Ordering::SeqCst);
        ok
    });
    let r = run_merged(&plan(addr, 4, 300, 1000));
    assert!(r.requests > 10, "{} requests", r.requests);
    assert_eq!(
        r.requests,
        answered.load(Ordering::SeqCst),
        "in-flight responses awaited"
    );
    assert_eq!(r.status_counts[200], r.requests);
    assert_eq!((r.errors, r.connects, r.reconnects), (0, 4, 0));
    let seen = seen.lock().expect("lock");
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        ["/a", "/b", "/c"]
    );
}

#[test]
fn connection_close_reconnects_without_errors() {
    let addr = server(|_, out| {
        let _ =
            out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        false
    });
    let r = run_merged(&plan(addr, 3, 200, 1000));
    assert!(r.requests > 3);
    assert_eq!(r.errors, 0);
    assert_eq!(r.connects, r.requests, "one connection per request");
    assert_eq!(r.reconnects, r.connects - 3);
}

#[test]
fn a_close_before_the_next_response_is_retried_once() {
    // Answers one request per connection, without saying it will close:
    // every second request meets the keep-alive race.
    let addr = server(|_, out| {
        let _ = out.write_all(OK);
        false
    });
    let r = run_merged(&plan(addr, 2, 200, 1000));
    assert!(r.requests > 2);
    assert_eq!(r.errors, 0, "races are retried, not errors");
    assert_eq!(r.status_counts[200], r.requests);
}

#[test]
fn a_silent_server_times_out() {
    let addr = server(|_, _| {
        std::thread::sleep(Duration::from_secs(5));
        false
    });
    // 2 connections, each request cut at ~100 ms (+ up to one scan
    // interval), sent at ~0, ~105 and ~210 ms of a 250 ms window: 6.
    let r = run_merged(&plan(addr, 2, 250, 100));
    assert!((4..=8).contains(&r.requests), "{} requests", r.requests);
    assert_eq!(r.error_counts[ErrorKind::Timeout.index()], r.requests);
}

#[test]
fn refused_connections_are_connect_errors() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let r = run_merged(&plan(addr, 2, 50, 1000));
    assert!(r.requests > 0);
    assert_eq!(r.error_counts[ErrorKind::Connect.index()], r.requests);
    assert_eq!(r.connects, 0);
}

#[test]
fn chunked_responses_are_protocol_errors() {
    let addr = server(|_, out| {
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        true
    });
    let r = run_merged(&plan(addr, 1, 100, 1000));
    assert!(r.requests > 0);
    assert_eq!(r.error_counts[ErrorKind::Protocol.index()], r.requests);
}
