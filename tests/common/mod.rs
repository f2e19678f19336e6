//! Shared helpers of the integration tests, by job:
//! - `server.rs`: a `percore` child process with a guard;
//! - `client.rs`: a raw HTTP/1.1 client that reads exactly one response at a
//!   time (so pipelined responses can be read one by one);
//! - `assertions.rs`: checks several test files share.
//!
//! Std only, plus `serde_json` to parse bodies and `libc` to send signals.
//! Everything is re-exported here, so a test file says `use common::*;`.

// Each test file uses some helpers, never all of them.
#![allow(dead_code, unused_imports)]

mod assertions;
mod client;
mod server;

pub use assertions::*;
pub use client::*;
pub use server::*;
