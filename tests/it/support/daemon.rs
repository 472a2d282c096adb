//! `haproxy-drain run` as a child process with its own temp dir (state file, control socket,
//! log), killed on drop. Restartable with the same state file, to test crash recovery.

#![allow(dead_code)] // each test uses a different part of the fixture

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::haproxy::free_loopback_port;
use super::wait::wait_until;

pub struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Wait for /readyz (every HAProxy connected) on start, else only for /healthz.
    wait_ready: bool,
    pub metrics: SocketAddr,
}

impl Daemon {
    /// Starts `haproxy-drain run --haproxy <each url>` plus `extra` flags; waits for /readyz.
    pub async fn start(haproxy_urls: &[String], extra: &[String]) -> Self {
        Self::start_with_env(haproxy_urls, extra, &[]).await
    }

    /// Like [`Daemon::start`], with extra environment (e.g. `DOCKER_HOST` through a proxy).
    pub async fn start_with_env(
        haproxy_urls: &[String],
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_full(haproxy_urls, extra, env, true).await
    }

    /// Like [`Daemon::start_with_env`]; with `wait_ready` false it waits only for /healthz, for
    /// daemons that cannot become ready (a HAProxy that never answers properly).
    pub async fn start_full(
        haproxy_urls: &[String],
        extra: &[String],
        env: &[(&str, &str)],
        wait_ready: bool,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hdt-daemon-")
            .tempdir()
            .expect("temp dir for the daemon");
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_loopback_port())
            .parse()
            .expect("metrics address");
        let mut args = vec![
            "run".to_string(),
            format!("--state-file={}", dir.path().join("state.json").display()),
            format!(
                "--control-socket={}",
                dir.path().join("control.sock").display()
            ),
            format!("--metrics-listen={metrics}"),
        ];
        args.extend(haproxy_urls.iter().map(|u| format!("--haproxy={u}")));
        args.extend(extra.iter().cloned());
        let mut daemon = Self {
            child: None,
            dir,
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wait_ready,
            metrics,
        };
        daemon.spawn().await;
        daemon
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("daemon log file");
        let child = Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .args(&self.args)
            .env("HAPROXY_DRAIN_LOG", "info,haproxy_drain=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start haproxy-drain run");
        self.child = Some(child);
        let metrics = self.metrics;
        let log = self.log_path();
        let endpoint = if self.wait_ready {
            "/readyz"
        } else {
            "/healthz"
        };
        wait_until(
            Duration::from_secs(20),
            &format!("haproxy-drain {endpoint} to answer 200"),
            || {
                let log = log.clone();
                async move {
                    let ready = http_status(metrics, endpoint).await == Some(200);
                    if !ready
                        && std::fs::read_to_string(&log)
                            .is_ok_and(|l| l.contains("haproxy-drain: "))
                    {
                        panic!(
                            "haproxy-drain failed to start: {}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                    ready
                }
            },
        )
        .await;
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// (current, peak) resident set size in KiB, from /proc (VmRSS, VmHWM).
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILL: no clean-up of any kind, like a crash or an OOM kill.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again with the same flags and state file.
    pub async fn restart(&mut self) {
        self.kill_hard();
        self.spawn().await;
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().ok().and_then(|s| s.code())
    }

    /// A control API client on this daemon's socket.
    pub fn client(&self) -> haproxy_drain::api::ControlClient {
        haproxy_drain::api::ControlClient::unix(self.control_socket())
    }

    /// Runs the CLI against this daemon's socket (blocking: call it off the async runtime).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
            .args(args)
            .env("HAPROXY_DRAIN_CONTROL_SOCKET", self.control_socket())
            .output()
            .expect("haproxy-drain CLI runs")
    }

    pub async fn metrics_text(&self) -> String {
        http_body(self.metrics, "/metrics")
            .await
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_hard();
        if std::thread::panicking() {
            eprintln!("---- haproxy-drain log ----\n{}", self.log());
        }
    }
}

async fn http_body(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut reply))
        .await
        .ok()?
        .ok()?;
    Some(reply)
}

async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let reply = http_body(addr, path).await?;
    reply.split_whitespace().nth(1)?.parse().ok()
}
