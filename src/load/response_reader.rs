//! Reading one HTTP/1.1 response from a non-blocking socket in pieces, as
//! they arrive: the head is kept until httparse has it whole (the buffer
//! doubles up to a limit), the body is only counted down by its
//! `Content-Length` and never kept. Chunked bodies are not needed for
//! percore and are a protocol error. Allocation: the buffer, once per
//! connection.

use super::outcome::ErrorKind;

/// A response head larger than this is a protocol error.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Body length meaning "until the server closes" (no framing given).
const UNTIL_CLOSE: usize = usize::MAX;
/// Response header fields parsed.
const MAX_HEADERS: usize = 32;

/// Where a response stands after some bytes arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    Partial,
    /// The response is complete.
    Complete {
        /// Its status code.
        status: u16,
        /// Whether the connection may carry the next request.
        keep_alive: bool,
    },
}

/// The state of the response being read.
pub struct ResponseReader {
    buf: Vec<u8>,
    filled: usize,
    /// Body bytes still expected once the head is in.
    body_left: Option<usize>,
    status: u16,
    keep_alive: bool,
}

impl ResponseReader {
    /// A reader with an `initial_bytes` buffer.
    pub fn new(initial_bytes: usize) -> ResponseReader {
        ResponseReader {
            buf: vec![0; initial_bytes.max(1)],
            filled: 0,
            body_left: None,
            status: 0,
            keep_alive: true,
        }
    }

    /// Ready for the next response (the buffer is kept).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.body_left = None;
    }

    /// Nothing of the current response has arrived.
    pub fn nothing_read(&self) -> bool {
        self.body_left.is_none() && self.filled == 0
    }

    /// Where the next bytes go; grows the buffer when a head fills it.
    pub fn spare(&mut self) -> Result<&mut [u8], ErrorKind> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_HEAD_BYTES {
                return Err(ErrorKind::Protocol);
            }
            let grown = (self.buf.len() * 2).min(MAX_HEAD_BYTES);
            self.buf.resize(grown, 0);
        }
        Ok(&mut self.buf[self.filled..])
    }

    /// `n` bytes were written into [`ResponseReader::spare`].
    pub fn received(&mut self, n: usize) -> Result<Progress, ErrorKind> {
        match self.body_left {
            None => {
                self.filled += n;
                let Some(head) = parse_head(&self.buf[..self.filled])? else {
                    return Ok(Progress::Partial);
                };
                if head.chunked {
                    return Err(ErrorKind::Protocol);
                }
                let bodiless = head.status < 200 || head.status == 204 || head.status == 304;
                self.status = head.status;
                self.keep_alive = head.keep_alive;
                let left = match (bodiless, head.content_length) {
                    (true, _) => 0,
                    (false, Some(len)) => len.saturating_sub(self.filled - head.len),
                    (false, None) => {
                        self.keep_alive = false;
                        UNTIL_CLOSE
                    }
                };
                // The head is parsed: body bytes are only counted.
                self.filled = 0;
                self.body_left = Some(left);
            }
            Some(UNTIL_CLOSE) => {}
            Some(left) => self.body_left = Some(left.saturating_sub(n)),
        }
        Ok(self.progress())
    }

    /// The server closed the connection: the end of a body framed by the
    /// close, or (`Err`) a response cut short.
    pub fn closed(&mut self) -> Result<Progress, ErrorKind> {
        if self.body_left == Some(UNTIL_CLOSE) {
            self.body_left = Some(0);
            return Ok(self.progress());
        }
        Err(ErrorKind::Reset)
    }

    fn progress(&self) -> Progress {
        if self.body_left == Some(0) {
            Progress::Complete {
                status: self.status,
                keep_alive: self.keep_alive,
            }
        } else {
            Progress::Partial
        }
    }
}

/// Head facts extracted from httparse, so the buffer can be reused.
struct Head {
    /// Bytes of the head, up to and including the blank line.
    len: usize,
    /// Status code.
    status: u16,
    /// `Content-Length`, if given.
    content_length: Option<usize>,
    /// A `Transfer-Encoding` was given (not supported: a protocol error).
    chunked: bool,
    /// HTTP/1.1 without `Connection: close`, or `Connection: keep-alive`.
    keep_alive: bool,
}

/// Parses a response head: `None` while incomplete.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one by one; returns the progress after each.
    fn feed(reader: &mut ResponseReader, parts: &[&[u8]]) -> Vec<Result<Progress, ErrorKind>> {
        parts
            .iter()
            .map(|part| {
                let mut rest = *part;
                loop {
                    let spare = reader.spare()?;
                    let n = rest.len().min(spare.len());
                    spare[..n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    let progress = reader.received(n)?;
                    if rest.is_empty() {
                        return Ok(progress);
                    }
                }
            })
            .collect()
    }

    const DONE_200: Progress = Progress::Complete {
        status: 200,
        keep_alive: true,
    };

    #[test]
    fn a_response_in_pieces_completes_with_its_last_byte() {
        let mut r = ResponseReader::new(16);
        let got = feed(
            &mut r,
            &[
                b"HTTP/1.1 200 OK\r\nConte",
                b"nt-Length: 10\r\n\r\n0123",
                b"45678",
                b"9",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(Progress::Partial),
                Ok(Progress::Partial),
                Ok(Progress::Partial),
                Ok(DONE_200)
            ]
        );
        r.reset();
        assert!(r.nothing_read());
        let got = feed(
            &mut r,
            &[b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"],
        );
        let closing = Progress::Complete {
            status: 204,
            keep_alive: false,
        };
        assert_eq!(got, [Ok(closing)]);
    }

    #[test]
    fn a_body_framed_by_the_close_ends_at_the_close() {
        let mut r = ResponseReader::new(64);
        let got = feed(&mut r, &[b"HTTP/1.0 200 OK\r\n\r\nsome", b" body"]);
        assert_eq!(got, [Ok(Progress::Partial), Ok(Progress::Partial)]);
        let closed = Progress::Complete {
            status: 200,
            keep_alive: false,
        };
        assert_eq!(r.closed(), Ok(closed));
    }

    #[test]
    fn a_close_mid_response_is_a_reset() {
        let mut r = ResponseReader::new(64);
        let got = feed(
            &mut r,
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"],
        );
        assert_eq!(got, [Ok(Progress::Partial)]);
        assert!(!r.nothing_read());
        assert_eq!(r.closed(), Err(ErrorKind::Reset));
    }

    #[test]
    fn chunked_garbage_and_huge_heads_are_protocol_errors() {
        let mut r = ResponseReader::new(64);
        let got = feed(
            &mut r,
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
        );
        assert_eq!(got, [Err(ErrorKind::Protocol)]);
        let mut r = ResponseReader::new(64);
        assert_eq!(
            feed(&mut r, &[b"NOT HTTP\r\n\r\n"]),
            [Err(ErrorKind::Protocol)]
        );
        let mut r = ResponseReader::new(1024);
        let header = [b'a'; 1024];
        let mut last = Ok(Progress::Partial);
        let mut fed = 0;
        while last == Ok(Progress::Partial) {
            last = feed(
                &mut r,
                &[if fed == 0 {
                    b"HTTP/1.1 200 OK\r\nX: "
                } else {
                    &header
                }],
            )
            .remove(0);
            fed += 1;
        }
        assert_eq!(last, Err(ErrorKind::Protocol));
        assert!(fed <= 66, "stops at the head limit, after {fed} pieces");
    }
}
