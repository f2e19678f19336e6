//! A shard's clock: the `Date` header value (RFC 9110 §6.6.1), formatted at
//! most once a second, and a monotonic millisecond count for cache ages.
//!
//! Formatting an IMF-fixdate costs a few hundred nanoseconds; at 50,000
//! requests a second that is worth caching. Each shard owns one `Clock`
//! (no sharing), refreshed once per batch of requests.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// Cached wall-clock and monotonic time of one shard.
pub struct Clock {
    /// Origin of `now_ms`.
    start: Instant,
    /// Milliseconds since `start`, as of the last refresh.
    now_ms: u64,
    /// Unix milliseconds, as of the last refresh (for JSON timestamps).
    unix_ms: u64,
    /// The Unix second `date` was formatted for.
    date_second: u64,
    /// `Date` header value for `date_second`.
    date: [u8; DATE_LEN],
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock refreshed to now.
    pub fn new() -> Self {
        let mut clock = Clock {
            start: Instant::now(),
            now_ms: 0,
            unix_ms: 0,
            date_second: u64::MAX,
            date: [b' '; DATE_LEN],
        };
        clock.refresh();
        clock
    }

    /// Reads the time (two vDSO calls, no syscall) and re-formats the date
    /// only when the second changed.
    pub fn refresh(&mut self) {
        self.now_ms = self.start.elapsed().as_millis() as u64;
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.unix_ms = unix.as_millis() as u64;
        let second = unix.as_secs();
        if second != self.date_second {
            self.date_second = second;
            self.date = format_imf_fixdate(second);
        }
    }

    /// Monotonic milliseconds since the clock was made.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.unix_ms
    }

    /// The `Date` header value.
    pub fn date(&self) -> &[u8; DATE_LEN] {
        &self.date
    }
}

/// Formats a Unix second as an IMF-fixdate (RFC 9110 §5.6.7), without
/// allocating.
pub fn format_imf_fixdate(unix_seconds: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_seconds / 86_400;
    let secs_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = [0u8; DATE_LEN];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    two_digits(&mut out[5..7], day as u64);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let y = (year.clamp(0, 9999)) as u64;
    two_digits(&mut out[12..14], y / 100);
    two_digits(&mut out[14..16], y % 100);
    out[16] = b' ';
    two_digits(&mut out[17..19], secs_of_day / 3600);
    out[19] = b':';
    two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    out[22] = b':';
    two_digits(&mut out[23..25], secs_of_day % 60);
    out[25..29].copy_from_slice(b" GMT");
    out
}

fn two_digits(out: &mut [u8], v: u64) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31); Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        for (secs, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ] {
            assert_eq!(
                std::str::from_utf8(&format_imf_fixdate(secs)).unwrap(),
                text
            );
        }
    }

    #[test]
    fn refresh_moves_forward() {
        let mut c = Clock::new();
        let before = c.unix_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        c.refresh();
        assert!(c.unix_ms() >= before + 5);
        assert!(c.now_ms() >= 5);
    }
}
