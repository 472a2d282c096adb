//! The hub: routes Docker events and control requests to server tasks, runs the timers.
//!
//! The hub owns the maps (container → server, server → task) and never waits on a drain: waits
//! for control requests run in their own small tasks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::handle::ControlRequest;
use super::server_msg::ServerMsg;
use super::server_task::ServerTask;
use super::snapshot::ServerSnapshot;
use super::{Context, RELOAD_POLL_INTERVAL};
use crate::docker::{ContainerEvent, EventAction, WatchItem};
use crate::haproxy::{ServerId, ServerState};
use crate::mapping::{self, Mapping};
use crate::shutdown::Shutdown;

pub(super) struct ServerEntry {
    pub tx: mpsc::Sender<ServerMsg>,
    /// What the server's task publishes after each decision.
    pub snapshot: Arc<Mutex<ServerSnapshot>>,
    pub mapping: Mapping,
    /// The container currently behind this server; events of older containers are stale
    /// while it runs (a recreate: the old one's `destroy` comes after the new one's `start`).
    pub current_container: Option<String>,
    pub current_running: bool,
}

/// A container the hub routes: its name (control requests name containers) and its server.
pub(super) struct KnownContainer {
    pub name: String,
    pub server: ServerId,
}

/// Which worker process answered a HAProxy's runtime API: a new pid, or an uptime that went
/// back, means a reload (or a restart), which resets every server to the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerIdentity {
    pub pid: u32,
    pub uptime_sec: u64,
}

impl WorkerIdentity {
    pub fn replaced(self, before: WorkerIdentity) -> bool {
        self.pid != before.pid || self.uptime_sec < before.uptime_sec
    }
}

pub struct Hub {
    pub(super) ctx: Arc<Context>,
    pub(super) shutdown: Shutdown,
    pub(super) servers: HashMap<ServerId, ServerEntry>,
    pub(super) containers: HashMap<String, KnownContainer>,
    /// Containers whose labels or backend were reported bad once (not again each pass).
    pub(super) unmappable_reported: HashSet<String>,
    pub(super) last_states: HashMap<ServerId, Vec<ServerState>>,
    /// Backends any HAProxy has, from the last reconciliation (`None` before the first).
    pub(super) backends: Option<HashSet<String>>,
    /// The worker each HAProxy answered from last time (`None`: not answering).
    pub(super) haproxy_workers: Vec<Option<WorkerIdentity>>,
}

impl Hub {
    pub fn new(ctx: Arc<Context>, shutdown: Shutdown) -> Self {
        let n = ctx.fleet.clients().len();
        Self {
            ctx,
            shutdown,
            servers: HashMap::new(),
            containers: HashMap::new(),
            unmappable_reported: HashSet::new(),
            last_states: HashMap::new(),
            backends: None,
            haproxy_workers: vec![None; n],
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
                if self.unmappable_reported.insert(id.to_string()) {
                    self.ctx.metrics.config_error("missing_backend");
                    tracing::error!(container = name, server = %mapping.server, "no HAProxy has this backend; the container is skipped (fix the label/rule or haproxy.cfg)");
                }
                None
            }
            Ok(mapping) => mapping,
            Err(error) => {
                if self.unmappable_reported.insert(id.to_string()) {
                    self.ctx.metrics.config_error(error.kind());
                    tracing::error!(container = name, %error, "cannot map container");
                }
                None
            }
        }
    }

    /// Routes a container event to its server's task; what it means is the task's decision.
    async fn on_event(&mut self, event: ContainerEvent) {
        let action = action_label(&event.action);
        self.ctx.metrics.docker_event(action);
        tracing::debug!(container = %event.name, action, time_nano = event.time_nano, "docker event");
        let Some(mapping) = self.map_container(&event.id, &event.name, &event.attributes) else {
            return;
        };
        let server = mapping.server.clone();
        self.ensure_task(&server, &mapping, Some(&event.id)).await;
        let Some(entry) = self.servers.get_mut(&server) else {
            return;
        };
        let is_current = entry
            .current_container
            .as_deref()
            .is_none_or(|current| current == event.id);
        if !is_current && entry.current_running {
            tracing::debug!(container = event.name, server = %server, action, "event of a replaced container ignored");
            return;
        }
        match &event.action {
            EventAction::Start => {
                entry.current_container = Some(event.id.clone());
                entry.current_running = true;
                self.containers.insert(
                    event.id.clone(),
                    KnownContainer {
                        name: event.name.clone(),
                        server: server.clone(),
                    },
                );
            }
            EventAction::Die { .. } | EventAction::Stop => entry.current_running = false,
            EventAction::Destroy => {
                entry.current_running = false;
                entry.current_container = None;
                self.containers.remove(&event.id);
            }
            _ => {}
        }
        let _ = entry.tx.send(ServerMsg::Event(event)).await;
    }

    /// Spawns the server's task on first sight. A container first seen through an event is
    /// read by the task itself (Docker and HAProxy), so routing never waits here.
    pub(super) async fn ensure_task(
        &mut self,
        server: &ServerId,
        mapping: &Mapping,
        container_id: Option<&str>,
    ) {
        if self.servers.contains_key(server) {
            return;
        }
        let snapshot = Arc::new(Mutex::new(ServerSnapshot::default()));
        let owned = self.ctx.store.get(server).await;
        let dynamic = self.ctx.store.is_dynamic(server).await;
        let tx = ServerTask::spawn(
            server.clone(),
            self.ctx.clone(),
            mapping.clone(),
            owned,
            dynamic,
            snapshot.clone(),
            self.shutdown.clone(),
        );
        if let Some(id) = container_id {
            let discovered = ServerMsg::Discovered {
                container_id: id.to_string(),
            };
            let _ = tx.send(discovered).await;
        }
        let entry = ServerEntry {
            tx,
            snapshot,
            mapping: mapping.clone(),
            current_container: container_id.map(str::to_string),
            current_running: container_id.is_some(),
        };
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
