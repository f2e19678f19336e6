//! Process figures read from `/proc/self`: memory, CPU time, file
//! descriptors, context switches and threads. Read by the control executor
//! when a metrics endpoint is asked, never on a shard's request path.

use std::fs;
use std::sync::OnceLock;

use crate::metrics::procfs;

use serde::Serialize;

/// One reading of the process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStats {
    /// Resident set size, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set size, bytes (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// CPU time in user mode, seconds.
    pub cpu_user_seconds: f64,
    /// CPU time in the kernel, seconds.
    pub cpu_system_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// RLIMIT_NOFILE soft limit.
    pub max_fds: u64,
    /// Voluntary context switches, summed over threads.
    pub voluntary_context_switches: u64,
    /// Involuntary context switches, summed over threads.
    pub involuntary_context_switches: u64,
    /// Threads in the process.
    pub threads: u64,
    /// Process start, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Clock ticks per second for `/proc/*/stat` times.
pub(crate) fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Value of a `Key:   123 kB` line in `/proc/*/status`, in the line's unit.
fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads this process's figures; a field that cannot be read is 0.
pub fn read() -> ProcessStats {
    read_dir("/proc/self").unwrap_or_default()
}

/// Reads the figures of process `pid` (for the load generator's `--pid`);
/// `None` when the process is gone.
pub fn read_pid(pid: u32) -> Option<ProcessStats> {
    read_dir(&format!("/proc/{pid}"))
}

/// Reads the figures under a `/proc/<pid>` directory; `None` if its
/// `stat` cannot be read, 0 for any other field that cannot. Allocates
/// nothing (`procfs`): the files are read into stack buffers and the fd and
/// task directories listed with `getdents64`.
fn read_dir(dir: &str) -> Option<ProcessStats> {
    let mut stats = ProcessStats::default();
    let ticks = ticks_per_second();
    let mut buf = [0u8; procfs::FILE_BYTES];
    let stat = procfs::read_file(&mut buf, &[dir, "/stat"])?;
    // Fields after the parenthesised command name, which may hold spaces.
    if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
        // rest[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
        let field = |n: usize| {
            rest.split_whitespace()
                .nth(n - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        stats.cpu_user_seconds = field(14) as f64 / ticks;
        stats.cpu_system_seconds = field(15) as f64 / ticks;
        stats.start_time_seconds = boot_time_seconds() + field(22) as f64 / ticks;
    }
    if let Some(status) = procfs::read_file(&mut buf, &[dir, "/status"]) {
        stats.rss_bytes = status_field(status, "VmRSS") * 1024;
        stats.peak_rss_bytes = status_field(status, "VmHWM") * 1024;
        stats.threads = status_field(status, "Threads");
    }
    // Context switches are per thread in /proc: a process's own status
    // shows only its main thread, so sum over tasks.
    let mut tasks = [0u8; procfs::PATH_BYTES];
    if let Some(tasks) = procfs::path(&mut tasks, &[dir, "/task"]) {
        procfs::for_each_entry(tasks, |tid| {
            if let Some(status) = procfs::read_file(&mut buf, &[dir, "/task/", tid, "/status"]) {
                stats.voluntary_context_switches += status_field(status, "voluntary_ctxt_switches");
                stats.involuntary_context_switches +=
                    status_field(status, "nonvoluntary_ctxt_switches");
            }
        });
    }
    let mut fd_dir = [0u8; procfs::PATH_BYTES];
    if let Some(fd_dir) = procfs::path(&mut fd_dir, &[dir, "/fd"]) {
        if let Some(fds) = procfs::for_each_entry(fd_dir, |_| {}) {
            // Reading our own fd directory opens one more fd: not counted.
            let own = if dir == "/proc/self" { 1 } else { 0 };
            stats.open_fds = fds.saturating_sub(own);
        }
    }
    if let Some(limits) = procfs::read_file(&mut buf, &[dir, "/limits"]) {
        // "Max open files            20000                20000                files"
        stats.max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    Some(stats)
}

/// System boot time, seconds since the epoch (`btime` in `/proc/stat`),
/// read once: it does not change, and `/proc/stat` grows with the CPUs.
fn boot_time_seconds() -> f64 {
    static BOOT_TIME_SECONDS: OnceLock<f64> = OnceLock::new();
    *BOOT_TIME_SECONDS.get_or_init(|| {
        fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0) as f64
    })
}

/// Heap figures from glibc's allocator, reported where the seed reported
/// V8's heap: (bytes obtained from the system, bytes in use).
pub fn heap() -> (u64, u64) {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads allocator statistics.
        let m = unsafe { libc::mallinfo2() };
        ((m.arena + m.hblkhd) as u64, (m.uordblks + m.hblkhd) as u64)
    }
    #[cfg(not(target_env = "gnu"))]
    {
        (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plausible_figures() {
        let s = read();
        assert_eq!(
            read_pid(std::process::id()).map(|p| p.max_fds),
            Some(s.max_fds)
        );
        assert!(read_pid(u32::MAX).is_none());
        assert!(s.rss_bytes > 1024 * 1024, "{s:?}");
        assert!(s.peak_rss_bytes >= s.rss_bytes);
        assert!(s.open_fds >= 3 && s.open_fds < s.max_fds, "{s:?}");
        assert!(s.threads >= 1);
        assert!(s.voluntary_context_switches + s.involuntary_context_switches > 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds > now - 3600.0 && s.start_time_seconds <= now + 1.0);
    }

    #[test]
    fn status_lines() {
        let text = "Name:\tx\nVmRSS:\t  1234 kB\nThreads:\t7\n";
        assert_eq!(status_field(text, "VmRSS"), 1234);
        assert_eq!(status_field(text, "Threads"), 7);
        assert_eq!(status_field(text, "Missing"), 0);
    }
}
