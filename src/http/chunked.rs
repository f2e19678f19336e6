//! The chunked transfer coding, decoded by its grammar (RFC 9112 §7.1).
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )   §7.1.1
//! chunk-ext-val  = token / quoted-string                                          RFC 9110 §5.6
//! trailer-section = *( field-line CRLF )                                          §7.1.2
//! ```
//!
//! Every line of a chunked body ends with CRLF. The bare-LF leniency of
//! RFC 9112 §2.2 covers the start-line and header fields only: a parser that
//! took a bare LF as the end of a chunk line would disagree with one that reads
//! it as part of the line (an extension, say) on where the request ends, which
//! is how chunk-line request smuggling works. So a bare LF or a bare CR
//! anywhere in a chunk-size line, after chunk data or in the trailer section is
//! an error, as is any byte the grammar does not allow.
//!
//! Extensions are parsed and ignored (§7.1.1). What a client may send that is
//! not body is bounded, so a body cannot make the server read without end:
//! [`MAX_CHUNK_EXT_BYTES`] per chunk-size line, [`MAX_BODY_EXT_BYTES`] per body
//! (the bound Node.js adopted for CVE-2024-22019), [`MAX_CHUNK_SIZE_DIGITS`]
//! per size and [`MAX_TRAILER_BYTES`] for the trailer section. Trailer fields
//! are checked by field syntax (RFC 9112 §5) and discarded, so none of them can
//! change framing (RFC 9110 §6.5.1).
//!
//! The decoder is a resumable state machine over single bytes (chunk data is
//! skipped in bulk): it never buffers, never allocates, and takes any split of
//! its input.

use super::parse_error::ParseError;
use super::syntax::{hex_value, is_field_byte, is_qdtext, is_quoted_pair_byte, is_tchar, is_ws};

/// Most hex digits in a chunk-size, leading zeros included; 16 always fit
/// in a u64 (RFC 9112 §7.1 leaves the bound to the recipient).
pub const MAX_CHUNK_SIZE_DIGITS: u8 = 16;
/// Most extension bytes in one chunk-size line: everything after the size and
/// before its CRLF (RFC 9112 §7.1.1 "a server ought to limit the total length
/// of chunk extensions"). Past it: [`ParseError::ChunkExtTooLarge`].
pub const MAX_CHUNK_EXT_BYTES: usize = 4096;
/// Most extension bytes over all chunk-size lines of one body, so many small
/// chunks with long extensions are bounded too. Past it:
/// [`ParseError::ChunkExtTooLarge`].
pub const MAX_BODY_EXT_BYTES: usize = 16 * 1024;
/// Largest trailer section, its line ends and the final CRLF included
/// (RFC 9112 §7.1.2). Past it: [`ParseError::TrailerTooLarge`].
pub const MAX_TRAILER_BYTES: usize = 8192;

/// Where in a chunk-size line the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// In chunk-size, after `digits` hex digits.
    Size { digits: u8 },
    /// BWS after the size or a value: only more BWS or ";" may follow.
    BeforeSemicolon,
    /// After ";", BWS, then a chunk-ext-name.
    NameStart,
    /// In a chunk-ext-name (token).
    Name,
    /// BWS after a name: "=" or the next ";".
    AfterName,
    /// After "=", BWS, then a token or a quoted-string.
    ValueStart,
    /// In a token value.
    Token,
    /// In a quoted-string value, after its opening DQUOTE.
    Quoted,
    /// After a backslash in a quoted-string (quoted-pair).
    QuotedPair,
    /// After a quoted-string's closing DQUOTE: ";", BWS or the line end.
    AfterQuoted,
    /// CR seen: LF must follow.
    Lf,
}

/// Where in the chunked body the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A chunk-size line with the size read so far.
    SizeLine { line: Line, size_bytes: u64 },
    /// chunk-data with this many bytes still to skip.
    Data { left_bytes: u64 },
    /// The CR that must follow chunk-data.
    DataCr,
    /// The LF that must follow that CR.
    DataLf,
    /// Start of a trailer field line, or of the final CRLF.
    TrailerStart,
    /// In a trailer field name, up to ":".
    TrailerName,
    /// In a trailer field value, up to CR.
    TrailerValue,
    /// CR seen in the trailer section; `last` if it ends the final empty line.
    TrailerLf { last: bool },
    /// The body has ended.
    Done,
}

/// A chunked body being decoded (and discarded).
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    max_body_bytes: u64,
    /// Sum of the chunk sizes seen so far.
    total_bytes: u64,
    /// Extension bytes in the current chunk-size line.
    line_ext_bytes: usize,
    /// Extension bytes in the whole body.
    body_ext_bytes: usize,
    /// Bytes of the trailer section so far.
    trailer_bytes: usize,
}

const START: State = State::SizeLine {
    line: Line::Size { digits: 0 },
    size_bytes: 0,
};

