//! The world the shutdown matrix and the fault campaign run in: labelled testapp containers
//! (`docker run`, and optionally one managed by docker-compose) on a fresh network, a real HAProxy
//! WITHOUT `retry-on` or `option redispatch` (a request sent to a server that stopped serving
//! fails visibly), `haproxy-drain run` with a config file of the test's choosing, a
//! [`RotationLog`] polling the backend and an [`EventLog`] of its containers' Docker events.
//!
//! Containers are addressed by name: `docker restart`, compose and `roll` keep the name but may
//! change the id. Everything is removed on drop, on panic too.
//!
//! Self-contained on purpose: benches include the support directory with `#[path]`.

#![allow(dead_code)] // the matrix and the campaign use different parts

use std::net::{IpAddr, SocketAddr};
use std::process::Output;
use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, Client, OpState, ServerId, ServerState};

use super::daemon::Daemon;
use super::docker::{
    docker, docker_ok, ensure_test_images, unique_name, ContainerSpec, TestContainer, TestNetwork,
    APP_PORT,
};
use super::haproxy::{free_loopback_port, HaproxyFixture};
use super::rotation::{EventLog, RotationLog};

/// Every server's weight in the config: not 1, so a hard-coded restore would show.
pub const WEIGHT: u32 = 37;
const IN_ROTATION_DEADLINE: Duration = Duration::from_secs(40);

#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// Containers started with `docker run` (servers app1…appN).
    pub apps: usize,
    /// One more, app{N+1}, created and recreated by docker-compose.
    pub compose_app: bool,
    pub image: &'static str,
    pub env: Vec<(String, String)>,
    /// `--stop-timeout` of every container (compose: `stop_grace_period`).
    pub stop_timeout: u32,
    /// The daemon's `--config` file (TOML).
    pub daemon_config: String,
    /// `DOCKER_HOST` for the daemon (a [`super::proxy::SocketProxy`] URL).
    pub docker_host: Option<String>,
    /// How often [`RotationLog`] polls HAProxy.
    pub poll_every: Duration,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            apps: 3,
            compose_app: false,
            image: super::docker::IMAGE_SIGTERM,
            env: Vec::new(),
            stop_timeout: 3,
            daemon_config: String::new(),
            docker_host: None,
            poll_every: Duration::from_millis(10),
        }
    }
}

/// One server's container.
pub struct App {
    pub server: String,
    pub name: String,
    pub spec: ContainerSpec,
    /// The `docker run` container (its drop removes it); `None` for the compose one.
    container: Option<TestContainer>,
    compose: Option<Compose>,
}

struct Compose {
    dir: tempfile::TempDir,
    project: String,
}

impl Compose {
    fn file(&self) -> String {
        self.dir
            .path()
            .join("docker-compose.yml")
            .display()
            .to_string()
    }
}

pub struct ShutdownWorld {
    // Declaration order is drop order: recorders and daemon first, containers before the network.
    pub rotation: RotationLog,
    pub events: EventLog,
    pub daemon: Daemon,
    pub haproxy: HaproxyFixture,
    pub apps: Vec<App>,
    pub network: TestNetwork,
    pub backend: String,
    pub frontend: SocketAddr,
    pub options: WorldOptions,
    _config: tempfile::NamedTempFile,
}

pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work did not panic")
}

impl ShutdownWorld {
    pub async fn start(options: WorldOptions) -> Self {
        let backend = unique_name("be").replace('-', "_");
        let events = EventLog::start(&backend);
        let (network, apps) = {
            let (options, backend) = (options.clone(), backend.clone());
            blocking(move || start_apps(&options, &backend)).await
        };
        let port = free_loopback_port();
        let mut sections = format!(
            "frontend fe_{backend}\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n\
             backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   default-server inter 500ms fall 2 rise 2 weight {WEIGHT}\n"
        );
        for app in &apps {
            let ip = container_ip(&app.name, &network.name).expect("a started app has an address");
            sections.push_str(&format!(
                "    server {} {ip}:{APP_PORT} check\n",
                app.server
            ));
        }
        let haproxy = HaproxyFixture::start(&sections).await;
        let config = tempfile::NamedTempFile::new().expect("daemon config file");
        std::fs::write(config.path(), &options.daemon_config).expect("write daemon config");
        let flags = vec![format!("--config={}", config.path().display())];
        let env: Vec<(&str, &str)> = options
            .docker_host
            .as_deref()
            .map(|host| ("DOCKER_HOST", host))
            .into_iter()
            .collect();
        let daemon = Daemon::start_with_env(&[haproxy.admin_url().to_string()], &flags, &env).await;
        let rotation = RotationLog::start(haproxy.admin_client(), &backend, options.poll_every);
        let world = Self {
            rotation,
            events,
            daemon,
            haproxy,
            apps,
            network,
            backend,
            frontend: SocketAddr::from(([127, 0, 0, 1], port)),
            options,
            _config: config,
        };
        for i in 0..world.apps.len() {
            world.wait_in_rotation(i).await;
        }
        world
    }

