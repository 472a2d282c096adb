//! Every HAProxy that sends traffic to our containers: one action goes to each of them, and a
//! server is drained only when all of them report zero sessions. A HAProxy that is down (see
//! [`Reachability`]) is skipped: it cannot be drained and must not delay the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::next_read::NextRead;
use super::pull::{AgentLink, FleetView};
use super::reachability::Reachability;
use super::single_flight::SingleFlight;
use crate::agent::blind::{backend_row, server_state};
use crate::agent::Mode;
use crate::drain::Observed;
use crate::haproxy::{
    AdminState, Client, Command, HaproxyError, Info, Reply, ServerId, ServerState, StatRow,
};
use crate::metrics::Metrics;

/// HAProxy serves at most `stats maxconn` (default 10) runtime API connections at once and
/// refuses the rest (EAGAIN); stay well under it, whatever the number of busy servers.
const MAX_CONNECTIONS_PER_HAPROXY: usize = 4;

#[derive(Debug, Clone)]
pub struct Fleet {
    clients: Arc<Vec<Client>>,
    /// One per HAProxy: [`MAX_CONNECTIONS_PER_HAPROXY`] permits.
    connection_limits: Arc<Vec<Semaphore>>,
    reachability: Arc<Reachability>,
    backend_states: Arc<SingleFlight<Option<Arc<Vec<ServerState>>>>>,
    /// The session and check polls' `show stat <backend>`: one read for every poller of a
    /// backend that asked before it started ([`NextRead`]).
    backend_stat_reads: Arc<NextRead<Option<Arc<Vec<StatRow>>>>>,
    metrics: Arc<Metrics>,
    /// `--agent-listen`: the agent's answers, and whether commands are sent at all.
    agent: Option<AgentLink>,
}

/// One HAProxy's view of all servers, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub states: Vec<ServerState>,
    pub stats: Vec<StatRow>,
}

impl Fleet {
    pub fn new(clients: Vec<Client>, metrics: Arc<Metrics>) -> Self {
        let connection_limits = clients
            .iter()
            .map(|_| Semaphore::new(MAX_CONNECTIONS_PER_HAPROXY))
            .collect();
        Self {
            reachability: Arc::new(Reachability::new(clients.len())),
            backend_states: Arc::new(SingleFlight::default()),
            backend_stat_reads: Arc::new(NextRead::default()),
            clients: Arc::new(clients),
            connection_limits: Arc::new(connection_limits),
            metrics,
            agent: None,
        }
    }

    /// Records every state and weight decision in the agent's table; in pull mode they reach
    /// HAProxy only that way (see [`super::pull`]).
    pub fn with_agent(mut self, agent: AgentLink) -> Self {
        self.agent = Some(agent);
        self
    }

    pub fn mode(&self) -> Mode {
        self.agent.as_ref().map_or(Mode::Push, |a| a.mode)
    }

    /// The agent link when there is no socket to read from at all.
    fn blind(&self) -> Option<&AgentLink> {
        self.agent.as_ref().filter(|a| a.mode == Mode::PullBlind)
    }

    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The address of HAProxy `index`, for logs.
    pub fn addr(&self, index: usize) -> String {
        self.clients
            .get(index)
            .map(|c| c.addr().to_string())
            .unwrap_or_else(|| "agent-check (no socket)".to_string())
    }

    pub fn is_up(&self, index: usize) -> bool {
        self.reachability.is_up(index)
    }

    /// Runs one command on every HAProxy that is up (see [`Reachability`]) concurrently; one
    /// result per HAProxy tried, with its index.
    pub async fn apply(&self, command: &Command) -> Vec<(usize, Result<Reply, HaproxyError>)> {
        if let Some(agent) = &self.agent {
            if let Some(results) = agent.intercept(self, command).await {
                return results;
            }
        }
        self.send(command).await
    }

    /// [`Self::apply`] without the agent: reads, and commands in push mode.
    async fn send(&self, command: &Command) -> Vec<(usize, Result<Reply, HaproxyError>)> {
        let targets = self.reachability.targets();
        let results = join_all(targets.iter().map(|&i| self.call_metered(i, command))).await;
        targets.into_iter().zip(results).collect()
    }

