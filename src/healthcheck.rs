//! `percore healthcheck`: asks a running server's `/api/health` and succeeds
//! only on a 200, so a container image needs no curl for its HEALTHCHECK.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the whole check may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The address to probe for a server configured with `host:port`: an
/// unspecified listen address (0.0.0.0, ::) is probed on loopback.
pub fn probe_addr(host: IpAddr, port: u16) -> SocketAddr {
    let ip = match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, port)
}

/// `Ok(())` when `GET /api/health` at `addr` answers 200; otherwise what
/// went wrong.
pub fn check(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    if line.starts_with("HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {}",
            line.lines().next().unwrap_or("no response")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_hosts_probe_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0".parse().unwrap(), 3000),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            probe_addr("::".parse().unwrap(), 80),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            probe_addr("10.1.2.3".parse().unwrap(), 1),
            "10.1.2.3:1".parse().unwrap()
        );
    }

    #[test]
    fn refused_is_an_error() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(check(probe_addr("127.0.0.1".parse().unwrap(), port)).is_err());
    }
}
