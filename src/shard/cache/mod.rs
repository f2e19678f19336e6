//! Per-shard cache of serialized JSON response bodies, keyed by client id.
//!
//! Each shard owns one [`Cache`], so a hit costs a lookup and a copy of the stored
//! bytes instead of a serialization. Entries live for a TTL and the least recently
//! used one is evicted when the cache is full.
//!
//! The cache never allocates in steady state (once it has been filled to capacity):
//! - entries live in a slab `Vec<Entry>` reserved once for `capacity` slots; a slot is
//!   reused after eviction or expiry, and its `key` and `body` buffers are cleared and
//!   refilled, never freed, so they only grow until they fit the largest key and body;
//! - the index is a `HashTable<u32>` of slot indices reserved for twice `capacity`:
//!   hashbrown then always cleans its tombstones by rehashing in place (it does so only
//!   while the live items are at most half of its capacity; above that it would grow);
//! - LRU order is an intrusive doubly linked list of slot indices, and freed slots form
//!   a singly linked free list, so touch, unlink and evict are O(1) without allocating.
//!
//! Keys are client-controlled, so they are hashed with a randomly seeded SipHash
//! (`std`'s `RandomState`) to rule out hash flooding. Time is passed in by the
//! caller as a monotonic `now_ms`, which keeps the module pure and testable.
//!
//! Here: [`Cache`], its slab, index and lists. `stats.rs`: [`CacheStats`], the
//! counters metrics reads. `tests.rs`: the cases and the reference model.

mod stats;

pub use stats::CacheStats;

use hashbrown::HashTable;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// "No slot" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// One slab slot: a live entry, or a free slot keeping its buffers for reuse.
#[derive(Default)]
struct Entry {
    key: Vec<u8>,
    body: Vec<u8>,
    hash: u64,
    /// Fresh while `now_ms < expires_at_ms`.
    expires_at_ms: u64,
    /// Towards the most recently used end (live slots only).
    prev: u32,
    /// Towards the least recently used end; in the free list, the next free slot.
    next: u32,
}

/// A fixed-capacity LRU cache of response bodies with a TTL, owned by one shard.
pub struct Cache {
    slab: Vec<Entry>,
    index: HashTable<u32>,
    hasher: RandomState,
    capacity: usize,
    ttl_ms: u64,
    len: usize,
    /// Most recently used live slot.
    head: u32,
    /// Least recently used live slot.
    tail: u32,
    /// First free slot in the slab (freed by expiry).
    free: u32,
    /// Buffer handed out when caching is disabled (`capacity` 0).
    scratch: Vec<u8>,
    stats: CacheStats,
}

impl Cache {
    /// `capacity` 0 disables caching (every get is a miss, insert stores nothing but still
    /// returns a scratch buffer). `ttl_ms` 0 means entries are never fresh (every get is a
    /// miss) — used to force the slow path in load tests. The slab and the index are reserved
    /// here, once; a `capacity` above `u32::MAX` is clamped to it.
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        let capacity = capacity.min(NIL as usize);
        Self {
            slab: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity.saturating_mul(2)),
            hasher: RandomState::new(),
            capacity,
            ttl_ms,
            len: 0,
            head: NIL,
            tail: NIL,
            free: NIL,
            scratch: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    /// The key's bytes through the seeded SipHash, without the length prefix
    /// `Hash for [u8]` adds (SipHash's last block already holds the length):
    /// one hasher write per lookup instead of two.
    fn hash_key(&self, key: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(key);
        hasher.finish()
    }

