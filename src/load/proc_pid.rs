//! Server figures read from `/proc/<pid>` (the `--pid` alternative to
//! `/api/metrics`, for a server that has no metrics endpoint or is not
//! percore): CPU seconds, RSS, open fds and context switches. No cache
//! figures and no request count come from here.

use std::fs;

/// One reading of a process's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcReading {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub fds_open: u64,
    /// Voluntary + involuntary context switches since start.
    pub context_switches: u64,
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Reads `/proc/<pid>`; `None` when the process is gone or unreadable.
pub fn read(pid: u32) -> Option<ProcReading> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may
    // contain spaces: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds_open = fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(ProcReading {
        cpu_seconds: (utime + stime) / clock_ticks_per_s(),
        rss_bytes: field("VmRSS:") * 1024,
        fds_open,
        context_switches: field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let r = super::read(std::process::id()).expect("own /proc entry");
        assert!(r.rss_bytes > 0);
        assert!(r.fds_open >= 3);
        assert!(super::read(u32::MAX).is_none());
    }
}
