//! haproxy-drain as it is deployed: a container from the `make image` image, not a child process.
//!
//! A [`Host`] is one Docker host in miniature: app containers on a network of their own, a real
//! HAProxy (on this machine, as with Debian's haproxy.service) whose admin socket lives in a
//! directory of its own (mode 0750, group [`SOCKET_GID`]; socket mode 660, same group), and the
//! sidecar container with the Docker socket mounted, that socket *directory* mounted (HAProxy
//! replaces the file on reload), its state on a named volume, running as the image's non-root
//! user with both sockets' groups added. Its HAProxy settings are haproxy/haproxy.cfg's (no
//! `retry-on`, `option redispatch`, `fastinter`, `slowstart`) with shorter timers.

#![allow(dead_code)] // each packaging test uses a different part

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, Client, HaproxyAddr, OpState, ServerId, ServerState};

use crate::support::docker::{
    docker, docker_ok, ensure_test_images, unique_name, ContainerSpec, TestContainer, TestNetwork,
    APP_PORT,
};
use crate::support::haproxy::{free_loopback_port, HaproxyConfig, HaproxyFixture};
use crate::support::wait::{wait_server, wait_until};

/// The image `make image` (docker/build-image.sh) builds.
pub const IMAGE: &str = "haproxy-drain:latest";
/// The group HAProxy's admin socket (and its directory) belong to; the sidecar gets it with
/// `--group-add`. No group of that id needs to exist: both sides use the number.
pub const SOCKET_GID: u32 = 60123;
/// The user the image runs as.
pub const IMAGE_USER: &str = "65532:65532";
/// Not 1 nor 100, so "back at its original weight" means something.
pub const WEIGHT: u32 = 37;
/// The apps keep accepting this long after SIGTERM (testapp's lame duck). Docker signals the app
/// and reports the `kill` event at the same moment; a request HAProxy sends in the few ms before
/// the drain reaches it must still find a listener. With `haproxy-drain roll` (drain first, then
/// stop) no such delay is needed.
pub const STOP_DELAY_MS: &str = "300";

/// Runs docker/build-image.sh once per test process (it rebuilds only what changed). When it
/// fails but the image exists, the tests go on with a warning, like the test-app images.
pub fn ensure_image() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|poison| poison.into_inner());
    if *done {
        return;
    }
    ensure_test_images();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/build-image.sh");
    let output = Command::new(script)
        .output()
        .expect("run docker/build-image.sh");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).is_ok(),
            "{script} failed and {IMAGE} does not exist: {stderr}"
        );
        eprintln!("warning: {script} failed ({stderr}); using the existing {IMAGE}");
    }
    *done = true;
}

/// The group of the Docker socket, which the non-root sidecar must be in.
pub fn docker_socket_gid() -> u32 {
    std::fs::metadata("/var/run/docker.sock")
        .expect("the Docker socket /var/run/docker.sock")
        .gid()
}

/// A directory for HAProxy's admin socket: root:SOCKET_GID, mode 0750.
pub struct SocketDir {
    dir: tempfile::TempDir,
}

impl SocketDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hdt-sockdir-")
            .tempdir()
            .expect("temp dir for the HAProxy socket");
        let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
            .expect("a path without NUL");
        // SAFETY: a valid C string; uid -1 keeps the owner.
        let rc = unsafe { libc::chown(path.as_ptr(), u32::MAX, SOCKET_GID) };
        assert_eq!(rc, 0, "chown {:?}", dir.path());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750))
            .expect("chmod the socket dir");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.path().join("admin.sock")
    }

    /// The `global` line: like haproxy/haproxy.cfg's, with a numeric group.
    pub fn stats_socket_line(&self) -> String {
        format!(
            "stats socket {} mode 660 level admin gid {SOCKET_GID} expose-fd listeners",
            self.admin_socket().display()
        )
    }
}

/// The haproxy-drain container: removed (with its state volume) on drop.
pub struct Sidecar {
    pub name: String,
    pub volume: String,
    pub metrics: SocketAddr,
}

