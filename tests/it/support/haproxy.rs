//! A real HAProxy in a temp dir, for tests and benches.
//!
//! The config comes from a template: admin/operator/user unix sockets, a TCP admin socket on a
//! free loopback port, master-worker mode with a master CLI socket, `stats timeout 2m`; the caller
//! supplies the proxy sections (and optionally extra `global`/`defaults` lines). HAProxy runs in
//! its own process group, killed on drop (also when the test panics).
//!
//! Self-contained on purpose: benches include this file with `#[path]`.

#![allow(dead_code)] // each test (and the bench) uses a different part of the fixture

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::{Client, HaproxyAddr, Info, WorkerTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const READY_DEADLINE: Duration = Duration::from_secs(15);

/// What to put into the generated config besides the fixed sockets. `{dir}` anywhere in these
/// lines becomes the fixture's temp dir (e.g. `server-state-file {dir}/state`).
#[derive(Debug, Clone, Default)]
pub struct HaproxyConfig {
    /// Backend/frontend/listen sections, verbatim.
    pub sections: String,
    /// Extra lines for `global` (e.g. `server-state-file /path`).
    pub extra_global: Vec<String>,
    /// Extra lines for `defaults` (e.g. `load-server-state-from-file global`).
    pub extra_defaults: Vec<String>,
}

impl HaproxyConfig {
    pub fn new(sections: impl Into<String>) -> Self {
        Self {
            sections: sections.into(),
            ..Self::default()
        }
    }

    pub fn global(mut self, line: impl Into<String>) -> Self {
        self.extra_global.push(line.into());
        self
    }

    pub fn defaults(mut self, line: impl Into<String>) -> Self {
        self.extra_defaults.push(line.into());
        self
    }
}

/// A running `haproxy -W -S master.sock -f haproxy.cfg`.
pub struct HaproxyFixture {
    dir: tempfile::TempDir,
    child: Child,
    tcp_port: u16,
    config: HaproxyConfig,
}

impl HaproxyFixture {
    /// Starts HAProxy with these proxy sections and waits until the admin socket answers.
    pub async fn start(sections: &str) -> Self {
        Self::start_with(HaproxyConfig::new(sections)).await
    }

    pub async fn start_with(config: HaproxyConfig) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hdt-haproxy-")
            .tempdir()
            .expect("create temp dir for haproxy");
        let tcp_port = free_loopback_port();
        let fixture_config = config;
        std::fs::write(
            dir.path().join("haproxy.cfg"),
            render_config(dir.path(), tcp_port, &fixture_config),
        )
        .expect("write haproxy.cfg");
        let stderr = std::fs::File::create(dir.path().join("haproxy.stderr")).expect("stderr file");
        let child = Command::new(haproxy_binary())
            .arg("-W")
            .arg("-S")
            .arg(dir.path().join("master.sock"))
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("spawn haproxy (is it installed? apt-get install haproxy)");
        let mut fixture = Self {
            dir,
            child,
            tcp_port,
            config: fixture_config,
        };
        fixture.wait_ready(None).await;
        fixture
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("haproxy.cfg")
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.dir().join("admin.sock")
    }

    pub fn master_socket(&self) -> PathBuf {
        self.dir().join("master.sock")
    }

    pub fn admin_url(&self) -> HaproxyAddr {
        HaproxyAddr::unix(self.admin_socket())
    }

    pub fn operator_url(&self) -> HaproxyAddr {
        HaproxyAddr::unix(self.dir().join("operator.sock"))
    }

    pub fn user_url(&self) -> HaproxyAddr {
        HaproxyAddr::unix(self.dir().join("user.sock"))
    }

    pub fn tcp_url(&self) -> HaproxyAddr {
        HaproxyAddr::tcp("127.0.0.1", self.tcp_port)
    }

    /// The master CLI itself (commands run in the master: `show proc`, `reload`).
    pub fn master_url(&self) -> HaproxyAddr {
        HaproxyAddr::unix(self.master_socket())
    }

    /// The master CLI forwarding to the current worker (`@1`).
    pub fn master_worker_url(&self) -> HaproxyAddr {
        self.master_url().with_worker(WorkerTarget::Relative(1))
    }

    pub fn admin_client(&self) -> Client {
        Client::new(self.admin_url())
    }

    pub fn master_pid(&self) -> u32 {
        self.child.id()
    }

    /// HAProxy's stderr so far (alerts, warnings), for assertion messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir().join("haproxy.stderr")).unwrap_or_default()
    }

    /// Replaces the proxy sections in the config file (takes effect on the next reload).
    pub fn rewrite_sections(&mut self, sections: &str) {
        self.config.sections = sections.to_string();
        std::fs::write(
            self.config_path(),
            render_config(self.dir(), self.tcp_port, &self.config),
        )
        .expect("rewrite haproxy.cfg");
    }

    /// Reloads through the master CLI and waits until a new worker answers on the admin socket.
    /// Returns the new worker's `show info`.
    pub async fn reload(&mut self) -> Info {
        let old = self
            .admin_client()
            .show_info()
            .await
            .expect("show info before reload");
        Client::new(self.master_url())
            .reload()
            .await
            .expect("reload on the master CLI");
        self.wait_ready(Some(old.pid)).await
    }

    /// Polls `show info` on the admin socket until it answers (from a pid other than `old_pid`).
    async fn wait_ready(&mut self, old_pid: Option<u32>) -> Info {
        let client = self.admin_client().with_timeout(Duration::from_secs(1));
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("haproxy exited with {status}: {}", self.stderr());
            }
            // The master starts listening on its CLI socket a little after the worker is up.
            let master_up = Client::new(self.master_url())
                .raw("show proc")
                .await
                .is_ok();
            match client.show_info().await {
                Ok(info) if master_up && Some(info.pid) != old_pid && !info.stopping => {
                    return info
                }
                _ if Instant::now() > deadline => {
                    panic!(
                        "haproxy not ready after {READY_DEADLINE:?}: {}",
                        self.stderr()
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Drop for HaproxyFixture {
    fn drop(&mut self) {
        // The master was started as a process group leader: this kills it and every worker.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("haproxy"))
            .find(|candidate| candidate.is_file())
    });
    in_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"))
}

/// A loopback port that was free a moment ago (bound, then released for HAProxy to take).
///
/// Ports come from below the kernel's ephemeral range (32768 and up here) and are never handed
/// out twice by this process: a port released by `bind(0)` can be handed to the next `bind(0)`
/// before its intended owner (a container that is still starting) takes it, which once made a
/// sidecar's metrics listener and another test's HAProxy frontend collide.
pub fn free_loopback_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = 20_000 + (std::process::id() % 1_000) * 12;
    for _ in 0..12_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(20_000 + (start - 20_000 + offset) % 12_000)
            .expect("ports 20000..32000 fit u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000")
}

fn render_config(dir: &Path, tcp_port: u16, config: &HaproxyConfig) -> String {
    let dir = dir.display();
    let indent = |lines: &[String]| {
        lines
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "global\n\
         \x20   stats socket {dir}/admin.sock mode 600 level admin expose-fd listeners\n\
         \x20   stats socket {dir}/operator.sock mode 600 level operator\n\
         \x20   stats socket {dir}/user.sock mode 600 level user\n\
         \x20   stats socket ipv4@127.0.0.1:{tcp_port} level admin\n\
         \x20   stats timeout 2m\n\
         {}\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 10s\n\
         \x20   timeout server 10s\n\
         {}\n\
         {}\n",
        indent(&config.extra_global),
        indent(&config.extra_defaults),
        config.sections,
    )
    .replace("{dir}", &dir.to_string())
}

/// A loopback HTTP server answering `200 ok` to every request; stops on drop.
pub struct HttpBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `count` loopback HTTP listeners on port 0.
pub async fn start_http_backends(count: usize) -> Vec<HttpBackend> {
    let mut backends = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind http backend");
        let addr = listener.local_addr().expect("http backend address");
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        backends.push(HttpBackend { addr, task });
    }
    backends
}
