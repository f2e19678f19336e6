//! Server figures read from `/proc/<pid>` (the `--pid` alternative to
//! `/api/metrics`, for a server that has no metrics endpoint or is not
//! percore): CPU seconds, RSS, open fds and context switches. No cache
//! figures and no request count come from here.

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

/// Reads `/proc/<pid>`; `None` when the process is gone or unreadable.
pub fn read(pid: u32) -> Option<ProcReading> {
    let p = crate::metrics::process::read_pid(pid)?;
    Some(ProcReading {
        cpu_seconds: p.cpu_user_seconds + p.cpu_system_seconds,
        rss_bytes: p.rss_bytes,
        fds_open: p.open_fds,
        context_switches: p.voluntary_context_switches + p.involuntary_context_switches,
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
