//! The hub: routes Docker events and control requests to server tasks, runs the timers.
//!
//! The hub owns the maps (container → server, server → task) and never waits on a drain: waits
//! for control requests run in their own small tasks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::handle::{
    ControlError, ControlRequest, DrainReport, DrainRequest, ReadyReport, ReadyRequest, Target,
    Trigger,
};
use super::server_task::{DrainOutcome, ServerMsg, ServerSnapshot, ServerTask};
use super::{Context, RELOAD_POLL_INTERVAL};
use crate::config::UnhealthyAction;
use crate::docker::{ContainerEvent, EventAction, WatchItem};
use crate::drain::{DrainResult, Input};
use crate::haproxy::{ServerId, ServerState};
use crate::mapping::{self, Mapping};
use crate::shutdown::Shutdown;

/// Signals that end a container whatever its image says (plus its own stop signal).
const TERMINATING_SIGNALS: [i32; 4] = [2, 3, 9, 15];

pub(super) struct ServerEntry {
    pub tx: mpsc::Sender<ServerMsg>,
    pub shared: Arc<Mutex<ServerSnapshot>>,
    pub mapping: Mapping,
    /// The container currently behind this server; events of older containers are stale.
    pub active_container: Option<String>,
    pub active_running: bool,
}

pub(super) struct KnownContainer {
    pub name: String,
    pub server: ServerId,
    pub stop_signal: i32,
}

pub struct Hub {
    pub(super) ctx: Arc<Context>,
    pub(super) shutdown: Shutdown,
    pub(super) servers: HashMap<ServerId, ServerEntry>,
    pub(super) containers: HashMap<String, KnownContainer>,
    pub(super) reported_bad: HashSet<String>,
    pub(super) last_states: HashMap<ServerId, Vec<ServerState>>,
    /// Backends any HAProxy has, from the last reconciliation (`None` before the first).
    pub(super) backends: Option<HashSet<String>>,
    pub(super) haproxy_seen: Vec<Option<(u32, u64)>>,
}

impl Hub {
    pub fn new(ctx: Arc<Context>, shutdown: Shutdown) -> Self {
        let n = ctx.fleet.clients().len();
        Self {
            ctx,
            shutdown,
            servers: HashMap::new(),
            containers: HashMap::new(),
            reported_bad: HashSet::new(),
            last_states: HashMap::new(),
            backends: None,
            haproxy_seen: vec![None; n],
        }
    }

