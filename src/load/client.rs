//! One HTTP/1.1 keep-alive connection of the load generator.
//!
//! Non-buffered glommio `TcpStream` (each read and write is one io_uring
//! operation), a request buffer and a response buffer allocated once and
//! reused, httparse for the response head. Bodies are framed by
//! `Content-Length` and skipped without being kept; chunked responses are not
//! needed for percore and count as protocol errors (the connection is
//! dropped, never left hanging). A connection the server closed is re-opened
//! on the next request, and counted. Every request has a deadline covering
//! connect, write and read, enforced by the executor's watchdog (`watchdog.rs`).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::outcome::{ErrorKind, Outcome};
use super::watchdog::Slot;

/// Initial response buffer; a percore `/api/data` response is ~1 KiB.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// A response head larger than this is a protocol error.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Response header fields parsed.
const MAX_HEADERS: usize = 32;

/// What a finished response says about the connection.
struct Response {
    status: u16,
    keep_alive: bool,
}

/// How reading a response failed.
enum ReadError {
    /// The server closed the connection before sending any byte: a keep-alive
    /// race, worth one retry on a new connection.
    ClosedIdle,
    /// Anything else.
    Failed(ErrorKind),
}

/// One client connection, (re)opened on demand.
pub struct Client {
    addr: SocketAddr,
    host_header: Vec<u8>,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    buf: Vec<u8>,
    timeout: Duration,
    deadline: Rc<Slot>,
    /// TCP connections opened by this client.
    pub connects: u64,
    /// Connections opened after a previous one closed.
    pub reconnects: u64,
}

impl Client {
    /// A client of `addr`; nothing is opened until the first request. Must
    /// be created on the glommio executor that uses it.
    pub fn new(addr: SocketAddr, host_header: &str, timeout: Duration) -> Client {
        Client {
            addr,
            host_header: host_header.as_bytes().to_vec(),
            stream: None,
            request: Vec::with_capacity(256),
            buf: vec![0; READ_BUFFER_BYTES],
            timeout,
            deadline: Slot::register(),
            connects: 0,
            reconnects: 0,
        }
    }

    /// Sends `GET path` and reads the whole response.
    pub async fn get(&mut self, path: &[u8]) -> Outcome {
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path);
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(&self.host_header);
        self.request.extend_from_slice(b"\r\n\r\n");
        for attempt in 0..2 {
            let reused = self.stream.is_some();
            if let Err(kind) = self.ensure_connected().await {
                return Outcome::Error(kind);
            }
            let result = self.exchange().await;
            self.deadline.disarm();
            let result = match result {
                Err(_) if self.deadline.fired() => Err(ReadError::Failed(ErrorKind::Timeout)),
                other => other,
            };
            match result {
                Ok(response) => {
                    if !response.keep_alive {
                        self.stream = None;
                    }
                    return Outcome::Status(response.status);
                }
                Err(ReadError::ClosedIdle) if reused && attempt == 0 => self.stream = None,
                Err(ReadError::ClosedIdle) => {
                    self.stream = None;
                    return Outcome::Error(ErrorKind::Reset);
                }
                Err(ReadError::Failed(kind)) => {
                    self.stream = None;
                    return Outcome::Error(kind);
                }
            }
        }
        Outcome::Error(ErrorKind::Reset)
    }

    async fn ensure_connected(&mut self) -> Result<(), ErrorKind> {
        if self.stream.is_some() {
            return Ok(());
        }
        let stream = TcpStream::connect_timeout(self.addr, self.timeout)
            .await
            .map_err(|_| ErrorKind::Connect)?;
        let _ = stream.set_nodelay(true);
        if self.connects > 0 {
            self.reconnects += 1;
        }
        self.connects += 1;
        self.stream = Some(stream);
        Ok(())
    }

    /// Writes the prepared request, reads one response.
    async fn exchange(&mut self) -> Result<Response, ReadError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadError::Failed(ErrorKind::Reset));
        };
        self.deadline.arm(stream.as_raw_fd(), self.timeout);
        if let Err(e) = stream.write_all(&self.request).await {
            return Err(match ErrorKind::from_io(&e) {
                ErrorKind::Timeout => ReadError::Failed(ErrorKind::Timeout),
                _ => ReadError::ClosedIdle,
            });
        }
        read_response(stream, &mut self.buf).await
    }
}

/// One read; the watchdog ends it at the deadline.
async fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, ErrorKind> {
    stream.read(buf).await.map_err(|e| ErrorKind::from_io(&e))
}

/// Head facts extracted from httparse, so the buffer can be reused.
struct Head {
    len: usize,
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::Protocol),
    };
    let status = response.code.ok_or(ErrorKind::Protocol)?;
    let mut head = Head {
        len,
        status,
        content_length: None,
        chunked: false,
        keep_alive: response.version == Some(1),
    };
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).map_err(|_| ErrorKind::Protocol)?;
            let n = text.trim().parse().map_err(|_| ErrorKind::Protocol)?;
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                head.keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                head.keep_alive = true;
            }
        }
    }
    Ok(Some(head))
}

async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Response, ReadError> {
    let mut filled = 0;
    let head = loop {
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(ReadError::Failed(ErrorKind::Protocol));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = read_some(stream, &mut buf[filled..])
            .await
            .map_err(ReadError::Failed)?;
        if n == 0 {
            return Err(if filled == 0 {
                ReadError::ClosedIdle
            } else {
                ReadError::Failed(ErrorKind::Reset)
            });
        }
        filled += n;
        if let Some(head) = parse_head(&buf[..filled]).map_err(ReadError::Failed)? {
            break head;
        }
    };
    if head.chunked {
        return Err(ReadError::Failed(ErrorKind::Protocol));
    }
    let bodiless = head.status < 200 || head.status == 204 || head.status == 304;
    let mut keep_alive = head.keep_alive;
    let mut left = match (bodiless, head.content_length) {
        (true, _) => 0,
        (false, Some(n)) => n.saturating_sub(filled - head.len),
        // No framing: the body runs until the server closes.
        (false, None) => {
            keep_alive = false;
            usize::MAX
        }
    };
    while left > 0 {
        let n = read_some(stream, buf).await.map_err(ReadError::Failed)?;
        if n == 0 {
            if left == usize::MAX {
                break;
            }
            return Err(ReadError::Failed(ErrorKind::Reset));
        }
        left = left.saturating_sub(n);
    }
    Ok(Response {
        status: head.status,
        keep_alive,
    })
}
