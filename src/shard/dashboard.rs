//! `GET /dashboard`: the seed's "real-time monitoring" (`docker stats` plus
//! `watch curl /api/metrics`) as one page a person looks at.
//!
//! The page is static bytes compiled into the binary: inline CSS and script,
//! nothing fetched from elsewhere, relative URLs only (`api/metrics`), so it
//! works offline, in the container and behind a proxy that mounts percore
//! under a path prefix. It polls `/api/metrics` once a second and computes
//! every windowed figure (rates, per-second and per-window latency
//! percentiles, CPU %) in the browser from two readings of the cumulative
//! counters and of the merged histogram (`latency.histogramUs`): the server
//! keeps no per-dashboard state, and one more open dashboard costs it one
//! more metrics request per second, no more.
//!
//! Serving it copies the bytes into the connection's output buffer: no
//! formatting and no allocation once that buffer has grown to hold them.

/// The page, as built from `assets/dashboard.html`.
pub const PAGE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/dashboard.html"
));

/// `Cache-Control` of the page (RFC 9111 §5.2.2.4): a browser keeps it but
/// revalidates before reuse, so a server upgraded in place is never shown
/// through a page of the previous version. The page is ~30 KB and fetched
/// once per open dashboard, so always fetching it again costs nothing that
/// matters, and the server needs no validator.
pub const CACHE_CONTROL: &[u8] = b"Cache-Control: no-cache\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// The page is self-contained: every URL it names is relative, nothing
    /// is loaded from another origin, and it polls the metrics endpoint.
    #[test]
    fn page_is_self_contained() {
        let page = std::str::from_utf8(PAGE).expect("the page is UTF-8");
        assert!(page.starts_with("<!doctype html>"), "starts with a doctype");
        for absolute in ["http://", "https://", "//cdn", "src=\"/", "href=\"/"] {
            assert!(!page.contains(absolute), "page names {absolute}");
        }
        assert!(page.contains("fetch(\"api/metrics\""), "polls api/metrics");
        assert!(!page.contains("<script src"), "no external script");
        assert!(!page.contains("stylesheet"), "no external stylesheet");
        // Without an icon of its own, a browser would ask for /favicon.ico.
        assert!(page.contains(r#"<link rel="icon" href="data:,">"#));
        assert_eq!(page.matches("<link").count(), 1);
    }
}
