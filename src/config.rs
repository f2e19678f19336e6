//! Server settings: one clap flag per setting, each with an environment
//! fallback, validated once at start so that a bad value is a clear message and
//! a non-zero exit, never a panic later on a shard.
//!
//! Defaults are the seed experiment's (keep-alive 65 s, headers 66 s, 50
//! concurrent requests per worker, 1 MiB bodies, a 60 s / 1,000 entry cache).

use std::net::IpAddr;

use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};

/// Default port, as in the seed (`PORT || 3000`).
pub const DEFAULT_PORT: u16 = 3000;
/// Listen backlog per shard. glommio's own `bind` hard-codes 1024, which a
/// burst of 10,000 connects overflows; we build the socket ourselves.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// The seed's `MAX_CONCURRENT_REQUESTS`, per worker (here: per shard).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 50;
/// The seed's `CACHE_TTL`.
pub const DEFAULT_CACHE_TTL_MS: u64 = 60_000;
/// The seed's cache bound (`cache.size > 1000`), per shard.
pub const DEFAULT_CACHE_CAPACITY: usize = 1_000;
/// The seed's `server.keepAliveTimeout`.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_MS: u64 = 65_000;
/// The seed's `server.headersTimeout`.
pub const DEFAULT_HEADERS_TIMEOUT_MS: u64 = 66_000;
/// Largest request head accepted (431 beyond).
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields accepted (431 beyond). Also the size of the stack array
/// httparse parses into, so it cannot be raised past this.
pub const MAX_HEADERS_LIMIT: usize = crate::http::request::MAX_HEADERS;
/// Longest request-target accepted (414 beyond).
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
/// The seed's `express.json({ limit: '1mb' })` (413 beyond).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Upper bound of a graceful shutdown, below Docker's 30 s stop timeout.
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 25_000;
/// Grace for connections idle when shutdown begins: long enough for a client
/// in a request loop to send its next request, short enough to exit quickly.
pub const DEFAULT_DRAIN_IDLE_GRACE_MS: u64 = 1_000;
/// Shard restarts allowed over the process's life. A dead executor's
/// io_uring rings, buffers and blocking thread are never reclaimed (about
/// 0.6 MiB of RSS, 192 KiB of pinned memory, one thread and five fds per
/// restart, measured): past this many, a death drains the server and it
/// exits with status 70, for its supervisor (systemd, Kubernetes) to start
/// a clean process.
pub const DEFAULT_MAX_SHARD_RESTARTS: u64 = 16;
/// File descriptors kept back from `max connections` for listeners, io_uring,
/// logs and `/proc` reads.
pub const RESERVED_FDS: u64 = 64;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting of the server. Each flag falls back to the environment
/// variable named beside it, then to the default.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "percore",
    version,
    about = "Thread-per-core HTTP/1.1 JSON server on io_uring"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free port, shared by every shard).
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Shards (pinned executors), one per core; 0 means every core in the
    /// process's affinity mask.
    #[arg(long, env = "WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Listen backlog of each shard's socket.
    #[arg(long, env = "BACKLOG", default_value_t = DEFAULT_BACKLOG,
          value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub backlog: u32,

    /// Open connections allowed over all shards; past it a new connection is
    /// answered 503 and closed. 0 derives it from RLIMIT_NOFILE.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Requests in flight on one shard; past it: 503 with `Retry-After: 1`.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS,
          value_parser = clap::value_parser!(u32).range(1..).map(|v| v as usize))]
    pub max_concurrent_requests: usize,

    /// How long a cached `/api/data` body stays fresh; 0 disables hits.
    #[arg(long, env = "CACHE_TTL_MS", default_value_t = DEFAULT_CACHE_TTL_MS)]
    pub cache_ttl_ms: u64,

    /// Cached bodies per shard (LRU beyond); 0 disables the cache.
    #[arg(long, env = "CACHE_CAPACITY", default_value_t = DEFAULT_CACHE_CAPACITY,
          value_parser = clap::value_parser!(u32).range(0..=10_000_000).map(|v| v as usize))]
    pub cache_capacity: usize,

    /// Idle time after which a keep-alive connection is closed.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_MS", default_value_t = DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout_ms: u64,

    /// Time within which a whole request head must arrive (408 beyond).
    #[arg(long, env = "HEADERS_TIMEOUT_MS", default_value_t = DEFAULT_HEADERS_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub headers_timeout_ms: u64,

    /// Largest request head in bytes (431 beyond).
    #[arg(long, env = "MAX_HEAD_BYTES", default_value_t = DEFAULT_MAX_HEAD_BYTES,
          value_parser = clap::value_parser!(u32).range(256..=1_048_576).map(|v| v as usize))]
    pub max_head_bytes: usize,

    /// Most header fields in a request (431 beyond); at most 64.
    #[arg(long, env = "MAX_HEADERS", default_value_t = MAX_HEADERS_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=MAX_HEADERS_LIMIT as i64).map(|v| v as usize))]
    pub max_headers: usize,

    /// Longest request-target in bytes (414 beyond).
    #[arg(long, env = "MAX_URI_BYTES", default_value_t = DEFAULT_MAX_URI_BYTES,
          value_parser = clap::value_parser!(u32).range(16..=1_048_576).map(|v| v as usize))]
    pub max_uri_bytes: usize,

    /// Largest request body in bytes (413 beyond). Bodies are read and discarded.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,

    /// Longest a graceful shutdown may take before the remaining connections are cut.
    #[arg(long, env = "DRAIN_TIMEOUT_MS", default_value_t = DEFAULT_DRAIN_TIMEOUT_MS)]
    pub drain_timeout_ms: u64,

    /// On shutdown, how long a connection idle at that moment may still send
    /// one last request (answered with `Connection: close`) before it is closed.
    #[arg(long, env = "DRAIN_IDLE_GRACE_MS", default_value_t = DEFAULT_DRAIN_IDLE_GRACE_MS)]
    pub drain_idle_grace_ms: u64,

    /// Shard restarts allowed over the process's life (see
    /// [`DEFAULT_MAX_SHARD_RESTARTS`]); the next death drains the server,
    /// which then exits with status 70. 0: a shard that dies stops the server.
    #[arg(long, env = "MAX_SHARD_RESTARTS", default_value_t = DEFAULT_MAX_SHARD_RESTARTS)]
    pub max_shard_restarts: u64,

    /// Simulated backend latency on a cache miss (the shard stays free meanwhile).
    #[arg(long, env = "ORIGIN_DELAY_MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub origin_delay_ms: u64,

    /// Simulated backend CPU work on a cache miss (busy on the shard's core).
    #[arg(long, env = "ORIGIN_CPU_US", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub origin_cpu_us: u64,

    /// Log one line per request (off by default: it costs more than a request).
    #[arg(long, env = "ACCESS_LOG", default_value_t = false)]
    pub access_log: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Set each executor's main io_uring up with SINGLE_ISSUER | DEFER_TASKRUN
    /// (Linux 6.1): completions are posted in one batch when the shard enters
    /// the kernel, never by interrupting it. A kernel that refuses falls back
    /// to the previous setup on its own; `false` (or 0) forces that fallback.
    #[arg(long, env = "IO_URING_DEFER_TASKRUN", default_value_t = true,
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub io_uring_defer_taskrun: bool,

    /// Read each connection with one multishot receive into a shard-wide ring
    /// of provided buffers (Linux 6.0; needs IO_URING_DEFER_TASKRUN): no
    /// `recv` system call and no poll per request, and an idle connection
    /// holds no receive buffer. A kernel that refuses falls back to poll +
    /// `recv` on its own; `false` (or 0) forces that fallback.
    #[arg(long, env = "IO_URING_RECV_MULTISHOT", default_value_t = true,
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub io_uring_recv_multishot: bool,

    /// Send responses through the shard's io_uring instead of with a `send`
    /// system call each: a connection's responses are queued as one send,
    /// submitted in the `io_uring_enter` the shard makes anyway (one per
    /// turn for a whole batch of connections) and resolved within it. What
    /// does not fit in the socket buffer is written the usual way. `false`
    /// (or 0) sends with `send`.
    #[arg(long, env = "IO_URING_RING_SEND", default_value_t = true,
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub io_uring_ring_send: bool,

    /// Provided receive buffers per shard for the multishot receives, 2 KiB
    /// each (a power of two, at most 32768). A buffer is held only from the
    /// completion that fills it to the read that copies it out, so this
    /// bounds the reads in flight in one turn, not the connections. When a
    /// turn finds none free, that connection waits with a poll and re-arms
    /// (nothing is lost; `percore_recv_buffers_exhausted_total` counts it).
    #[arg(long, env = "IO_URING_RECV_BUFFERS", default_value_t = 512,
          value_parser = parse_recv_buffers)]
    pub io_uring_recv_buffers: u16,
}

