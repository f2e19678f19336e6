//! `/api/health`: the seed's body, exactly.

use crate::common::*;
use crate::{keys, set};
use serde_json::json;

/// /api/health answers the exact object `{status, worker, activeRequests,
/// cacheSize}`; activeRequests counts the health request itself and cacheSize
/// follows the shard's cache.
#[test]
fn health_body_is_exact() {
    let server = Server::start(&[("WORKERS", "1")], &[]);
    let mut c = Client::connect(server.addr());
    let r = c.get("/api/health");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "worker": 0, "activeRequests": 1, "cacheSize": 0})
    );
    assert_eq!(c.get("/api/data/h1").status, 200);
    assert_eq!(c.get("/api/data/h2").status, 200);
    let r = c.get("/api/health");
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "worker": 0, "activeRequests": 1, "cacheSize": 2})
    );

    let server = Server::start(&[("WORKERS", "2")], &[]);
    let v = get(server.addr(), "/api/health").json();
    assert_eq!(
        keys(&v),
        set(&["status", "worker", "activeRequests", "cacheSize"])
    );
    assert_eq!(v["status"], "healthy");
    assert!(v["worker"].as_u64().unwrap() < 2, "{v}");
}
