//! The server under test: an `http://host:port` URL resolved once to a
//! socket address, plus the `Host` header every request carries. Also the
//! up-front reachability check that turns "nothing listens there" into a
//! clear message and exit code 2 instead of a run full of connect errors.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::LoadError;

/// How long the reachability check waits for a TCP connection.
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(3);

/// A resolved server address.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where connections go.
    pub addr: SocketAddr,
    /// The `Host` header value (`host:port` as given in the URL).
    pub host_header: String,
}

impl Target {
    /// Parses `http://host[:port][/]`. Paths and `https` are refused: the
    /// scenarios choose their own paths.
    pub fn parse(url: &str) -> Result<Target, LoadError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            LoadError::Usage(format!(
                "--url must start with http:// (got {url:?}; https is not supported)"
            ))
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(LoadError::Usage(format!(
                "--url must be http://host[:port] without a path (got {url:?})"
            )));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| LoadError::Usage(format!("cannot resolve {authority:?}: {e}")))?
            .next()
            .ok_or_else(|| LoadError::Usage(format!("{authority:?} resolves to no address")))?;
        Ok(Target {
            addr,
            host_header: authority.to_string(),
        })
    }

    /// Opens and closes one TCP connection, so an unreachable server is
    /// reported before any load is generated.
    pub fn check_reachable(&self) -> Result<(), LoadError> {
        TcpStream::connect_timeout(&self.addr, REACHABILITY_TIMEOUT)
            .map(drop)
            .map_err(|e| {
                LoadError::Unreachable(format!(
                    "cannot connect to {} ({}): {e}. Is percore running there?",
                    self.host_header, self.addr
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_port() {
        let t = Target::parse("http://127.0.0.1:3000/").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:3000");
        let t = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 80);
    }

    #[test]
    fn refuses_other_schemes_and_paths() {
        assert!(matches!(
            Target::parse("https://x:1"),
            Err(LoadError::Usage(_))
        ));
        assert!(matches!(
            Target::parse("http://127.0.0.1:1/api"),
            Err(LoadError::Usage(_))
        ));
    }
}
