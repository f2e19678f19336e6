//! The floor: the least a server can do per request on io_uring, as a
//! benchmark peer for percore (`benches/compare.sh`, `benches/low_load.sh`,
//! `benches/syscalls.sh`). Not a product: it answers every request with one
//! fixed response and nothing else.
//!
//! What makes it the floor (issue 16):
//! - one thread per worker, pinned to a core as percore's shards are (core ids
//!   from `core_affinity::get_core_ids()`, worker i on the i-th), each with
//!   its own `SO_REUSEPORT` listener and its own io_uring;
//! - the ring is set up `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`:
//!   completions are posted only when this thread enters the kernel to wait,
//!   never by an interrupt while it runs;
//! - multishot accept, and recv and send as ring operations; each loop turn
//!   makes exactly one `io_uring_enter`, which submits what the last turn
//!   queued and waits for the next completion;
//! - a response is sent with `MSG_WAITALL` and `IOSQE_CQE_SKIP_SUCCESS`,
//!   linked (`IOSQE_IO_LINK`) to the connection's next recv: a request costs
//!   one completion and, at an idle worker, one `io_uring_enter`.
//!
//! It answers percore's exact response bytes: percore's head (`Server`,
//! `Content-Type`, a `Date` refreshed each second, `Content-Length`) with the
//! body read from `BODY_FILE`, which the bench scripts fetch from percore for
//! `/api/data/client-50`. Every complete request head in a read is answered
//! (pipelining), keep-alive always.
//!
//! Settings (environment, as percore's): `HOST` (0.0.0.0), `PORT` (3000),
//! `WORKERS` (0 = every core in the affinity mask), `BACKLOG` (4096) and
//! `BODY_FILE` (required).
//!
//! Build: `cargo build --release --example floor` (it is an example only so
//! that it is built with the dev-dependency `io-uring`; it lives here because
//! it is a benchmark peer). Needs Linux ≥ 6.1.
//!
//! It deliberately uses nothing of percore's library, so that it measures
//! io_uring and the kernel, not percore's code.

mod conn;
mod date;
mod worker;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};

/// What the command line (the environment) asks for.
struct Settings {
    /// Where every worker listens (one `SO_REUSEPORT` socket each).
    addr: SocketAddr,
    /// Worker threads; 0 is one per core in the affinity mask.
    workers: usize,
    /// Listen backlog per worker, as percore's `BACKLOG`.
    backlog: i32,
    /// The response body: percore's own bytes.
    body: Vec<u8>,
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v}: not a valid value")),
        Err(_) => Ok(default),
    }
}

fn settings() -> Result<Settings, String> {
    let host: IpAddr = env_or("HOST", IpAddr::from([0, 0, 0, 0]))?;
    let port: u16 = env_or("PORT", 3000)?;
    let body_file = std::env::var("BODY_FILE")
        .map_err(|_| "BODY_FILE is required: the body to answer with".to_string())?;
    let body = std::fs::read(&body_file).map_err(|e| format!("cannot read {body_file}: {e}"))?;
    Ok(Settings {
        addr: SocketAddr::new(host, port),
        workers: env_or("WORKERS", 0)?,
        backlog: env_or("BACKLOG", 4096)?,
        body,
    })
}

/// One listening socket, made as percore's (`SO_REUSEADDR`, `SO_REUSEPORT`,
/// `TCP_NODELAY`, inherited by accepted sockets).
fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

fn run() -> Result<(), String> {
    let settings = settings()?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let workers = match settings.workers {
        0 => cores.len().max(1),
        n => n,
    };
    let mut addr = settings.addr;
    let mut listeners = Vec::with_capacity(workers);
    for _ in 0..workers {
        let listener =
            bind(addr, settings.backlog).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        // With PORT=0 the first socket picks the port and the others join it.
        addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        listeners.push(listener);
    }
    eprintln!(
        "floor: listening on {addr}, {workers} worker(s), body {} bytes",
        settings.body.len()
    );
    let mut threads = Vec::with_capacity(workers);
    for (id, listener) in listeners.into_iter().enumerate() {
        let core = cores.get(id % cores.len().max(1)).copied();
        let body = settings.body.clone();
        let thread = std::thread::Builder::new()
            .name(format!("floor-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                if let Err(e) = worker::run(listener, &body) {
                    // A benchmark peer with a dead worker would measure
                    // nonsense: stop the whole process.
                    eprintln!("floor: worker {id}: {e}");
                    std::process::exit(1);
                }
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        threads.push(thread);
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::from(2)
        }
    }
}
