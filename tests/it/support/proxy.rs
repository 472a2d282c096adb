//! A Docker socket proxy the test controls: a temp unix socket forwarding every connection to the
//! real engine socket. [`SocketProxy::cut_all`] closes every live connection (an `/events` stream
//! breaks mid-stream, like a daemon restart) while new connections keep working;
//! [`SocketProxy::pause`] makes new connections fail until [`SocketProxy::resume`].

#![allow(dead_code)] // each test uses a different part of the fixture

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::{AbortHandle, JoinHandle};

pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

#[derive(Default)]
struct State {
    live: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    paused: AtomicBool,
}

impl State {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

pub struct SocketProxy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    state: Arc<State>,
    accept_task: JoinHandle<()>,
}

impl SocketProxy {
    /// A proxy in front of /var/run/docker.sock. Must be called inside a tokio runtime.
    pub fn start() -> Self {
        Self::start_to(Path::new(DOCKER_SOCKET))
    }

    pub fn start_to(upstream: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the proxy socket");
        let path = dir.path().join("docker-proxy.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let state = Arc::new(State::default());
        let accept_task =
            tokio::spawn(accept_loop(listener, upstream.to_path_buf(), state.clone()));
        Self {
            _dir: dir,
            path,
            state,
            accept_task,
        }
    }

    /// `unix:///…/docker-proxy.sock`, for `DockerClient::connect_to`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every live connection, both ways; returns how many were cut.
    pub fn cut_all(&self) -> usize {
        let cut: Vec<AbortHandle> = self.state.live().drain().map(|(_, task)| task).collect();
        for task in &cut {
            task.abort();
        }
        cut.len()
    }

    /// New connections are accepted and closed at once (the client sees EOF/reset).
    pub fn pause(&self) {
        self.state.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.state.paused.store(false, Ordering::SeqCst);
    }

    pub fn live_connections(&self) -> usize {
        self.state.live().len()
    }

    /// Connections forwarded since start.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the proxy was paused.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut_all();
    }
}

async fn accept_loop(listener: UnixListener, upstream: PathBuf, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if state.paused.load(Ordering::SeqCst) {
            state.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        state.accepted.fetch_add(1, Ordering::SeqCst);
        let id = state.next_id.fetch_add(1, Ordering::SeqCst);
        let upstream = upstream.clone();
        let task_state = state.clone();
        // The entry is inserted under the same lock the task takes to remove itself, so a
        // connection that ends at once cannot leave a stale entry behind.
        let mut live = state.live();
        let task = tokio::spawn(async move {
            forward(client, &upstream).await;
            task_state.live().remove(&id);
        });
        live.insert(id, task.abort_handle());
        drop(live);
    }
}

async fn forward(mut client: UnixStream, upstream: &Path) {
    let Ok(mut server) = UnixStream::connect(upstream).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// A socket file nobody listens on (connects are refused), and its `unix://` URL. Keep the
/// directory alive as long as the socket is needed.
pub fn refusing_socket() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir for a dead socket");
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a socket to leave behind"));
    let url = format!("unix://{}", path.display());
    (dir, url)
}
