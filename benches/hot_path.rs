//! Micro-benchmarks of the per-request hot path, one stage at a time.
//!
//! What a shard does for one `GET /api/data/{clientId}`, split so that a
//! change to one stage shows up in that stage's figure:
//!
//! - `parse/*`: `http::request::parse_head` on a wrk-like and a k6-like head
//!   (throughput in head bytes);
//! - `response/hit`: `http::response::Response::write` of a cached ~600-byte
//!   body into a reused output buffer, as the handler's cache hit writes it
//!   (throughput in response bytes); `write_hit` below is out of line so that
//!   callgrind can count instructions per response;
//! - `response/miss`: `payload::write_body` (serde_json) into a reused body
//!   buffer, then `Response::write` (throughput in response bytes);
//! - `cache/*`: a hit, and insert-with-eviction at capacity (capacity 1000,
//!   keys cycling over 2000, so every insert evicts the LRU entry);
//! - `stats/*`: `ShardStats::record_response` (two counters, one histogram
//!   record) and `Merged::from_shards` over 2 shards (what `/api/metrics`
//!   pays);
//! - `request/hit_user_space`: parse + cache hit + response + route class +
//!   record, i.e. all the user-space work of one keep-alive request except
//!   the syscalls.
//!
//! Buffers are allocated once and reused across iterations, as the server
//! does per connection. Times are per request (per element); criterion
//! prints ns/iter and the throughput. Kept short (1 s warm-up, 2 s
//! measurement per benchmark) so `cargo bench --bench hot_path` takes well
//! under a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use percore::clock::{Clock, DATE_LEN};
use percore::http::request::{parse_head, Limits};
use percore::http::response::{Persistence, Response, Status};
use percore::metrics::stats::{Merged, ShardStats};
use percore::shard::cache::{Cache, CacheStats};
use percore::shard::payload;
use percore::shard::routes::RouteClass;

/// The server's default limits (see `config.rs`): 16 KiB head, 64 fields,
/// 8 KiB URI, 1 MiB body.
const LIMITS: Limits = Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 64,
    max_uri_bytes: 8 * 1024,
    max_body_bytes: 1024 * 1024,
};

/// What `wrk` sends: request line and Host only.
const WRK_HEAD: &[u8] = b"GET /api/data/client-42 HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\r\n";

/// What k6 sends by default (Go net/http client plus k6's User-Agent).
const K6_HEAD: &[u8] = b"GET /api/data/client-42 HTTP/1.1\r\n\
Host: 127.0.0.1:3000\r\n\
User-Agent: k6/0.54.0 (https://k6.io/)\r\n\
Accept-Encoding: gzip\r\n\r\n";

/// Cache size and key space of the eviction benchmark.
const CACHE_CAPACITY: usize = 1000;
const KEY_SPACE: usize = 2000;
/// The server's default TTL, ms.
const TTL_MS: u64 = 60_000;

/// A fixed timestamp (ms since the Unix epoch) for generated bodies.
const UNIX_MS: u64 = 1_795_813_304_343;

/// The body the server caches for `client_id`, as on a miss.
fn body_for(client_id: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    payload::write_body(&mut body, client_id, UNIX_MS, 0, 507.569_446_223_331_1);
    body
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, head) in [("wrk_get", WRK_HEAD), ("k6_get", K6_HEAD)] {
        g.throughput(Throughput::Bytes(head.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let parsed = parse_head(black_box(head), &LIMITS);
                // The head borrows `head`; keep only what the handler reads.
                let parsed = parsed.expect("valid head").expect("complete head");
                black_box((parsed.path.len(), parsed.keep_alive, parsed.head_len))
            })
        });
    }
    g.finish();
}

/// The response `handler::data` writes on a cache hit. Status, type and
/// extra headers are constants there, but persistence and HEAD-or-not come
/// from the request: the caller passes them through `black_box` so that the
/// compiler cannot specialise the write for values the server never has
/// as constants. Out of line so that callgrind counts one call per
/// iteration (`Ir` of this function / calls = instructions per response).
#[inline(never)]
fn write_hit(
    out: &mut Vec<u8>,
    date: &[u8; DATE_LEN],
    persistence: Persistence,
    include_body: bool,
    body: &[u8],
) {
    Response::new(Status::Ok)
        .persistence(persistence)
        .include_body(include_body)
        .write(out, date, body);
}

fn response(c: &mut Criterion) {
    let clock = Clock::new();
    let body = body_for("client-42");
    let mut out = Vec::with_capacity(4096);
    Response::new(Status::Ok).write(&mut out, clock.date(), &body);
    let response_len = out.len() as u64;

    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Bytes(response_len));
    g.bench_function("hit", |b| {
        b.iter(|| {
            out.clear();
            write_hit(
                &mut out,
                clock.date(),
                black_box(Persistence::KeepAlive),
                black_box(true),
                black_box(&body),
            );
            black_box(out.len())
        })
    });

    let mut scratch = Vec::with_capacity(1024);
    let mut rng = payload::Rng::new(42);
    g.bench_function("miss", |b| {
        b.iter(|| {
            scratch.clear();
            out.clear();
            let value = rng.next_f64() * 1000.0;
            payload::write_body(&mut scratch, black_box("client-42"), UNIX_MS, 0, value);
            Response::new(Status::Ok).write(&mut out, clock.date(), &scratch);
            black_box(out.len())
        })
    });
    g.finish();
}