    /// Runs until shutdown. `watch` is the Docker event stream, `control` the API's requests.
    pub async fn run(
        mut self,
        mut watch: mpsc::Receiver<WatchItem>,
        mut control: mpsc::Receiver<ControlRequest>,
    ) {
        let mut shutdown = self.shutdown.clone();
        let mut reconcile_tick = tokio::time::interval(self.ctx.config.reconcile_interval);
        reconcile_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reload_tick = tokio::time::interval(RELOAD_POLL_INTERVAL);
        reload_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                item = watch.recv() => match item {
                    Some(item) => self.on_watch(item).await,
                    None => break,
                },
                Some(request) = control.recv() => self.on_control(request).await,
                _ = reconcile_tick.tick() => self.reconcile("periodic").await,
                _ = reload_tick.tick() => self.watch_haproxy().await,
                _ = shutdown.recv() => break,
            }
        }
        tracing::info!(
            "controller stopped; in-progress drains are left for the next start to reconcile"
        );
    }

    async fn on_watch(&mut self, item: WatchItem) {
        match item {
            WatchItem::Connected { replayed_since } => {
                self.ctx.metrics.set_docker_connected(true);
                tracing::info!(?replayed_since, "Docker event stream connected");
                self.reconcile("docker_connected").await;
            }
            WatchItem::Disconnected { error } => {
                self.ctx.metrics.set_docker_connected(false);
                self.ctx.metrics.docker_reconnect();
                tracing::warn!(%error, "Docker event stream lost; reconnecting");
            }
            WatchItem::Event(event) => self.on_event(event).await,
        }
    }

    /// The server a container maps to, reporting a bad label once per container.
    pub(super) fn map_container(
        &mut self,
        id: &str,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Option<Mapping> {
        match mapping::resolve(name, labels, &self.ctx.config) {
            Ok(Some(mapping))
                if self
                    .backends
                    .as_ref()
                    .is_some_and(|b| !b.contains(&mapping.server.backend)) =>
            {
                if self.reported_bad.insert(id.to_string()) {
                    self.ctx.metrics.config_error("missing_backend");
                    tracing::error!(container = name, server = %mapping.server, "no HAProxy has this backend; the container is skipped (fix the label/rule or haproxy.cfg)");
                }
                None
            }
            Ok(mapping) => mapping,
            Err(error) => {
                if self.reported_bad.insert(id.to_string()) {
                    self.ctx.metrics.config_error(error.kind());
                    tracing::error!(container = name, %error, "cannot map container");
                }
                None
            }
        }
    }

    async fn on_event(&mut self, event: ContainerEvent) {
        let action = action_label(&event.action);
        self.ctx.metrics.docker_event(action);
        tracing::debug!(container = %event.name, action, time_nano = event.time_nano, "docker event");
        let Some(mapping) = self.map_container(&event.id, &event.name, &event.attributes) else {
            return;
        };
        let server = mapping.server.clone();
        let unhealthy = mapping.settings.unhealthy;
        let stop_signal = self.containers.get(&event.id).map_or(15, |c| c.stop_signal);
        self.ensure_task(&server, &mapping, Some(&event.id)).await;
        let Some(entry) = self.servers.get_mut(&server) else {
            return;
        };
        let is_active = entry
            .active_container
            .as_deref()
            .is_none_or(|a| a == event.id);
        let stale = !is_active && entry.active_running;
        let input = match &event.action {
            EventAction::Start => {
                entry.active_container = Some(event.id.clone());
                entry.active_running = true;
                self.containers.insert(
                    event.id.clone(),
                    KnownContainer {
                        name: event.name.clone(),
                        server: server.clone(),
                        stop_signal,
                    },
                );
                let _ = entry
                    .tx
                    .send(ServerMsg::Started {
                        container_id: event.id.clone(),
                    })
                    .await;
                return;
            }
            _ if stale => {
                tracing::debug!(container = event.name, server = %server, action, "event of a replaced container ignored");
                return;
            }
            EventAction::Kill { signal }
                if TERMINATING_SIGNALS.contains(signal) || *signal == stop_signal =>
            {
                Input::Stopping {
                    trigger: Trigger::DockerEvent,
                    sticky: false,
                    timeout: None,
                }
            }
            EventAction::Die { .. } | EventAction::Stop => {
                entry.active_running = false;
                Input::Died
            }
            EventAction::Destroy => {
                entry.active_running = false;
                entry.active_container = None;
                self.containers.remove(&event.id);
                Input::Destroyed
            }
            EventAction::Healthy => Input::Gate { passed: true },
            EventAction::Unhealthy if unhealthy == UnhealthyAction::Drain => Input::Stopping {
                trigger: Trigger::DockerEvent,
                sticky: false,
                timeout: None,
            },
            _ => return,
        };
        let msg = ServerMsg::Input {
            input,
            event_nanos: Some(event.time_nano),
        };
        let _ = entry.tx.send(msg).await;
    }

    /// Spawns the server's task on first sight, primed with ground truth for that server.
    pub(super) async fn ensure_task(
        &mut self,
        server: &ServerId,
        mapping: &Mapping,
        container_id: Option<&str>,
    ) {
        if self.servers.contains_key(server) {
            return;
        }
        let shared = Arc::new(Mutex::new(ServerSnapshot::default()));
        let owned = self.ctx.store.get(server).await;
        let dynamic = self.ctx.store.is_dynamic(server).await;
        let tx = ServerTask::spawn(
            server.clone(),
            self.ctx.clone(),
            mapping.clone(),
            owned,
            dynamic,
            shared.clone(),
            self.shutdown.clone(),
        );
        let mut entry = ServerEntry {
            tx,
            shared,
            mapping: mapping.clone(),
            active_container: None,
            active_running: false,
        };
        if let Some(id) = container_id {
            let info = self.ctx.docker.inspect(id).await.ok().flatten();
            let observed = self.ctx.fleet.observe(server).await.ok().flatten();
            if let Some(info) = info {
                entry.active_container = Some(info.id.clone());
                entry.active_running = info.running;
                self.containers.insert(
                    info.id.clone(),
                    KnownContainer {
                        name: info.name.clone(),
                        server: server.clone(),
                        stop_signal: info.stop_signal,
                    },
                );
                let container = Some(super::server_task::container_ref(&info, mapping));
                let sync = ServerMsg::Sync {
                    mapping: Box::new(mapping.clone()),
                    container,
                    running: info.running,
                    observed,
                };
                let _ = entry.tx.send(sync).await;
            }
        }
        self.servers.insert(server.clone(), entry);
    }

    fn resolve(&self, target: &Target) -> Result<ServerId, ControlError> {
        match target {
            Target::Server(id) if self.servers.contains_key(id) => Ok(id.clone()),
            Target::Container(name) => self
                .containers
                .values()
                .find(|c| &c.name == name)
                .map(|c| c.server.clone())
                .ok_or_else(|| ControlError::NotFound(target.to_string())),
            _ => Err(ControlError::NotFound(target.to_string())),
        }
    }

    async fn on_control(&mut self, request: ControlRequest) {
        match request {
            ControlRequest::Status { reply } => {
                let views = self.status_views();
                tokio::spawn(async move {
                    let _ = reply.send(views.await);
                });
            }
            ControlRequest::Drain { request, reply } => {
                let result = self.start_drain(request).await;
                match result {
                    Ok(wait) => {
                        tokio::spawn(async move {
                            let _ = reply.send(wait.await);
                        });
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            ControlRequest::Ready { request, reply } => match self.start_ready(request).await {
                Ok(wait) => {
                    tokio::spawn(async move {
                        let _ = reply.send(wait.await);
                    });
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
        }
    }

    /// Checks the budget, sends the drain, and returns the future that waits for its end.
    async fn start_drain(
        &mut self,
        request: DrainRequest,
    ) -> Result<impl std::future::Future<Output = Result<DrainReport, ControlError>>, ControlError>
    {
        let server = self.resolve(&request.target)?;
        if !request.force {
            self.check_budget(&server)?;
        }
        let entry = self
            .servers
            .get(&server)
            .ok_or_else(|| ControlError::NotFound(request.target.to_string()))?;
        if let Ok(mut shared) = entry.shared.lock() {
            shared.in_rotation = false;
        }
        let container = entry
            .active_container
            .as_ref()
            .and_then(|id| self.containers.get(id))
            .map(|c| c.name.clone());
        let (tx, rx) = oneshot::channel();
        let input = Input::Stopping {
            trigger: request.trigger,
            sticky: request.sticky,
            timeout: Some(request.timeout),
        };
        entry
            .tx
            .send(ServerMsg::Drain {
                input,
                waiter: Some(tx),
            })
            .await
            .map_err(|_| ControlError::Unavailable)?;
        let started = Instant::now();
        let wait = request.wait;
        let timeout = request.timeout + Duration::from_secs(2);
        Ok(async move {
            let report = |drained: bool, sessions_left: u64| DrainReport {
                server: server.clone(),
                container: container.clone(),
                drained,
                sessions_left,
                elapsed_ms: started.elapsed().as_millis() as u64,
            };
            if !wait {
                return Ok(report(false, 0));
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(DrainOutcome::Finished { result: DrainResult::TimedOut, sessions_left })) => Err(ControlError::DrainTimeout {
                    server: server.clone(),
                    sessions_left,
                    waited_ms: started.elapsed().as_millis() as u64,
                }),
                Ok(Ok(DrainOutcome::Finished { sessions_left, .. })) => Ok(report(sessions_left == 0, sessions_left)),
                Ok(Ok(DrainOutcome::AlreadyOut)) => Ok(report(true, 0)),
                Ok(Ok(DrainOutcome::HeldByOperator)) => Err(ControlError::Conflict(format!("{server} is held out of rotation by an operator; haproxy-drain leaves it alone"))),
                Ok(Err(_)) => Err(ControlError::Unavailable),
                Err(_) => Err(ControlError::DrainTimeout { server: server.clone(), sessions_left: 0, waited_ms: started.elapsed().as_millis() as u64 }),
            }
        })
    }

    async fn start_ready(
        &mut self,
        request: ReadyRequest,
    ) -> Result<impl std::future::Future<Output = Result<ReadyReport, ControlError>>, ControlError>
    {
        let server = self.resolve(&request.target)?;
        let entry = self
            .servers
            .get(&server)
            .ok_or_else(|| ControlError::NotFound(request.target.to_string()))?;
        let container = entry
            .active_container
            .as_ref()
            .and_then(|id| self.containers.get(id))
            .map(|c| c.name.clone());
        let (tx, rx) = oneshot::channel();
        let waiter = request.wait.then_some(tx);
        entry
            .tx
            .send(ServerMsg::Ready { waiter })
            .await
            .map_err(|_| ControlError::Unavailable)?;
        let shared = entry.shared.clone();
        let started = Instant::now();
        Ok(async move {
            let in_rotation = |shared: &Mutex<ServerSnapshot>| {
                shared.lock().map(|s| s.in_rotation).unwrap_or(false)
            };
            if !request.wait {
                return Ok(ReadyReport {
                    server,
                    container,
                    in_rotation: in_rotation(&shared),
                    elapsed_ms: 0,
                });
            }
            match tokio::time::timeout(request.timeout, rx).await {
                Ok(Ok(())) => Ok(ReadyReport {
                    server,
                    container,
                    in_rotation: true,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                }),
                Ok(Err(_)) => Err(ControlError::Unavailable),
                Err(_) => {
                    let phase = shared.lock().map(|s| s.phase).unwrap_or("unknown");
                    Err(ControlError::ReadyTimeout {
                        server,
                        waited_ms: started.elapsed().as_millis() as u64,
                        reason: format!(
                            "still {phase}: the container is not running or not healthy yet"
                        ),
                    })
                }
            }
        })
    }

    /// Refuses a drain that would hold more of the backend out than its budget allows.
    fn check_budget(&self, target: &ServerId) -> Result<(), ControlError> {
        let in_rotation = |id: &ServerId| match self.servers.get(id) {
            Some(entry) => entry.shared.lock().map(|s| s.in_rotation).unwrap_or(false),
            None => self.last_states.get(id).is_some_and(|states| {
                states.iter().all(|s| {
                    s.admin.as_admin_state() == crate::haproxy::AdminState::Ready
                        && s.weight > 0
                        && s.op_state == crate::haproxy::OpState::Running
                })
            }),
        };
        if !in_rotation(target) {
            return Ok(());
        }
        let backend: Vec<&ServerId> = self
            .last_states
            .keys()
            .filter(|id| id.backend == target.backend)
            .collect();
        let total = backend.len().max(1);
        let ready = backend.iter().filter(|id| in_rotation(id)).count();
        let out_after = total - ready + 1;
        let max_out = self.ctx.config.budget_for(&target.backend).max_out(total);
        if out_after > max_out {
            return Err(ControlError::Budget {
                server: target.clone(),
                backend: target.backend.clone(),
                ready_after: ready.saturating_sub(1),
                max_out,
            });
        }
        Ok(())
    }
}

fn action_label(action: &EventAction) -> &str {
    match action {
        EventAction::Kill { .. } => "kill",
        EventAction::Die { .. } => "die",
        EventAction::Stop => "stop",
        EventAction::Start => "start",
        EventAction::Restart => "restart",
        EventAction::Destroy => "destroy",
        EventAction::Healthy => "health_status: healthy",
        EventAction::Unhealthy => "health_status: unhealthy",
        EventAction::Pause => "pause",
        EventAction::Unpause => "unpause",
        EventAction::Other(other) => other.as_str(),
    }
}
