//! The cache by cases: a scripted sequence with exact counts, recency, the
//! TTL boundary, a disabled cache, overwrites; then 10,000 random operations
//! against a naive reference model, and buffers and table sizes that stay
//! put under 100,000 more (no allocation in steady state).

use super::*;

fn put(cache: &mut Cache, key: &[u8], now_ms: u64, body: &[u8]) {
    cache.insert(key, now_ms).extend_from_slice(body);
}

/// Returning the borrow of [`Cache::get_or_insert_with`] from a function compiles (no NLL
/// problem case #3).
fn get_or_fill<'a>(
    cache: &'a mut Cache,
    key: &[u8],
    now_ms: u64,
    fill: impl FnOnce(&mut Vec<u8>),
) -> &'a [u8] {
    cache.get_or_insert_with(key, now_ms, fill).0
}

/// [hits, misses, evictions, expirations, entries]
fn counts(s: CacheStats) -> [u64; 5] {
    [s.hits, s.misses, s.evictions, s.expirations, s.entries]
}

/// Reference model: (key, body, stored_at_ms), most recently used first.
#[derive(Default)]
struct Model {
    capacity: usize,
    ttl_ms: u64,
    lru: Vec<(Vec<u8>, Vec<u8>, u64)>,
    stats: CacheStats,
}

impl Model {
    fn get(&mut self, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
        let found = self.lru.iter().position(|e| e.0 == key);
        let entry = found.map(|i| self.lru.remove(i));
        let fresh = entry.filter(|e| now_ms < e.2 + self.ttl_ms);
        self.stats.expirations += u64::from(found.is_some() && fresh.is_none());
        self.stats.hits += u64::from(fresh.is_some());
        self.stats.misses += u64::from(fresh.is_none());
        let body = fresh.as_ref().map(|e| e.1.clone());
        self.lru.splice(0..0, fresh);
        self.stats.entries = self.lru.len() as u64;
        body
    }

    fn insert(&mut self, key: &[u8], now_ms: u64, body: &[u8]) {
        if let Some(i) = self.lru.iter().position(|e| e.0 == key) {
            self.lru.remove(i);
        } else if self.lru.len() == self.capacity && self.lru.pop().is_some() {
            self.stats.evictions += 1;
        }
        if self.capacity > 0 {
            self.lru.insert(0, (key.to_vec(), body.to_vec(), now_ms));
        }
        self.stats.entries = self.lru.len() as u64;
    }
}

/// xorshift64: deterministic randomness without extra crates.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn scripted_sequence_counts_exactly() {
    // (put?, key, now_ms, body put / body expected from get),
    // then [hits, misses, evictions, expirations, len] after the step; LRU order first.
    let script = [
        (false, "a", 0, None, [0, 1, 0, 0, 0]),
        (true, "a", 0, Some("A1"), [0, 1, 0, 0, 1]),
        (false, "a", 10, Some("A1"), [1, 1, 0, 0, 1]),
        (true, "b", 20, Some("B1"), [1, 1, 0, 0, 2]),
        (true, "c", 30, Some("C1"), [1, 1, 0, 0, 3]), // c b a
        (false, "a", 40, Some("A1"), [2, 1, 0, 0, 3]), // a c b
        (true, "d", 50, Some("D1"), [2, 1, 1, 0, 3]), // d a c: b evicted
        (false, "b", 60, None, [2, 2, 1, 0, 3]),
        (true, "c", 70, Some("C2"), [2, 2, 1, 0, 3]), // c d a: overwritten
        (false, "c", 80, Some("C2"), [3, 2, 1, 0, 3]),
        (false, "a", 999, Some("A1"), [4, 2, 1, 0, 3]), // a c d: last fresh ms
        (false, "a", 1000, None, [4, 3, 1, 1, 2]),      // c d: a expired
        (true, "e", 1000, Some("E1"), [4, 3, 1, 1, 3]), // e c d: freed slot reused
        (true, "f", 1001, Some("F1"), [4, 3, 2, 1, 3]), // f e c: d evicted
        (false, "c", 1069, Some("C2"), [5, 3, 2, 1, 3]),
        (false, "c", 1070, None, [5, 4, 2, 2, 2]),
        (false, "d", 1071, None, [5, 5, 2, 2, 2]),
    ];
    let mut cache = Cache::new(3, 1000);
    for (step, (is_put, key, now_ms, body, want)) in script.into_iter().enumerate() {
        let body = body.map(str::as_bytes);
        if is_put {
            put(&mut cache, key.as_bytes(), now_ms, body.unwrap_or_default());
        } else {
            assert_eq!(cache.get(key.as_bytes(), now_ms), body, "step {step}");
        }
        assert_eq!(counts(cache.stats()), want, "step {step}");
        assert_eq!(cache.len() as u64, want[4], "step {step}");
    }
}

