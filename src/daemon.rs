//! `haproxy-drain run`: wires the Docker watcher, the controller, the control API and the
//! metrics endpoint together, all under one shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::sync::mpsc;

use crate::agent::mode::NO_SOCKET;
use crate::agent::{AgentError, AgentTable, Mode, Responder};
use crate::api::{self, ApiState};
use crate::config::{Config, ConfigError};
use crate::controller::hub::Hub;
use crate::controller::pull::AgentLink;
use crate::controller::{Context, ControllerHandle, Fleet};
use crate::docker::{DockerClient, DockerError, LabelFilter, LabelFilters};
use crate::haproxy::level::reported_level;
use crate::haproxy::{AddrError, Client, HaproxyAddr};
use crate::metrics::{Metrics, MetricsError, MetricsServer};
use crate::ownership::{OwnershipError, OwnershipStore};
use crate::roll::RollManager;
use crate::shutdown::Shutdown;

pub const DEFAULT_HAPROXY: &str = "unix:///var/run/haproxy/admin.sock";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/haproxy-drain/state.json";
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9748";
/// Without a socket, the start waits for HAProxy's first round of agent checks (quiet for
/// [`BLIND_QUIET`], at most [`BLIND_SETTLE_BOUND`]): they are the only list of its servers.
const BLIND_QUIET: std::time::Duration = std::time::Duration::from_millis(300);
const BLIND_SETTLE_BOUND: std::time::Duration = std::time::Duration::from_secs(3);
/// How long the start-up waits for Docker to bring back containers an interrupted roll left.
const FINISH_INTERRUPTED_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// HAProxy runtime API (level admin): unix:///path, tcp://host:port, or a master socket
    /// with ?worker=1. Repeat (or comma-separate in the env var) for several HAProxies. With
    /// --agent-listen a level operator/user socket is enough (read-only), or `none` for no socket.
    #[arg(long = "haproxy", env = "HAPROXY_DRAIN_HAPROXY", value_delimiter = ',', default_value = DEFAULT_HAPROXY)]
    pub haproxy: Vec<String>,
    /// Optional TOML configuration (rules, defaults, budgets).
    #[arg(long, env = "HAPROXY_DRAIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where haproxy-drain records which servers it took out (survives its own crash).
    #[arg(long, env = "HAPROXY_DRAIN_STATE_FILE", default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// Control API Unix socket (mode 0660, see --control-socket-group).
    #[arg(long, env = "HAPROXY_DRAIN_CONTROL_SOCKET", default_value = api::DEFAULT_CONTROL_SOCKET)]
    pub control_socket: PathBuf,
    /// Group of the control socket (a name or a gid): its members may use the control API.
    #[arg(long, env = "HAPROXY_DRAIN_CONTROL_SOCKET_GROUP", value_name = "GROUP")]
    pub control_socket_group: Option<String>,
    /// Also serve the control API on TCP (needs --control-token-file).
    #[arg(
        long,
        env = "HAPROXY_DRAIN_CONTROL_LISTEN",
        requires = "control_token_file"
    )]
    pub control_listen: Option<SocketAddr>,
    /// File holding the bearer token for the TCP control API.
    #[arg(long, env = "HAPROXY_DRAIN_CONTROL_TOKEN_FILE")]
    pub control_token_file: Option<PathBuf>,
    /// Prometheus metrics, /healthz and /readyz.
    #[arg(long, env = "HAPROXY_DRAIN_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,
    /// Serve the Docker Engine API on this Unix socket: everything is forwarded to the engine
    /// (DOCKER_HOST or /var/run/docker.sock), but a stop/restart/kill/rm -f of a mapped container
    /// waits until its server is drained. Point clients at it with DOCKER_HOST=unix://PATH.
    #[arg(long, env = "HAPROXY_DRAIN_DOCKER_GATE")]
    pub docker_gate: Option<PathBuf>,
    /// The gate socket's file mode (octal), like docker.sock's.
    #[arg(long, env = "HAPROXY_DRAIN_DOCKER_GATE_MODE", default_value = "660", value_parser = parse_mode)]
    pub docker_gate_mode: u32,
    /// The gate socket's group (name or gid); default: the engine socket's group.
    #[arg(long, env = "HAPROXY_DRAIN_DOCKER_GATE_GROUP")]
    pub docker_gate_group: Option<String>,
    /// Refuse (503) a gated stop when HAProxy cannot be reached, instead of forwarding it undrained.
    #[arg(long, env = "HAPROXY_DRAIN_DOCKER_GATE_FAIL_CLOSED")]
    pub docker_gate_fail_closed: bool,
    /// Serve HAProxy's agent-check protocol on this address (pull mode, no admin socket
    /// needed): server lines with `agent-check agent-addr IP agent-port PORT agent-send
    /// "backend/server\n" agent-inter 100ms` obey haproxy-drain's answers. With admin sockets
    /// the commands are still sent and the agent answers the same.
    #[arg(long, env = "HAPROXY_DRAIN_AGENT_LISTEN")]
    pub agent_listen: Option<SocketAddr>,
    /// Handle only the containers that match (repeatable; each must match, as in
    /// `docker ps --filter`): `label=KEY` or `label=KEY=VALUE`. Several sidecars can then share
    /// one engine, each with its own HAProxy; the others' containers are left alone.
    #[arg(long = "filter", env = "HAPROXY_DRAIN_FILTER", value_delimiter = ',', value_parser = parse_filter)]
    pub filter: Vec<LabelFilter>,
    /// Log format.
    #[arg(
        long,
        env = "HAPROXY_DRAIN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