impl Sidecar {
    /// `docker run -d` of the image against the HAProxy socket in `socket_dir`, host network
    /// (the health gate reaches the containers' addresses; metrics on a free loopback port).
    pub async fn start(socket_dir: &Path) -> Self {
        ensure_image();
        let name = unique_name("sidecar");
        let volume = format!("{name}-state");
        let [test, pid] = [
            "hdt.test=1".to_string(),
            format!("hdt.pid={}", std::process::id()),
        ];
        docker_ok(&[
            "volume", "create", "--label", &test, "--label", &pid, &volume,
        ]);
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_loopback_port())
            .parse()
            .expect("metrics address");
        let args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--label".into(),
            test,
            "--label".into(),
            pid,
            "--network".into(),
            "host".into(),
            "--group-add".into(),
            docker_socket_gid().to_string(),
            "--group-add".into(),
            SOCKET_GID.to_string(),
            "-v".into(),
            "/var/run/docker.sock:/var/run/docker.sock".into(),
            "-v".into(),
            format!("{}:/var/run/haproxy", socket_dir.display()),
            "-v".into(),
            format!("{volume}:/var/lib/haproxy-drain"),
            "-e".into(),
            format!("HAPROXY_DRAIN_METRICS_LISTEN={metrics}"),
            "-e".into(),
            "HAPROXY_DRAIN_LOG=info,haproxy_drain=debug".into(),
            IMAGE.into(),
            "run".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sidecar = Self {
            name,
            volume,
            metrics,
        };
        docker_ok(&args);
        sidecar.wait_ready().await;
        sidecar
    }

    /// Until `/readyz` answers 200 (Docker and every HAProxy reached).
    pub async fn wait_ready(&self) {
        let metrics = self.metrics;
        let name = self.name.clone();
        wait_until(
            Duration::from_secs(30),
            "the haproxy-drain container's /readyz to answer 200",
            || {
                let name = name.clone();
                async move {
                    if inspect(&name, "{{.State.Status}}") == "exited" {
                        panic!("the sidecar exited: {}", logs(&name));
                    }
                    http_get(metrics, "/readyz").await.is_some_and(|r| {
                        r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200")
                    })
                }
            },
        )
        .await;
    }

    /// Until Docker reports the image's HEALTHCHECK (`haproxy-drain healthcheck`) healthy.
    pub async fn wait_healthy(&self) {
        let name = self.name.clone();
        wait_until(
            Duration::from_secs(30),
            "the haproxy-drain container to be healthy",
            || {
                let name = name.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        inspect(&name, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
                            == "healthy"
                    })
                    .await
                    .unwrap_or(false)
                }
            },
        )
        .await;
    }

    /// `docker exec <sidecar> /haproxy-drain <args>` (blocking: call it off the runtime).
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["exec", &self.name, "/haproxy-drain"])
            .args(args)
            .output()
            .expect("docker exec runs")
    }

    /// `docker restart` (SIGTERM, then start again with the same volume).
    pub fn restart(&self) {
        docker_ok(&["restart", "-t", "10", &self.name]);
    }

    pub fn inspect(&self, format: &str) -> String {
        inspect(&self.name, format)
    }

    pub fn logs(&self) -> String {
        logs(&self.name)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} logs ----\n{}", self.name, self.logs());
        }
        let _ = docker(&["rm", "-f", "-v", &self.name]);
        if let Err(err) = docker(&["volume", "rm", &self.volume]) {
            eprintln!("warning: volume {} not removed: {err}", self.volume);
        }
    }
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, name]).unwrap_or_else(|err| err)
}

fn logs(name: &str) -> String {
    Command::new("docker")
        .args(["logs", "--tail", "200", name])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// One `GET` with HTTP/1.0; the whole reply.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut reply))
        .await
        .ok()?
        .ok()?;
    Some(reply)
}

/// One host: apps, HAProxy, the sidecar container. Dropped sidecar first, then HAProxy, then
/// the containers (by name too: a roll recreates them under the same name), then the network.
pub struct Host {
    pub sidecar: Sidecar,
    /// `None` only inside [`Host::restart_haproxy`].
    haproxy: Option<HaproxyFixture>,
    haproxy_config: HaproxyConfig,
    pub socket_dir: SocketDir,
    pub apps: Vec<TestContainer>,
    pub network: TestNetwork,
    pub backend: String,
    pub frontend: SocketAddr,
}

impl Drop for Host {
    fn drop(&mut self) {
        for app in &self.apps {
            let _ = docker(&["rm", "-f", "-v", app.name()]);
        }
    }
}

