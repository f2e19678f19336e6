//! One client connection: read, answer every request already buffered, write
//! once, repeat (RFC 9112 §9.3 persistence, §9.3.2 pipelining).
//!
//! Buffers are allocated once per connection and reused for every request:
//! the read buffer starts small and grows only up to the head limit, the
//! output buffer keeps its capacity. Bodies are framed and skipped so the next
//! pipelined request is read at the right place. On any framing error the
//! connection gets its 4xx/5xx and is closed.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::http::reader::{Event, RequestReader};
use crate::http::request::{self, BodyFraming, Version};
use crate::http::response::{self, Persistence, Response, Status};
use crate::shard::handler;
use crate::shard::routes::RouteClass;
use crate::shard::state::Shard;

/// Initial read buffer: a typical request head is a few hundred bytes, and
/// 16 pipelined wrk requests about 930. It grows (doubling) up to the head
/// limit only for clients that need it. 1 KiB rather than 4 KiB took RSS per
/// idle keep-alive connection from 10,003 to 6,994 bytes (10,000 idle
/// connections, `benches/idle_connections.sh`) for ~4 % of pipelined req/s.
const READ_BUFFER_BYTES: usize = 1024;
/// The output buffer's capacity at a connection's first response: one
/// allocation for what a typical response (about 730 bytes for
/// `/api/data/{id}`) would otherwise take four (`malloc`, then `realloc`s as
/// the head and body are appended); not before, so a connection that never
/// completes a request does not pay for it.
const WRITE_BUFFER_BYTES: usize = 1024;
/// Flush the output buffer mid-batch beyond this, so a long pipelined burst
/// does not pile up responses in memory; a buffer that grew past it is freed
/// once written (1,000 slow readers, each pipelining three 29.6 kB
/// dashboards, held 88.8 kB batches until their connections closed).
const FLUSH_THRESHOLD_BYTES: usize = 64 * 1024;
/// A client that does not read its responses is dropped after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a response that closes the connection, how long unread input is
/// drained so that the close does not turn into a reset that destroys the
/// response in flight (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes drained while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;

/// What to do after a batch of buffered requests was answered.
enum Next {
    /// Everything buffered was answered: read more.
    Read,
    /// The output buffer is large: write it, then keep answering.
    Flush,
    /// Write what is buffered, then close.
    Close,
}

/// The per-connection state that outlives one read.
struct Conn {
    /// The read buffer and where each request starts and ends.
    reader: RequestReader,
    /// Responses of one batch, written at once; kept between batches unless
    /// a batch grew it past [`FLUSH_THRESHOLD_BYTES`].
    wbuf: Vec<u8>,
    /// Where that request's response starts in `wbuf` and its status,
    /// until it is sent.
    body_response_at: Option<(usize, Status)>,
    /// When the first byte of the pending head arrived (headers timeout).
    head_started: Option<Instant>,
}

/// Serves a connection until it closes; `slot` is its registry entry.
pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream, slot: usize) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut conn = Conn {
        reader: RequestReader::new(shard.config.limits(), READ_BUFFER_BYTES),
        wbuf: Vec::new(),
        body_response_at: None,
        head_started: None,
    };
    let linger = run(&shard, &mut stream, &mut conn, slot).await;
    // The last responses may still be queued on the ring (`send_owned`):
    // out they go before the close, or the shutdown that starts a linger.
    let flushed = stream.flush_sent().await.is_ok();
    shard.conns.borrow_mut().remove(slot);
    if linger && flushed {
        linger_close(&mut stream, conn.reader.scratch()).await;
    }
    shard.stats.connection_closed();
}

/// Answers 503 to a connection over the cap, then closes it.
pub async fn reject(shard: Rc<Shard>, mut stream: TcpStream) {
    let mut out = Vec::new();
    let response = Response::new(Status::ServiceUnavailable)
        .persistence(Persistence::Close)
        .headers(handler::RETRY_AFTER);
    handler::write_error(&shard, &mut out, response, "too many connections");
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if stream.write_all(&out).await.is_ok() {
        // The response's own bytes serve as the drain buffer.
        linger_close(&mut stream, &mut out).await;
    }
}