    pub fn client(&self) -> Client {
        self.haproxy.admin_client()
    }

    pub fn server_id(&self, i: usize) -> ServerId {
        ServerId::new(self.backend.clone(), self.apps[i].server.clone())
    }

    /// The container's address on the world's network now (`None` when it is not running).
    pub fn ip(&self, i: usize) -> Option<IpAddr> {
        container_ip(&self.apps[i].name, &self.network.name)
    }

    pub fn inspect(&self, i: usize, format: &str) -> String {
        docker(&["inspect", "--format", format, &self.apps[i].name]).unwrap_or_default()
    }

    pub async fn state(&self, i: usize) -> Option<ServerState> {
        super::wait::server_state(&self.client(), &self.server_id(i)).await
    }

    /// Back in rotation: READY, RUNNING, the original weight, the container's current address.
    pub async fn wait_in_rotation(&self, i: usize) -> ServerState {
        let (name, network) = (self.apps[i].name.clone(), self.network.name.clone());
        let client = self.client();
        let id = self.server_id(i);
        let what = format!("{id} back in rotation at weight {WEIGHT} on {name}'s address");
        super::wait::wait_for(IN_ROTATION_DEADLINE, &what, || {
            let (client, id, name, network) =
                (client.clone(), id.clone(), name.clone(), network.clone());
            async move {
                let state = super::wait::server_state(&client, &id).await?;
                let ip = blocking(move || container_ip(&name, &network)).await?;
                let ok = state.admin.as_admin_state() == AdminState::Ready
                    && state.weight == WEIGHT
                    && state.op_state == OpState::Running
                    && state.addr == ip.to_string();
                ok.then_some(state)
            }
        })
        .await
    }

    pub async fn wait_all_in_rotation(&self) {
        for i in 0..self.apps.len() {
            self.wait_in_rotation(i).await;
        }
    }

    /// `docker <args…> <container name>` off the runtime; panics on failure.
    pub async fn docker_on(&self, i: usize, args: &[&str]) -> String {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(self.apps[i].name.clone());
        blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker_ok(&args)
        })
        .await
    }

    /// `docker stop -t N` + `docker rm` + `docker run` under the same name and labels, onto a
    /// new address: a placeholder container holds the old one while the new container starts
    /// (Docker would hand the freed address straight back). Returns (old IP, new IP).
    pub async fn recreate_on_new_ip(&mut self, i: usize, stop_timeout: u32) -> (String, String) {
        let old_ip = self.ip(i).map(|ip| ip.to_string()).unwrap_or_default();
        let app = &mut self.apps[i];
        let spec = app.spec.clone();
        let network = self.network.name.clone();
        let image = self.options.image;
        let name = app.name.clone();
        let container = blocking(move || {
            docker_ok(&["stop", "-t", &stop_timeout.to_string(), &name]);
            docker_ok(&["rm", "-v", &name]);
            let placeholder = ContainerSpec::new("ipholder")
                .image(image)
                .arg("--network")
                .arg(&network)
                .run();
            let container = spec.run();
            drop(placeholder);
            container
        })
        .await;
        app.container = Some(container);
        let new_ip = self.ip(i).map(|ip| ip.to_string()).unwrap_or_default();
        (old_ip, new_ip)
    }

    /// `docker-compose up -d --force-recreate -t N` of the compose-managed app.
    pub async fn compose_recreate(&self, i: usize, stop_timeout: u32) -> Output {
        let compose = self.apps[i]
            .compose
            .as_ref()
            .expect("this app is managed by docker-compose");
        let (file, project) = (compose.file(), compose.project.clone());
        blocking(move || {
            compose_cmd(
                &file,
                &project,
                &[
                    "up",
                    "-d",
                    "--force-recreate",
                    "-t",
                    &stop_timeout.to_string(),
                ],
            )
        })
        .await
    }

    /// `haproxy-drain roll <name> --image <image>` through the daemon's control socket.
    pub async fn roll(&self, names: &[String], image: &str, timeout: &str) -> Output {
        let mut args: Vec<String> = vec!["roll".into()];
        args.extend(names.iter().cloned());
        args.extend([
            "--image".into(),
            image.into(),
            "--timeout".into(),
            timeout.into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| self.daemon.cli(&args))
    }

    pub fn names(&self) -> Vec<String> {
        self.apps.iter().map(|a| a.name.clone()).collect()
    }
}