    /// One command on one HAProxy, within its connection limit, timed into the
    /// `haproxy_command` metrics and counted for its reachability.
    async fn call_metered(&self, index: usize, command: &Command) -> Result<Reply, HaproxyError> {
        let client = &self.clients[index];
        let _permit = self.connection_limits[index].acquire().await;
        let started = Instant::now();
        let result = client.call(command.clone()).await;
        self.reachability.record(index, &result);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .haproxy_command(command.verb(), outcome, started.elapsed());
        result
    }

    /// `show servers state` and `show stat` from every HAProxy that is up, each in one round
    /// trip (measured as one `show_servers_state` command); one result per HAProxy tried.
    pub async fn snapshots(&self) -> Vec<(usize, Result<Snapshot, HaproxyError>)> {
        if let Some(blind) = self.blind() {
            return vec![(0, Ok(blind_snapshot(blind)))];
        }
        let targets = self.reachability.targets();
        let results = join_all(targets.iter().map(|&i| self.snapshot(i))).await;
        targets.into_iter().zip(results).collect()
    }

    async fn snapshot(&self, index: usize) -> Result<Snapshot, HaproxyError> {
        let commands = [Command::ShowServersState(None), Command::ShowStat];
        let _permit = self.connection_limits[index].acquire().await;
        let started = Instant::now();
        let result = self.clients[index].batch(&commands).await;
        self.reachability.record(index, &result);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .haproxy_command(commands[0].verb(), outcome, started.elapsed());
        let mut snapshot = Snapshot::default();
        for reply in result? {
            match reply? {
                Reply::ServersState(states) => snapshot.states = states,
                Reply::Stat(stats) => snapshot.stats = stats,
                _ => {}
            }
        }
        Ok(snapshot)
    }

    /// `show info` from one HAProxy, whether up or down: the probe that tells a down HAProxy
    /// came back. A changed pid or a smaller uptime means a reload or a restart, which lost our
    /// runtime changes.
    pub async fn info(&self, index: usize) -> Result<Info, HaproxyError> {
        let _permit = self.connection_limits[index].acquire().await;
        let result = self.clients[index].show_info().await;
        self.reachability.record(index, &result);
        result
    }

    /// `show servers state <backend>` on every HAProxy that answers, merged for one server;
    /// `None` when no HAProxy has it (a backend one HAProxy lacks is not an error) or the read
    /// failed. Concurrent reads of one backend are one read ([`SingleFlight`]).
    pub async fn observe(&self, server: &ServerId) -> Option<Observed> {
        if let Some(blind) = self.blind() {
            let answer = blind.table.asked_about(server)?;
            return merge(&[server_state(server, &answer)]);
        }
        let backend = &server.backend;
        let states = self
            .backend_states
            .run(backend, || self.read_backend_states(backend))
            .await?;
        let mine: Vec<ServerState> = states.iter().filter(|s| &s.id == server).cloned().collect();
        merge(&mine)
    }

    async fn read_backend_states(&self, backend: &str) -> Option<Arc<Vec<ServerState>>> {
        let command = Command::ShowServersState(Some(backend.to_string()));
        let states = self
            .backend_rows(&command, |reply| match reply {
                Reply::ServersState(all) => all,
                _ => Vec::new(),
            })
            .await;
        states.ok().map(Arc::new)
    }

    /// The `show stat` rows of one backend's servers, from every HAProxy that answers (see
    /// [`Reachability::answers`]).
    pub async fn backend_stats(&self, backend: &str) -> Result<Vec<StatRow>, HaproxyError> {
        if self.blind().is_some() {
            return Ok(Vec::new());
        }
        let command = Command::ShowStatServers(backend.to_string());
        self.backend_rows(&command, |reply| match reply {
            Reply::Stat(rows) => rows,
            _ => Vec::new(),
        })
        .await
    }