/// The connection loop; returns whether the close should linger.
async fn run(shard: &Shard, stream: &mut TcpStream, conn: &mut Conn, slot: usize) -> bool {
    loop {
        if conn.wbuf.capacity() == 0 {
            // The last batch's buffer, back by now: its send went out in the
            // `io_uring_enter` that also brought this request.
            keep_output(conn, stream.take_sent());
        }
        let next = answer_buffered(shard, conn).await;
        if !conn.wbuf.is_empty() {
            // Queued on the ring (or written, without ring sends); the
            // buffer of the batch before comes back for the next one.
            let out = std::mem::take(&mut conn.wbuf);
            let large = out.capacity() > FLUSH_THRESHOLD_BYTES;
            let sent = stream.send_owned(out).await;
            conn.body_response_at = None;
            match sent {
                Ok(previous) => keep_output(conn, previous),
                Err(_) => return false,
            }
            if large {
                // Wait for it (a turn) and free it now, rather than leave
                // it with the stream until the next request, which an idle
                // connection may never send.
                if stream.flush_sent().await.is_err() {
                    return false;
                }
            }
        }
        match next {
            Next::Close => return true,
            Next::Flush => continue,
            Next::Read => {}
        }
        if conn.reader.spare().is_empty() {
            // Cannot happen with the parser's limits; never spin on it.
            let status = handler::write_parse_error(
                shard,
                &mut conn.wbuf,
                request::ParseError::HeadTooLarge,
            );
            shard.stats.record_response(RouteClass::Other, status, 1);
            let _ = stream.write_all(&conn.wbuf).await;
            return true;
        }
        // The shard's sweep (`Registry::expire`) ends the read at its
        // deadline: keep-alive while idle or inside a body, the headers
        // timeout from the head's first byte otherwise.
        let idle = conn.reader.is_idle();
        let in_head = !idle && !conn.reader.in_body();
        let deadline = if in_head {
            let started = conn.head_started.unwrap_or_else(Instant::now);
            started + Duration::from_millis(shard.config.headers_timeout_ms)
        } else {
            Instant::now() + Duration::from_millis(shard.config.keep_alive_timeout_ms)
        };
        shard.conns.borrow_mut().read_started(slot, idle, deadline);
        let read = stream.read(conn.reader.spare()).await;
        let timed_out = shard.conns.borrow_mut().read_finished(slot);
        match read {
            Ok(0) if timed_out && in_head => {
                // RFC 9110 §15.5.9: the head did not arrive in time.
                shard.clock.borrow_mut().refresh();
                let status = Status::RequestTimeout;
                let response = Response::new(status).persistence(Persistence::Close);
                handler::write_error(shard, &mut conn.wbuf, response, "request head timeout");
                shard.stats.record_response(RouteClass::Other, status, 1);
                let _ = stream.write_all(&conn.wbuf).await;
                return true;
            }
            Ok(0) | Err(_) => return false,
            Ok(n) => conn.reader.filled(n),
        }
    }
}

/// Makes `buf`, a sent batch's buffer handed back cleared, the output
/// buffer if the connection has none. Only a batch past the flush threshold
/// grows a buffer beyond it (a pipelined burst, three slow readers'
/// dashboards): that one is freed rather than held for the connection's
/// life. Batches below the threshold reuse their buffer and allocate
/// nothing.
fn keep_output(conn: &mut Conn, buf: Option<Vec<u8>>) {
    if let Some(buf) = buf {
        if conn.wbuf.capacity() == 0 && buf.capacity() <= FLUSH_THRESHOLD_BYTES {
            conn.wbuf = buf;
        }
    }
}