#[test]
fn get_refreshes_recency() {
    // (touch "a" before the third insert, key that survives, key evicted)
    for (touch, survivor, evicted) in [(true, b"a", b"b"), (false, b"b", b"a")] {
        let mut cache = Cache::new(2, 1000);
        put(&mut cache, b"a", 0, b"A");
        put(&mut cache, b"b", 1, b"B");
        if touch {
            assert_eq!(cache.get(b"a", 2), Some(&b"A"[..]));
        }
        put(&mut cache, b"c", 3, b"C");
        assert!(cache.get(survivor, 4).is_some(), "touch={touch}");
        assert!(cache.get(evicted, 4).is_none(), "touch={touch}");
        assert_eq!(cache.stats().evictions, 1);
    }
}

#[test]
fn ttl_boundary_is_exclusive() {
    // (ttl_ms, stored at, looked up at, fresh): fresh iff now < stored + ttl; ttl 0 never.
    let cases = [
        (1000, 5, 1004, true),
        (1000, 5, 1005, false),
        (1, 7, 7, true),
    ];
    let cases = cases
        .into_iter()
        .chain([(1, 7, 8, false), (0, 5, 5, false), (0, 5, 4, false)]);
    for (ttl_ms, stored_ms, now_ms, fresh) in cases {
        let mut cache = Cache::new(4, ttl_ms);
        put(&mut cache, b"k", stored_ms, b"body");
        let got = cache.get(b"k", now_ms).is_some();
        assert_eq!(got, fresh, "ttl {ttl_ms} stored {stored_ms} now {now_ms}");
        assert_eq!(cache.stats().expirations, u64::from(!fresh));
        assert_eq!(cache.len(), usize::from(fresh));
    }
}

#[test]
fn capacity_zero_always_misses_and_stays_empty() {
    let mut cache = Cache::new(0, 1000);
    for now_ms in 0..10 {
        put(&mut cache, b"k", now_ms, b"body");
        assert!(
            cache.insert(b"k", now_ms).is_empty(),
            "scratch comes back cleared"
        );
        assert!(cache.get(b"k", now_ms).is_none());
        let (body, hit) = cache.get_or_insert_with(b"k", now_ms, |b| b.push(b'x'));
        assert_eq!((body, hit), (&b"x"[..], false));
    }
    assert!(cache.is_empty());
    assert_eq!(cache.capacity(), 0);
    assert_eq!(counts(cache.stats()), [0, 20, 0, 0, 0]);
}

#[test]
fn overwrite_keeps_len_and_evicts_nothing() {
    let mut cache = Cache::new(2, 1000);
    put(&mut cache, b"a", 0, b"old");
    put(&mut cache, b"b", 1, b"B");
    put(&mut cache, b"a", 2, b"new, and longer");
    assert_eq!((cache.len(), cache.stats().evictions), (2, 0));
    assert_eq!(cache.get(b"a", 3), Some(&b"new, and longer"[..]));
    assert_eq!(cache.get(b"b", 3), Some(&b"B"[..]));
}

#[test]
fn get_or_insert_with_fills_only_on_miss() {
    let mut cache = Cache::new(2, 100);
    let mut fills = 0;
    // (now_ms, expected hit): the entry stored at 0 is fresh up to 99.
    for (now_ms, hit) in [
        (0, false),
        (50, true),
        (99, true),
        (100, false),
        (150, true),
    ] {
        let (body, got_hit) = cache.get_or_insert_with(b"k", now_ms, |b| {
            fills += 1;
            b.extend_from_slice(b"body");
        });
        assert_eq!((body, got_hit), (&b"body"[..], hit), "at {now_ms}");
    }
    assert_eq!(fills, 2);
    assert_eq!(
        get_or_fill(&mut cache, b"k", 199, |_| unreachable!()),
        b"body"
    );
    assert_eq!(get_or_fill(&mut cache, b"k2", 199, |b| b.push(b'2')), b"2");
    assert_eq!(counts(cache.stats()), [4, 3, 0, 1, 2]);
}

