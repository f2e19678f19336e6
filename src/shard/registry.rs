//! A shard's open connections: their fds, whether each is idle between
//! requests, and the deadline of the read each one waits on. A drain can
//! close exactly the idle ones and cut the rest at its deadline; the
//! connection cap is a length check; and one sweep per shard
//! ([`Registry::expire`]) enforces the keep-alive and head timeouts, so that
//! a read does not insert and remove a runtime timer (a heap node in
//! glommio's timer map) for every request.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// One open connection.
#[derive(Clone, Copy, Debug)]
struct Entry {
    fd: RawFd,
    /// Waiting for the first byte of a new request.
    idle: bool,
    /// When the pending read times out, if one is pending.
    deadline: Option<Instant>,
    /// The sweep ended the pending read at its deadline.
    timed_out: bool,
}

/// Open connections of one shard, in reusable slots.
#[derive(Default)]
pub struct Registry {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    len: usize,
}

impl Registry {
    /// Adds a connection (busy), returning its slot.
    pub fn insert(&mut self, fd: RawFd) -> usize {
        self.len += 1;
        let entry = Some(Entry {
            fd,
            idle: false,
            deadline: None,
            timed_out: false,
        });
        if let Some(slot) = self.free.pop() {
            self.slots[slot] = entry;
            slot
        } else {
            self.slots.push(entry);
            self.slots.len() - 1
        }
    }

    /// The connection starts a read that must complete by `deadline`; it is
    /// idle (between requests) or not.
    pub fn read_started(&mut self, slot: usize, idle: bool, deadline: Instant) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            entry.idle = idle;
            entry.deadline = Some(deadline);
        }
    }

    /// The read completed; returns whether the sweep ended it at its
    /// deadline (its socket's read side is then shut down).
    pub fn read_finished(&mut self, slot: usize) -> bool {
        match self.slots.get_mut(slot) {
            Some(Some(entry)) => {
                entry.idle = false;
                entry.deadline = None;
                entry.timed_out
            }
            _ => false,
        }
    }

    /// Removes a connection; call before its fd is closed.
    pub fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            if entry.take().is_some() {
                self.len -= 1;
                self.free.push(slot);
            }
        }
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No connection open.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Idle connections now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.slots.iter().flatten().filter(|e| e.idle).count()
    }

    /// Ends every pending read past its deadline by shutting down the read
    /// side of its socket: the read returns end-of-file (after any bytes
    /// already received) and the connection sees
    /// [`Registry::read_finished`] return `true`. Returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        for entry in self.slots.iter_mut().flatten() {
            if entry.deadline.is_some_and(|d| now >= d) {
                entry.deadline = None;
                entry.timed_out = true;
                expired += 1;
                // SAFETY: the fd belongs to a live connection of this shard
                // (it leaves the registry before it is closed).
                unsafe { libc::shutdown(entry.fd, libc::SHUT_RD) };
            }
        }
        expired
    }

    /// Shuts down the read side of every idle connection: its pending read
    /// returns end-of-file (after any bytes already received) and it closes.
    pub fn close_idle(&self) {
        for entry in self.slots.iter().flatten() {
            if entry.idle {
                // SAFETY: as in `expire`.
                unsafe { libc::shutdown(entry.fd, libc::SHUT_RD) };
            }
        }
    }

    /// Shuts down both directions of every connection, busy or not: reads
    /// and writes fail and each connection task ends.
    pub fn cut_all(&self) {
        for entry in self.slots.iter().flatten() {
            // SAFETY: as in `expire`.
            unsafe { libc::shutdown(entry.fd, libc::SHUT_RDWR) };
        }
    }
}

/// How often a shard sweeps for timed-out reads: a tenth of the shorter
/// timeout, between 10 ms and 1 s (a timeout fires up to this late).
pub fn sweep_interval(keep_alive_timeout_ms: u64, headers_timeout_ms: u64) -> Duration {
    let shortest = keep_alive_timeout_ms.min(headers_timeout_ms);
    Duration::from_millis((shortest / 10).clamp(10, 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counted() {
        let mut r = Registry::default();
        let a = r.insert(-1);
        let b = r.insert(-1);
        r.read_started(a, true, Instant::now() + Duration::from_secs(60));
        assert_eq!((r.len(), r.idle()), (2, 1));
        r.remove(a);
        r.remove(a); // twice is harmless
        assert_eq!((r.len(), r.idle()), (1, 0));
        let c = r.insert(-1);
        assert_eq!(c, a, "freed slot reused");
        r.remove(b);
        r.remove(c);
        assert!(r.is_empty());
    }

    /// Only reads past their deadline expire, once, and only they report it.
    #[test]
    fn reads_expire_at_their_deadline() {
        let mut r = Registry::default();
        let now = Instant::now();
        let (late, early, done) = (r.insert(-1), r.insert(-1), r.insert(-1));
        r.read_started(late, false, now + Duration::from_millis(10));
        r.read_started(early, true, now + Duration::from_secs(60));
        r.read_started(done, true, now + Duration::from_millis(10));
        assert!(!r.read_finished(done));
        assert_eq!(r.expire(now), 0, "nothing is due yet");
        assert_eq!(r.expire(now + Duration::from_millis(10)), 1);
        assert_eq!(r.expire(now + Duration::from_millis(20)), 0, "once");
        assert!(r.read_finished(late));
        assert!(!r.read_finished(early));
    }

    #[test]
    fn sweeps_are_a_tenth_of_the_shorter_timeout_within_bounds() {
        assert_eq!(sweep_interval(300, 66_000), Duration::from_millis(30));
        assert_eq!(sweep_interval(65_000, 66_000), Duration::from_secs(1));
        assert_eq!(sweep_interval(1, 1), Duration::from_millis(10));
    }
}
