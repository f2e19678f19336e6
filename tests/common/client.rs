//! A tiny raw HTTP/1.1 client over std's `TcpStream`: it sends bytes as
//! given and reads exactly one response at a time, so pipelined responses
//! can be read one by one and every byte the server sends is checked.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Read timeout of every client socket: no test waits longer for a byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A client connection with a 5 s read timeout and TCP_NODELAY.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One HTTP response as read off the wire.
#[derive(Clone)]
pub struct Response {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Field lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}

impl Response {
    /// Values of every field named `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the field named `name`; panics if it appears twice.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "{name} appears {} times: {self:?}",
            all.len()
        );
        all.first().copied()
    }

    /// Field names in order.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one CRLF-terminated line, without the CRLF. A bare LF or EOF is an
/// error: the server must end every line with CRLF.
fn read_crlf_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response line",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads exactly one response: status line, field lines, and a body of
/// `Content-Length` bytes (none for HEAD requests, 1xx, 204 and 304). Never
/// reads past the response, so the next pipelined response stays buffered.
pub fn try_read_response<R: BufRead>(r: &mut R, head_request: bool) -> io::Result<Response> {
    let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let status_line = read_crlf_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("bad status line {status_line:?}")));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_crlf_line(r)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad field line {line:?}")))?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(bad(format!("bad field name in {line:?}")));
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let mut response = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    if !no_body {
        let lengths = response.header_all("content-length");
        if lengths.len() != 1 {
            return Err(bad(format!(
                "need exactly one Content-Length: {response:?}"
            )));
        }
        let len: usize = lengths[0]
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {:?}", lengths[0])))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        response.body = body;
    }
    Ok(response)
}

/// [`try_read_response`] that panics on failure.
pub fn read_response<R: BufRead>(r: &mut R) -> Response {
    try_read_response(r, false).unwrap_or_else(|e| panic!("cannot read a response: {e}"))
}

/// Reads the response to a HEAD request (no body bytes).
pub fn read_head_response<R: BufRead>(r: &mut R) -> Response {
    try_read_response(r, true).unwrap_or_else(|e| panic!("cannot read a HEAD response: {e}"))
}

/// Reads until the server closes the connection and returns the bytes
/// received meanwhile. Panics on a timeout (the server kept the connection
/// open) or any other error such as a reset.
pub fn read_to_close<R: Read>(r: &mut R) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "expected the server to close the connection, got {e} after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// A client connection: a buffered reader and a writer on one socket.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = connect(addr);
        Client {
            writer: stream.try_clone().expect("clone socket"),
            reader: BufReader::new(stream),
        }
    }

    /// Writes `bytes` in one write call (as far as the kernel takes them).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.writer
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("write failed: {e}"));
        self.writer.flush().unwrap();
    }

    /// Sends `GET path HTTP/1.1` with a Host header.
    pub fn send_get(&mut self, path: &str) {
        self.send(get_request(path));
    }

    pub fn read(&mut self) -> Response {
        read_response(&mut self.reader)
    }

    pub fn read_head(&mut self) -> Response {
        read_head_response(&mut self.reader)
    }

    /// Sends a GET and reads its response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send_get(path);
        self.read()
    }

    /// Reads until EOF (see [`read_to_close`]).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        read_to_close(&mut self.reader)
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.writer.set_read_timeout(Some(timeout)).unwrap();
    }
}

/// `GET path HTTP/1.1` with a Host header and nothing else.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// One GET on a new connection (keep-alive, dropped after the response).
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).get(path)
}
