//! Answers one parsed request: admission control, then the endpoint, written
//! into the connection's output buffer.
//!
//! The hot path is a cache hit on `/api/data/{clientId}`: one hash lookup and
//! one copy of the cached body after a pre-encoded head. A miss serializes the
//! seed's body straight into the cache entry's reused buffer.

use std::time::Duration;

use serde::Serialize;

use crate::http::request::{Method, ParseError, RequestHead, Version};
use crate::http::response::{ContentType, Persistence, Response, Status};
use crate::shard::dashboard;
use crate::shard::payload;
use crate::shard::routes::{self, MetricsFormat, Route};
use crate::shard::state::Shard;

/// The seed's overload body, sent with 503 and `Retry-After: 1`.
pub const BUSY_BODY: &[u8] = br#"{"error":"Server too busy","retry_after":1}"#;
/// `Retry-After` of an overload 503 (RFC 9110 §10.2.3), as in the seed.
pub const RETRY_AFTER: &[u8] = b"Retry-After: 1\r\n";

/// With the `fault-injection` feature (tests only, never in release builds),
/// requests for these paths harm their shard on purpose:
/// - `/__fault/panic` panics it, to test shard restarts;
/// - `/__fault/stall-then-panic` blocks it for [`FAULT_STALL`], then panics
///   it: connections that arrive meanwhile queue on its listening socket, to
///   test that the replacement serves them;
/// - `/__fault/hang` blocks its thread for good, to test that a stuck shard
///   cannot hold the drain past its timeout.
///
/// Any other path returns at once.
#[cfg(feature = "fault-injection")]
fn inject_fault(shard_id: usize, path: &str) {
    match path {
        "/__fault/panic" => panic!("fault injected: shard {shard_id} dies on purpose"),
        "/__fault/stall-then-panic" => {
            std::thread::sleep(FAULT_STALL);
            panic!("fault injected: shard {shard_id} stalls, then dies");
        }
        "/__fault/hang" => loop {
            std::thread::park();
        },
        _ => {}
    }
}

/// How long `/__fault/stall-then-panic` blocks its shard.
#[cfg(feature = "fault-injection")]
const FAULT_STALL: std::time::Duration = std::time::Duration::from_millis(500);

/// Counts a request as in flight for as long as it lives, so an answer that
/// is abandoned (connection dropped mid-await) still releases its slot.
struct InFlight<'a>(&'a Shard);

