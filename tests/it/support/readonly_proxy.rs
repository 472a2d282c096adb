//! A read-only Docker API proxy, like Tecnativa's docker-socket-proxy with `CONTAINERS=1
//! EVENTS=1 POST=0`: only `GET` of `/_ping`, `/version`, `/events`, `/containers/json` and
//! `/containers/{id}/json` (with or without a `/v1.NN` prefix) reach the engine; anything else
//! gets `403` and a JSON `message`, and is recorded so a test can assert what was asked for.
//!
//! One request per connection: the request is forwarded with `Connection: close` and nothing
//! else the client sends on that connection is forwarded, so a keep-alive client cannot slip a
//! second, unchecked request past the filter.

#![allow(dead_code)] // each test uses a different part of the fixture

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::proxy::DOCKER_SOCKET;

/// Longer request heads are refused (the engine's own limit is far above what a client sends).
const MAX_HEAD: usize = 16 * 1024;
pub const DENIED_MESSAGE: &str = "Request forbidden by administrative rules (read-only proxy)";

#[derive(Default)]
struct Log {
    allowed: Vec<String>,
    denied: Vec<String>,
}

pub struct ReadOnlyProxy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    log: Arc<Mutex<Log>>,
    accept_task: JoinHandle<()>,
}

impl ReadOnlyProxy {
    /// In front of /var/run/docker.sock. Must be called inside a tokio runtime.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the read-only proxy");
        let path = dir.path().join("docker-ro.sock");
        let listener = UnixListener::bind(&path).expect("bind the read-only proxy socket");
        let log = Arc::new(Mutex::new(Log::default()));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            PathBuf::from(DOCKER_SOCKET),
            log.clone(),
        ));
        Self {
            _dir: dir,
            path,
            log,
            accept_task,
        }
    }

    /// `unix:///…/docker-ro.sock`, for `DOCKER_HOST`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `METHOD /path` of every refused request, in order.
    pub fn denied(&self) -> Vec<String> {
        self.lock().denied.clone()
    }

    /// `METHOD /path` of every forwarded request, in order.
    pub fn allowed(&self) -> Vec<String> {
        self.lock().allowed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ReadOnlyProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// The filter itself: `GET` of the five read-only endpoints.
pub fn is_allowed(method: &str, target: &str) -> bool {
    if method != "GET" {
        return false;
    }
    let path = target.split('?').next().unwrap_or_default();
    let path = strip_version(path);
    match path {
        "/_ping" | "/version" | "/events" | "/containers/json" => true,
        _ => path
            .strip_prefix("/containers/")
            .and_then(|rest| rest.strip_suffix("/json"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
    }
}

fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    let numeric = version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.to_string() + b).bytes().all(|c| c.is_ascii_digit())
    });
    if numeric {
        tail
    } else {
        path
    }
}

async fn accept_loop(listener: UnixListener, upstream: PathBuf, log: Arc<Mutex<Log>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve(client, upstream.clone(), log.clone()));
    }
}

async fn serve(mut client: UnixStream, upstream: PathBuf, log: Arc<Mutex<Log>>) {
    let Some((head, rest)) = read_head(&mut client).await else {
        return;
    };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let what = format!("{method} {target}");
    if !is_allowed(method, target) {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .denied
            .push(what);
        let body = format!("{{\"message\":\"{DENIED_MESSAGE}\"}}");
        let reply = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(reply.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .allowed
        .push(what);
    let Ok(mut server) = UnixStream::connect(&upstream).await else {
        return;
    };
    let mut forwarded = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if server.write_all(forwarded.as_bytes()).await.is_err() {
        return;
    }
    // A GET has no body; bytes already read past the head would be a pipelined request.
    drop(rest);
    let (mut from_server, _to_server) = server.split();
    let _ = tokio::io::copy(&mut from_server, &mut client).await;
    let _ = client.shutdown().await;
}

/// Reads up to the blank line that ends the request head.
async fn read_head(client: &mut UnixStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_five_read_endpoints_pass() {
        for ok in [
            "/_ping",
            "/v1.41/_ping",
            "/version",
            "/events?since=1&filters=%7B%7D",
            "/v1.24/events",
            "/containers/json?all=true",
            "/containers/abc123/json",
            "/v1.41/containers/web-1/json",
        ] {
            assert!(super::is_allowed("GET", ok), "{ok}");
        }
        for (method, denied) in [
            ("POST", "/containers/abc/stop"),
            ("POST", "/v1.41/containers/create"),
            ("GET", "/containers/abc/logs"),
            ("GET", "/containers/a/b/json"),
            ("GET", "/images/json"),
            ("DELETE", "/containers/abc"),
            ("HEAD", "/_ping"),
            ("GET", "/vx.y/_ping"),
            ("GET", "/containers//json"),
        ] {
            assert!(!super::is_allowed(method, denied), "{method} {denied}");
        }
    }
}
