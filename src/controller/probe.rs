//! The health gate: is a freshly started container really ready for traffic?
//!
//! Docker's own health check when the container has one; else the new address must accept a TCP
//! connection, or answer an HTTP GET with 2xx/3xx when a health path is configured.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docker::{DockerClient, HealthStatus};

/// One probe's limit: a probe that hangs counts as "not yet", and the caller probes again.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// What the gate checks for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Wait for Docker to report `healthy`.
    DockerHealth { container_id: String },
    /// The address accepts a TCP connection.
    Tcp(SocketAddr),
    /// `GET path` on the address answers 2xx or 3xx.
    Http { addr: SocketAddr, path: String },
    /// No address to probe (e.g. host networking): trust that it started.
    None,
}

impl Gate {
    /// Docker's health check when the container has one; else HTTP when a health path is
    /// configured, else TCP; nothing to probe without an address and a port.
    pub fn for_container(
        container_id: &str,
        has_healthcheck: bool,
        ip: Option<IpAddr>,
        port: Option<u16>,
        health_path: Option<&str>,
    ) -> Self {
        if has_healthcheck {
            return Gate::DockerHealth {
                container_id: container_id.to_string(),
            };
        }
        match (ip, port, health_path) {
            (Some(ip), Some(port), Some(path)) => Gate::Http {
                addr: SocketAddr::new(ip, port),
                path: path.to_string(),
            },
            (Some(ip), Some(port), None) => Gate::Tcp(SocketAddr::new(ip, port)),
            _ => Gate::None,
        }
    }

    /// One probe; errors and timeouts count as "not yet". Docker health also needs the
    /// container to be running.
    pub async fn probe(&self, docker: &DockerClient) -> bool {
        match self {
            Gate::None => true,
            Gate::DockerHealth { container_id } => matches!(
                tokio::time::timeout(PROBE_TIMEOUT, docker.inspect(container_id)).await,
                Ok(Ok(Some(info))) if info.running && info.health == Some(HealthStatus::Healthy)
            ),
            Gate::Tcp(addr) => matches!(
                tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await,
                Ok(Ok(_))
            ),
            Gate::Http { addr, path } => {
                matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, http_ok(*addr, path)).await,
                    Ok(true)
                )
            }
        }
    }
}

/// An HTTP/1.0 GET: true when the status line says 2xx or 3xx.
async fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: haproxy-drain\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    // "HTTP/1.x 2xx" or 3xx
    read >= 12 && head.starts_with(b"HTTP/1.") && matches!(head[9], b'2' | b'3')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn tcp_and_http_probes() {
        // An engine that never answers: the Docker health probe must say "not yet".
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let _silent = tokio::net::UnixListener::bind(&socket).unwrap();
        let docker = DockerClient::connect_to(&format!("unix://{}", socket.display())).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok ");
                let reply: &[u8] = if ok {
                    b"HTTP/1.0 200 OK\r\n\r\n"
                } else {
                    b"HTTP/1.0 503 NO\r\n\r\n"
                };
                let _ = s.write_all(reply).await;
            }
        });
        assert!(Gate::Tcp(addr).probe(&docker).await);
        assert!(
            Gate::Http {
                addr,
                path: "/ok".into()
            }
            .probe(&docker)
            .await
        );
        assert!(
            !Gate::Http {
                addr,
                path: "/bad".into()
            }
            .probe(&docker)
            .await
        );
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!Gate::Tcp(closed).probe(&docker).await);
        assert!(
            !Gate::DockerHealth {
                container_id: "x".into()
            }
            .probe(&docker)
            .await
        );
    }
}