    /// One backend read on every HAProxy that is up, the rows of all that answer together. A
    /// HAProxy without the backend has no rows (not an error).
    async fn backend_rows<T>(
        &self,
        command: &Command,
        rows: fn(Reply) -> Vec<T>,
    ) -> Result<Vec<T>, HaproxyError> {
        let results = self.send(command).await.into_iter().map(|(i, result)| {
            let rows = match result {
                Ok(reply) => Ok(rows(reply)),
                Err(HaproxyError::Command(e)) if e.is_not_found() => Ok(Vec::new()),
                Err(e) => Err(e),
            };
            (i, rows)
        });
        let answers = self.reachability.answers(results.collect())?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// The `show stat` rows of one backend from a read that started after this call, shared
    /// with every other poller of the backend waiting for it ([`NextRead`]): 100 servers
    /// draining in one backend cost one read per round, not 100. A shared read that failed is
    /// read again by each of its callers on its own, for its own error.
    pub async fn fresh_backend_stats(
        &self,
        backend: &str,
    ) -> Result<Arc<Vec<StatRow>>, HaproxyError> {
        let mut own_error = None;
        let shared = self
            .backend_stat_reads
            .run(backend, || async {
                match self.backend_stats(backend).await {
                    Ok(rows) => Some(Arc::new(rows)),
                    Err(error) => {
                        own_error = Some(error);
                        None
                    }
                }
            })
            .await;
        match (shared, own_error) {
            (Some(rows), _) => Ok(rows),
            (None, Some(error)) => Err(error),
            (None, None) => self.backend_stats(backend).await.map(Arc::new),
        }
    }

    /// Current sessions of one server, summed over every HAProxy that answers.
    pub async fn sessions(&self, server: &ServerId) -> Result<u64, HaproxyError> {
        if self.blind().is_some() {
            // Unknown, so assumed open: the drain ends when the container exits or times out.
            return Ok(1);
        }
        let rows = self.fresh_backend_stats(&server.backend).await?;
        Ok(rows
            .iter()
            .filter(|r| r.name == server.server)
            .map(|r| r.sessions)
            .sum())
    }

    /// True when every HAProxy that answers has seen a health check pass since the server left
    /// MAINT.
    pub async fn check_passed(&self, server: &ServerId) -> Result<bool, HaproxyError> {
        if self.blind().is_some() {
            // HAProxy already obeys the DRAIN answer (it was picked up); its checks are unseen.
            return Ok(true);
        }
        let rows = self.fresh_backend_stats(&server.backend).await?;
        let mine: Vec<&StatRow> = rows.iter().filter(|r| r.name == server.server).collect();
        Ok(!mine.is_empty() && mine.iter().all(|r| r.check_passed()))
    }
}

impl FleetView for Fleet {
    fn targets(&self) -> Vec<usize> {
        self.reachability.targets()
    }

    fn observe<'a>(
        &'a self,
        id: &'a ServerId,
    ) -> futures_util::future::BoxFuture<'a, Option<Observed>> {
        Box::pin(Fleet::observe(self, id))
    }
}

/// Without a socket, HAProxy as the agent's answers imply it (see [`crate::agent::blind`]):
/// the servers it asked about and their backends.
fn blind_snapshot(agent: &AgentLink) -> Snapshot {
    let asked = agent.table.asked();
    let states = asked
        .iter()
        .map(|(id, answer)| server_state(id, answer))
        .collect();
    let mut backends: Vec<&str> = asked.iter().map(|(id, _)| id.backend.as_str()).collect();
    backends.dedup();
    let stats = backends.into_iter().map(backend_row).collect();
    Snapshot { states, stats }
}

/// Merges one server's state across HAProxies: the least-out state wins, so one HAProxy that
/// lost our state (a reload) is seen and corrected; an address is known only if all agree.
pub fn merge(states: &[ServerState]) -> Option<Observed> {
    let first = states.first()?;
    let rank = |a: AdminState| match a {
        AdminState::Ready => 0,
        AdminState::Drain => 1,
        AdminState::Maint => 2,
    };
    let admin = states
        .iter()
        .map(|s| s.admin.as_admin_state())
        .min_by_key(|a| rank(*a))
        .unwrap_or(AdminState::Ready);
    let addr: Option<IpAddr> = first.addr.parse().ok();
    let all_agree = states
        .iter()
        .all(|s| s.addr == first.addr && s.port == first.port);
    Some(Observed {
        admin,
        weight: states.iter().map(|s| s.weight).max().unwrap_or(0),
        initial_weight: first.initial_weight,
        addr: if all_agree { addr } else { None },
        port: first.port,
        checks_enabled: states.iter().any(ServerState::checks_configured),
    })
}

/// Groups every HAProxy's servers by id, for [`merge`].
pub fn group_states(snapshots: &[Snapshot]) -> HashMap<ServerId, Vec<ServerState>> {
    let mut grouped: HashMap<ServerId, Vec<ServerState>> = HashMap::new();
    for snapshot in snapshots {
        for state in &snapshot.states {
            grouped
                .entry(state.id.clone())
                .or_default()
                .push(state.clone());
        }
    }
    grouped
}
