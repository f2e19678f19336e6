//! The bounded fuzz run of CI: a deterministic, structure-aware generator
//! (fixed seeds, so a failure reproduces) feeding the three targets of
//! `percore::fuzz` — `parse_head`, `body` and `connection` — with the seed
//! corpus (`fuzz/corpus/`, every request written in the tests) and with
//! streams of 1–4 requests built from the grammar's pieces, right and wrong,
//! then mutated. Each target panics when an invariant breaks: no panic
//! elsewhere, no growth past the head limit, progress on every call, one
//! answer per request at most, every byte consumed or the connection closed,
//! and the same framing whatever the read sizes.
//!
//! The same targets serve the differential check against h11
//! (`fuzz/differential.py`, README "Fuzzing and the differential check").
//! `FUZZ_ITERATIONS` sets the run's length (default 30,000).

use std::path::Path;

use percore::fuzz;

/// xorshift64*: a tiny deterministic generator; no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "OPTIONS", "get", "G\tT", "X-Y",
];
const TARGETS: &[&str] = &[
    "/api/health",
    "/api/data/client-1",
    "/api/metrics?x=1",
    "http://h/api/health",
    "*",
    "/a#b",
    "/%zz",
    "",
];
const VERSIONS: &[&str] = &[
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/2.0",
    "http/1.1",
    "HTTP/1.10",
    "HTTP/1",
    "HTTP/1.2",
    "HTTP/1.",
    "HTTP/11",
];
const FIELDS: &[&str] = &[
    "Host: x",
    "Host: a:1",
    "Host:",
    "Connection: close",
    "Connection: keep-alive",
    "Content-Length: 0",
    "Content-Length: 5",
    "Content-Length: 5, 5",
    "Content-Length: 5, 6",
    "Content-Length: +5",
    "Content-Length: 99999999999999999999999",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: gzip, chunked",
    "Transfer-Encoding: chunked, gzip",
    "Transfer-Encoding: CHUNKED",
    "Transfer-Encoding: ",
    "Expect: 100-continue",
    "X-A: a\rb",
    " folded",
    "X : y",
    "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];
const CHUNK_PIECES: &[&str] = &[
    "5\r\nhello\r\n",
    "1;a=b\r\nx\r\n",
    "1;a=\"q;\\\"\"\r\nx\r\n",
    "1 ; a = b\r\nx\r\n",
    "1;a\nx\r\n",
    "1\nx\r\n",
    "1\r\nx\n",
    "1\r\nx\r",
    "01\r\nx\r\n",
    "fff\r\n",
    "z\r\n",
    "1;a \r\nx\r\n",
    "1;\r\nx\r\n",
];
const LAST_CHUNKS: &[&str] = &[
    "0\r\n\r\n",
    "0;e=1\r\n\r\n",
    "0\r\nX-T: 1\r\n\r\n",
    "0\r\nX-T: 1\n\r\n",
    "0\r\n\n",
    "0\n\n",
    "00\r\n \r\n\r\n",
];
const SEPARATORS: &[&[u8]] = &[
    b"\r\n", b"\n", b"\r", b"\r\r\n", b" ", b"\t", b";", b"\"", b"\\", b":", b"\0",
];

/// One request from the grammar's pieces, mostly well-formed.
fn request(rng: &mut Rng) -> Vec<u8> {
    let eol = if rng.chance(90) { "\r\n" } else { "\n" };
    let mut r = format!(
        "{} {} {}{eol}",
        rng.pick(METHODS),
        rng.pick(TARGETS),
        rng.pick(VERSIONS)
    );
    if rng.chance(85) {
        r.push_str("Host: x");
        r.push_str(eol);
    }
    for _ in 0..rng.below(4) {
        let field = rng.pick::<&str>(FIELDS);
        r.push_str(field);
        r.push_str(eol);
    }
    let mut bytes = r.into_bytes();
    let chunked = rng.chance(50);
    if chunked {
        bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    bytes.extend_from_slice(eol.as_bytes());
    if chunked {
        for _ in 0..rng.below(4) {
            bytes.extend_from_slice(rng.pick(CHUNK_PIECES).as_bytes());
        }
        bytes.extend_from_slice(rng.pick(LAST_CHUNKS).as_bytes());
    } else if rng.chance(30) {
        bytes.extend_from_slice(b"hello");
    }
    bytes
}

/// A few random edits: flip, insert a separator, delete, duplicate a span.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        if data.is_empty() {
            data.push(b'G');
        }
        let at = rng.below(data.len());
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => {
                let sep = rng.pick(SEPARATORS);
                data.splice(at..at, sep.iter().copied());
            }
            2 => {
                data.remove(at);
            }
            3 => {
                let end = (at + rng.below(16)).min(data.len());
                let span = data[at..end].to_vec();
                data.splice(at..at, span);
            }
            _ => data[at] = rng.next() as u8,
        }
    }
}

/// Runs the three targets on `input` (the split seed taken from `rng`).
fn run_targets(rng: &mut Rng, input: &[u8]) {
    fuzz::parse_head(input);
    let mut body_input = vec![rng.next() as u8];
    body_input.extend_from_slice(input.get(rng.below(input.len() + 1)..).unwrap_or_default());
    fuzz::body(&body_input);
    let mut stream = rng.next().to_le_bytes().to_vec();
    stream.extend_from_slice(input);
    fuzz::connection(&stream);
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus exists")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("readable seed"))
        .collect();
    seeds.sort();
    assert!(seeds.len() > 100, "the seed corpus is missing: {dir:?}");
    seeds
}

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000)
}

/// Every seed of the corpus, as it is and split at every offset.
#[test]
fn corpus_keeps_every_invariant() {
    let mut rng = Rng(0x5eed_0001);
    for seed in corpus() {
        run_targets(&mut rng, &seed);
        for cut in 0..seed.len().min(256) {
            fuzz::body(&[&[cut as u8], seed.as_slice()].concat());
        }
    }
}

/// Generated streams of 1–4 requests, mutated, and mutated corpus seeds.
#[test]
fn generated_streams_keep_every_invariant() {
    let seeds = corpus();
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..iterations() {
        let mut input = if rng.chance(30) {
            rng.pick(&seeds).clone()
        } else {
            let mut stream = Vec::new();
            for _ in 0..1 + rng.below(4) {
                stream.extend_from_slice(&request(&mut rng));
            }
            stream
        };
        if rng.chance(60) {
            mutate(&mut rng, &mut input);
        }
        run_targets(&mut rng, &input);
    }
}

/// The targets can fail: a stream whose framing depends on the read sizes
/// would be caught (here, a reader's outcome compared with a wrong one).
#[test]
fn the_connection_target_sees_framing() {
    let two = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let outcome = fuzz::outcome(two, 7);
    assert_eq!(outcome.request_ends, vec![27, 54]);
    assert_eq!(outcome.end, fuzz::End::NeedMore);
    let bad = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nZ\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let outcome = fuzz::outcome(bad, 3);
    assert_eq!(outcome.request_ends, Vec::<usize>::new());
    assert_eq!(
        outcome.end,
        fuzz::End::Refused {
            status: 400,
            in_body: true
        }
    );
}