fn cache(c: &mut Criterion) {
    let keys: Vec<String> = (0..KEY_SPACE).map(|i| format!("client-{i}")).collect();
    let body = body_for("client-42");
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(1));

    // Hit: 100 hot keys (the benchmark's 100 client ids), all fresh.
    let mut hot = Cache::new(CACHE_CAPACITY, TTL_MS);
    for key in &keys[..100] {
        hot.insert(key.as_bytes(), 0).extend_from_slice(&body);
    }
    let mut i = 0usize;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % 100;
            let found = hot.get(black_box(keys[i].as_bytes()), 1);
            black_box(found.map(<[u8]>::len))
        })
    });

    // Insert at capacity: keys cycle over twice the capacity, so the key is
    // always absent and every insert evicts the least recently used entry
    // and reuses its buffers.
    let mut full = Cache::new(CACHE_CAPACITY, TTL_MS);
    for key in &keys[..CACHE_CAPACITY] {
        full.insert(key.as_bytes(), 0).extend_from_slice(&body);
    }
    let mut next = CACHE_CAPACITY;
    let mut ran = false;
    g.bench_function("insert_evict_at_capacity", |b| {
        ran = true;
        b.iter(|| {
            let key = keys[next].as_bytes();
            next = (next + 1) % KEY_SPACE;
            let slot = full.insert(black_box(key), 1);
            slot.extend_from_slice(&body);
            black_box(slot.len())
        })
    });
    assert_eq!(full.len(), CACHE_CAPACITY);
    // Not run when a filter (`cargo bench -- response/hit`) skips it.
    assert!(!ran || full.stats().evictions > 0);
    g.finish();
}

fn stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    let shard = ShardStats::new();
    let mut latency_us = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("record_response", |b| {
        b.iter(|| {
            // Latencies 1..=64 µs, the range a keep-alive hit falls in.
            latency_us = (latency_us + 7) & 63;
            shard.record_response(RouteClass::Data, Status::Ok, black_box(latency_us + 1));
        })
    });

    // Two shards with realistic histograms (100k samples each, spread over
    // 1 µs .. 10 ms), merged as the control executor does per metrics
    // request. Snapshots are cloned in the (unmeasured) setup because
    // `from_shards` consumes them.
    let snapshots: Vec<_> = (0..2)
        .map(|id| {
            let s = ShardStats::new();
            for n in 0..100_000u64 {
                s.record_response(RouteClass::Data, Status::Ok, 1 + (n * 7919) % 10_000);
            }
            s.snapshot(id, id, CacheStats::default())
        })
        .collect();
    g.throughput(Throughput::Elements(snapshots.len() as u64));
    g.bench_function("merge_2_shards", |b| {
        b.iter_batched(
            || snapshots.clone(),
            |shards| {
                let merged = Merged::from_shards(shards);
                black_box(merged.latency_us.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// All the user-space work of one keep-alive cache hit, in the server's
/// order (`conn::answer_buffered` + `handler::data`), minus the syscalls
/// and the executor.
/// One cache-hit request in user space, as a shard answers it: refresh the
/// clock, parse, look up, write the response, count it. Out of line for the
/// same reason as [`write_hit`]: `benches/instructions.sh` divides its
/// instructions by its calls (`BENCH=request/hit_user_space
/// FUNCTION=hot_path::hit_user_space`).
#[inline(never)]
fn hit_user_space(
    clock: &mut Clock,
    cache: &mut Cache,
    stats: &ShardStats,
    head: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    out.clear();
    clock.refresh();
    let started = quanta::Instant::now();
    let head = parse_head(head, &LIMITS)
        .expect("valid head")
        .expect("complete head");
    let client_id = &head.path["/api/data/".len()..];
    let body = cache
        .get(client_id.as_bytes(), clock.now_ms())
        .expect("cached");
    Response::new(Status::Ok).write(out, clock.date(), body);
    let route = RouteClass::of_path(head.path);
    stats.record_response(route, Status::Ok, started.elapsed().as_micros() as u64);
    out.len()
}

fn request(c: &mut Criterion) {
    let mut clock = Clock::new();
    let mut cache = Cache::new(CACHE_CAPACITY, TTL_MS);
    cache
        .insert(b"client-42", clock.now_ms())
        .extend_from_slice(&body_for("client-42"));
    let stats = ShardStats::new();
    let mut out = Vec::with_capacity(4096);

    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hit_user_space", |b| {
        b.iter(|| {
            black_box(hit_user_space(
                &mut clock,
                &mut cache,
                &stats,
                black_box(WRK_HEAD),
                &mut out,
            ))
        })
    });
    g.finish();
}

/// Short runs: the figures are stable to a few percent within 2 s.
fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = short();
    targets = parse, response, cache, stats, request
}
criterion_main!(benches);
