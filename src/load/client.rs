//! One HTTP/1.1 keep-alive connection of the load generator.
//!
//! Non-buffered glommio `TcpStream` (each read and write is one io_uring
//! operation), a request buffer and a `ResponseReader` allocated once and
//! reused. The reader parses the head with httparse and skips the body by
//! its `Content-Length` without keeping it; a chunked response counts as a
//! protocol error (the connection is dropped, never left hanging). A
//! connection the server closed is re-opened on the next request, and
//! counted. Every request has a deadline covering connect, write and read,
//! enforced by the executor's watchdog (`watchdog.rs`).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::outcome::{ErrorKind, Outcome};
use super::response_reader::{Progress, ResponseReader};
use super::watchdog::Slot;

/// Initial response buffer; a percore `/api/data` response is ~1 KiB.
const READ_BUFFER_BYTES: usize = 8 * 1024;

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
    response: ResponseReader,
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
            response: ResponseReader::new(READ_BUFFER_BYTES),
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
        read_response(stream, &mut self.response).await
    }
}

/// One read; the watchdog ends it at the deadline.
async fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, ErrorKind> {
    stream.read(buf).await.map_err(|e| ErrorKind::from_io(&e))
}

async fn read_response(
    stream: &mut TcpStream,
    response: &mut ResponseReader,
) -> Result<Response, ReadError> {
    response.reset();
    loop {
        let spare = response.spare().map_err(ReadError::Failed)?;
        let n = read_some(stream, spare).await.map_err(ReadError::Failed)?;
        let progress = if n > 0 {
            response.received(n)
        } else if response.nothing_read() {
            return Err(ReadError::ClosedIdle);
        } else {
            response.closed()
        };
        if let Progress::Complete { status, keep_alive } = progress.map_err(ReadError::Failed)? {
            return Ok(Response { status, keep_alive });
        }
    }
}
