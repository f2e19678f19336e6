//! One connection's buffers and the one decision the floor makes per read:
//! how many complete requests arrived, so how many responses to send.
//!
//! The read buffer holds what has arrived and not been answered; every
//! complete head in it is answered (pipelining, in order) and the rest kept
//! for the next read. Heads are parsed with httparse (as percore does) so a
//! pipelined batch is split where a real server would split it; a request
//! with a body, a malformed head or a head larger than the buffer closes the
//! connection: the floor serves GETs without bodies, nothing else.

/// Largest request head, as percore's `MAX_HEAD_BYTES` default.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Header fields parsed per head, as percore's `MAX_HEADERS` default.
const MAX_HEADERS: usize = 64;

/// What the worker does with a connection after a read.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send `output()`, then read again (linked: the read starts once the
    /// send is complete, so the output is not touched while in flight).
    SendThenRecv,
    /// No complete request yet: read more.
    Recv,
    /// Unusable input (malformed, a body, a head past the buffer): close.
    Close,
}

/// A connection's buffers, allocated once when it is accepted.
pub struct Conn {
    /// Bytes received and not yet answered, `input[..filled]`.
    input: Box<[u8]>,
    /// How much of `input` holds data.
    filled: usize,
    /// The responses of the last batch; reused, grows to the deepest batch.
    output: Vec<u8>,
}

impl Conn {
    pub fn new() -> Self {
        Conn {
            input: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            filled: 0,
            output: Vec::with_capacity(1024),
        }
    }

    /// Where the next recv writes: the free tail of the read buffer. Never
    /// empty: a full buffer is closed by `answer`.
    pub fn recv_target(&mut self) -> (*mut u8, u32) {
        let free = &mut self.input[self.filled..];
        (free.as_mut_ptr(), free.len() as u32)
    }

    /// The responses to send, as built by the last `answer`.
    pub fn output(&self) -> (*const u8, u32) {
        (self.output.as_ptr(), self.output.len() as u32)
    }

    /// Takes `received` new bytes (as reported by the recv completion, so at
    /// most the free space it was given) and answers every complete request.
    pub fn answer(&mut self, received: usize, response: &[u8]) -> Next {
        self.filled = (self.filled + received).min(self.input.len());
        self.output.clear();
        let mut start = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&self.input[start..self.filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    if has_body(request.headers) {
                        return Next::Close;
                    }
                    self.output.extend_from_slice(response);
                    start += len;
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return Next::Close,
            }
        }
        self.input.copy_within(start..self.filled, 0);
        self.filled -= start;
        if self.filled == self.input.len() {
            return Next::Close;
        }
        if self.output.is_empty() {
            Next::Recv
        } else {
            Next::SendThenRecv
        }
    }
}

/// A body would have to be framed and skipped (RFC 9112 §6.3); the floor
/// does not do that, so such a request closes the connection.
fn has_body(headers: &[httparse::Header<'_>]) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /api/data/client-1 HTTP/1.1\r\nHost: x\r\n\r\n";

    fn feed(conn: &mut Conn, bytes: &[u8]) -> Next {
        let (ptr, len) = conn.recv_target();
        assert!(bytes.len() <= len as usize);
        // SAFETY: `ptr` points at `len` writable bytes of the connection's
        // read buffer, and nothing else borrows it during the copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        conn.answer(bytes.len(), b"R")
    }

    /// Every complete pipelined request gets one response, in one batch; the
    /// partial tail is kept and answered once it completes.
    #[test]
    fn answers_every_complete_request_and_keeps_the_tail() {
        let mut conn = Conn::new();
        let mut batch = GET.repeat(16);
        batch.extend_from_slice(&GET[..10]);
        assert_eq!(feed(&mut conn, &batch), Next::SendThenRecv);
        assert_eq!(conn.output, b"R".repeat(16));
        assert_eq!(feed(&mut conn, &GET[10..]), Next::SendThenRecv);
        assert_eq!(conn.output, b"R");
        assert_eq!(conn.filled, 0);
    }

    /// A request split at every offset is answered exactly once.
    #[test]
    fn a_request_split_anywhere_is_answered_once() {
        for split in 1..GET.len() {
            let mut conn = Conn::new();
            assert_eq!(feed(&mut conn, &GET[..split]), Next::Recv, "split {split}");
            assert_eq!(feed(&mut conn, &GET[split..]), Next::SendThenRecv);
            assert_eq!(conn.output, b"R");
        }
    }

    /// Garbage, a body and a head that fills the buffer all close.
    #[test]
    fn closes_on_what_it_does_not_serve() {
        assert_eq!(
            feed(&mut Conn::new(), b"\x00\x01 nonsense\r\n\r\n"),
            Next::Close
        );
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(feed(&mut Conn::new(), post), Next::Close);
        let mut conn = Conn::new();
        let mut long = b"GET /".to_vec();
        long.resize(READ_BUFFER_BYTES, b'a');
        assert_eq!(feed(&mut conn, &long), Next::Close);
    }
}
