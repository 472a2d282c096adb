//! Where a runtime API lives: one URL string in flags and config files.
//!
//! `unix:///run/haproxy/admin.sock`, `tcp://127.0.0.1:9999`, and the master CLI addressing a
//! worker: `unix:///run/haproxy/master.sock?worker=1` (relative worker 1, the current one) or
//! `?worker=!1234` (the worker with PID 1234, also an old, stopping one).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::AddrError;

/// The socket itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Unix(PathBuf),
    /// Host name or IP literal (IPv6 in brackets, as in the URL) and port.
    Tcp {
        host: String,
        port: u16,
    },
}

/// Which worker the master CLI should forward each command to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerTarget {
    /// `@N`: relative worker number, 1 is the current worker.
    Relative(u32),
    /// `@!PID`: a worker by process id.
    Pid(u32),
}

impl WorkerTarget {
    /// The prefix the master CLI expects in front of each command, with its trailing space.
    pub fn command_prefix(self) -> String {
        match self {
            WorkerTarget::Relative(n) => format!("@{n} "),
            WorkerTarget::Pid(pid) => format!("@!{pid} "),
        }
    }
}

impl fmt::Display for WorkerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerTarget::Relative(n) => write!(f, "{n}"),
            WorkerTarget::Pid(pid) => write!(f, "!{pid}"),
        }
    }
}

/// A parsed runtime API address. Serialises as its URL string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HaproxyAddr {
    pub endpoint: Endpoint,
    /// Set when `endpoint` is a master CLI socket and commands go to a worker.
    pub worker: Option<WorkerTarget>,
}

impl HaproxyAddr {
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: Endpoint::Unix(path.into()),
            worker: None,
        }
    }

    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self {
            endpoint: Endpoint::Tcp {
                host: host.into(),
                port,
            },
            worker: None,
        }
    }

    /// The same socket, with commands forwarded to `worker` by the master CLI.
    pub fn with_worker(mut self, worker: WorkerTarget) -> Self {
        self.worker = Some(worker);
        self
    }

    pub fn parse(text: &str) -> Result<Self, AddrError> {
        let bad = |reason: &str| AddrError {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let (base, query) = match text.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (text, None),
        };
        let endpoint = if let Some(path) = base.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "the socket path must be absolute (unix:///path/to/admin.sock)",
                ));
            }
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(hostport) = base.strip_prefix("tcp://") {
            let (host, port) = hostport
                .rsplit_once(':')
                .ok_or_else(|| bad("a tcp address needs a port (tcp://host:port)"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bad("the port must be a number between 1 and 65535"))?;
            if host.is_empty() || port == 0 {
                return Err(bad("a tcp address needs a host and a non-zero port"));
            }
            Endpoint::Tcp {
                host: host.to_string(),
                port,
            }
        } else {
            return Err(bad("unknown scheme"));
        };
        let worker = match query {
            None => None,
            Some(query) => Some(parse_worker(query).ok_or_else(|| {
                bad("the only query parameter is worker=N (relative) or worker=!PID")
            })?),
        };
        Ok(Self { endpoint, worker })
    }

    /// Host and port in the form `TcpStream::connect` accepts (brackets removed from IPv6).
    pub(crate) fn tcp_target(host: &str, port: u16) -> String {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        }
    }
}

fn parse_worker(query: &str) -> Option<WorkerTarget> {
    let value = query.strip_prefix("worker=")?;
    match value.strip_prefix('!') {
        Some(pid) => pid.parse().ok().filter(|&p| p > 0).map(WorkerTarget::Pid),
        None => value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(WorkerTarget::Relative),
    }
}

impl fmt::Display for HaproxyAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display())?,
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}")?,
        }
        if let Some(worker) = self.worker {
            write!(f, "?worker={worker}")?;
        }
        Ok(())
    }
}

impl FromStr for HaproxyAddr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for HaproxyAddr {
    type Error = AddrError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<HaproxyAddr> for String {
    fn from(addr: HaproxyAddr) -> Self {
        addr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms_round_trip_through_display() {
        for url in [
            "unix:///run/haproxy/admin.sock",
            "tcp://127.0.0.1:9999",
            "tcp://[::1]:9999",
            "tcp://localhost:80",
            "unix:///tmp/master.sock?worker=1",
            "unix:///tmp/master.sock?worker=!1234",
        ] {
            let addr = HaproxyAddr::parse(url).expect(url);
            assert_eq!(addr.to_string(), url);
        }
    }

    #[test]
    fn worker_targets_render_master_prefixes() {
        let rel = HaproxyAddr::parse("unix:///m.sock?worker=1").unwrap();
        assert_eq!(rel.worker.unwrap().command_prefix(), "@1 ");
        let pid = HaproxyAddr::parse("unix:///m.sock?worker=!1234").unwrap();
        assert_eq!(pid.worker.unwrap().command_prefix(), "@!1234 ");
    }

    #[test]
    fn bad_urls_name_the_url_and_the_accepted_forms() {
        for url in [
            "",
            "/run/haproxy.sock",
            "http://x:1",
            "unix://relative.sock",
            "tcp://host",
            "tcp://host:0",
            "tcp://host:99999",
            "tcp://:80",
            "unix:///m.sock?worker=0",
            "unix:///m.sock?worker=!x",
            "unix:///m.sock?foo=1",
        ] {
            let err = HaproxyAddr::parse(url).unwrap_err().to_string();
            assert!(err.contains(&format!("`{url}`")), "{err}");
            assert!(err.contains("unix:///"), "{err}");
            assert!(err.contains("tcp://"), "{err}");
        }
    }

    #[test]
    fn serde_uses_the_url_string() {
        let addr = HaproxyAddr::parse("unix:///run/haproxy/admin.sock").unwrap();
        let json = serde_json::to_string(&addr).unwrap();
        assert_eq!(json, "\"unix:///run/haproxy/admin.sock\"");
        assert_eq!(serde_json::from_str::<HaproxyAddr>(&json).unwrap(), addr);
        assert!(serde_json::from_str::<HaproxyAddr>("\"http://x\"").is_err());
    }

    #[test]
    fn tcp_targets_strip_ipv6_brackets_for_connect() {
        assert_eq!(HaproxyAddr::tcp_target("[::1]", 80), "[::1]:80");
        assert_eq!(HaproxyAddr::tcp_target("127.0.0.1", 80), "127.0.0.1:80");
    }
}
