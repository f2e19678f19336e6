//! A shard's open connections: their fds and whether each is idle between
//! requests, so a drain can close exactly the idle ones and cut the rest at
//! its deadline, and the connection cap is a length check.

use std::os::fd::RawFd;

/// Open connections of one shard, in reusable slots.
#[derive(Default)]
pub struct Registry {
    slots: Vec<Option<(RawFd, bool)>>,
    free: Vec<usize>,
    len: usize,
}

impl Registry {
    /// Adds a connection (busy), returning its slot.
    pub fn insert(&mut self, fd: RawFd) -> usize {
        self.len += 1;
        if let Some(slot) = self.free.pop() {
            self.slots[slot] = Some((fd, false));
            slot
        } else {
            self.slots.push(Some((fd, false)));
            self.slots.len() - 1
        }
    }

    /// Marks a connection idle (waiting for a new request) or busy.
    pub fn set_idle(&mut self, slot: usize, idle: bool) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            entry.1 = idle;
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
        self.slots
            .iter()
            .flatten()
            .filter(|(_, idle)| *idle)
            .count()
    }

    /// Shuts down the read side of every idle connection: its pending read
    /// returns end-of-file (after any bytes already received) and it closes.
    pub fn close_idle(&self) {
        for (fd, idle) in self.slots.iter().flatten() {
            if *idle {
                // SAFETY: the fd belongs to a live connection of this shard
                // (it leaves the registry before it is closed).
                unsafe { libc::shutdown(*fd, libc::SHUT_RD) };
            }
        }
    }

    /// Shuts down both directions of every connection, busy or not: reads
    /// and writes fail and each connection task ends.
    pub fn cut_all(&self) {
        for (fd, _) in self.slots.iter().flatten() {
            // SAFETY: as in `close_idle`.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counted() {
        let mut r = Registry::default();
        let a = r.insert(10);
        let b = r.insert(11);
        r.set_idle(a, true);
        assert_eq!((r.len(), r.idle()), (2, 1));
        r.remove(a);
        r.remove(a); // twice is harmless
        assert_eq!((r.len(), r.idle()), (1, 0));
        let c = r.insert(12);
        assert_eq!(c, a, "freed slot reused");
        r.remove(b);
        r.remove(c);
        assert!(r.is_empty());
    }
}
