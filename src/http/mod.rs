//! HTTP/1.1 protocol pieces (RFC 9112): request head parsing, body framing.

pub mod body;
pub mod chunked;
pub mod reader;
pub mod request;
pub mod response;
pub mod syntax;
mod version;
