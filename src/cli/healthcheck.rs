//! `haproxy-drain healthcheck`: one `GET /healthz` on the daemon's metrics endpoint; exit 0 when
//! it answers 200, else 1.
//!
//! It exists for the container image: a `FROM scratch` image has no shell, no curl and no wget,
//! so its exec-form `HEALTHCHECK` runs the binary itself. It reads the same
//! `HAPROXY_DRAIN_METRICS_LISTEN` as `run`, so one environment serves both; an unspecified
//! listen address (`0.0.0.0`, `::`) is asked on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::control::CliError;
use crate::daemon::DEFAULT_METRICS_LISTEN;
use crate::duration;

/// A bound on the reply we read: `/healthz` answers a few bytes.
const MAX_REPLY: u64 = 16 * 1024;

#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// The daemon's `--metrics-listen` address.
    #[arg(long, env = "HAPROXY_DRAIN_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
    /// The path to ask (`/readyz` also requires every HAProxy and Docker to answer).
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Give up after this long (Docker's own HEALTHCHECK timeout should be longer).
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    pub timeout: Duration,
}

pub async fn healthcheck(args: HealthcheckArgs) -> Result<(), CliError> {
    let addr = probe_address(args.metrics_listen);
    match tokio::time::timeout(args.timeout, get_status(addr, &args.path)).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(status)) => Err(CliError::Failed(format!(
            "GET http://{addr}{} answered {status}",
            args.path
        ))),
        Ok(Err(error)) => Err(CliError::Failed(format!(
            "GET http://{addr}{} failed: {error} (is `haproxy-drain run` listening there? \
             set HAPROXY_DRAIN_METRICS_LISTEN like the daemon's --metrics-listen)",
            args.path
        ))),
        Err(_) => Err(CliError::Failed(format!(
            "GET http://{addr}{} gave no answer within {:?}",
            args.path, args.timeout
        ))),
    }
}

/// Where to connect for a listen address: an unspecified one means "every interface", so
/// loopback of the same family reaches it.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

async fn get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    stream.take(MAX_REPLY).read_to_end(&mut reply).await?;
    parse_status(&reply).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the reply is not an HTTP response",
        )
    })
}

/// The status code of an HTTP/1.x status line.
fn parse_status(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_asked_on_loopback() {
        let check = |listen: &str, expected: &str| {
            let listen: SocketAddr = listen.parse().unwrap();
            assert_eq!(probe_address(listen), expected.parse().unwrap(), "{listen}");
        };
        check("0.0.0.0:9748", "127.0.0.1:9748");
        check("[::]:9748", "[::1]:9748");
        check("10.1.2.3:9000", "10.1.2.3:9000");
        check("127.0.0.1:1", "127.0.0.1:1");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\nok"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"HTTP/1.1 abc\r\n"), None);
    }
}
