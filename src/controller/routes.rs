//! The routing table: which container is behind which server, and each server's task.
//!
//! The hub and reconciliation fill it; control requests resolve their targets through it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fleet_track;
use super::handle::{ControlError, Target};
use super::server_msg::ServerMsg;
use super::server_task::ServerTask;
use super::snapshot::ServerSnapshot;
use super::Context;
use crate::docker::{ContainerEvent, EventAction};
use crate::haproxy::ServerId;
use crate::mapping::{self, Mapping};
use crate::shutdown::Shutdown;

pub struct ServerEntry {
    pub tx: mpsc::Sender<ServerMsg>,
    /// What the server's task publishes after each decision.
    pub snapshot: Arc<Mutex<ServerSnapshot>>,
    pub mapping: Mapping,
    /// The container currently behind this server; events of older containers are stale
    /// while it runs (a recreate: the old one's `destroy` comes after the new one's `start`).
    pub current_container: Option<String>,
    pub current_running: bool,
    /// When the hub last routed an event of this server's containers: a reconciliation read
    /// before it leaves the fields above alone.
    pub routed_at: Option<Instant>,
}

/// A container the hub routes: its name (control requests name containers) and its server.
pub struct KnownContainer {
    pub name: String,
    pub server: ServerId,
    /// When it was last seen (an event, a listing): a listing read before that does not forget it.
    pub routed_at: Instant,
}

pub struct Routes {
    pub ctx: Arc<Context>,
    shutdown: Shutdown,
    pub servers: HashMap<ServerId, ServerEntry>,
    pub containers: HashMap<String, KnownContainer>,
    /// Containers whose labels or backend were reported bad once (not again each pass).
    pub unmappable_reported: HashSet<String>,
    /// Backends any HAProxy has, from the last reconciliation (`None` before the first).
    pub backends: Option<HashSet<String>>,
}

impl Routes {
    pub fn new(ctx: Arc<Context>, shutdown: Shutdown) -> Self {
        Self {
            ctx,
            shutdown,
            servers: HashMap::new(),
            containers: HashMap::new(),
            unmappable_reported: HashSet::new(),
            backends: None,
        }
    }

    /// The server a container maps to, reporting a bad label once per container.
    pub fn map_container(
        &mut self,
        id: &str,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Option<Mapping> {
        if crate::docker::surge::is_swap_name(name) {
            // A surge copy or a container set aside: it shares the labels of the container it
            // stands beside, and must not take that container's server.
            return None;
        }
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

    /// Spawns the server's task on first sight. A container first seen through an event is
    /// read by the task itself (Docker and HAProxy), so routing never waits here.
    pub async fn ensure_task(
        &mut self,
        server: &ServerId,
        mapping: &Mapping,
        container_id: Option<&str>,
    ) {
        if self.servers.contains_key(server) {
            return;
        }
        let snapshot = Arc::new(Mutex::new(ServerSnapshot::default()));
        fleet_track::track(&self.ctx, server, &snapshot);
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
            routed_at: container_id.map(|_| Instant::now()),
        };
        self.servers.insert(server.clone(), entry);
    }

    /// The server a target names; a container the hub has not seen yet (just created) is looked
    /// up in Docker before the answer is "not found".
    pub async fn resolve(&mut self, target: &Target) -> Result<ServerId, ControlError> {
        if let Ok(server) = self.resolve_known(target) {
            return Ok(server);
        }
        if let Target::Container(name) = target {
            if let Ok(Some(info)) = self.ctx.docker.inspect(name).await {
                if let Some(mapping) = self.map_container(&info.id, &info.name, &info.labels) {
                    let server = mapping.server.clone();
                    self.ensure_task(&server, &mapping, Some(&info.id)).await;
                    let known = KnownContainer {
                        name: info.name.clone(),
                        server: server.clone(),
                        routed_at: Instant::now(),
                    };
                    self.containers.insert(info.id.clone(), known);
                    return Ok(server);
                }
            }
        }
        Err(ControlError::NotFound(target.to_string()))
    }

    /// Makes the running container now under `name` the one behind its server (a surge copy
    /// swapped in: it started under another name, so no event said so) and hands its server a
    /// `start` of it, which restores the server with the copy's address, a `healthy`, and, when
    /// the copy's temporary server passes HAProxy's check right now, that check.
    pub async fn adopt(&mut self, name: &str) -> Result<ServerId, ControlError> {
        let not_found = || ControlError::NotFound(format!("container {name}"));
        let info = match self.ctx.docker.inspect(name).await {
            Ok(Some(info)) if info.running => info,
            Ok(_) => return Err(not_found()),
            Err(error) => return Err(ControlError::Conflict(error.to_string())),
        };
        let mapping = self
            .map_container(&info.id, &info.name, &info.labels)
            .ok_or_else(not_found)?;
        let server = mapping.server.clone();
        // The temporary server has the copy's address and HAProxy checks it every 100 ms.
        let temp = super::surge::temp_server(&server);
        let checked = self.ctx.fleet.check_passed(&temp).await.unwrap_or(false);
        self.ensure_task(&server, &mapping, Some(&info.id)).await;
        self.containers.retain(|_, known| known.name != info.name);
        let known = KnownContainer {
            name: info.name.clone(),
            server: server.clone(),
            routed_at: Instant::now(),
        };
        self.containers.insert(info.id.clone(), known);
        let entry = self.servers.get_mut(&server).ok_or_else(not_found)?;
        entry.current_container = Some(info.id.clone());
        entry.current_running = true;
        entry.routed_at = Some(Instant::now());
        let start = ContainerEvent {
            id: info.id.clone(),
            name: info.name.clone(),
            action: EventAction::Start,
            attributes: info.labels.clone(),
            time_nano: crate::controller::clock::clock().unix_ms as i64 * 1_000_000,
        };
        // The copy passed its own health check and HAProxy's before the swap (a surge admits it
        // first): its gate is told so instead of waiting for Docker's next interval, and, while
        // its temporary server's check still passes, so is HAProxy's check of the server.
        let healthy = ContainerEvent {
            action: EventAction::Healthy,
            ..start.clone()
        };
        let mut messages = vec![ServerMsg::Event(start), ServerMsg::Event(healthy)];
        if checked {
            messages.push(ServerMsg::Checked);
        }
        for message in messages {
            entry
                .tx
                .send(message)
                .await
                .map_err(|_| ControlError::Unavailable)?;
        }
        Ok(server)
    }

    fn resolve_known(&self, target: &Target) -> Result<ServerId, ControlError> {
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
}
