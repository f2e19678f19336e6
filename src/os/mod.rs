//! What percore asks of the operating system before any request: listening
//! sockets built by hand (backlog, `SO_REUSEPORT`), resource limits raised
//! (file descriptors, locked memory for io_uring), executor threads started.

pub mod executor;
pub mod limits;
pub mod listener;
pub mod memory;