/// A power of two from 1 to 32768 (the kernel's limit for a buffer ring).
fn parse_recv_buffers(s: &str) -> Result<u16, String> {
    let n: u16 = s.parse().map_err(|e| format!("{e}"))?;
    if n.is_power_of_two() && n <= 1 << 15 {
        Ok(n)
    } else {
        Err(format!("{n} is not a power of two from 1 to 32768"))
    }
}

impl Config {
    /// Checks what clap's per-flag ranges cannot: settings that depend on each
    /// other or on the machine. Returns the message to print on failure.
    pub fn validate(&self, cores_available: usize) -> Result<(), String> {
        if cores_available == 0 {
            return Err("no CPU core is available to this process (affinity mask empty?)".into());
        }
        if self.workers > cores_available {
            return Err(format!(
                "WORKERS={} but only {} core(s) are in this process's affinity mask \
                 (one pinned shard per core); use WORKERS=0 for all of them",
                self.workers, cores_available
            ));
        }
        if self.max_uri_bytes > self.max_head_bytes {
            return Err(format!(
                "MAX_URI_BYTES={} exceeds MAX_HEAD_BYTES={}: the URI is part of the head",
                self.max_uri_bytes, self.max_head_bytes
            ));
        }
        if self.drain_timeout_ms == 0 {
            return Err("DRAIN_TIMEOUT_MS must be at least 1".into());
        }
        Ok(())
    }

