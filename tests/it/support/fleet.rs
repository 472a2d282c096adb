//! A fleet on one machine for the fleet budget: a real `etcd` (Debian's etcd-server) on free
//! loopback ports with a temp data dir, killed on drop; and simulated hosts, each its own
//! HAProxy, labelled app containers and `haproxy-drain run --filter label=hdt.fleet=<host tag>`
//! with a `[fleet]` config. Every host serves the same backend name, as a real fleet would.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, Client, OpState, ServerId, ServerState};

use super::daemon::Daemon;
use super::docker::{unique_name, ContainerSpec, TestContainer, TestNetwork, APP_PORT};
use super::haproxy::{free_loopback_port, HaproxyConfig, HaproxyFixture};
use super::stack::retrying_backend;
use super::wait::{wait_server, wait_until};

pub const WEIGHT: u32 = 23;

pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    pub url: String,
}

impl Etcd {
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hdt-etcd-")
            .tempdir()
            .expect("etcd data dir");
        let (client, peer) = (free_loopback_port(), free_loopback_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let name = unique_name("etcd");
        let args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", dir.path().join("data").display()),
            format!("--listen-client-urls={url}"),
            format!("--advertise-client-urls={url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={name}={peer_url}"),
        ];
        let mut etcd = Self {
            child: None,
            dir,
            args,
            url,
        };
        etcd.spawn().await;
        etcd
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        let child = Command::new("etcd")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("etcd runs (apt-get install etcd-server, or make deps)");
        self.child = Some(child);
        let url = self.url.clone();
        wait_until(Duration::from_secs(20), "etcd to answer", || {
            let url = url.clone();
            async move { Self::connect_to(&url).await.is_some() }
        })
        .await;
    }

    async fn connect_to(url: &str) -> Option<etcd_client::Client> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            .with_timeout(Duration::from_millis(500));
        let mut client = etcd_client::Client::connect([url], Some(options))
            .await
            .ok()?;
        client.status().await.ok()?;
        Some(client)
    }

    /// SIGKILL, keeping the data dir (leases and keys survive, as in a real outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn start_again(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Every key under `prefix`, or `None` when etcd does not answer.
    pub async fn keys(&self, prefix: &str) -> Option<Vec<String>> {
        let mut client = Self::connect_to(&self.url).await?;
        let answer = client
            .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
            .await
            .ok()?;
        Some(
            answer
                .kvs()
                .iter()
                .filter_map(|kv| kv.key_str().ok().map(str::to_string))
                .collect(),
        )
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What every host of one test shares.
pub struct FleetSpec {
    pub backend: String,
    /// The etcd key prefix (unique per test).
    pub prefix: String,
    pub network: TestNetwork,
    /// Added to each host's `[fleet]` table (e.g. `lease_ttl = "3s"`).
    pub fleet_extra: String,
    /// The backend's fleet budget (`"1"` unless set).
    pub budget: String,
}

impl FleetSpec {
    pub fn new(fleet_extra: &str) -> Self {
        let tag = unique_name("fleet");
        Self {
            backend: format!("be_{}", tag.replace('-', "_")),
            prefix: format!("/{tag}"),
            network: TestNetwork::create(),
            fleet_extra: fleet_extra.to_string(),
            budget: "1".to_string(),
        }
    }

    pub fn slots_prefix(&self) -> String {
        format!("{}/{}/slots/", self.prefix, self.backend)
    }
}

pub struct FleetHost {
    // Drop order: the daemon first, then HAProxy, then the containers.
    pub daemon: Daemon,
    pub haproxy: HaproxyFixture,
    pub apps: Vec<TestContainer>,
    pub name: String,
    pub frontend: SocketAddr,
    pub backend: String,
    pub tag: String,
    config: tempfile::TempDir,
}

impl FleetHost {
    /// `apps` testapp containers (servers app1…) labelled for this host only, a HAProxy with
    /// them, and a sidecar that filters on the label and shares `etcd` with the fleet.
    pub async fn start(name: &str, spec: &FleetSpec, etcd: &Etcd, apps: usize) -> Self {
        Self::start_with(name, spec, etcd, apps, |_| Vec::new()).await
    }

    /// Like [`FleetHost::start`]; `extra` gives more daemon flags from the host's config dir
    /// (e.g. a `--docker-gate` socket there).
    pub async fn start_with(
        name: &str,
        spec: &FleetSpec,
        etcd: &Etcd,
        apps: usize,
        extra: impl FnOnce(&std::path::Path) -> Vec<String>,
    ) -> Self {
        let tag = unique_name(name);
        let apps: Vec<TestContainer> = (1..=apps)
            .map(|i| {
                ContainerSpec::new(&format!("{name}-app{i}"))
                    .image(super::docker::IMAGE_NOHC)
                    .network(&spec.network)
                    .env("ON_SIGTERM", "graceful")
                    .label("hdt.fleet", &tag)
                    .label("haproxy-drain.backend", &spec.backend)
                    .label("haproxy-drain.server", &format!("app{i}"))
                    .label("haproxy-drain.port", &APP_PORT.to_string())
                    .run()
            })
            .collect();
        let port = free_loopback_port();
        let backend = &spec.backend;
        let ips = apps
            .iter()
            .map(|app| app.ip().expect("app container has an address"));
        let sections = retrying_backend(backend, "inter 300ms fall 2 rise 1", ips, WEIGHT, port);
        let haproxy = HaproxyFixture::start_with(HaproxyConfig::new(sections)).await;
        let config = tempfile::Builder::new()
            .prefix("hdt-fleet-config-")
            .tempdir()
            .expect("config dir");
        let config_path: PathBuf = config.path().join("haproxy-drain.toml");
        std::fs::write(
            &config_path,
            format!(
                "[fleet]\nendpoints = [\"{}\"]\nhost = \"{name}\"\nprefix = \"{}\"\n\
                 request_timeout = \"500ms\"\n{}\n[fleet.budgets]\n{backend} = \"{}\"\n",
                etcd.url, spec.prefix, spec.fleet_extra, spec.budget
            ),
        )
        .expect("write the fleet config");
        let mut flags = vec![
            format!("--config={}", config_path.display()),
            format!("--filter=label=hdt.fleet={tag}"),
        ];
        flags.extend(extra(config.path()));
        let daemon = Daemon::start(&[haproxy.admin_url().to_string()], &flags).await;
        let host = Self {
            daemon,
            haproxy,
            apps,
            name: name.to_string(),
            frontend: SocketAddr::from(([127, 0, 0, 1], port)),
            backend: backend.clone(),
            tag,
            config,
        };
        for i in 1..=host.apps.len() {
            host.wait_in_rotation(i).await;
        }
        host
    }

    /// The host's config dir (the gate socket lives there when `extra` put it there).
    pub fn dir(&self) -> &std::path::Path {
        self.config.path()
    }

    pub fn server(&self, i: usize) -> ServerId {
        ServerId::new(self.backend.clone(), format!("app{i}"))
    }

    pub fn client(&self) -> Client {
        self.haproxy.admin_client()
    }

    pub fn container(&self, i: usize) -> String {
        self.apps[i - 1].name().to_string()
    }

    pub async fn wait_state(
        &self,
        i: usize,
        what: &str,
        check: impl Fn(&ServerState) -> bool,
    ) -> ServerState {
        let what = format!("{}: {what}", self.name);
        wait_server(
            &self.client(),
            &self.server(i),
            Duration::from_secs(40),
            &what,
            check,
        )
        .await
    }

    pub async fn wait_in_rotation(&self, i: usize) -> ServerState {
        self.wait_state(i, "in rotation at its weight", in_rotation)
            .await
    }

    /// Servers of this host's HAProxy not in rotation now (`None`: HAProxy did not answer).
    pub async fn out_of_rotation(&self) -> Option<usize> {
        let states = self
            .client()
            .show_servers_state(Some(&self.backend))
            .await
            .ok()?;
        Some(states.iter().filter(|s| !in_rotation(s)).count())
    }

    /// Runs the CLI against this host's sidecar (off the runtime; starts at once).
    pub fn cli(&self, args: &[&str]) -> impl std::future::Future<Output = std::process::Output> {
        let socket = self.daemon.control_socket();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let task = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_haproxy-drain"))
                .args(&args)
                .env("HAPROXY_DRAIN_CONTROL_SOCKET", socket)
                .output()
                .expect("haproxy-drain CLI runs")
        });
        async move { task.await.expect("CLI task") }
    }

    /// The value of one metric line that starts with `prefix` (labels included), summed.
    pub async fn metric(&self, prefix: &str) -> f64 {
        self.daemon
            .metrics_text()
            .await
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

pub fn in_rotation(state: &ServerState) -> bool {
    state.admin.as_admin_state() == AdminState::Ready
        && state.weight == WEIGHT
        && matches!(state.op_state, OpState::Running | OpState::Starting)
}

/// Samples every HAProxy of the fleet and etcd's slots every 20 ms; keeps the maxima.
pub struct FleetSampler {
    stop: Arc<AtomicBool>,
    max_out: Arc<AtomicUsize>,
    max_slots: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FleetSampler {
    pub fn start(hosts: &[&FleetHost], etcd_url: &str, slots_prefix: &str) -> Self {
        let clients: Vec<(Client, String)> = hosts
            .iter()
            .map(|h| (h.client(), h.backend.clone()))
            .collect();
        let (stop, max_out, max_slots, samples) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (url, prefix) = (etcd_url.to_string(), slots_prefix.to_string());
        let task = {
            let (stop, max_out, max_slots, samples) = (
                stop.clone(),
                max_out.clone(),
                max_slots.clone(),
                samples.clone(),
            );
            tokio::spawn(async move {
                let mut etcd = etcd_client::Client::connect([url.as_str()], None)
                    .await
                    .ok();
                while !stop.load(Ordering::Relaxed) {
                    let mut out = 0;
                    for (client, backend) in &clients {
                        if let Ok(states) = client.show_servers_state(Some(backend)).await {
                            out += states.iter().filter(|s| !in_rotation(s)).count();
                        }
                    }
                    max_out.fetch_max(out, Ordering::Relaxed);
                    if let Some(etcd) = etcd.as_mut() {
                        let options = etcd_client::GetOptions::new()
                            .with_prefix()
                            .with_count_only();
                        if let Ok(Ok(answer)) = tokio::time::timeout(
                            Duration::from_millis(300),
                            etcd.get(prefix.as_str(), Some(options)),
                        )
                        .await
                        {
                            max_slots.fetch_max(answer.count() as usize, Ordering::Relaxed);
                        }
                    }
                    samples.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Self {
            stop,
            max_out,
            max_slots,
            samples,
            task,
        }
    }

    /// (max servers out at one sample, max slots at one sample, samples)
    pub async fn finish(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.max_out.load(Ordering::Relaxed),
            self.max_slots.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FleetHost {
    fn drop(&mut self) {
        // A roll recreates containers under the same name with a new id: remove by name too.
        for app in &self.apps {
            let _ = super::docker::docker(&["rm", "-f", "-v", app.name()]);
        }
    }
}
