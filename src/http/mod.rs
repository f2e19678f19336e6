//! HTTP/1.1 protocol pieces (RFC 9112): request head parsing, body framing.
//!
//! `parse_error.rs`: [`ParseError`](parse_error::ParseError), why a request
//! is refused, shared by the head parser, body framing and the chunked
//! decoder.

pub mod body;
pub mod chunked;
pub mod parse_error;
pub mod reader;
pub mod request;
pub mod response;
pub mod syntax;
mod version;
