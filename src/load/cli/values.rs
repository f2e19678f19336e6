//! Flag values that are more than a number: durations (`10s`, `1m30s`,
//! `500ms`), CPU lists (`2-3,6`), percentages, tolerances in ms and stage
//! plans (`30s:50,1m:100`), each with the parser clap calls and its error
//! text.

use std::time::Duration;

/// One ramp stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// Length of the stage.
    pub duration: Duration,
    /// Virtual users at its end.
    pub target_vus: usize,
}

/// A whole ramp plan.
#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan(pub Vec<Stage>);

/// A list of CPU ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses `1`, `0,2`, `2-3,6`; empty: no CPUs.
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {text:?} (e.g. 1 or 2-3,6)");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let c: usize = part.parse().map_err(|_| bad())?;
                (c, c)
            }
        };
        if lo > hi || hi >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(CpuList(cpus))
}

/// Parses a percentage: `50`, `50%`, within 0..=100.
pub fn parse_pct(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("bad percentage {text:?}"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("percentage {text:?} is not within 0..100"))
    }
}

/// Parses a tolerance in ms: `0.5`, `0.5ms`, `0`; not negative.
pub fn parse_tolerance_ms(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches("ms")
        .parse()
        .map_err(|_| format!("bad tolerance {text:?} (ms, e.g. 0.5)"))?;
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("tolerance {text:?} must be a number of ms >= 0"))
    }
}

/// Parses `10s`, `1m`, `500ms`, `2h`, `1m30s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("bad duration {text:?}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} lacks a unit (ms, s, m, h)"))?;
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {text:?}"))?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        let factor = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("bad unit {unit:?} in {text:?} (ms, s, m, h)")),
        };
        total += Duration::from_secs_f64(value * factor);
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// Parses `30s:50,1m:100,...`.
pub fn parse_stages(text: &str) -> Result<StagePlan, String> {
    let stages: Result<Vec<Stage>, String> = text
        .split(',')
        .map(|part| {
            let (d, v) = part
                .split_once(':')
                .ok_or_else(|| format!("stage {part:?} is not DURATION:VUS"))?;
            Ok(Stage {
                duration: parse_duration(d)?,
                target_vus: v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad VU count in stage {part:?}"))?,
            })
        })
        .collect();
    let stages = stages?;
    if stages.iter().all(|s| s.duration.is_zero()) {
        return Err("the stages last no time".to_string());
    }
    Ok(StagePlan(stages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cpu_lists_and_percentages() {
        assert_eq!(parse_cpu_list(""), Ok(CpuList(vec![])));
        assert_eq!(parse_cpu_list("1"), Ok(CpuList(vec![1])));
        assert_eq!(parse_cpu_list("2-3,0,3"), Ok(CpuList(vec![0, 2, 3])));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert_eq!(parse_pct("50%"), Ok(50.0));
        assert_eq!(parse_pct("0"), Ok(0.0));
        assert!(parse_pct("101").is_err());
        assert_eq!(parse_tolerance_ms("0.5"), Ok(0.5));
        assert_eq!(parse_tolerance_ms("0.5ms"), Ok(0.5));
        assert_eq!(parse_tolerance_ms("0"), Ok(0.0));
        assert!(parse_tolerance_ms("-1").is_err());
        assert!(parse_tolerance_ms("inf").is_err());
        assert!(parse_tolerance_ms("x").is_err());
    }

    #[test]
    fn stages() {
        let s = parse_stages("30s:50,1m:100").unwrap().0;
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].duration, Duration::from_secs(60));
        assert_eq!(s[1].target_vus, 100);
        assert!(parse_stages("30s").is_err());
    }
}