/// Answers every complete request in the read buffer into the output buffer.
async fn answer_buffered(shard: &Shard, conn: &mut Conn) -> Next {
    // The clock (`Date`, timestamps) is read once per batch, and only for a
    // batch that answers something: a read that ends inside a head answers
    // nothing.
    let mut clock_fresh = false;
    loop {
        let started = quanta::Instant::now();
        let event = conn.reader.next_event();
        if !clock_fresh && matches!(event, Event::Head(_) | Event::Error { .. }) {
            shard.clock.borrow_mut().refresh();
            clock_fresh = true;
        }
        let head = match event {
            Event::Head(head) => head,
            Event::BodyEnd => {
                conn.body_response_at = None;
                continue;
            }
            Event::NeedRead => {
                if !conn.reader.is_idle() && !conn.reader.in_body() {
                    // Part of a head is here: the headers timeout runs from now.
                    conn.head_started.get_or_insert_with(Instant::now);
                }
                return Next::Read;
            }
            Event::Error { err, in_body: true } => {
                // The request was malformed after all. If its response
                // is still unsent, the error replaces it; if it was sent
                // (the body spanned several reads), the client has its
                // answer and the connection just closes: one request,
                // one response, whatever the pipeline holds.
                if let Some((at, sent_status)) = conn.body_response_at.take() {
                    conn.wbuf.truncate(at);
                    let status = handler::write_parse_error(shard, &mut conn.wbuf, err);
                    shard.stats.replace_response(sent_status, status);
                }
                return Next::Close;
            }
            Event::Error {
                err,
                in_body: false,
            } => {
                let status = handler::write_parse_error(shard, &mut conn.wbuf, err);
                // No head, no path: counted as `other`.
                shard
                    .stats
                    .record_response(RouteClass::Other, status, elapsed_us(started));
                return Next::Close;
            }
        };
        conn.head_started = None;
        if conn.wbuf.capacity() == 0 {
            conn.wbuf.reserve_exact(WRITE_BUFFER_BYTES);
        }
        let has_body = !matches!(head.body, BodyFraming::None | BodyFraming::Length(0));
        if head.expect_continue && has_body && head.version == Version::Http11 {
            conn.wbuf.extend_from_slice(response::CONTINUE);
        }
        let response_at = conn.wbuf.len();
        let class = RouteClass::of_path(head.path);
        let (status, persistence) = handler::respond(shard, &head, class, &mut conn.wbuf).await;
        shard
            .stats
            .record_response(class, status, elapsed_us(started));
        if shard.config.access_log {
            tracing::info!(target: "access", shard = shard.id, method = ?head.method, path = head.path,
                status = status.code(), "request");
        }
        conn.body_response_at = conn.reader.in_body().then_some((response_at, status));
        if persistence == Persistence::Close {
            return Next::Close;
        }
        if conn.wbuf.len() >= FLUSH_THRESHOLD_BYTES {
            return Next::Flush;
        }
    }
}

fn elapsed_us(started: quanta::Instant) -> u64 {
    started.elapsed().as_micros() as u64
}

/// Closes our side after the last response and reads (and drops) what the
/// client still sends, for a bounded time, so that its unread data does not
/// make the kernel reset the connection before the client read our answer.
/// `sink` receives and drops what is read: a buffer the connection already
/// has (a local array here would sit in every connection's future: 4 KiB of
/// the 4.6 KiB it was, in every idle connection's memory).
async fn linger_close(stream: &mut TcpStream, sink: &mut [u8]) {
    if stream.shutdown(std::net::Shutdown::Write).await.is_err() {
        return;
    }
    if sink.is_empty() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut drained = 0;
    while drained < LINGER_MAX_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an `async fn` taking `serve`'s arguments returns.
    fn future_bytes<F, Fut>(_: F) -> usize
    where
        F: FnOnce(Rc<Shard>, TcpStream, usize) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every open connection, idle or not, holds its task's future: a
    /// buffer declared in any `.await`ed callee sits in it (a 4 KiB drain
    /// array made it 4,656 bytes, two thirds of an idle connection's RSS).
    #[test]
    fn a_connection_future_holds_no_buffer() {
        let bytes = future_bytes(serve);
        assert!(bytes <= 1536, "serve's future is {bytes} bytes");
    }
}
