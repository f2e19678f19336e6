//! Responses sent through the shard's io_uring (`IO_URING_RING_SEND`, on by
//! default): a connection's responses are queued as one send that goes out
//! in the shard's next `io_uring_enter`. Every byte still reaches the client
//! in order when the client reads late (the sends come up short and the rest
//! is written with a poll and `send`), and the last response still arrives
//! whole when the connection closes right after it, whether the server or
//! the client ends it. The `send` system call path gives the same answers.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use common::*;

/// Request pairs pipelined on one connection before the client reads
/// anything: `/api/data/late-{k}` (~730 bytes of response) and `/dashboard`
/// (~30 kB). Their ~6 MB of responses are more than the socket buffers
/// between server and client hold (the client's receive buffer is pinned
/// small; the server's send buffer grows to 4 MiB at most,
/// `net.ipv4.tcp_wmem`), so the server's sends must come up short, or find
/// no room at all, again and again.
const PAIRS: usize = 200;
/// The client's receive buffer (`SO_RCVBUF`; the kernel doubles it).
const CLIENT_RCVBUF_BYTES: libc::c_int = 64 * 1024;

/// One connection pipelines `PAIRS` request pairs from one thread while the
/// client reads nothing for a while, then reads every response: each must
/// come back, whole and in order, for its own request.
fn late_reader_gets_every_response(server: &Server) {
    let mut c = Client::connect(server.addr());
    c.set_read_timeout(Duration::from_secs(30));
    let fd = std::os::fd::AsRawFd::as_raw_fd(&c.writer);
    // SAFETY: a valid socket, an int option of the right size.
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&CLIENT_RCVBUF_BYTES as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF");
    let mut writer = c.writer.try_clone().expect("clone the client socket");
    let sender = thread::spawn(move || {
        // Written in chunks by a thread of its own: once the server stops
        // reading (its sends wait for room), these writes block too.
        for chunk in (0..PAIRS).collect::<Vec<_>>().chunks(20) {
            let batch: String = chunk
                .iter()
                .map(|k| get_request(&format!("/api/data/late-{k}")) + &get_request("/dashboard"))
                .collect();
            writer.write_all(batch.as_bytes()).expect("send requests");
        }
    });
    thread::sleep(Duration::from_millis(300));
    let dashboard = get(server.addr(), "/dashboard");
    assert_eq!(dashboard.status, 200);
    for k in 0..PAIRS {
        let r = c.read();
        assert_eq!(r.status, 200, "data response {k}: {r:?}");
        assert_eq!(r.json()["clientId"], format!("late-{k}"), "response order");
        let r = c.read();
        assert_eq!(r.status, 200, "dashboard response {k}");
        assert!(r.body == dashboard.body, "dashboard response {k} differs");
    }
    sender.join().expect("sender thread");
}

/// How many ring sends did not go out whole, over every shard.
fn sends_short(server: &Server) -> u64 {
    let metrics = get(server.addr(), "/api/metrics").json();
    metrics["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["ringSendsShort"].as_u64().expect("ringSendsShort"))
        .sum()
}

#[test]
fn a_late_reader_gets_every_response_in_order() {
    let server = Server::start(&[("WORKERS", "1"), ("IO_URING_RING_SEND", "1")], &[]);
    late_reader_gets_every_response(&server);
    let short = sends_short(&server);
    assert!(short > 0, "no send came up short: the test proved nothing");
    println!("ring sends that came up short: {short}");
}

#[test]
fn without_ring_sends_a_late_reader_gets_the_same() {
    let server = Server::start(&[("WORKERS", "1"), ("IO_URING_RING_SEND", "0")], &[]);
    late_reader_gets_every_response(&server);
    assert_eq!(sends_short(&server), 0, "no ring send was made");
}

/// A response queued on the ring and the connection's end in the same
/// turn: the response goes out first, whole, then the connection closes.
fn last_response_arrives_whole(server: &Server) {
    for round in 0..50 {
        // The server ends it: `Connection: close` (RFC 9112 §9.6).
        let mut c = connect(server.addr());
        let path = format!("/api/data/close-{round}");
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.write_all(request.as_bytes()).expect("send");
        let bytes = read_to_close(&mut c);
        let r = read_response(&mut &bytes[..]);
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.json()["clientId"], format!("close-{round}"));

        // The client ends it: its request and its FIN arrive together, so
        // the shard reads the end of the stream right after queueing the
        // response. Half-closed, the client still reads the answer.
        let mut c = connect(server.addr());
        let path = format!("/api/data/half-{round}");
        c.write_all(get_request(&path).as_bytes()).expect("send");
        c.shutdown(Shutdown::Write).expect("half-close");
        let mut bytes = Vec::new();
        c.read_to_end(&mut bytes).expect("read to the end");
        let r = read_response(&mut &bytes[..]);
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.json()["clientId"], format!("half-{round}"));
    }
}

#[test]
fn the_last_response_arrives_before_the_close() {
    let server = Server::start(&[("WORKERS", "2"), ("IO_URING_RING_SEND", "1")], &[]);
    last_response_arrives_whole(&server);
}

#[test]
fn without_ring_sends_the_last_response_arrives_too() {
    let server = Server::start(&[("WORKERS", "2"), ("IO_URING_RING_SEND", "0")], &[]);
    last_response_arrives_whole(&server);
}
