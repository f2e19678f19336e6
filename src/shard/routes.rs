//! Which endpoint a request is for: a pure function of method and path, so the
//! whole routing table is tested without a socket. Also the route class a
//! request is counted under, a pure function of its path.

use crate::http::request::Method;
use crate::shard::payload::valid_client_id;

/// Path prefix of the data endpoint.
pub const DATA_PREFIX: &str = "/api/data/";
/// Path of the health endpoint.
pub const HEALTH_PATH: &str = "/api/health";
/// Path of the JSON metrics endpoint.
pub const METRICS_JSON_PATH: &str = "/api/metrics";
/// Path of the Prometheus metrics endpoint.
pub const METRICS_PROMETHEUS_PATH: &str = "/metrics";

/// What a request asked for, by path alone, whatever its method and answer:
/// the server counts its requests by class (`requests.byRoute`), so that a
/// client can compare what it sent with what the server counted for the
/// same endpoints, undisturbed by health probes and metrics scrapes from
/// other clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteClass {
    /// `/api/data/…`, valid id or not: what a load generator sends.
    #[default]
    Data,
    /// `/api/health`: load balancer and container probes.
    Health,
    /// `/api/metrics` and `/metrics`: samplers and scrapers.
    Metrics,
    /// Everything else: the dashboard, unknown paths, requests that could
    /// not be parsed.
    Other,
}

impl RouteClass {
    /// Every class, in [`RouteClass::index`] order.
    pub const ALL: [RouteClass; 4] = [
        RouteClass::Data,
        RouteClass::Health,
        RouteClass::Metrics,
        RouteClass::Other,
    ];

    /// The class of a request for `path` (without query).
    pub fn of_path(path: &str) -> RouteClass {
        if path.starts_with(DATA_PREFIX) {
            return RouteClass::Data;
        }
        match path {
            HEALTH_PATH => RouteClass::Health,
            METRICS_JSON_PATH | METRICS_PROMETHEUS_PATH => RouteClass::Metrics,
            _ => RouteClass::Other,
        }
    }

    /// Position in [`RouteClass::ALL`], for per-class counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its key under `requests.byRoute` in `/api/metrics` and its `route`
    /// label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Data => "data",
            RouteClass::Health => "health",
            RouteClass::Metrics => "metrics",
            RouteClass::Other => "other",
        }
    }
}

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

/// Routes `method path` (path without query) whose class is `class`, the
/// path's [`RouteClass::of_path`]: a request's path is classified once, for
/// routing and for counting.
pub fn route(method: Method, path: &str, class: RouteClass) -> Route<'_> {
    let readable = matches!(method, Method::Get | Method::Head);
    let endpoint = match class {
        RouteClass::Data => {
            let id = path.strip_prefix(DATA_PREFIX).unwrap_or_default();
            if !valid_client_id(id.as_bytes()) {
                // A bad id is a client error whatever the method.
                return if readable {
                    Route::BadClientId
                } else {
                    Route::MethodNotAllowed(ALLOW_GET_HEAD)
                };
            }
            Route::Data(id)
        }
        RouteClass::Health => Route::Health,
        RouteClass::Metrics if path == METRICS_JSON_PATH => Route::Metrics(MetricsFormat::Json),
        RouteClass::Metrics => Route::Metrics(MetricsFormat::Prometheus),
        RouteClass::Other if path == "/dashboard" => Route::Dashboard,
        RouteClass::Other => return Route::NotFound,
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
            let class = RouteClass::of_path(path);
            assert_eq!(route(method, path, class), want, "{method:?} {path}");
        }
    }

    /// A request is counted under the class of its path, whatever route it
    /// took: a bad id or a POST to the data endpoint is still data.
    #[test]
    fn classes() {
        use RouteClass::*;
        for (path, want) in [
            ("/api/data/client-1", Data),
            ("/api/data/", Data),
            ("/api/data/a/b", Data),
            ("/api/health", Health),
            ("/api/metrics", Metrics),
            ("/metrics", Metrics),
            ("/dashboard", Other),
            ("/api/data", Other),
            ("/api/healthz", Other),
            ("/metrics/", Other),
            ("*", Other),
            ("", Other),
        ] {
            assert_eq!(RouteClass::of_path(path), want, "{path}");
        }
        for (i, class) in RouteClass::ALL.iter().enumerate() {
            assert_eq!(class.index(), i);
        }
    }
}