impl Drop for ShutdownWorld {
    fn drop(&mut self) {
        // Compose, roll and recreate replace containers under the same name: remove by name.
        for app in &self.apps {
            let _ = docker(&["rm", "-f", "-v", &app.name]);
        }
    }
}

fn start_apps(options: &WorldOptions, backend: &str) -> (TestNetwork, Vec<App>) {
    ensure_test_images();
    let network = TestNetwork::create();
    let spec_for = |server: &str| {
        let mut spec = ContainerSpec::new(server)
            .image(options.image)
            .network(&network)
            .stop_timeout(options.stop_timeout)
            .label("haproxy-drain.backend", backend)
            .label("haproxy-drain.server", server)
            .label("haproxy-drain.port", &APP_PORT.to_string());
        for (k, v) in &options.env {
            spec = spec.env(k, v);
        }
        spec
    };
    let mut apps: Vec<App> = (1..=options.apps)
        .map(|n| {
            let server = format!("app{n}");
            let spec = spec_for(&server);
            let name = spec.name.clone();
            App {
                server,
                name,
                container: Some(spec.clone().run()),
                spec,
                compose: None,
            }
        })
        .collect();
    if options.compose_app {
        let server = format!("app{}", options.apps + 1);
        let spec = spec_for(&server);
        let compose = Compose {
            dir: tempfile::Builder::new()
                .prefix("hdt-compose-")
                .tempdir()
                .expect("compose dir"),
            project: unique_name("compose"),
        };
        std::fs::write(
            compose.file(),
            compose_yaml(&spec, &network, options.stop_timeout),
        )
        .expect("write docker-compose.yml");
        let output = compose_cmd(&compose.file(), &compose.project, &["up", "-d"]);
        assert!(
            output.status.success(),
            "docker-compose up: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        apps.push(App {
            server,
            name: spec.name.clone(),
            spec,
            container: None,
            compose: Some(compose),
        });
    }
    for app in &apps {
        super::wait::wait_until_blocking(
            Duration::from_secs(20),
            &format!("{} to run with an address", app.name),
            || container_ip(&app.name, &network.name).is_some(),
        );
    }
    (network, apps)
}

/// The service as docker-compose 1.29 wants it: the test's network as the external default
/// network, the fixtures' ownership labels (so a leftover is found and removed), the same
/// labels and environment as the `docker run` apps.
fn compose_yaml(spec: &ContainerSpec, network: &TestNetwork, stop_timeout: u32) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut yaml = format!(
        "version: \"2.4\"\nservices:\n  app:\n    image: {}\n    container_name: {}\n    \
         stop_grace_period: {stop_timeout}s\n    labels:\n      hdt.test: \"1\"\n      \
         hdt.pid: \"{}\"\n",
        quote(&spec.image),
        quote(&spec.name),
        std::process::id()
    );
    for (k, v) in &spec.labels {
        yaml.push_str(&format!("      {}: {}\n", quote(k), quote(v)));
    }
    yaml.push_str(&format!(
        "    environment:\n      NAME: {}\n",
        quote(&spec.name)
    ));
    for (k, v) in &spec.env {
        yaml.push_str(&format!("      {}: {}\n", quote(k), quote(v)));
    }
    yaml.push_str(&format!(
        "networks:\n  default:\n    external:\n      name: {}\n",
        quote(&network.name)
    ));
    yaml
}

fn compose_cmd(file: &str, project: &str, args: &[&str]) -> Output {
    std::process::Command::new("docker-compose")
        .args(["-f", file, "-p", project])
        .args(args)
        .output()
        .expect("docker-compose runs (apt-get install docker-compose)")
}

/// A container's address on `network`, by name; `None` when it has none (stopped, gone).
pub fn container_ip(name: &str, network: &str) -> Option<IpAddr> {
    let format = format!(
        "{{{{with index .NetworkSettings.Networks \"{network}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}"
    );
    docker(&["inspect", "--format", &format, name])
        .ok()?
        .parse()
        .ok()
}