impl ChunkedDecoder {
    /// A decoder at the start of a body whose chunk sizes may add up to
    /// `max_body_bytes` at most ([`ParseError::BodyTooLarge`] beyond).
    pub fn new(max_body_bytes: u64) -> Self {
        Self {
            state: START,
            max_body_bytes,
            total_bytes: 0,
            line_ext_bytes: 0,
            body_ext_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Consume body bytes from the start of `buf`.
    ///
    /// `Ok(None)`: all of `buf` was body. `Ok(Some(n))`: the body (final
    /// CRLF included) ended at `buf[n]`; later calls return `Some(0)`. After an
    /// error the decoder must not be called again (the caller keeps the error).
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<usize>, ParseError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok(Some(pos)),
                State::Data { left_bytes } => {
                    let available = buf.len().saturating_sub(pos);
                    let n = usize::try_from(left_bytes).map_or(available, |l| l.min(available));
                    pos += n;
                    let left_bytes = left_bytes - n as u64;
                    if left_bytes > 0 {
                        self.state = State::Data { left_bytes };
                        return Ok(None);
                    }
                    self.state = State::DataCr;
                }
                _ => {}
            }
            let Some(&byte) = buf.get(pos) else {
                return Ok(None);
            };
            pos += 1;
            self.state = self.step(byte)?;
        }
    }

    /// The state after one more byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<State, ParseError> {
        Ok(match self.state {
            State::SizeLine { line, size_bytes } => self.size_line(line, size_bytes, byte)?,
            // §7.1: chunk-data is followed by exactly CRLF.
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => START,
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf { .. } => self.trailer(byte)?,
            _ => return Err(ParseError::BadChunk),
        })
    }

    /// One byte of a chunk-size line (§7.1, §7.1.1).
    fn size_line(&mut self, line: Line, size_bytes: u64, byte: u8) -> Result<State, ParseError> {
        let next = |line| Ok(State::SizeLine { line, size_bytes });
        if let Line::Size { digits } = line {
            if let Some(digit) = hex_value(byte) {
                if digits >= MAX_CHUNK_SIZE_DIGITS {
                    return Err(ParseError::BadChunk);
                }
                let size_bytes = (size_bytes << 4) | u64::from(digit);
                // Refused before any of the chunk's data is consumed; the
                // bound also keeps the shift above from overflowing.
                if self.total_bytes.saturating_add(size_bytes) > self.max_body_bytes {
                    return Err(ParseError::BodyTooLarge);
                }
                let line = Line::Size { digits: digits + 1 };
                return Ok(State::SizeLine { line, size_bytes });
            }
            if digits == 0 {
                return Err(ParseError::BadChunk); // chunk-size = 1*HEXDIG
            }
        }
        if line == Line::Lf {
            return if byte == b'\n' {
                Ok(self.end_size_line(size_bytes))
            } else {
                Err(ParseError::BadChunk) // bare CR
            };
        }
        if byte != b'\r' {
            // Everything between the size and the CR is extension bytes.
            self.line_ext_bytes += 1;
            self.body_ext_bytes += 1;
            if self.line_ext_bytes > MAX_CHUNK_EXT_BYTES || self.body_ext_bytes > MAX_BODY_EXT_BYTES
            {
                return Err(ParseError::ChunkExtTooLarge);
            }
        }
        let ws = is_ws(byte);
        match (line, byte) {
            // The line ends where the grammar may end: after the size, a
            // name, or a value; never after BWS or ";" (no trailing BWS).
            (Line::Size { .. } | Line::Name | Line::Token | Line::AfterQuoted, b'\r') => {
                next(Line::Lf)
            }
            (Line::Size { .. } | Line::BeforeSemicolon | Line::Token | Line::AfterQuoted, _)
                if ws =>
            {
                next(Line::BeforeSemicolon)
            }
            (Line::Name | Line::AfterName, _) if ws => next(Line::AfterName),
            (Line::NameStart | Line::ValueStart, _) if ws => next(line),
            (
                Line::Size { .. }
                | Line::BeforeSemicolon
                | Line::Name
                | Line::AfterName
                | Line::Token
                | Line::AfterQuoted,
                b';',
            ) => next(Line::NameStart),
            (Line::NameStart | Line::Name, _) if is_tchar(byte) => next(Line::Name),
            (Line::Name | Line::AfterName, b'=') => next(Line::ValueStart),
            (Line::ValueStart | Line::Token, _) if is_tchar(byte) => next(Line::Token),
            (Line::ValueStart, b'"') => next(Line::Quoted),
            (Line::Quoted, b'"') => next(Line::AfterQuoted),
            (Line::Quoted, b'\\') => next(Line::QuotedPair),
            (Line::Quoted, _) if is_qdtext(byte) => next(Line::Quoted),
            (Line::QuotedPair, _) if is_quoted_pair_byte(byte) => next(Line::Quoted),
            // A bare LF, a CR inside a quoted-string or after BWS, a control
            // byte, a separator out of place.
            _ => Err(ParseError::BadChunk),
        }
    }

    /// A chunk-size line ended with CRLF: its data, or after last-chunk the trailer.
    fn end_size_line(&mut self, size_bytes: u64) -> State {
        // Cannot overflow: checked against max_body_bytes digit by digit.
        self.total_bytes = self.total_bytes.saturating_add(size_bytes);
        self.line_ext_bytes = 0;
        if size_bytes == 0 {
            State::TrailerStart // §7.1: last-chunk
        } else {
            State::Data {
                left_bytes: size_bytes,
            }
        }
    }

    /// One byte of the trailer section (§7.1.2): field lines by the field
    /// syntax of §5 (name, ":", value bytes; no obs-fold, no whitespace
    /// before ":"), each ended by CRLF, then a final CRLF.
    fn trailer(&mut self, byte: u8) -> Result<State, ParseError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(ParseError::TrailerTooLarge);
        }
        Ok(match (self.state, byte) {
            (State::TrailerStart, b'\r') => State::TrailerLf { last: true },
            (State::TrailerStart | State::TrailerName, _) if is_tchar(byte) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerValue, b'\r') => State::TrailerLf { last: false },
            (State::TrailerValue, _) if is_field_byte(byte) => State::TrailerValue,
            (State::TrailerLf { last: true }, b'\n') => State::Done,
            (State::TrailerLf { last: false }, b'\n') => State::TrailerStart,
            // A bare LF or CR, obs-fold (a line starting with SP/HTAB, §5.2),
            // an empty name, whitespace before ":" (§5.1), a control byte.
            _ => return Err(ParseError::BadChunk),
        })
    }
}

#[cfg(test)]
mod tests;