#[test]
fn matches_reference_model() {
    // (capacity, ttl_ms), 10,000 random ops each over 9 keys.
    for (capacity, ttl_ms) in [(4, 100), (1, 50), (3, 0), (0, 100), (6, 300)] {
        let mut cache = Cache::new(capacity, ttl_ms);
        let mut model = Model {
            capacity,
            ttl_ms,
            ..Model::default()
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ttl_ms);
        let mut now_ms = 0;
        for op in 0..10_000 {
            now_ms += rng.below(12);
            let key = format!("client-{}", rng.below(9)).into_bytes();
            let body = format!("{op}")
                .repeat(1 + rng.below(5) as usize)
                .into_bytes();
            let (got, want) = match rng.below(3) {
                0 => {
                    let got = cache.get(&key, now_ms).map(|b| (b.to_vec(), true));
                    (got, model.get(&key, now_ms).map(|b| (b, true)))
                }
                1 => {
                    put(&mut cache, &key, now_ms, &body);
                    model.insert(&key, now_ms, &body);
                    (None, None)
                }
                _ => {
                    let fill = |b: &mut Vec<u8>| b.extend_from_slice(&body);
                    let (got, hit) = cache.get_or_insert_with(&key, now_ms, fill);
                    let got = (got.to_vec(), hit);
                    let want = model.get(&key, now_ms).map(|old| (old, true));
                    if want.is_none() {
                        model.insert(&key, now_ms, &body);
                    }
                    (Some(got), Some(want.unwrap_or((body, false))))
                }
            };
            assert_eq!(got, want, "capacity {capacity} op {op}");
            assert_eq!(cache.stats(), model.stats, "capacity {capacity} op {op}");
        }
    }
}

#[test]
fn steady_state_allocates_nothing() {
    let mut totals = CacheStats::default();
    for capacity in [1, 3, 64] {
        // Fill every slot with a maximal key (16 bytes) and body (100 bytes).
        let mut cache = Cache::new(capacity, 100);
        for k in 0..capacity {
            put(&mut cache, format!("{k:0>16}").as_bytes(), 0, &[b'x'; 100]);
        }
        let (footprint, buffers) = (cache.footprint(), cache.buffers());
        assert_eq!(buffers.len(), 2 * capacity);
        let mut rng = Rng(0xDEAD_BEEF ^ capacity as u64);
        let mut now_ms = 0;
        for _ in 0..100_000 {
            now_ms += rng.below(10);
            let mut key = rng.below(4 * capacity as u64).to_string().into_bytes();
            key.resize(1 + rng.below(16) as usize, b'-');
            let body = vec![b'y'; rng.below(101) as usize];
            match rng.below(3) {
                0 => _ = cache.get(&key, now_ms),
                1 => put(&mut cache, &key, now_ms, &body),
                _ => _ = cache.get_or_insert_with(&key, now_ms, |b| b.extend(&body)),
            }
            assert_eq!(cache.footprint(), footprint, "capacity {capacity}");
        }
        assert_eq!(cache.buffers(), buffers, "capacity {capacity}");
        totals.evictions += cache.stats().evictions;
        totals.expirations += cache.stats().expirations;
    }
    assert!(
        totals.evictions > 1000 && totals.expirations > 1000,
        "{totals:?}"
    );
}

#[test]
fn evicted_and_expired_slots_keep_their_buffers() {
    let mut cache = Cache::new(1, 100);
    put(&mut cache, b"first-key", 0, &[b'a'; 200]);
    let before = cache.buffers();
    put(&mut cache, b"other", 10, b"short body"); // evicts "first-key"
    assert!(cache.get(b"other", 200).is_none()); // expires: slot freed
    put(&mut cache, b"third", 300, &[b'c'; 150]); // reuses the freed slot
    assert_eq!(counts(cache.stats()), [0, 1, 1, 1, 1]);
    assert_eq!(cache.buffers(), before);
    assert_eq!(cache.get(b"third", 301), Some(&[b'c'; 150][..]));
}