    /// Shards to run: `workers`, or every available core when it is 0.
    pub fn shard_count(&self, cores_available: usize) -> usize {
        if self.workers == 0 {
            cores_available
        } else {
            self.workers
        }
    }

    /// Connections allowed over all shards: the setting, or what the fd limit
    /// leaves after [`RESERVED_FDS`].
    pub fn effective_max_connections(&self, nofile_limit: u64) -> usize {
        if self.max_connections > 0 {
            self.max_connections
        } else {
            nofile_limit.saturating_sub(RESERVED_FDS).max(1) as usize
        }
    }

    /// Limits handed to the request parser.
    pub fn limits(&self) -> crate::http::request::Limits {
        crate::http::request::Limits {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers,
            max_uri_bytes: self.max_uri_bytes,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = Config::parse_from(["percore"]);
        assert_eq!(c.port, 3000);
        assert_eq!(c.max_concurrent_requests, 50);
        assert_eq!(c.cache_ttl_ms, 60_000);
        assert_eq!(c.cache_capacity, 1_000);
        assert_eq!(c.keep_alive_timeout_ms, 65_000);
        assert_eq!(c.headers_timeout_ms, 66_000);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(c.backlog, 4096);
        assert!(c.io_uring_defer_taskrun);
        assert!(c.io_uring_recv_multishot);
        assert!(c.io_uring_ring_send);
        assert_eq!(c.io_uring_recv_buffers, 512);
        assert!(c.validate(2).is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["percore", "--port", "70000"][..],
            &["percore", "--max-concurrent-requests", "0"],
            &["percore", "--max-headers", "65"],
            &["percore", "--backlog", "0"],
            &["percore", "--keep-alive-timeout-ms", "0"],
            &["percore", "--workers", "two"],
            &["percore", "--io-uring-recv-buffers", "100"],
            &["percore", "--io-uring-recv-buffers", "65536"],
            &["percore", "--io-uring-recv-buffers", "0"],
        ] {
            assert!(Config::try_parse_from(args).is_err(), "{args:?} accepted");
        }
        let c = Config::parse_from(["percore", "--workers", "3"]);
        assert!(c.validate(2).unwrap_err().contains("WORKERS=3"));
        let c = Config::parse_from(["percore", "--max-uri-bytes", "20000"]);
        assert!(c.validate(2).is_err());
    }

    /// The fallback switch takes the usual spellings of false.
    #[test]
    fn defer_taskrun_can_be_turned_off() {
        for off in ["0", "false", "no", "off"] {
            let c = Config::parse_from(["percore", "--io-uring-defer-taskrun", off]);
            assert!(!c.io_uring_defer_taskrun, "{off}");
        }
        let c = Config::parse_from(["percore", "--io-uring-defer-taskrun", "1"]);
        assert!(c.io_uring_defer_taskrun);
        for off in ["0", "false"] {
            let c = Config::parse_from(["percore", "--io-uring-recv-multishot", off]);
            assert!(!c.io_uring_recv_multishot, "{off}");
            let c = Config::parse_from(["percore", "--io-uring-ring-send", off]);
            assert!(!c.io_uring_ring_send, "{off}");
        }
    }

    #[test]
    fn derived_values() {
        let c = Config::parse_from(["percore"]);
        assert_eq!(c.shard_count(2), 2);
        assert_eq!(c.effective_max_connections(1024), 960);
        let c = Config::parse_from(["percore", "--workers", "1", "--max-connections", "10"]);
        assert_eq!(c.shard_count(2), 1);
        assert_eq!(c.effective_max_connections(1024), 10);
    }
}
