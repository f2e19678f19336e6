//! The fixed response with percore's head, and its `Date` kept current.
//!
//! percore sends `Server`, `Content-Type`, a cached `Date` and
//! `Content-Length`, in that order (`src/http/response.rs`); the floor sends
//! the same bytes so that both put the same number of bytes on the wire. The
//! date is rewritten in place when the second changes, as percore's cached
//! clock does, so a response costs one copy and no formatting.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// The whole response, head and body, with the `Date` in place.
pub struct Response {
    /// Head and body, ready to copy into a connection's output.
    bytes: Vec<u8>,
    /// Offset of the date's first byte in `bytes`.
    date_at: usize,
    /// The Unix second the date shows.
    shown_second: u64,
}

impl Response {
    /// Builds percore's 200 response around `body`.
    pub fn new(body: &[u8]) -> Self {
        let mut bytes =
            b"HTTP/1.1 200 OK\r\nServer: percore\r\nContent-Type: application/json\r\nDate: "
                .to_vec();
        let date_at = bytes.len();
        bytes.extend_from_slice(&[b' '; DATE_LEN]);
        bytes.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(body);
        let mut response = Response {
            bytes,
            date_at,
            shown_second: u64::MAX,
        };
        response.refresh();
        response
    }

    /// Rewrites the date if the second changed (one vDSO clock read).
    pub fn refresh(&mut self) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.shown_second {
            self.shown_second = second;
            self.bytes[self.date_at..self.date_at + DATE_LEN]
                .copy_from_slice(&format_imf_fixdate(second));
        }
    }

    /// The response as it goes on the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A Unix second as an IMF-fixdate (RFC 9110 §5.6.7).
fn format_imf_fixdate(unix_seconds: u64) -> [u8; DATE_LEN] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds / 86_400;
    let secs_of_day = unix_seconds % 86_400;
    // Formatted once a second: an allocation here costs nothing per request.
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999) as u64;
    let text = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[month - 1],
        year,
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    let mut out = [b' '; DATE_LEN];
    let n = text.len().min(DATE_LEN);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example date of RFC 9110 §5.6.7, and a leap day.
    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(
            &format_imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    /// The head is percore's, byte for byte, and the length is the body's.
    #[test]
    fn response_has_percores_head() {
        let r = Response::new(b"{}");
        let text = std::str::from_utf8(r.bytes()).unwrap_or("");
        assert!(text.starts_with(
            "HTTP/1.1 200 OK\r\nServer: percore\r\nContent-Type: application/json\r\nDate: "
        ));
        assert!(text.ends_with(" GMT\r\nContent-Length: 2\r\n\r\n{}"));
    }
}
