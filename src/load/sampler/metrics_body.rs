//! Turns a parsed `/api/metrics` body into a reading: the figures both
//! sources have, plus cache and request counters.

use super::super::proc_pid;
use super::sampled::Reading;
use crate::shard::routes::RouteClass;

/// Extracts a reading from a parsed `/api/metrics` body.
pub(super) fn parse_value(v: &serde_json::Value, t_s: f64) -> Option<Reading> {
    let u = |p: &str| v.pointer(p).and_then(|x| x.as_u64());
    let f = |p: &str| v.pointer(p).and_then(|x| x.as_f64());
    Some(Reading {
        t_s,
        proc: proc_pid::ProcReading {
            cpu_seconds: f("/cpu/userSeconds")? + f("/cpu/systemSeconds")?,
            rss_bytes: u("/memory/rss")?,
            fds_open: u("/fds/open").unwrap_or(0),
            context_switches: u("/contextSwitches/voluntary").unwrap_or(0)
                + u("/contextSwitches/involuntary").unwrap_or(0),
        },
        cache: u("/cache/hits").zip(u("/cache/misses")),
        requests_total: u("/requests/total"),
        requests_by_route: by_route(v),
        machine: None,
    })
}

/// `requests.byRoute`, when the server reports every class.
fn by_route(v: &serde_json::Value) -> Option<[u64; RouteClass::ALL.len()]> {
    let routes = v.pointer("/requests/byRoute")?;
    let mut counts = [0; RouteClass::ALL.len()];
    for (count, class) in counts.iter_mut().zip(RouteClass::ALL) {
        *count = routes.get(class.name())?.as_u64()?;
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_metrics_body() {
        let body = br#"{"memory":{"rss":123},"cpu":{"userSeconds":1.5,"systemSeconds":0.5},
            "fds":{"open":7},"contextSwitches":{"voluntary":3,"involuntary":4},
            "cache":{"hits":9,"misses":1},"requests":{"total":42,
            "byRoute":{"data":30,"health":7,"metrics":4,"other":1}}}"#;
        let r = parse_value(&serde_json::from_slice(body).unwrap(), 1.0).unwrap();
        assert_eq!(r.proc.rss_bytes, 123);
        assert_eq!(r.proc.cpu_seconds, 2.0);
        assert_eq!(r.proc.context_switches, 7);
        assert_eq!(r.cache, Some((9, 1)));
        assert_eq!(r.requests_total, Some(42));
        assert_eq!(r.requests_by_route, Some([30, 7, 4, 1]));
        let old = br#"{"memory":{"rss":1},"cpu":{"userSeconds":1,"systemSeconds":0},
            "requests":{"total":42,"byStatus":{"200":42}}}"#;
        let r = parse_value(&serde_json::from_slice(old).unwrap(), 1.0).unwrap();
        assert_eq!(r.requests_total, Some(42));
        assert_eq!(r.requests_by_route, None, "a server without byRoute");
    }
}
