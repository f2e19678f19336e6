//! The endpoints, over real sockets against the built binary, one module per
//! endpoint family:
//! - `data`: `/api/data/{clientId}` bodies and headers, HEAD, the cache, bad ids;
//! - `health`: `/api/health`'s exact body;
//! - `metrics`: `/api/metrics` and `/metrics`, their keys and exact counts;
//! - `refusals`: 404, 405, and admission control's 503s.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

#[path = "endpoints/data.rs"]
mod data;

#[path = "endpoints/health.rs"]
mod health;

#[path = "endpoints/metrics.rs"]
mod metrics;

#[path = "endpoints/refusals.rs"]
mod refusals;

/// The keys of a JSON object (panics on anything else).
pub fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A set of names, to compare with [`keys`].
pub fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// The test helper that checks `Date` headers parses IMF-fixdate strictly.
#[test]
fn imf_fixdate_parser_self_check() {
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
}
