//! The world the control/roll end-to-end tests run in: labelled testapp containers on a user
//! network, a real HAProxy in front of them, `haproxy-drain run` as a child process with its
//! control socket, and a load generator counting every failed request.
//!
//! HAProxy settings (stated because the failure counts depend on them): `balance roundrobin`,
//! `option httpchk GET /health`, `inter 500ms fastinter 100ms fall 2 rise 1`, weight 10 on every server, and
//! no `retry-on` / `option redispatch`: a request sent to a dying server fails visibly.

#![allow(dead_code)] // each test uses a different part of the world

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haproxy_drain::haproxy::types::ServerId;
use haproxy_drain::haproxy::Client;
use tokio::task::JoinHandle;

pub use crate::support::daemon::Daemon;
use crate::support::docker::{
    docker, docker_ok, unique_name, ContainerSpec, TestContainer, TestNetwork, APP_PORT,
};
use crate::support::haproxy::{free_loopback_port, HaproxyFixture};

/// Not 1, so "back at its original weight" means something.
pub const WEIGHT: u32 = 10;

pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work did not panic")
}

pub struct World {
    // Declaration order is drop order: the daemon stops before its containers go away.
    pub daemon: Daemon,
    pub haproxy: HaproxyFixture,
    pub containers: Vec<TestContainer>,
    pub network: TestNetwork,
    pub frontend: SocketAddr,
    pub backend: String,
}

impl Drop for World {
    fn drop(&mut self) {
        // A roll recreates containers under the same name with a new id: remove by name too.
        for container in &self.containers {
            let _ = docker(&["rm", "-f", "-v", container.name()]);
        }
    }
}

impl World {
    /// `count` healthchecked testapp containers (server names app1…), each with `env`.
    pub async fn start(count: usize, image: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(count, image, env, &[], &[]).await
    }

    /// [`World::start`] with extra `docker run` labels on every container and extra flags for
    /// `haproxy-drain run` (e.g. `--docker-gate`).
    pub async fn start_with(
        count: usize,
        image: &str,
        env: &[(&str, &str)],
        labels: &[(&str, &str)],
        daemon_flags: &[String],
    ) -> Self {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // Every daemon sees every container on this engine: a backend name of its own keeps
        // parallel worlds from claiming each other's containers.
        let backend = unique_name("be");
        let image = image.to_string();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let label_backend = backend.clone();
        let (network, containers) = blocking(move || {
            let network = TestNetwork::create();
            let containers: Vec<TestContainer> = (1..=count)
                .map(|n| {
                    let mut spec = ContainerSpec::new(&format!("app{n}"))
                        .image(&image)
                        .network(&network)
                        .label("haproxy-drain.backend", &label_backend)
                        .label("haproxy-drain.server", &format!("app{n}"))
                        .label("haproxy-drain.port", &APP_PORT.to_string());
                    for (key, value) in &env {
                        spec = spec.env(key, value);
                    }
                    for (key, value) in &labels {
                        spec = spec.label(key, value);
                    }
                    spec.run()
                })
                .collect();
            // An image without a Docker health check (`:nohc`) is ready when HAProxy and the
            // daemon say so (`wait_all_in_rotation` below).
            for container in containers.iter().filter(|c| !c.health().is_empty()) {
                container.wait_healthy(Duration::from_secs(30));
            }
            (network, containers)
        })
        .await;
        let port = free_loopback_port();
        let mut sections = format!(
            "frontend fe_roll\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n\
             backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   default-server inter 500ms fastinter 100ms fall 2 rise 1 weight {WEIGHT}\n"
        );
        for (n, container) in containers.iter().enumerate() {
            let ip = container.ip().expect("a running container has an address");
            sections.push_str(&format!("    server app{} {ip}:{APP_PORT} check\n", n + 1));
        }
        let haproxy = HaproxyFixture::start(&sections).await;
        let daemon = Daemon::start(&[haproxy.admin_url().to_string()], daemon_flags).await;
        let world = Self {
            daemon,
            haproxy,
            containers,
            network,
            frontend: SocketAddr::from(([127, 0, 0, 1], port)),
            backend,
        };
        world.wait_all_in_rotation(Duration::from_secs(30)).await;
        world
    }

