//! Giving freed heap memory back to the operating system.
//!
//! glibc's allocator keeps what a thread freed for its next allocations: after
//! 1,000 slow readers left, the server's RSS stayed at its peak (115.9 MiB
//! against 7.8 MiB before the attack, `benches/slow_clients.sh`). A shard
//! calls [`trim`] from its periodic sweep once many connections have closed,
//! never on the request path.

use std::time::{Duration, Instant};

/// Returns the free memory at the top of the heaps and the free pages inside
/// them to the kernel (`malloc_trim(0)`: every arena, so one shard's call
/// serves all). Returns how long it took. A no-op without glibc.
pub fn trim() -> Duration {
    let started = Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own structures under
    // their locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}