    /// A fresh entry's body (and marks it most recently used) → counts a hit.
    /// Absent or expired → counts a miss (an expired entry is removed, counted in
    /// `expirations`, its slot freed for reuse). An entry stored at `t` is fresh while
    /// `now_ms < t + ttl_ms`, i.e. up to `t + ttl_ms - 1`, and expired from `t + ttl_ms` on.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&[u8]> {
        let hash = self.hash_key(key);
        let slot = self.lookup(hash, key, now_ms)?;
        Some(&self.slab[slot].body)
    }

    /// Store a body for `key`, stamped `now_ms`, as most recently used. The caller fills the
    /// returned buffer (cleared, capacity kept from a previous use) with the serialized body.
    /// If key is already present its entry is overwritten in place. If the cache is full, the
    /// least recently used entry is evicted (counted in `evictions`) and its buffers reused.
    /// Counts neither a hit nor a miss.
    pub fn insert(&mut self, key: &[u8], now_ms: u64) -> &mut Vec<u8> {
        let hash = self.hash_key(key);
        let Some(slot) = self.find(hash, key).or_else(|| self.store(hash, key)) else {
            self.scratch.clear();
            return &mut self.scratch;
        };
        self.touch(slot);
        let expires_at_ms = self.expiry_ms(now_ms);
        let entry = &mut self.slab[slot];
        entry.expires_at_ms = expires_at_ms;
        entry.body.clear();
        &mut entry.body
    }

    /// Number of entries stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters since creation, with the current entry count.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.len as u64,
            ..self.stats
        }
    }

    /// When an entry stored at `now_ms` stops being fresh (0: never fresh).
    fn expiry_ms(&self, now_ms: u64) -> u64 {
        match self.ttl_ms {
            0 => 0,
            ttl_ms => now_ms.saturating_add(ttl_ms),
        }
    }

    /// Slot holding `key`, fresh or not.
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slab = &self.slab;
        let eq = |&i: &u32| slab[i as usize].hash == hash && slab[i as usize].key == key;
        self.index.find(hash, eq).map(|&i| i as usize)
    }

    /// Counted lookup: the slot of a fresh entry (now most recently used), else `None`.
    fn lookup(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<usize> {
        let found = self.find(hash, key);
        match found {
            Some(slot) if now_ms < self.slab[slot].expires_at_ms => {
                self.stats.hits += 1;
                self.touch(slot);
                return Some(slot);
            }
            Some(slot) => {
                self.stats.expirations += 1;
                self.remove(slot);
                self.slab[slot].next = self.free;
                self.free = slot as u32;
            }
            None => {}
        }
        self.stats.misses += 1;
        None
    }

    /// Takes a slot for absent `key` (free, new, or evicted), indexes it as most recently
    /// used with an empty body and a stale stamp; `None` when caching is disabled.
    fn store(&mut self, hash: u64, key: &[u8]) -> Option<usize> {
        let slot = if self.free != NIL {
            let slot = self.free as usize;
            self.free = self.slab[slot].next;
            slot
        } else if self.slab.len() < self.capacity {
            self.slab.push(Entry::default());
            self.slab.len() - 1
        } else if self.tail != NIL {
            let slot = self.tail as usize;
            self.stats.evictions += 1;
            self.remove(slot);
            slot
        } else {
            return None;
        };
        let entry = &mut self.slab[slot];
        entry.key.clear();
        entry.key.extend_from_slice(key);
        entry.body.clear();
        entry.hash = hash;
        entry.expires_at_ms = 0;
        let slab = &self.slab;
        self.index
            .insert_unique(hash, slot as u32, |&i| slab[i as usize].hash);
        self.push_front(slot);
        self.len += 1;
        Some(slot)
    }

    /// Drops a live slot from the index and the LRU list (its buffers stay).
    fn remove(&mut self, slot: usize) {
        let hash = self.slab[slot].hash;
        if let Ok(found) = self.index.find_entry(hash, |&i| i as usize == slot) {
            found.remove();
        }
        self.unlink(slot);
        self.len -= 1;
    }

    /// Marks a live slot most recently used.
    fn touch(&mut self, slot: usize) {
        if self.head as usize != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    fn unlink(&mut self, slot: usize) {
        let Entry { prev, next, .. } = self.slab[slot];
        match prev {
            NIL => self.head = next,
            prev => self.slab[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.slab[next as usize].prev = prev,
        }
    }

    fn push_front(&mut self, slot: usize) {
        let old_head = self.head;
        self.slab[slot].prev = NIL;
        self.slab[slot].next = old_head;
        match old_head {
            NIL => self.tail = slot as u32,
            old_head => self.slab[old_head as usize].prev = slot as u32,
        }
        self.head = slot as u32;
    }

    /// [`Cache::get`] and, on a miss, [`Cache::insert`] in one call, for the tests: a fresh
    /// body and `true` on a hit; on a miss, stores a new entry whose body `fill` writes into a
    /// cleared buffer, and returns it with `false`. Counts exactly one hit or miss. If `fill`
    /// panics, the half-written entry is left stale (never served). The shard does not use it:
    /// its miss path awaits the simulated origin between the lookup and the fill, and must not
    /// hold the cache's borrow across that await, so it calls `get`, then `insert`.
    #[cfg(test)]
    fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: u64,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> (&[u8], bool) {
        let hash = self.hash_key(key);
        if let Some(slot) = self.lookup(hash, key, now_ms) {
            return (&self.slab[slot].body, true);
        }
        // The key is absent now: the lookup removed it if it had expired.
        let Some(slot) = self.store(hash, key) else {
            self.scratch.clear();
            fill(&mut self.scratch);
            return (&self.scratch, false);
        };
        fill(&mut self.slab[slot].body);
        self.slab[slot].expires_at_ms = self.expiry_ms(now_ms);
        (&self.slab[slot].body, false)
    }

    /// Slab capacity and hash table allocation size, in bytes.
    #[cfg(test)]
    fn footprint(&self) -> (usize, usize) {
        (self.slab.capacity(), self.index.allocation_size())
    }

    /// Address and capacity of every slot's key buffer and body buffer, in slot order.
    #[cfg(test)]
    fn buffers(&self) -> Vec<(*const u8, usize)> {
        let buffers = self.slab.iter().flat_map(|e| [&e.key, &e.body]);
        buffers.map(|b| (b.as_ptr(), b.capacity())).collect()
    }
}

#[cfg(test)]
mod tests;
