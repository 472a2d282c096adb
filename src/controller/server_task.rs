//! One task per HAProxy server: feeds its drain machine and executes the actions it returns.
//!
//! Messages for one server are handled in order; servers never wait for each other. Polls and
//! probes run inline here, so a slow probe delays only this server.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::executor::changes_haproxy;
use super::handle::Owner;
use super::Context;
use crate::docker::ContainerInfo;
use crate::drain::{
    Action, Clock, ContainerState, DrainResult, Input, Machine, Observed, Ownership,
};
use crate::haproxy::{AdminState, ServerId};
use crate::mapping::Mapping;
use crate::shutdown::Shutdown;

/// What the hub and the control API can see of a server without asking its task.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub phase: &'static str,
    pub owner: Owner,
    pub in_rotation: bool,
    pub container: Option<String>,
}

impl Default for ServerSnapshot {
    fn default() -> Self {
        Self {
            phase: "unknown",
            owner: Owner::None,
            in_rotation: false,
            container: None,
        }
    }
}

/// How a drain request ended, for its waiter.
#[derive(Debug, Clone)]
pub enum DrainOutcome {
    Finished {
        result: DrainResult,
        sessions_left: u64,
    },
    /// Already out of rotation by haproxy-drain's hand.
    AlreadyOut,
    /// An operator holds it; haproxy-drain does not touch it.
    HeldByOperator,
}

/// The container behind the server, as far as the task needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub has_healthcheck: bool,
    pub ip: Option<IpAddr>,
    /// `State.StartedAt` when this reference came from an inspect (the list lacks it).
    pub started_at_unix_nanos: Option<i64>,
}

#[derive(Debug)]
pub enum ServerMsg {
    /// A mapped Docker event; `event_nanos` is Docker's `timeNano`, for the reaction latency.
    Input {
        input: Input,
        event_nanos: Option<i64>,
    },
    /// The container started: inspect it, then feed `Started`.
    Started {
        container_id: String,
    },
    /// Ground truth from reconciliation. `observed: None`: the server is missing in HAProxy.
    Sync {
        mapping: Box<Mapping>,
        container: Option<ContainerRef>,
        running: bool,
        observed: Option<Observed>,
        /// When the ground truth was read; older than the last event applied means stale.
        read_at: Instant,
    },
    Drain {
        input: Input,
        waiter: Option<oneshot::Sender<DrainOutcome>>,
    },
    Ready {
        waiter: Option<oneshot::Sender<()>>,
    },
}

pub struct ServerTask {
    pub(super) id: ServerId,
    pub(super) ctx: Arc<Context>,
    pub(super) machine: Machine,
    pub(super) mapping: Mapping,
    pub(super) container: Option<ContainerRef>,
    pub(super) observed: Option<Observed>,
    pub(super) actual_admin: Option<AdminState>,
    pub(super) shared: Arc<Mutex<ServerSnapshot>>,
    pub(super) drain_waiters: Vec<oneshot::Sender<DrainOutcome>>,
    pub(super) ready_waiters: Vec<oneshot::Sender<()>>,
    pub(super) missing_backend_reported: bool,
    /// When the last event or request was applied (see `ServerMsg::Sync::read_at`).
    pub(super) last_event_at: Option<Instant>,
    /// Whether the last weight/state change reached every HAProxy.
    pub(super) last_change_ok: bool,
}

/// Picks the address HAProxy should use: the configured network's, else the first by name.
pub fn pick_ip(info: &ContainerInfo, network: Option<&str>) -> Option<IpAddr> {
    let mut networks: Vec<&(String, IpAddr)> = info.networks.iter().collect();
    networks.sort_by(|a, b| a.0.cmp(&b.0));
    match network {
        Some(name) => networks.iter().find(|(n, _)| n == name).map(|(_, ip)| *ip),
        None => networks.first().map(|(_, ip)| *ip),
    }
}

pub fn container_ref(info: &ContainerInfo, mapping: &Mapping) -> ContainerRef {
    ContainerRef {
        id: info.id.clone(),
        name: info.name.clone(),
        has_healthcheck: info.health.is_some(),
        ip: pick_ip(info, mapping.settings.network.as_deref()),
        started_at_unix_nanos: info.started_at_unix_nanos,
    }
}

pub(super) fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

