//! Where the real engine listens, and one fresh connection to it per forwarded request.
//!
//! One connection per request keeps the proxy free of pool state: on a Unix socket a connect
//! costs tens of microseconds (see docs/benchmarks.md), and hijacked connections (attach, exec)
//! need a connection of their own anyway.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::docker::DEFAULT_DOCKER_HOST;

/// The engine's API endpoint (plain HTTP; no TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("DOCKER_HOST={0:?}: the Docker gate forwards to unix:///path or tcp://host:port only (no TLS)")]
    Unsupported(String),
    #[error("cannot connect to the Docker engine at {engine}: {source}")]
    Connect {
        engine: String,
        source: std::io::Error,
    },
}

impl Engine {
    /// `DOCKER_HOST` when set (as the daemon's own Docker client reads it), else docker.sock.
    pub fn from_env() -> Result<Self, EngineError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        Self::parse(&host)
    }

    pub fn parse(url: &str) -> Result<Self, EngineError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("unix://") {
            return Ok(Engine::Unix(PathBuf::from(path)));
        }
        if url.starts_with('/') {
            return Ok(Engine::Unix(PathBuf::from(url)));
        }
        let authority = url
            .strip_prefix("tcp://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| EngineError::Unsupported(url.to_string()))?;
        let authority = authority.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(EngineError::Unsupported(url.to_string()));
        }
        Ok(Engine::Tcp(authority.to_string()))
    }

    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            Engine::Unix(path) => Some(path),
            Engine::Tcp(_) => None,
        }
    }

    pub async fn connect(&self) -> Result<EngineStream, EngineError> {
        let error = |source| EngineError::Connect {
            engine: self.to_string(),
            source,
        };
        Ok(match self {
            Engine::Unix(path) => {
                EngineStream::Unix(UnixStream::connect(path).await.map_err(error)?)
            }
            Engine::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.map_err(error)?;
                let _ = stream.set_nodelay(true);
                EngineStream::Tcp(stream)
            }
        })
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Unix(path) => write!(f, "unix://{}", path.display()),
            Engine::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// A connection to the engine, whichever transport.
pub enum EngineStream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl AsyncRead for EngineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            EngineStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EngineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            EngineStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_flush(cx),
            EngineStream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            EngineStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let unix = |p: &str| Ok::<_, ()>(Engine::Unix(PathBuf::from(p)));
        let parse = |u: &str| Engine::parse(u).map_err(|_| ());
        assert_eq!(
            parse("unix:///var/run/docker.sock"),
            unix("/var/run/docker.sock")
        );
        assert_eq!(parse("/run/d.sock"), unix("/run/d.sock"));
        assert_eq!(
            parse("tcp://127.0.0.1:2375"),
            Ok(Engine::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(parse("http://h:2375/"), Ok(Engine::Tcp("h:2375".into())));
        assert!(parse("ssh://me@host").is_err());
        assert!(parse("npipe:////./pipe/docker_engine").is_err());
        assert!(parse("tcp://").is_err());
        assert_eq!(Engine::Tcp("h:1".into()).to_string(), "tcp://h:1");
    }
}
