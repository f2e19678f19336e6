//! Reading `/proc` without allocating: a metrics request reads a dozen small
//! files and lists the fd directory, which with `fs::read_to_string` and
//! `fs::read_dir` cost about 200 allocations per request, plus one per open
//! fd (10,000 with 10,000 connections). Paths are assembled in stack
//! buffers, files read into the caller's buffer, directories listed with
//! `getdents64`.

use std::os::fd::RawFd;

/// Longest path assembled here, NUL included.
pub const PATH_BYTES: usize = 128;
/// A `/proc/<pid>/status` is about 1.5 KB, `limits` 1.4 KB, `stat` 0.3 KB;
/// a longer file is read up to this many bytes.
pub const FILE_BYTES: usize = 4096;

/// `parts` joined and NUL-terminated in `buf`; `None` if too long.
pub fn path<'a>(buf: &'a mut [u8; PATH_BYTES], parts: &[&str]) -> Option<&'a [u8]> {
    let mut len = 0;
    for part in parts {
        let end = len + part.len();
        if end >= PATH_BYTES {
            return None;
        }
        buf[len..end].copy_from_slice(part.as_bytes());
        len = end;
    }
    buf[len] = 0;
    Some(&buf[..=len])
}

/// Opens a NUL-terminated path read-only.
fn open(path: &[u8], flags: libc::c_int) -> Option<RawFd> {
    if path.last() != Some(&0) {
        return None;
    }
    // SAFETY: `path` is NUL-terminated (checked above).
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC | flags,
        )
    };
    (fd >= 0).then_some(fd)
}

/// The file at `parts` joined, read into `buf` (its first `buf.len()`
/// bytes); `None` if it cannot be opened or read, or is not UTF-8.
pub fn read_file<'a>(buf: &'a mut [u8], parts: &[&str]) -> Option<&'a str> {
    let mut path_buf = [0u8; PATH_BYTES];
    let fd = open(path(&mut path_buf, parts)?, 0)?;
    let mut len = 0;
    let ok = loop {
        let spare = &mut buf[len..];
        if spare.is_empty() {
            break true;
        }
        // SAFETY: the kernel writes at most `spare.len()` bytes into `spare`.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
        match n {
            0 => break true,
            n if n > 0 => len += n as usize,
            _ => break false,
        }
    };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    if !ok {
        return None;
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// Calls `f` with the name of every entry of the directory at the
/// NUL-terminated `path` (`.` and `..` left out); returns how many, or
/// `None` if it cannot be opened. Names that are not UTF-8 are counted, not
/// passed to `f` (none are in `/proc/<pid>/task` or `fd`).
pub fn for_each_entry(path: &[u8], mut f: impl FnMut(&str)) -> Option<u64> {
    let fd = open(path, libc::O_DIRECTORY)?;
    let mut buf = [0u8; FILE_BYTES];
    let mut count = 0;
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            break;
        }
        let filled = (n as usize).min(buf.len());
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16,
        // d_type u8, then the NUL-terminated name.
        let mut at = 0;
        while at + 19 < filled {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let record = &buf[at + 19..(at + reclen).min(filled)];
            let name = &record[..record.iter().position(|b| *b == 0).unwrap_or(record.len())];
            if name != b"." && name != b".." {
                count += 1;
                if let Ok(name) = std::str::from_utf8(name) {
                    f(name);
                }
            }
            at += reclen;
        }
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Lists as `fs::read_dir` does, over more entries than one
    /// `getdents64` buffer holds, and refuses what it cannot open.
    #[test]
    fn lists_directory_entries_without_dots() {
        let dir = std::env::temp_dir().join(format!("percore-procfs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..300 {
            fs::write(dir.join(format!("entry-with-a-longish-name-{i}")), b"").unwrap();
        }
        let mut buf = [0u8; PATH_BYTES];
        let p = path(&mut buf, &[dir.to_str().unwrap()]).unwrap();
        let mut names = Vec::new();
        assert_eq!(for_each_entry(p, |n| names.push(n.to_string())), Some(300));
        names.sort();
        let mut expected: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        expected.sort();
        assert_eq!(names, expected);
        let p = path(&mut buf, &[dir.to_str().unwrap(), "/missing"]).unwrap();
        assert_eq!(for_each_entry(p, |_| {}), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Reads a whole small file, the first `buf.len()` bytes of a longer
    /// one, and nothing for a path too long or missing.
    #[test]
    fn reads_files_into_the_callers_buffer() {
        let file = std::env::temp_dir().join(format!("percore-procfs-{}.txt", std::process::id()));
        fs::write(&file, "x".repeat(5000)).unwrap();
        let f = file.to_str().unwrap();
        let mut small = [0u8; 16];
        assert_eq!(read_file(&mut small, &[f]), Some("xxxxxxxxxxxxxxxx"));
        let mut big = [0u8; 8192];
        assert_eq!(read_file(&mut big, &[f]).map(str::len), Some(5000));
        assert_eq!(read_file(&mut big, &[f, "-missing"]), None);
        assert_eq!(read_file(&mut big, &[&"x".repeat(200)]), None);
        fs::remove_file(&file).unwrap();
        let status = read_file(&mut big, &["/proc/self/status"]).unwrap();
        assert!(status.contains("VmRSS:"), "{status}");
    }
}
