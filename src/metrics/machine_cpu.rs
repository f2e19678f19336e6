//! The machine's CPU time, from `/proc/stat`: how much of it the hypervisor
//! gave to someone else (steal). The load generator reads it beside each
//! server sample; the server reports it in `/api/metrics` (`machine`), for
//! the dashboard.
//!
//! Why: on a VM whose host takes CPU away, the clients' latency grows while
//! the server has not changed: an hour's soak here went from 0.8 to 3.9 ms
//! p99 in the minutes the host took 6–16 % of the VM, and back once it
//! stopped. A soak reports steal beside each part so that such a window is
//! told from a server that slowed down, and judges the server's own CPU per
//! request (which excludes steal) when the second half lost more of the
//! machine than the first. The figure is this machine's: the server's when
//! both run on it (the usual set-up), not when the server runs elsewhere.

/// Cumulative CPU ticks of all cores (`/proc/stat`'s first line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Ticks stolen by the hypervisor (the eighth field).
    pub steal: u64,
    /// All ticks: user, nice, system, idle, iowait, irq, softirq, steal
    /// (guest time is already counted in user and nice).
    pub total: u64,
}

/// Parses `/proc/stat`'s aggregate line: `cpu  user nice system idle iowait
/// irq softirq steal …` (proc(5)); `None` if it is not one.
pub fn parse(line: &str) -> Option<CpuTicks> {
    let mut fields = line.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // Kernels before 2.6.11 had no steal field: then there is none to show.
    let steal = *ticks.get(7)?;
    Some(CpuTicks {
        steal,
        total: ticks.iter().sum(),
    })
}

/// Reads this machine's ticks now; `None` where `/proc/stat` is missing.
/// Only the first line is read, into a stack buffer: no allocation.
pub fn read() -> Option<CpuTicks> {
    // "cpu" and ten counters of at most 20 digits each.
    let mut buf = [0u8; 256];
    let stat = super::procfs::read_file(&mut buf, &["/proc/stat"])?;
    parse(stat.lines().next()?)
}

/// Steal between two readings, % of all CPU time in between; `None` when
/// no tick passed.
pub fn steal_pct(a: CpuTicks, b: CpuTicks) -> Option<f64> {
    let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
    let steal = b.steal.saturating_sub(a.steal);
    Some(100.0 * steal as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_aggregate_line_and_computes_steal() {
        let a = parse("cpu  100 0 50 800 10 5 5 30 0 0").expect("a cpu line");
        assert_eq!(
            a,
            CpuTicks {
                steal: 30,
                total: 1000
            }
        );
        let b = parse("cpu  200 0 100 1500 10 5 5 180 7 0").expect("a cpu line");
        // 1,000 ticks passed, 150 of them stolen.
        assert_eq!(steal_pct(a, b), Some(15.0));
        assert_eq!(steal_pct(a, a), None, "no tick passed");
    }

    #[test]
    fn rejects_other_lines() {
        assert_eq!(parse("cpu0 1 2 3 4 5 6 7 8"), None, "a per-core line");
        assert_eq!(parse("cpu  1 2 3 4"), None, "no steal field");
        assert_eq!(parse("cpu  1 2 x 4 5 6 7 8"), None);
        assert_eq!(parse("intr 1 2 3"), None);
    }

    #[test]
    fn reads_this_machine() {
        let r = read().expect("/proc/stat");
        assert!(r.total > 0 && r.steal <= r.total);
    }
}