impl Host {
    /// `apps` containers of `image` (graceful on SIGTERM), servers app1…, weight [`WEIGHT`].
    pub async fn start(apps: usize, image: &str) -> Self {
        ensure_image();
        let backend = unique_name("be").replace('-', "_");
        let image = image.to_string();
        let label_backend = backend.clone();
        let (network, apps) = tokio::task::spawn_blocking(move || {
            let network = TestNetwork::create();
            let apps: Vec<TestContainer> = (1..=apps)
                .map(|n| {
                    ContainerSpec::new(&format!("app{n}"))
                        .image(&image)
                        .network(&network)
                        .label("haproxy-drain.backend", &label_backend)
                        .label("haproxy-drain.server", &format!("app{n}"))
                        .label("haproxy-drain.port", &APP_PORT.to_string())
                        .env("ON_SIGTERM", "graceful")
                        .env("STOP_DELAY_MS", STOP_DELAY_MS)
                        .run()
                })
                .collect();
            (network, apps)
        })
        .await
        .expect("start the app containers");
        let port = free_loopback_port();
        // haproxy/haproxy.cfg's backend and defaults, with test-sized timers.
        let mut sections = format!(
            "frontend fe_{backend}\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n\
             backend {backend}\n    balance roundrobin\n    retries 3\n    option redispatch 1\n\
             \x20   timeout connect 500ms\n    option httpchk GET /health\n\
             \x20   http-check expect status 200\n\
             \x20   default-server check inter 500ms fastinter 100ms downinter 500ms fall 2 rise 2 \
             slowstart 1s weight {WEIGHT}\n"
        );
        for (n, app) in apps.iter().enumerate() {
            let ip = app.ip().expect("a running app container has an address");
            sections.push_str(&format!("    server app{} {ip}:{APP_PORT}\n", n + 1));
        }
        let socket_dir = SocketDir::new();
        let haproxy_config = HaproxyConfig::new(sections)
            .global(socket_dir.stats_socket_line())
            .global("log stderr format short local0 info")
            .defaults("log global")
            .defaults("option httplog");
        let haproxy = HaproxyFixture::start_with(haproxy_config.clone()).await;
        let sidecar = Sidecar::start(socket_dir.path()).await;
        let host = Self {
            sidecar,
            haproxy: Some(haproxy),
            haproxy_config,
            socket_dir,
            apps,
            network,
            backend,
            frontend: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        for i in 1..=host.apps.len() {
            host.wait_in_rotation(i).await;
        }
        host
    }

    pub fn server(&self, i: usize) -> ServerId {
        ServerId::new(self.backend.clone(), format!("app{i}"))
    }

    /// A client on the socket the sidecar uses (the test runs as root).
    pub fn client(&self) -> Client {
        Client::new(HaproxyAddr::unix(self.socket_dir.admin_socket()))
    }

    pub fn haproxy(&mut self) -> &mut HaproxyFixture {
        self.haproxy.as_mut().expect("HAProxy runs")
    }

    /// Stops HAProxy and starts a new one with the same config (frontend, socket path): unlike
    /// a reload, which hands the listeners over, a new process creates a new socket file.
    pub async fn restart_haproxy(&mut self) {
        drop(self.haproxy.take());
        self.haproxy = Some(HaproxyFixture::start_with(self.haproxy_config.clone()).await);
    }

    /// HAProxy's log lines for requests that did not end in 200.
    pub fn failed_requests_log(&self) -> String {
        self.haproxy
            .as_ref()
            .map(|h| h.stderr())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" HTTP/1.1\"") && !l.contains(" 200 "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn app_name(&self, i: usize) -> String {
        self.apps[i - 1].name().to_string()
    }

    pub async fn wait_state(
        &self,
        i: usize,
        what: &str,
        check: impl Fn(&ServerState) -> bool,
    ) -> ServerState {
        wait_server(
            &self.client(),
            &self.server(i),
            Duration::from_secs(30),
            what,
            check,
        )
        .await
    }

    /// Ready, running, at its original weight.
    pub async fn wait_in_rotation(&self, i: usize) -> ServerState {
        self.wait_state(i, "in rotation at its original weight", |s| {
            s.admin.as_admin_state() == AdminState::Ready
                && s.op_state == OpState::Running
                && s.weight == WEIGHT
        })
        .await
    }
}
