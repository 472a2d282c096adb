//! Fixtures for the Docker gate tests: a temp dir for the gate socket, the docker CLI pointed at
//! the gate or at the engine, raw HTTP on the gate socket, a tiny shell image, metric values.

#![allow(dead_code)] // each test uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::support::docker::docker;

/// A FROM scratch image holding dash (as /bin/sh), cat, echo, sleep and the libc they need:
/// enough for `exec -it`, `attach` and `run -it` (testapp has no shell).
pub const SHELL_IMAGE: &str = "haproxy-drain-testshell:1";

/// Where the gate listens, in a temp dir of its own (removed on drop).
pub struct GateSocket {
    dir: tempfile::TempDir,
}

impl GateSocket {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("hdt-gate-")
                .tempdir()
                .expect("temp dir for the gate socket"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.path().display())
    }

    /// The `haproxy-drain run` flag that serves the gate here.
    pub fn flag(&self) -> String {
        format!("--docker-gate={}", self.path().display())
    }

    /// `docker <args>` through the gate (blocking).
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_at(&self.host(), args)
    }
}

/// `docker <args>` with `DOCKER_HOST=host` (the gate's or the engine's).
pub fn docker_at(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// The engine itself, as the fixtures and the daemon reach it.
pub fn engine_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", text(output));
}

/// Builds [`SHELL_IMAGE`] straight at the engine once per process (when missing).
pub fn ensure_shell_image() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    if docker(&["image", "inspect", "--format", "{{.Id}}", SHELL_IMAGE]).is_err() {
        let context = shell_context();
        let output = docker_at(
            &engine_host(),
            &[
                "build",
                "-q",
                "-t",
                SHELL_IMAGE,
                &context.path().display().to_string(),
            ],
        );
        assert_ok(&output, "building the shell image");
    }
    *done = true;
}

/// A build context: /bin/sh (dash), cat, echo, sleep, their libc and loader, a Dockerfile.
pub fn shell_context() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hdt-shell-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    let copy = |from: &str, to: &str| {
        let target = root.join(to);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(from, &target).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    };
    copy("/bin/dash", "bin/sh");
    for tool in ["cat", "echo", "sleep"] {
        copy(&format!("/bin/{tool}"), &format!("bin/{tool}"));
    }
    copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libc.so.6",
    );
    // Copied through the symlink: the image gets the loader itself.
    copy("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2");
    std::fs::write(
        root.join("Dockerfile"),
        "FROM scratch\nCOPY . /\nLABEL hdt.test=1\nCMD [\"/bin/sh\"]\n",
    )
    .expect("Dockerfile");
    dir
}

/// Writes `request` on a new connection to `socket` and reads until the peer closes or `limit`
/// passes; returns what arrived.
pub async fn raw(socket: &Path, request: &[u8], limit: Duration) -> String {
    let mut stream = UnixStream::connect(socket)
        .await
        .expect("connect to the gate");
    stream.write_all(request).await.expect("write the request");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

/// `GET path` with `Connection: close` on the gate socket: (status, body).
pub async fn get(socket: &Path, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    let reply = raw(socket, request.as_bytes(), Duration::from_secs(20)).await;
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample in a Prometheus text page (0 when absent).
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `haproxy_drain_gate_requests_total{kind=…,result=…}`.
pub fn gate_count(metrics: &str, kind: &str, result: &str) -> f64 {
    sample(
        metrics,
        &format!("haproxy_drain_gate_requests_total{{kind=\"{kind}\",result=\"{result}\"}}"),
    )
}