    /// `haproxy-drain roll <every container> EXTRA…` against this world's daemon, with
    /// `--timeout 60s` unless EXTRA sets one.
    pub async fn roll_cli(&self, extra: &[&str]) -> std::process::Output {
        let mut args: Vec<String> = vec!["roll".into()];
        args.extend(self.names());
        args.extend(extra.iter().map(|a| a.to_string()));
        if !extra.contains(&"--timeout") {
            args.extend(["--timeout".to_string(), "60s".to_string()]);
        }
        let socket = self.daemon.control_socket();
        blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .args(&args)
                .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
                .output()
                .expect("CLI runs")
        })
        .await
    }

    pub fn name(&self, index: usize) -> String {
        self.containers[index].name().to_string()
    }

    pub fn names(&self) -> Vec<String> {
        (0..self.containers.len()).map(|i| self.name(i)).collect()
    }

    /// `docker stop` + `docker rm` + `docker run` of container `index` with its own spec, as
    /// compose does (the new container may get another address); returns when `run` has.
    pub async fn recreate(&mut self, index: usize) {
        let name = self.name(index);
        let args = self.containers[index].spec.run_args();
        let id = blocking(move || {
            docker_ok(&["stop", "-t", "10", &name]);
            docker_ok(&["rm", "-v", &name]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker_ok(&args)
        })
        .await;
        self.containers[index].id = id;
    }

    pub fn server(&self, index: usize) -> ServerId {
        ServerId::new(self.backend.as_str(), format!("app{}", index + 1))
    }

    pub fn haproxy_client(&self) -> Client {
        self.haproxy.admin_client()
    }

    /// Until the daemon reports every server mapped to its container and in rotation.
    pub async fn wait_all_in_rotation(&self, timeout: Duration) {
        let client = self.daemon.client();
        let names = self.names();
        let deadline = Instant::now() + timeout;
        loop {
            let servers = client.servers().await;
            let ready = servers.as_ref().is_ok_and(|servers| {
                names.iter().all(|name| {
                    servers.iter().any(|s| {
                        s.container.as_deref() == Some(name.as_str()) && s.phase == "in_rotation"
                    })
                })
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every server in rotation after {timeout:?}: {servers:#?}\ndaemon log:\n{}",
                self.daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Current sessions (`scur`) of one server, from HAProxy itself.
    pub async fn sessions(&self, index: usize) -> u64 {
        let server = self.server(index);
        let rows = self.haproxy_client().show_stat().await.expect("show stat");
        rows.iter()
            .find(|r| r.proxy == server.backend && r.name == server.server)
            .map(|r| r.sessions)
            .unwrap_or_else(|| panic!("{server} not in show stat"))
    }

    /// HAProxy's `show stat` status text and current weight for one server.
    pub async fn status_and_weight(&self, index: usize) -> (String, u32) {
        let server = self.server(index);
        let rows = self.haproxy_client().show_stat().await.expect("show stat");
        let row = rows
            .iter()
            .find(|r| r.proxy == server.backend && r.name == server.server)
            .unwrap_or_else(|| panic!("{server} not in show stat"));
        let weight = self
            .haproxy_client()
            .get_weight(&server)
            .await
            .expect("get weight")
            .current;
        (row.status_text.clone(), weight)
    }

    /// Container `index`'s address on the world's network.
    pub fn container_ip(&self, index: usize) -> String {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network.name
        );
        self.inspect(index, &format)
    }

    /// The address HAProxy has for container `index`'s server.
    pub async fn haproxy_addr(&self, index: usize) -> String {
        let server = self.server(index);
        let states = self
            .haproxy_client()
            .show_servers_state(Some(&server.backend))
            .await
            .expect("show servers state");
        states
            .into_iter()
            .find(|s| s.id == server)
            .expect("server state")
            .addr
    }

    /// `docker inspect -f FORMAT name` for container `index` (by name: rolls change the id).
    pub fn inspect(&self, index: usize, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.name(index)]).unwrap_or_else(|e| e)
    }
}

/// What the load generator saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// The first few failures, verbatim.
    pub errors: Vec<String>,
    /// `version=` of each answer → count.
    pub versions: HashMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.errors.extend(other.errors);
        self.errors.truncate(10);
        for (version, count) in other.versions {
            *self.versions.entry(version).or_default() += count;
        }
    }
}

/// `workers` loops of `GET path` (a new connection each) until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub fn start(frontend: SocketAddr, workers: usize, path: &str) -> Self {
        Self::start_mix(frontend, &[(workers, path)])
    }

    /// Several groups of workers, each looping on its own path (e.g. short and long requests).
    pub fn start_mix(frontend: SocketAddr, groups: &[(usize, &str)]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = groups
            .iter()
            .flat_map(|(workers, path)| (0..*workers).map(move |_| path.to_string()))
            .map(|path| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        match get(frontend, &path).await {
                            Ok(body) => {
                                tally.ok += 1;
                                let version = field(&body, "version").unwrap_or("?").to_string();
                                *tally.versions.entry(version).or_default() += 1;
                            }
                            Err(error) => {
                                tally.failed += 1;
                                if tally.errors.len() < 10 {
                                    tally.errors.push(error);
                                }
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        Self { stop, tasks }
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            total.merge(task.await.expect("load worker did not panic"));
        }
        total
    }
}

fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split_whitespace()
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// One `GET` through [`crate::support::load::get`], bounded to 15 s; the body on a 200.
pub async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let started = Instant::now();
    match tokio::time::timeout(
        Duration::from_secs(15),
        crate::support::load::get(addr, path),
    )
    .await
    {
        Ok(Err(error)) => Err(format!("{error} after {:?}", started.elapsed())),
        Ok(result) => result,
        Err(_) => Err("no answer within 15 s".to_string()),
    }
}