fn parse_filter(text: &str) -> Result<LabelFilter, String> {
    LabelFilter::parse(text).map_err(|e| e.to_string())
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!("{text:?} is not an octal file mode like 660")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Listen(#[from] api::ListenError),
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("--haproxy none leaves nothing to drive: give a runtime API socket, or --agent-listen for pull mode")]
    NoHaproxy,
    #[error(transparent)]
    Fleet(#[from] crate::fleet_budget::FleetError),
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HAPROXY_DRAIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs until `stop` fires (SIGTERM/SIGINT in `main`).
pub async fn run(args: RunArgs, mut stop: Shutdown) -> Result<(), DaemonError> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let clients = args
        .haproxy
        .iter()
        .filter(|url| url.as_str() != NO_SOCKET)
        .map(|url| HaproxyAddr::parse(url).map(Client::new))
        .collect::<Result<Vec<_>, _>>()?;
    let agent = match args.agent_listen {
        Some(addr) => Some(start_agent(addr, &clients).await?),
        None if clients.is_empty() => return Err(DaemonError::NoHaproxy),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    for client in &clients {
        metrics.set_haproxy_connected(&client.addr().to_string(), false);
    }
    let docker = DockerClient::connect()?.with_filters(LabelFilters(args.filter.clone()));
    let store = Arc::new(OwnershipStore::open(Some(args.state_file.clone()))?);
    // Our own trigger, so that the end of the hub (for any reason) also stops every other task.
    let (trigger, shutdown) = crate::shutdown::channel();

    let metrics_server = MetricsServer::bind(args.metrics_listen).await?;
    tracing::info!(metrics = %metrics_server.local_addr(), haproxy = ?args.haproxy, "haproxy-drain starting");
    let metrics_task = tokio::spawn(metrics_server.run(metrics.clone(), shutdown.clone()));

    let mut fleet = Fleet::new(clients, metrics.clone());
    let pull_mode = agent
        .as_ref()
        .map(|(link, _)| link.mode)
        .filter(|m| !m.sends_commands());
    let agent_task = match agent {
        Some((link, responder)) => {
            fleet = fleet.with_agent(link.clone());
            let task = tokio::spawn(responder.run(link.table.clone(), shutdown.clone()));
            if link.mode == Mode::PullBlind {
                let known = link.table.settle(BLIND_QUIET, BLIND_SETTLE_BOUND).await;
                tracing::info!(servers = known, "HAProxy's agent checks named these servers; more are found at each reconciliation");
            }
            Some(task)
        }
        None => None,
    };
    let fleet_budget = match config.fleet.clone() {
        Some(fleet) => {
            Some(crate::fleet_budget::start(fleet, metrics.clone(), shutdown.clone()).await?)
        }
        None => None,
    };
    let ctx = Arc::new(Context {
        config,
        fleet,
        docker: docker.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        fleet_budget,
    });
    let (control_tx, control_rx) = mpsc::channel(256);
    let handle = ControllerHandle::new(control_tx);
    let rolls = RollManager::new(handle.clone(), Arc::new(docker.clone()), shutdown.clone());
    rolls.set_metrics(metrics.clone());
    if let Some(mode) = pull_mode {
        rolls.refuse_surge(format!(
            "--surge needs `add server` on an admin socket and haproxy-drain runs in pull mode \
             (mode: {}); roll without --surge works",
            mode.as_str()
        ));
    }
    rolls.set_journal(store);
    // Before the control API serves a new roll: the container it would look for may be set aside.
    let finish = rolls.finish_interrupted();
    if tokio::time::timeout(FINISH_INTERRUPTED_BOUND, finish)
        .await
        .is_err()
    {
        tracing::warn!(bound_s = FINISH_INTERRUPTED_BOUND.as_secs(), "Docker is slow to answer: containers an earlier roll left stopped are brought back at the next start");
    }
    let gate_task = match &args.docker_gate {
        Some(socket) => Some(
            crate::gate::start(
                crate::gate::GateSettings {
                    socket: socket.clone(),
                    mode: args.docker_gate_mode,
                    group: args.docker_gate_group.clone(),
                    fail_closed: args.docker_gate_fail_closed,
                },
                ctx.clone(),
                handle.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let state = ApiState {
        controller: handle,
        rolls: Some(rolls),
    };
    let api_task = api::serve_unix_group(
        &args.control_socket,
        api::SOCKET_MODE,
        args.control_socket_group.as_deref(),
        state.clone(),
        shutdown.clone(),
    )
    .await?;
    let tcp_task = match (&args.control_listen, &args.control_token_file) {
        (Some(addr), Some(token)) => Some(
            api::serve_tcp(*addr, token, state, shutdown.clone())
                .await?
                .1,
        ),
        _ => None,
    };

    let watch = docker.watch(shutdown.clone());
    let hub_shutdown = shutdown.clone();
    tokio::select! {
        _ = Hub::new(ctx, hub_shutdown).run(watch, control_rx) => {}
        _ = stop.recv() => tracing::info!("shutting down"),
    }

    trigger.fire();
    let _ = api_task.await;
    if let Some(task) = tcp_task {
        let _ = task.await;
    }
    if let Some(task) = gate_task {
        let _ = task.await;
    }
    if let Some(task) = agent_task {
        let _ = task.await;
    }
    if let Ok(Err(error)) = metrics_task.await {
        tracing::error!(%error, "metrics endpoint failed");
    }
    Ok(())
}

/// Binds the agent-check responder and decides the mode from every socket's level (a socket
/// that cannot be read now, or a HAProxy without `show cli level`, counts as below admin: no
/// admin command is sent on a guess, not even `check`'s refused `set weight` probe).
async fn start_agent(
    addr: SocketAddr,
    clients: &[Client],
) -> Result<(AgentLink, Responder), DaemonError> {
    let mut levels = Vec::with_capacity(clients.len());
    for client in clients {
        let level = reported_level(client).await;
        if let Err(error) = &level {
            tracing::warn!(haproxy = %client.addr(), %error, "cannot read the socket's level; treated as read-only");
        }
        levels.push(level.ok().flatten());
    }
    let mode = Mode::decide(&levels, true);
    let responder = Responder::bind(addr).await?;
    tracing::info!(agent = %responder.local_addr(), mode = mode.as_str(), limits = ?mode.limits(), "agent-check responder listening");
    let link = AgentLink {
        table: Arc::new(AgentTable::default()),
        mode,
    };
    Ok((link, responder))
}
