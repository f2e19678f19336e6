//! Process resource limits the server depends on: locked memory for io_uring
//! and file descriptors for connections. Both soft limits are raised toward
//! their hard limits at start, so a default container (`ulimit -n 1024`) does
//! not cap the server below what its host allows.

use std::io;

/// Locked memory one glommio executor needs for its rings and registered
/// buffers, with the small `io_memory` percore asks for (network I/O does not
/// use glommio's registered DMA buffers). glommio documents ≥ 512 KiB.
pub const MEMLOCK_PER_EXECUTOR_BYTES: u64 = 512 * 1024;

/// Registered I/O memory asked of each executor. glommio's default (10 MiB)
/// is for storage I/O and would not fit an 8 MiB memlock limit twice; glommio
/// never goes below 64 KiB.
pub const IO_MEMORY_BYTES: usize = 64 * 1024;

/// Soft and hard value of one limit.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// What the process may use now.
    pub soft: u64,
    /// What the soft limit may be raised to without privileges.
    pub hard: u64,
}

fn get(resource: libc::__rlimit_resource_t) -> io::Result<Limit> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit struct for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Limit {
        soft: rl.rlim_cur,
        hard: rl.rlim_max,
    })
}

fn raise_soft_to_hard(resource: libc::__rlimit_resource_t) -> io::Result<Limit> {
    let limit = get(resource)?;
    if limit.soft < limit.hard {
        let rl = libc::rlimit {
            rlim_cur: limit.hard,
            rlim_max: limit.hard,
        };
        // SAFETY: `rl` is a valid rlimit struct; setrlimit only reads it.
        if unsafe { libc::setrlimit(resource, &rl) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    get(resource)
}

/// Raises RLIMIT_MEMLOCK's soft limit to its hard one and checks it leaves
/// room for `executors` executors. The error names the fix.
pub fn ensure_memlock(executors: usize) -> Result<Limit, String> {
    let limit = raise_soft_to_hard(libc::RLIMIT_MEMLOCK)
        .map_err(|e| format!("cannot read or raise RLIMIT_MEMLOCK: {e}"))?;
    let needed = MEMLOCK_PER_EXECUTOR_BYTES.saturating_mul(executors as u64);
    if limit.soft != libc::RLIM_INFINITY && limit.soft < needed {
        return Err(format!(
            "RLIMIT_MEMLOCK is {} KiB but {executors} io_uring executors need at least {} KiB. \
             Raise it: `ulimit -l unlimited` (or `ulimit -l {}`) in the shell, \
             `--ulimit memlock=-1:-1` with docker run, or `ulimits: {{ memlock: -1 }}` in compose; \
             or run fewer shards with WORKERS",
            limit.soft / 1024,
            needed / 1024,
            needed / 1024
        ));
    }
    Ok(limit)
}

/// Sets up (and closes) one tiny io_uring, to say precisely why io_uring is
/// unavailable before any executor tries: glommio itself only panics with a
/// generic message.
pub fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params: 120 bytes, all zero for a default ring.
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup reads and writes `params`, a live, zeroed
    // buffer of the struct's size; the returned fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: `fd` is the ring just created and owned by nobody else.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let why = match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "io_uring is denied: a seccomp profile blocks io_uring_setup (Docker >= 25's default does: \
             use the shipped seccomp-io_uring.json), or `sysctl kernel.io_uring_disabled` is not 0"
        }
        Some(libc::ENOSYS) => {
            "io_uring is not available: the kernel is older than 5.1 or built without it, \
             or a seccomp profile reports it as missing (use the shipped seccomp-io_uring.json)"
        }
        Some(libc::ENOMEM) => {
            "io_uring could not lock memory for its rings: raise the memlock limit \
             (`ulimit -l unlimited`, or `ulimits: { memlock: -1 }` in compose)"
        }
        _ => "io_uring could not be set up",
    };
    Err(format!(
        "{why} (io_uring_setup: {err}). percore needs Linux >= 5.10 with io_uring"
    ))
}

/// Raises RLIMIT_NOFILE's soft limit to its hard one and returns the result:
/// the number of connections the process can hold follows from it.
pub fn raise_nofile() -> io::Result<Limit> {
    raise_soft_to_hard(libc::RLIMIT_NOFILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_soft_reaches_hard() {
        let l = raise_nofile().unwrap();
        assert_eq!(l.soft, l.hard);
    }

    #[test]
    fn io_uring_is_available_here() {
        // The test machines run io_uring; a failure prints the diagnosis.
        probe_io_uring().unwrap();
    }

    #[test]
    fn memlock_error_names_the_fix() {
        // Ask for more executors than any limit short of unlimited allows.
        let limit = get(libc::RLIMIT_MEMLOCK).unwrap();
        if limit.hard == libc::RLIM_INFINITY {
            return; // nothing to refuse on this host
        }
        let too_many = (limit.hard / MEMLOCK_PER_EXECUTOR_BYTES + 1) as usize;
        let msg = ensure_memlock(too_many).unwrap_err();
        assert!(msg.contains("ulimit -l"), "{msg}");
        assert!(msg.contains("memlock"), "{msg}");
    }
}
