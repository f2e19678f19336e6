//! Takes one reading of the server's figures, from `/api/metrics` over a
//! blocking keep-alive connection or from `/proc/<pid>`, and keeps what only
//! some readings need (the server's cores once, its latency histogram at
//! marks).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::super::proc_pid;
use super::super::server_latency::{self, Mark};
use super::super::target::Target;
use super::metrics_body::parse_value;
use super::sampled::{Reading, Sampled};
use crate::metrics::machine_cpu;

/// Where server figures come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `GET /api/metrics` on the target.
    Metrics(Target),
    /// `/proc/<pid>` on this machine.
    Proc(u32),
}

/// Seconds since `start` (negative: before it).
pub(super) fn elapsed_s(start: quanta::Instant) -> f64 {
    let now = quanta::Instant::now();
    match now.checked_duration_since(start) {
        Some(d) => d.as_secs_f64(),
        None => -start.saturating_duration_since(now).as_secs_f64(),
    }
}

/// Reads from one source; keeps its connection between readings.
pub(super) struct Reader {
    source: Source,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    /// Marks not yet reached, ascending.
    marks_s: std::collections::VecDeque<f64>,
    /// Keep the next reading's histogram (the first and the last reading).
    pub(super) keep_histogram: bool,
    /// `process.workers`, from the first metrics reading.
    pub(super) workers: Option<usize>,
}

impl Reader {
    /// A reader of `source` that keeps the latency histogram at `marks_s`
    /// (and at the first reading).
    pub(super) fn new(source: Source, marks_s: Vec<f64>) -> Reader {
        Reader {
            source,
            conn: None,
            buf: Vec::with_capacity(16 * 1024),
            marks_s: marks_s.into(),
            keep_histogram: true,
            workers: None,
        }
    }

    /// Takes one reading into `into`, or counts a failure.
    pub(super) fn sample(&mut self, start: quanta::Instant, into: &mut Sampled) {
        let t_s = elapsed_s(start);
        let reading = match self.source.clone() {
            Source::Proc(pid) => proc_pid::read(pid).map(|proc| Reading {
                t_s,
                proc,
                cache: None,
                requests_total: None,
                requests_by_route: None,
                machine: None,
            }),
            Source::Metrics(target) => {
                let value = self
                    .fetch_metrics(&target)
                    .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok());
                let reading = value.as_ref().and_then(|v| parse_value(v, t_s));
                if let (Some(v), Some(_)) = (&value, &reading) {
                    into.metrics_calls += 1;
                    self.note_extras(v, t_s, into);
                }
                reading
            }
        };
        match reading {
            Some(r) => into.readings.push(Reading {
                machine: machine_cpu::read(),
                ..r
            }),
            None => into.failures += 1,
        }
    }

    /// The server's cores (once) and its latency histogram (at marks).
    fn note_extras(&mut self, v: &serde_json::Value, t_s: f64, into: &mut Sampled) {
        if self.workers.is_none() {
            self.workers = v
                .pointer("/process/workers")
                .and_then(|w| w.as_u64())
                .map(|w| w as usize);
            into.server_core_ids = v
                .get("shards")
                .and_then(|s| s.as_array())
                .map(|shards| {
                    shards
                        .iter()
                        .filter_map(|s| s.get("core")?.as_u64().map(|c| c as usize))
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut keep = std::mem::take(&mut self.keep_histogram);
        while self.marks_s.front().is_some_and(|&m| t_s >= m) {
            self.marks_s.pop_front();
            keep = true;
        }
        if keep {
            if let Some(pairs) = server_latency::pairs_of(v) {
                into.latency_marks.push(Mark { t_s, pairs });
            }
        }
    }

    fn fetch_metrics(&mut self, target: &Target) -> Option<Vec<u8>> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&target.addr, Duration::from_secs(2)).ok()?;
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_nodelay(true);
            self.conn = Some(s);
        }
        let body = self.exchange(target);
        if body.is_none() {
            self.conn = None;
        }
        body
    }

    fn exchange(&mut self, target: &Target) -> Option<Vec<u8>> {
        let conn = self.conn.as_mut()?;
        let request = format!(
            "GET /api/metrics HTTP/1.1\r\nHost: {}\r\n\r\n",
            target.host_header
        );
        conn.write_all(request.as_bytes()).ok()?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = conn.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                if resp.code != Some(200) {
                    return None;
                }
                let length: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())?;
                if self.buf.len() >= head + length {
                    return Some(self.buf[head..head + length].to_vec());
                }
            }
        }
    }
}