pub(super) fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl ServerTask {
    pub fn spawn(
        id: ServerId,
        ctx: Arc<Context>,
        mapping: Mapping,
        owned: Option<Ownership>,
        dynamic: bool,
        shared: Arc<Mutex<ServerSnapshot>>,
        shutdown: Shutdown,
    ) -> mpsc::Sender<ServerMsg> {
        let (tx, rx) = mpsc::channel(64);
        let settings = ctx.machine_settings(&mapping);
        let mut machine = Machine::new(settings, owned);
        machine.set_dynamic(dynamic);
        let task = ServerTask {
            id,
            machine,
            ctx,
            mapping,
            container: None,
            observed: None,
            actual_admin: None,
            shared,
            drain_waiters: Vec::new(),
            ready_waiters: Vec::new(),
            missing_backend_reported: false,
            last_event_at: None,
            last_change_ok: true,
        };
        tokio::spawn(task.run(rx, shutdown));
        tx
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ServerMsg>, mut shutdown: Shutdown) {
        loop {
            let wake = self.machine.next_wakeup();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_message(msg).await,
                    None => break,
                },
                _ = sleep_until(wake) => self.feed(Input::Tick, None).await,
                _ = shutdown.recv() => break,
            }
        }
        tracing::debug!(server = %self.id, phase = self.machine.phase_name(), "server task stopped");
    }

    async fn on_message(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Input { input, event_nanos } => {
                self.last_event_at = Some(Instant::now());
                self.refresh_before_acting().await;
                self.feed(input, event_nanos).await
            }
            ServerMsg::Started { container_id } => {
                self.last_event_at = Some(Instant::now());
                self.on_started(&container_id).await
            }
            ServerMsg::Sync { read_at, .. }
                if self.last_event_at.is_some_and(|event| event > read_at) =>
            {
                // Read before an event this task has applied since: the next pass is fresher.
                tracing::debug!(server = %self.id, "stale reconciliation snapshot skipped");
            }
            ServerMsg::Sync {
                mapping,
                container,
                running,
                observed,
                ..
            } => self.on_sync(*mapping, container, running, observed).await,
            ServerMsg::Drain { input, waiter } => {
                self.last_event_at = Some(Instant::now());
                self.refresh_before_acting().await;
                self.drain_waiters.extend(waiter);
                self.feed(input, None).await;
                if !self.machine.is_draining() {
                    let outcome = if self.machine.owner() == Owner::Operator {
                        DrainOutcome::HeldByOperator
                    } else {
                        DrainOutcome::AlreadyOut
                    };
                    for waiter in self.drain_waiters.drain(..) {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            }
            ServerMsg::Ready { waiter } => {
                self.last_event_at = Some(Instant::now());
                self.ready_waiters.extend(waiter);
                self.feed(Input::ReadyRequested, None).await;
            }
        }
    }

    /// Re-reads HAProxy when haproxy-drain does not hold the server: the state it would record as
    /// "prior" must be the current one, not the one from the last reconciliation.
    async fn refresh_before_acting(&mut self) {
        if self.observed.is_none() || self.machine.ownership().is_some() {
            return;
        }
        if let Ok(Some(observed)) = self.ctx.fleet.observe(&self.id).await {
            self.observed = Some(observed);
            self.feed(Input::Observe(observed), None).await;
        }
    }

    async fn on_started(&mut self, container_id: &str) {
        self.refresh_before_acting().await;
        match self.ctx.docker.inspect(container_id).await {
            Ok(Some(info)) if info.running && self.observed.is_none() => {
                // A server HAProxy does not have yet: the Sync path adds it and gates it.
                let reference = container_ref(&info, &self.mapping);
                let observed = self.ctx.fleet.observe(&self.id).await.ok().flatten();
                let mapping = self.mapping.clone();
                self.on_sync(mapping, Some(reference), true, observed).await;
            }
            Ok(Some(info)) if info.running => {
                let reference = container_ref(&info, &self.mapping);
                let addr = reference.ip.map(|ip| (ip, self.mapping.port));
                self.container = Some(reference);
                self.feed(Input::Started { addr }, None).await;
            }
            Ok(_) => {
                tracing::debug!(server = %self.id, container_id, "started container is gone again")
            }
            Err(error) => {
                tracing::warn!(server = %self.id, container_id, %error, "cannot inspect started container; reconciliation will retry")
            }
        }
    }

    async fn on_sync(
        &mut self,
        mapping: Mapping,
        container: Option<ContainerRef>,
        running: bool,
        observed: Option<Observed>,
    ) {
        if mapping != self.mapping {
            self.machine
                .set_settings(self.ctx.machine_settings(&mapping));
            self.mapping = mapping;
        }
        if container.is_some() {
            self.container = container;
        }
        let observed = match observed {
            Some(o) => o,
            None => match self.add_dynamic(running).await {
                Some(o) => o,
                None => {
                    self.observed = None;
                    return;
                }
            },
        };
        self.observed = Some(observed);
        self.actual_admin = Some(observed.admin);
        if running && self.machine.awaits_new_run() {
            self.read_started_at().await;
        }
        let state = match (&self.container, running) {
            (Some(c), true) => ContainerState::Running {
                addr: c.ip.map(|ip| (ip, self.mapping.port)),
                started_at_unix_nanos: c.started_at_unix_nanos,
            },
            (Some(_), false) => ContainerState::Stopped,
            (None, _) => ContainerState::Absent,
        };
        self.feed(
            Input::Sync {
                container: state,
                haproxy: observed,
            },
            None,
        )
        .await;
    }

    /// A "running" container whose run was asked to stop may be shutting down or may have
    /// started again unseen: only `State.StartedAt` tells, and only inspect has it.
    async fn read_started_at(&mut self) {
        let Some(container) = self.container.as_mut() else {
            return;
        };
        match self.ctx.docker.inspect(&container.id).await {
            Ok(Some(info)) => container.started_at_unix_nanos = info.started_at_unix_nanos,
            Ok(None) => container.started_at_unix_nanos = None,
            Err(error) => {
                // Unknown counts as "still the old run": held until the next pass.
                container.started_at_unix_nanos = None;
                tracing::warn!(server = %self.id, container = %container.name, %error, "cannot inspect the container to tell a restart from a shutdown; kept out of rotation");
            }
        }
    }

    /// Feeds one input and every input its actions produce (poll results, probes), executing the
    /// actions in order; logs one line per decision and publishes the new snapshot.
    async fn feed(&mut self, first: Input, mut event_nanos: Option<i64>) {
        if self.observed.is_none() && !matches!(first, Input::Sync { .. }) {
            // Not (yet) a server HAProxy knows: acting would only produce errors.
            tracing::debug!(server = %self.id, input = ?first, "ignored: server not known to HAProxy");
            return;
        }
        let mut queue = VecDeque::from([first]);
        let started = Instant::now();
        while let Some(input) = queue.pop_front() {
            let from = self.machine.phase_name();
            let actions = self.machine.handle(input.clone(), clock());
            let to = self.machine.phase_name();
            if from != to || actions.iter().any(changes_haproxy) {
                tracing::info!(
                    container = self.container.as_ref().map(|c| c.name.as_str()).unwrap_or("-"),
                    server = %self.id,
                    from, to,
                    why = ?input,
                    actions = ?actions,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "decision"
                );
            }
            let mut change_failed = false;
            for action in actions {
                if change_failed && matches!(action, Action::Disown) {
                    // A restore that did not reach HAProxy must not drop the ownership record:
                    // go back to the record and let reconciliation restore it again.
                    self.restore_failed().await;
                    queue.clear();
                    break;
                }
                let changed = changes_haproxy(&action);
                if let Some(next) = self.execute(action).await {
                    queue.push_back(next);
                }
                change_failed |= changed && !self.last_change_ok;
                if changed {
                    if let Some(nanos) = event_nanos.take() {
                        let latency = Duration::from_nanos(
                            unix_nanos_now().saturating_sub(nanos).max(0) as u64,
                        );
                        self.ctx.metrics.reaction_latency(
                            "take_out",
                            &self.id.backend,
                            &self.id.server,
                            latency,
                        );
                    }
                }
            }
        }
        self.publish();
    }
}

impl ServerTask {
    async fn restore_failed(&mut self) {
        let owned = self.ctx.store.get(&self.id).await;
        let dynamic = self.ctx.store.is_dynamic(&self.id).await;
        self.machine = Machine::new(self.ctx.machine_settings(&self.mapping), owned);
        self.machine.set_dynamic(dynamic);
        self.ctx.metrics.restore_finished(
            crate::metrics::RestoreResult::Failed,
            &self.id.backend,
            &self.id.server,
            None,
            None,
        );
        tracing::warn!(server = %self.id, "restore did not reach every HAProxy; still held, retried at the next reconciliation");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