impl<'a> InFlight<'a> {
    fn enter(shard: &'a Shard) -> Self {
        shard.stats.request_started();
        InFlight(shard)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.stats.request_finished();
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    worker: usize,
    active_requests: u64,
    cache_size: usize,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// Writes `response` with the JSON error body `{"error": message}`, from the
/// shard's scratch buffer.
pub fn write_error(shard: &Shard, out: &mut Vec<u8>, response: Response<'_>, message: &str) {
    let mut scratch = shard.scratch.borrow_mut();
    scratch.clear();
    let _ = serde_json::to_writer(&mut *scratch, &ErrorBody { error: message });
    let clock = shard.clock.borrow();
    response.write(out, clock.date(), &scratch);
}

/// Writes the response to a request that could not be parsed; the caller
/// closes the connection.
pub fn write_parse_error(shard: &Shard, out: &mut Vec<u8>, err: ParseError) -> Status {
    let status = Status::from_code(err.status());
    let response = Response::new(status).persistence(Persistence::Close);
    write_error(shard, out, response, err.message());
    status
}

/// Whether the connection stays open after a response, decided when the
/// response is written: a drain that began while the request waited (on the
/// origin, on metrics) turns it into `Connection: close` (RFC 9112 §9.6).
fn persistence(shard: &Shard, head: &RequestHead<'_>) -> Persistence {
    match (head.keep_alive && !shard.draining.get(), head.version) {
        (false, _) => Persistence::Close,
        (true, Version::Http11) => Persistence::KeepAlive,
        (true, Version::Http10) => Persistence::KeepAliveHttp10,
    }
}

/// Answers `head`, whose path is of class `class`
/// ([`routes::RouteClass::of_path`], computed once by the caller, which
/// also counts the request under it), into `out`; returns the status sent
/// and whether the response kept the connection open.
pub async fn respond(
    shard: &Shard,
    head: &RequestHead<'_>,
    class: routes::RouteClass,
    out: &mut Vec<u8>,
) -> (Status, Persistence) {
    let include_body = head.method != Method::Head;
    let persistence = persistence(shard, head);
    // Every response below answers this request: same connection header,
    // same HEAD rule.
    let answer = |status| {
        Response::new(status)
            .persistence(persistence)
            .include_body(include_body)
    };
    if shard.stats.in_flight() >= shard.config.max_concurrent_requests as u64 {
        let clock = shard.clock.borrow();
        answer(Status::ServiceUnavailable)
            .headers(RETRY_AFTER)
            .write(out, clock.date(), BUSY_BODY);
        return (Status::ServiceUnavailable, persistence);
    }
    let _in_flight = InFlight::enter(shard);
    #[cfg(feature = "fault-injection")]
    inject_fault(shard.id, head.path);
    let status = match routes::route(head.method, head.path, class) {
        Route::Data(client_id) => {
            return data(shard, head, client_id, persistence, include_body, out).await
        }
        Route::Health => health(shard, persistence, include_body, out),
        Route::Metrics(format) => return metrics(shard, head, format, include_body, out).await,
        Route::Dashboard => {
            let clock = shard.clock.borrow();
            answer(Status::Ok)
                .content_type(ContentType::Html)
                .headers(dashboard::CACHE_CONTROL)
                .write(out, clock.date(), dashboard::PAGE);
            Status::Ok
        }
        Route::BadClientId => {
            let msg = "invalid clientId: 1 to 128 characters of A-Z a-z 0-9 - . _ ~";
            write_error(shard, out, answer(Status::BadRequest), msg);
            Status::BadRequest
        }
        Route::MethodNotAllowed(allow) => {
            let response = answer(Status::MethodNotAllowed).headers(allow);
            write_error(shard, out, response, "Method Not Allowed");
            Status::MethodNotAllowed
        }
        Route::NotFound => {
            write_error(shard, out, answer(Status::NotFound), "Not Found");
            Status::NotFound
        }
    };
    (status, persistence)
}

async fn data(
    shard: &Shard,
    head: &RequestHead<'_>,
    client_id: &str,
    persistence: Persistence,
    include_body: bool,
    out: &mut Vec<u8>,
) -> (Status, Persistence) {
    let key = client_id.as_bytes();
    let now_ms = shard.clock.borrow().now_ms();
    {
        let mut cache = shard.cache.borrow_mut();
        if let Some(body) = cache.get(key, now_ms) {
            let clock = shard.clock.borrow();
            Response::new(Status::Ok)
                .persistence(persistence)
                .include_body(include_body)
                .write(out, clock.date(), body);
            return (Status::Ok, persistence);
        }
    }
    simulate_origin(shard).await;
    let persistence = self::persistence(shard, head);
    let mut clock = shard.clock.borrow_mut();
    if shard.config.origin_delay_ms > 0 || shard.config.origin_cpu_us > 0 {
        clock.refresh();
    }
    let value = shard.rng.borrow_mut().next_f64() * 1000.0;
    let mut cache = shard.cache.borrow_mut();
    let body = cache.insert(key, clock.now_ms());
    payload::write_body(body, client_id, clock.unix_ms(), shard.id, value);
    Response::new(Status::Ok)
        .persistence(persistence)
        .include_body(include_body)
        .write(out, clock.date(), body);
    (Status::Ok, persistence)
}

/// The seed's "simulate real processing" on a miss: a delay that leaves the
/// shard free for other connections, and CPU work that does not.
async fn simulate_origin(shard: &Shard) {
    if shard.config.origin_delay_ms > 0 {
        glommio::timer::sleep(Duration::from_millis(shard.config.origin_delay_ms)).await;
    }
    if shard.config.origin_cpu_us > 0 {
        let until = std::time::Instant::now() + Duration::from_micros(shard.config.origin_cpu_us);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

fn health(
    shard: &Shard,
    persistence: Persistence,
    include_body: bool,
    out: &mut Vec<u8>,
) -> Status {
    let mut scratch = shard.scratch.borrow_mut();
    scratch.clear();
    let status = if shard.draining.get() {
        // Load balancers stop sending to an instance that is going away.
        let _ = serde_json::to_writer(&mut *scratch, &StatusBody { status: "draining" });
        Status::ServiceUnavailable
    } else {
        let body = Health {
            status: "healthy",
            worker: shard.id,
            active_requests: shard.stats.in_flight(),
            cache_size: shard.cache.borrow().len(),
        };
        let _ = serde_json::to_writer(&mut *scratch, &body);
        Status::Ok
    };
    let clock = shard.clock.borrow();
    Response::new(status)
        .persistence(persistence)
        .include_body(include_body)
        .write(out, clock.date(), &scratch);
    status
}

/// `{"status": ...}`, the body of a draining health check.
#[derive(Serialize)]
struct StatusBody {
    status: &'static str,
}

async fn metrics(
    shard: &Shard,
    head: &RequestHead<'_>,
    format: MetricsFormat,
    include_body: bool,
    out: &mut Vec<u8>,
) -> (Status, Persistence) {
    let reply = shard.metrics(format).await;
    let persistence = persistence(shard, head);
    let Some(body) = reply else {
        let status = Status::ServiceUnavailable;
        let response = Response::new(status)
            .persistence(persistence)
            .headers(RETRY_AFTER)
            .include_body(include_body);
        write_error(shard, out, response, "metrics unavailable");
        return (status, persistence);
    };
    let content_type = match format {
        MetricsFormat::Json => ContentType::Json,
        MetricsFormat::Prometheus => ContentType::PrometheusText,
    };
    let mut clock = shard.clock.borrow_mut();
    clock.refresh();
    Response::new(Status::Ok)
        .content_type(content_type)
        .persistence(persistence)
        .include_body(include_body)
        .write(out, clock.date(), &body);
    (Status::Ok, persistence)
}
