//! Pull mode in miniature (issue 14): app containers reached through published loopback ports
//! (an address that survives a recreate, which pull mode cannot change), a real HAProxy whose
//! server lines carry agent checks every 100 ms, and `haproxy-drain run` on an admin socket
//! (push), a `level user` socket with `--agent-listen` (pull) or no socket at all (blind). No
//! `retry-on` or `redispatch`: a request sent to a server that stopped serving fails.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use haproxy_drain::haproxy::{AdminState, Client, OpState, ServerId, ServerState};

use super::daemon::Daemon;
use super::docker::{
    docker_ok, unique_name, ContainerSpec, TestContainer, TestNetwork, APP_PORT, IMAGE_SIGTERM,
};
use super::haproxy::{free_loopback_port, HaproxyConfig, HaproxyFixture};
use super::roll::blocking;

pub const WEIGHT: u32 = 37;
/// The apps keep serving this long after SIGTERM (`ON_SIGTERM=serve`), then exit.
pub const GRACE_MS: u64 = 1500;
pub const AGENT_INTER_MS: u64 = 100;
/// The default apps: serve on for [`GRACE_MS`] after SIGTERM.
pub const SERVE: [(&str, &str); 2] = [("ON_SIGTERM", "serve"), ("GRACE_MS", "1500")];
const DAEMON_CONFIG: &str = "reconcile_interval = \"1s\"\n[defaults]\ndrain_timeout = \"10s\"\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// Admin socket, no agent: today's push mode (the agent checks on the lines are refused).
    Push,
    /// `level user` socket and `--agent-listen`.
    PullUser,
    /// `--haproxy none` and `--agent-listen`.
    PullBlind,
    /// Admin socket and `--agent-listen`: commands, and the agent answers the same.
    PushAgent,
}

pub struct AgentWorld {
    // Drop order: daemon, HAProxy, containers, network, config file.
    pub daemon: Daemon,
    pub haproxy: HaproxyFixture,
    pub apps: Vec<TestContainer>,
    pub network: TestNetwork,
    pub backend: String,
    pub frontend: SocketAddr,
    pub agent: SocketAddr,
    _config: tempfile::NamedTempFile,
}

impl AgentWorld {
    pub async fn start(drive: Drive, apps: usize) -> Self {
        Self::start_with(drive, apps, "", &SERVE).await
    }

    /// Like [`AgentWorld::start`], with more lines for the daemon's `[defaults]` and the apps'
    /// SIGTERM behaviour (environment).
    pub async fn start_with(
        drive: Drive,
        apps: usize,
        defaults: &str,
        sigterm: &[(&str, &str)],
    ) -> Self {
        let network = blocking(TestNetwork::create).await;
        let backend = unique_name("be").replace('-', "_");
        let agent = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()));
        let ports: Vec<u16> = (0..apps).map(|_| free_loopback_port()).collect();
        let specs: Vec<ContainerSpec> = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let spec = ContainerSpec::new(&format!("app{}", i + 1))
                    .image(IMAGE_SIGTERM)
                    .network(&network)
                    .label("haproxy-drain.backend", &backend)
                    .label("haproxy-drain.server", &format!("app{}", i + 1))
                    .label("haproxy-drain.port", &APP_PORT.to_string())
                    .stop_timeout(5)
                    .arg("-p")
                    .arg(&format!("127.0.0.1:{port}:{APP_PORT}"));
                sigterm
                    .iter()
                    .fold(spec, |spec, (key, value)| spec.env(key, value))
            })
            .collect();
        let apps = blocking(move || specs.into_iter().map(ContainerSpec::run).collect()).await;
        let front = free_loopback_port();
        let mut sections = format!(
            "backend {backend}\n    balance roundrobin\n    option httpchk GET /health\n    \
             timeout connect 500ms\n    default-server inter 500ms fall 2 rise 2\n"
        );
        for (i, port) in ports.iter().enumerate() {
            let name = format!("app{}", i + 1);
            sections.push_str(&format!(
                "    server {name} 127.0.0.1:{port} check weight {WEIGHT} agent-check agent-addr \
                 127.0.0.1 agent-port {} agent-send \"{backend}/{name}\\n\" agent-inter {AGENT_INTER_MS}ms\n",
                agent.port()
            ));
        }
        sections.push_str(&format!(
            "frontend fe_{backend}\n    bind 127.0.0.1:{front}\n    default_backend {backend}\n"
        ));
        let haproxy = HaproxyFixture::start_with(HaproxyConfig::new(sections)).await;
        let config = tempfile::NamedTempFile::new().expect("daemon config file");
        std::fs::write(config.path(), format!("{DAEMON_CONFIG}{defaults}"))
            .expect("write the daemon config");
        let mut flags = vec![format!("--config={}", config.path().display())];
        let url = match drive {
            Drive::Push | Drive::PushAgent => haproxy.admin_url().to_string(),
            Drive::PullUser => haproxy.user_url().to_string(),
            Drive::PullBlind => "none".to_string(),
        };
        if drive != Drive::Push {
            flags.push(format!("--agent-listen={agent}"));
        }
        let daemon = Daemon::start(&[url], &flags).await;
        let world = Self {
            daemon,
            haproxy,
            apps,
            network,
            backend,
            frontend: SocketAddr::from(([127, 0, 0, 1], front)),
            agent,
            _config: config,
        };
        for i in 1..=world.apps.len() {
            world.wait_in_rotation(i).await;
        }
        world
    }

    pub fn server(&self, i: usize) -> ServerId {
        ServerId::new(self.backend.clone(), format!("app{i}"))
    }

    /// The test's own view of HAProxy, through the admin socket the daemon may not have.
    pub fn client(&self) -> Client {
        self.haproxy.admin_client()
    }

    pub async fn wait_state(
        &self,
        i: usize,
        what: &str,
        check: impl Fn(&ServerState) -> bool,
    ) -> ServerState {
        let client = self.client();
        let timeout = Duration::from_secs(30);
        super::wait::wait_server(&client, &self.server(i), timeout, what, check).await
    }

    /// Ready, running, at its configured weight.
    pub async fn wait_in_rotation(&self, i: usize) -> ServerState {
        self.wait_state(i, "in rotation at its configured weight", |s| {
            s.admin.as_admin_state() == AdminState::Ready
                && s.weight == WEIGHT
                && s.op_state == OpState::Running
        })
        .await
    }

    /// `docker <args>` on a blocking thread (the load runs on the test's runtime).
    pub async fn docker(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        blocking(move || docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())).await
    }

    pub fn id(&self, i: usize) -> String {
        self.apps[i - 1].id.clone()
    }

    /// `docker rm -f` + `docker run` of app `i` with the same spec (name, labels, port).
    pub async fn recreate(&mut self, i: usize) {
        let mut app = self.apps.remove(i - 1);
        let app = blocking(move || {
            app.recreate();
            app
        })
        .await;
        self.apps.insert(i - 1, app);
    }

    /// Asks the agent about server `i` the way HAProxy does; its one-line answer.
    pub async fn ask_agent(&self, i: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.agent)
            .await
            .expect("the agent listens");
        let request = format!("{}\n", self.server(i));
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("answer read");
        answer
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.daemon.log_path()).unwrap_or_default()
    }
}
