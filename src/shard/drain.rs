//! Draining a shard's connections on shutdown without losing a request.
//!
//! A connection that is answering gets `Connection: close` on its next
//! response and closes after it. A connection idle at the moment of the
//! drain is not cut at once: its client may be writing a request right now.
//! It gets a grace period to send one last request (answered with
//! `Connection: close`); after the grace, idle connections are closed by
//! shutting down their read side, so bytes already received are still read
//! and answered. At the drain timeout whatever is left is cut.

use std::time::{Duration, Instant};

use crate::shard::state::Shard;

/// How often a draining shard looks at its connections.
const POLL: Duration = Duration::from_millis(5);
/// After cutting, how long the cut connections get to notice.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// Waits until the shard has no connection left, or the drain timeout.
pub async fn connections(shard: &Shard) {
    let started = Instant::now();
    let grace_end = started + Duration::from_millis(shard.config.drain_idle_grace_ms);
    let deadline = started + Duration::from_millis(shard.config.drain_timeout_ms);
    while !shard.conns.borrow().is_empty() {
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!(
                shard = shard.id,
                left = shard.conns.borrow().len(),
                "drain timeout: cutting connections"
            );
            shard.conns.borrow().cut_all();
            let cut_at = Instant::now();
            while !shard.conns.borrow().is_empty() && cut_at.elapsed() < CUT_WAIT {
                glommio::timer::sleep(POLL).await;
            }
            return;
        }
        if now >= grace_end {
            shard.conns.borrow().close_idle();
        }
        glommio::timer::sleep(POLL).await;
    }
}
