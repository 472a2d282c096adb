//! A whole host in miniature: N labelled app containers on a fresh network, a real HAProxy whose
//! backend points at them, and `haproxy-drain run` — every name unique to the test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, Client, ServerId, ServerState};

use super::daemon::Daemon;
use super::docker::{unique_name, ContainerSpec, TestContainer, TestNetwork, APP_PORT};
use super::haproxy::{free_loopback_port, HaproxyConfig, HaproxyFixture};

/// The weight every test server starts with: not 1, so a hard-coded restore would show.
pub const WEIGHT: u32 = 37;

pub struct StackOptions {
    pub apps: usize,
    pub image: &'static str,
    pub env: Vec<(&'static str, &'static str)>,
    pub restart: Option<&'static str>,
    pub stop_signal: Option<&'static str>,
    /// `--stop-timeout` of every app container (seconds).
    pub stop_timeout: Option<u32>,
    /// Extra `global` lines (e.g. server-state-file).
    pub global: Vec<String>,
    pub daemon_flags: Vec<String>,
    pub daemon_env: Vec<(&'static str, String)>,
    /// Start-up waits for /readyz (false: /healthz only, e.g. with a HAProxy that never answers).
    pub wait_ready: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            apps: 3,
            image: super::docker::IMAGE_NOHC,
            env: vec![("ON_SIGTERM", "graceful")],
            restart: None,
            stop_signal: None,
            stop_timeout: None,
            global: Vec::new(),
            daemon_flags: Vec::new(),
            daemon_env: Vec::new(),
            wait_ready: true,
        }
    }
}

pub struct Stack {
    // Drop order: daemon first, then HAProxy, then containers, then the network.
    pub daemon: Daemon,
    pub haproxy: HaproxyFixture,
    pub apps: Vec<TestContainer>,
    pub network: TestNetwork,
    pub backend: String,
    pub frontend: SocketAddr,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Self {
        let network = TestNetwork::create();
        let backend = unique_name("be").replace('-', "_");
        let apps: Vec<TestContainer> = (1..=options.apps)
            .map(|i| {
                let mut spec = ContainerSpec::new(&format!("app{i}"))
                    .image(options.image)
                    .network(&network)
                    .label("haproxy-drain.backend", &backend)
                    .label("haproxy-drain.server", &format!("app{i}"))
                    .label("haproxy-drain.port", &APP_PORT.to_string());
                for (k, v) in &options.env {
                    spec = spec.env(k, v);
                }
                if let Some(policy) = options.restart {
                    spec = spec.restart(policy);
                }
                if let Some(signal) = options.stop_signal {
                    spec = spec.stop_signal(signal);
                }
                if let Some(seconds) = options.stop_timeout {
                    spec = spec.stop_timeout(seconds);
                }
                spec.run()
            })
            .collect();
        let port = free_loopback_port();
        let ips = apps
            .iter()
            .map(|app| app.ip().expect("app container has an address"));
        let sections = retrying_backend(&backend, "inter 500ms fall 2 rise 2", ips, WEIGHT, port);
        let mut config = HaproxyConfig::new(sections);
        for line in &options.global {
            config = config.global(line.clone());
        }
        let haproxy = HaproxyFixture::start_with(config).await;
        let env: Vec<(&str, &str)> = options
            .daemon_env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let daemon = Daemon::start_full(
            &[haproxy.admin_url().to_string()],
            &options.daemon_flags,
            &env,
            options.wait_ready,
        )
        .await;
        let stack = Self {
            daemon,
            haproxy,
            apps,
            network,
            backend,
            frontend: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        for i in 1..=options.apps {
            stack
                .wait_state(i, "every server UP before the test", |s| {
                    s.admin.as_admin_state() == AdminState::Ready
                        && s.op_state == haproxy_drain::haproxy::OpState::Running
                })
                .await;
        }
        stack
    }

    pub fn server(&self, i: usize) -> ServerId {
        ServerId::new(self.backend.clone(), format!("app{i}"))
    }

    pub fn client(&self) -> Client {
        self.haproxy.admin_client()
    }

    pub async fn state(&self, i: usize) -> Option<ServerState> {
        super::wait::server_state(&self.client(), &self.server(i)).await
    }

    /// Polls `show servers state` until server `i` satisfies `check`; returns that state.
    pub async fn wait_state(
        &self,
        i: usize,
        what: &str,
        check: impl Fn(&ServerState) -> bool,
    ) -> ServerState {
        let client = self.client();
        super::wait::wait_server(
            &client,
            &self.server(i),
            Duration::from_secs(30),
            what,
            check,
        )
        .await
    }

    /// Back in rotation: ready, running, at the original weight.
    pub async fn wait_in_rotation(&self, i: usize) -> ServerState {
        self.wait_state(i, "back in rotation at its original weight", |s| {
            s.admin.as_admin_state() == AdminState::Ready
                && s.weight == WEIGHT
                && s.op_state == haproxy_drain::haproxy::OpState::Running
        })
        .await
    }

    pub async fn wait_admin(&self, i: usize, admin: AdminState) -> ServerState {
        self.wait_state(i, &format!("admin state {admin}"), |s| {
            s.admin.as_admin_state() == admin
        })
        .await
    }
}

/// A backend that retries and redispatches (`retry-on all-retryable-errors`, `timeout connect
/// 500ms`), a `server appN IP:APP_PORT check weight WEIGHT` for each address, and a frontend on
/// `127.0.0.1:port`; `default_server` sets the checks (e.g. `inter 500ms fall 2 rise 2`).
pub fn retrying_backend(
    backend: &str,
    default_server: &str,
    ips: impl IntoIterator<Item = std::net::IpAddr>,
    weight: u32,
    port: u16,
) -> String {
    let mut sections = format!(
        "backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n    \
         retries 3\n    option redispatch 1\n    retry-on all-retryable-errors\n    \
         timeout connect 500ms\n    default-server {default_server}\n"
    );
    for (i, ip) in ips.into_iter().enumerate() {
        sections.push_str(&format!(
            "    server app{} {ip}:{APP_PORT} check weight {weight}\n",
            i + 1
        ));
    }
    sections.push_str(&format!(
        "frontend fe_{backend}\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n"
    ));
    sections
}
