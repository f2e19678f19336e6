//! The seed's `/api/data/{clientId}` body, serialized straight into a buffer:
//! `{clientId, timestamp, workerId, data:{id, value, items:[10 × {index, data}]}}`.
//!
//! The seed built this object with `generateData` on every cache miss. Here
//! it is a set of borrowed structs serialized with `serde_json::to_writer`
//! into the cache entry's own buffer: no intermediate `Value`, no `String`.

use std::fmt;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

/// Items per body, as in the seed (`Array(10)`).
pub const ITEMS: usize = 10;
/// Longest client id accepted.
pub const MAX_CLIENT_ID_BYTES: usize = 128;

/// Is `id` a valid client id: 1..=128 unreserved URI characters
/// (RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~")? Such an id needs
/// no escaping in JSON or in a URL.
pub fn valid_client_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_BYTES
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    client_id: &'a str,
    timestamp: u64,
    worker_id: usize,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    id: &'a str,
    value: f64,
    items: Items<'a>,
}

struct Items<'a>(&'a str);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(ITEMS))?;
        for index in 0..ITEMS {
            seq.serialize_element(&Item {
                index,
                data: ItemText {
                    index,
                    client_id: self.0,
                },
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Item<'a> {
    index: usize,
    data: ItemText<'a>,
}

/// `Item {i} for client {clientId}`, written through `collect_str` so it is
/// never materialised as a `String`.
struct ItemText<'a> {
    index: usize,
    client_id: &'a str,
}

impl Serialize for ItemText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ItemText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Item {} for client {}", self.index, self.client_id)
    }
}

/// Appends the body for `client_id` to `out`. `value` stands in for the
/// seed's `Math.random() * 1000`.
pub fn write_body(
    out: &mut Vec<u8>,
    client_id: &str,
    timestamp_ms: u64,
    worker_id: usize,
    value: f64,
) {
    let body = Body {
        client_id,
        timestamp: timestamp_ms,
        worker_id,
        data: Data {
            id: client_id,
            value,
            items: Items(client_id),
        },
    };
    // Writing into a Vec cannot fail, and every field serializes.
    let _ = serde_json::to_writer(out, &body);
}

/// A small, fast, shard-local random source (xorshift64*), so `value` needs
/// neither a lock nor a syscall.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_seeds_shape() {
        let mut out = Vec::new();
        write_body(&mut out, "client-7", 1_700_000_000_000, 1, 12.5);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["clientId"], "client-7");
        assert_eq!(v["timestamp"], 1_700_000_000_000u64);
        assert_eq!(v["workerId"], 1);
        assert_eq!(v["data"]["id"], "client-7");
        assert_eq!(v["data"]["value"], 12.5);
        let items = v["data"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 10);
        assert_eq!(items[3]["index"], 3);
        assert_eq!(items[3]["data"], "Item 3 for client client-7");
    }

    #[test]
    fn client_ids() {
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        for (id, ok) in [
            ("client-1", true),
            ("A.b_c~d-9", true),
            (long.as_str(), true),
            ("", false),
            (too_long.as_str(), false),
            ("a/b", false),
            ("a%20b", false),
            ("a b", false),
            ("\"x", false),
            ("é", false),
        ] {
            assert_eq!(valid_client_id(id.as_bytes()), ok, "{id:?}");
        }
    }

    #[test]
    fn rng_is_in_range_and_varies() {
        let mut r = Rng::new(42);
        let xs: Vec<f64> = (0..1000).map(|_| r.next_f64()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
