//! Which endpoint a request is for: a pure function of method and path, so the
//! whole routing table is tested without a socket.

use crate::http::request::Method;
use crate::shard::payload::valid_client_id;

/// Path prefix of the data endpoint.
pub const DATA_PREFIX: &str = "/api/data/";

/// Format of a metrics report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsFormat {
    /// `/api/metrics`: the seed's JSON keys and more.
    Json,
    /// `/metrics`: Prometheus text exposition format 0.0.4.
    Prometheus,
}

/// The outcome of routing one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET|HEAD /api/data/{clientId}` with a valid id.
    Data(&'a str),
    /// `GET|HEAD /api/health`.
    Health,
    /// `GET|HEAD /api/metrics` or `/metrics`.
    Metrics(MetricsFormat),
    /// `GET|HEAD /dashboard`: the live page, static bytes.
    Dashboard,
    /// `/api/data/{clientId}` with an id that is not 1..=128 unreserved characters.
    BadClientId,
    /// A known path with a method it does not allow; carries the `Allow` line.
    MethodNotAllowed(&'static [u8]),
    /// No such path.
    NotFound,
}

/// `Allow` header of every percore endpoint (RFC 9110 §10.2.1, §15.5.6).
pub const ALLOW_GET_HEAD: &[u8] = b"Allow: GET, HEAD\r\n";

/// Routes `method path` (path without query).
pub fn route(method: Method, path: &str) -> Route<'_> {
    let readable = matches!(method, Method::Get | Method::Head);
    let endpoint = if let Some(id) = path.strip_prefix(DATA_PREFIX) {
        if !valid_client_id(id.as_bytes()) {
            // A bad id is a client error whatever the method.
            return if readable {
                Route::BadClientId
            } else {
                Route::MethodNotAllowed(ALLOW_GET_HEAD)
            };
        }
        Route::Data(id)
    } else {
        match path {
            "/api/health" => Route::Health,
            "/api/metrics" => Route::Metrics(MetricsFormat::Json),
            "/metrics" => Route::Metrics(MetricsFormat::Prometheus),
            "/dashboard" => Route::Dashboard,
            _ => return Route::NotFound,
        }
    };
    if readable {
        endpoint
    } else {
        Route::MethodNotAllowed(ALLOW_GET_HEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Method::*;
        let long = format!("/api/data/{}", "x".repeat(129));
        let cases: Vec<(Method, &str, Route)> = vec![
            (Get, "/api/data/client-1", Route::Data("client-1")),
            (Head, "/api/data/client-1", Route::Data("client-1")),
            (
                Post,
                "/api/data/client-1",
                Route::MethodNotAllowed(ALLOW_GET_HEAD),
            ),
            (Get, "/api/data/", Route::BadClientId),
            (Get, "/api/data/a/b", Route::BadClientId),
            (Get, "/api/data/a%2Fb", Route::BadClientId),
            (Get, long.as_str(), Route::BadClientId),
            (Get, "/api/health", Route::Health),
            (
                Delete,
                "/api/health",
                Route::MethodNotAllowed(ALLOW_GET_HEAD),
            ),
            (Get, "/api/metrics", Route::Metrics(MetricsFormat::Json)),
            (Get, "/metrics", Route::Metrics(MetricsFormat::Prometheus)),
            (Get, "/dashboard", Route::Dashboard),
            (Head, "/dashboard", Route::Dashboard),
            (Post, "/dashboard", Route::MethodNotAllowed(ALLOW_GET_HEAD)),
            (Get, "/dashboard/", Route::NotFound),
            (Get, "/dashboard.html", Route::NotFound),
            (Get, "/", Route::NotFound),
            (Post, "/nope", Route::NotFound),
            (Get, "/api/healthz", Route::NotFound),
            (Get, "/api/data", Route::NotFound),
            (Options, "*", Route::NotFound),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(method, path), want, "{method:?} {path}");
        }
    }
}
