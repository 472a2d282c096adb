//! The hub: routes Docker events and control requests to server tasks, runs the timers.
//!
//! The hub owns the maps (container → server, server → task) and never waits on a drain: waits
//! for control requests run in their own small tasks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::handle::{ControlRequest, Trigger};
use super::server_task::{ServerMsg, ServerSnapshot, ServerTask};
use super::{Context, RELOAD_POLL_INTERVAL};
use crate::config::UnhealthyAction;
use crate::docker::{ContainerEvent, EventAction, WatchItem};
use crate::drain::{Input, StopRequest};
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
    /// `None` until known (a container first seen by its `start` event).
    pub stop_signal: Option<i32>,
    /// `--stop-timeout`; `None`: unknown or Docker's default.
    pub stop_timeout: Option<Duration>,
}

impl KnownContainer {
    pub fn from_info(info: &crate::docker::ContainerInfo, server: &ServerId) -> Self {
        Self {
            name: info.name.clone(),
            server: server.clone(),
            stop_signal: Some(info.stop_signal),
            stop_timeout: info.stop_timeout,
        }
    }
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
        let stop_signal = self.containers.get(&event.id).and_then(|c| c.stop_signal);
        let stop_timeout = self.containers.get(&event.id).and_then(|c| c.stop_timeout);
        let terminating = match &event.action {
            EventAction::Kill { signal } => {
                TERMINATING_SIGNALS.contains(signal)
                    || Some(*signal) == self.stop_signal_of(&event.id, stop_signal).await
            }
            _ => false,
        };
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
                        stop_timeout,
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
            EventAction::Kill { .. } if terminating => Input::Stopping {
                trigger: Trigger::DockerEvent,
                sticky: false,
                timeout: None,
                stop: Some(StopRequest::new(
                    event.time_nano,
                    stop_timeout,
                    mapping.settings.drain_timeout,
                )),
            },
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
                stop: None,
            },
            _ => return,
        };
        let msg = ServerMsg::Input {
            input,
            event_nanos: Some(event.time_nano),
        };
        let _ = entry.tx.send(msg).await;
    }

    /// The container's own stop signal (`--stop-signal`, image `STOPSIGNAL`); inspected only for
    /// an unusual signal on a container whose signal is not known yet.
    async fn stop_signal_of(&mut self, id: &str, known: Option<i32>) -> Option<i32> {
        if known.is_some() {
            return known;
        }
        let info = self.ctx.docker.inspect(id).await.ok().flatten()?;
        if let Some(container) = self.containers.get_mut(id) {
            container.stop_signal = Some(info.stop_signal);
            container.stop_timeout = info.stop_timeout;
        }
        Some(info.stop_signal)
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
            let read_at = tokio::time::Instant::now();
            let info = self.ctx.docker.inspect(id).await.ok().flatten();
            let observed = self.ctx.fleet.observe(server).await.ok().flatten();
            if let Some(info) = info {
                entry.active_container = Some(info.id.clone());
                entry.active_running = info.running;
                self.containers
                    .insert(info.id.clone(), KnownContainer::from_info(&info, server));
                let container = Some(super::server_task::container_ref(&info, mapping));
                let sync = ServerMsg::Sync {
                    mapping: Box::new(mapping.clone()),
                    container,
                    running: info.running,
                    observed,
                    read_at,
                };
                let _ = entry.tx.send(sync).await;
            }
        }
        self.servers.insert(server.clone(), entry);
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
