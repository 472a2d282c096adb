//! Level-triggered reconciliation: list the containers, read every HAProxy, correct every
//! difference. Events are the fast path; this is the guarantee.
//!
//! It runs on start-up, whenever the Docker stream (re)connects, when a HAProxy reloads or comes
//! back, and every `reconcile_interval`. It never acts on partial truth: without a container list
//! or without any HAProxy answering, it does nothing.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::container_ref::ContainerRef;
use super::fleet::{group_states, merge};
use super::handle::{Owner, ServerView};
use super::hub::{Hub, KnownContainer, WorkerIdentity};
use super::server_msg::ServerMsg;
use super::snapshot::ServerSnapshot;
use crate::docker::ContainerInfo;
use crate::haproxy::{RowKind, ServerId};
use crate::mapping::Mapping;

impl Hub {
    pub(super) async fn reconcile(&mut self, why: &'static str) {
        let read_at = tokio::time::Instant::now();
        let containers = match self.ctx.docker.list_containers(true).await {
            Ok(list) => list,
            Err(error) => {
                self.ctx.metrics.set_docker_connected(false);
                tracing::warn!(%error, why, "reconciliation skipped: cannot list containers");
                return;
            }
        };
        let snapshots: Vec<_> = self.ctx.fleet.snapshots().await;
        let mut answered = Vec::new();
        for (client, result) in self.ctx.fleet.clients().iter().zip(snapshots) {
            let addr = client.addr().to_string();
            match result {
                Ok(snapshot) => {
                    self.ctx.metrics.set_haproxy_connected(&addr, true);
                    answered.push(snapshot);
                }
                Err(error) => {
                    self.ctx.metrics.set_haproxy_connected(&addr, false);
                    tracing::warn!(haproxy = %addr, %error, "HAProxy did not answer during reconciliation");
                }
            }
        }
        if answered.is_empty() {
            tracing::warn!(why, "reconciliation skipped: no HAProxy answered");
            return;
        }
        let grouped = group_states(&answered);
        let backends: HashSet<String> = answered
            .iter()
            .flat_map(|s| s.stats.iter())
            .filter(|r| r.kind == RowKind::Backend)
            .map(|r| r.proxy.clone())
            .collect();
        if self.backends.as_ref() != Some(&backends) {
            // A reload may have added the backend a container was skipped for.
            self.unmappable_reported.clear();
            self.backends = Some(backends);
        }

        // Containers removed while the event stream was down never sent `destroy`: forget them.
        let listed: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
        self.containers.retain(|id, _| listed.contains(id.as_str()));
        self.unmappable_reported
            .retain(|id| listed.contains(id.as_str()));

        // Each server's container: a running one wins over stopped leftovers.
        let mut wanted: HashMap<ServerId, (Mapping, Option<ContainerInfo>)> = HashMap::new();
        for info in containers {
            let Some(mapping) = self.map_container(&info.id, &info.name, &info.labels) else {
                continue;
            };
            let slot = wanted
                .entry(mapping.server.clone())
                .or_insert((mapping.clone(), None));
            let better = match &slot.1 {
                None => true,
                Some(current) => info.running && !current.running,
            };
            if better {
                *slot = (mapping, Some(info));
            }
        }
        // Servers haproxy-drain holds whose container is gone altogether.
        for (id, _) in self.ctx.store.all().await {
            wanted.entry(id.clone()).or_insert_with(|| {
                (
                    Mapping {
                        server: id,
                        port: None,
                        settings: self.ctx.config.defaults.clone(),
                    },
                    None,
                )
            });
        }

        for (server, (mapping, info)) in wanted {
            self.ensure_task(&server, &mapping, None).await;
            let observed = grouped.get(&server).and_then(|s| merge(s));
            let (container, running) = match &info {
                Some(info) => {
                    let known = KnownContainer {
                        name: info.name.clone(),
                        server: server.clone(),
                    };
                    self.containers.insert(info.id.clone(), known);
                    (Some(ContainerRef::from_info(info, &mapping)), info.running)
                }
                None => (None, false),
            };
            let Some(entry) = self.servers.get_mut(&server) else {
                continue;
            };
            entry.mapping = mapping.clone();
            entry.current_container = info.as_ref().map(|i| i.id.clone());
            entry.current_running = running;
            let sync = ServerMsg::Sync {
                mapping: Box::new(mapping),
                container,
                running,
                observed,
                read_at,
            };
            let _ = entry.tx.send(sync).await;
        }
        self.last_states = grouped;
        tracing::debug!(why, servers = self.servers.len(), "reconciled");
    }

    /// Notices HAProxy reloads (pid or uptime changed) and reconnects, and reconciles at once:
    /// a reload resets runtime weights, states, addresses and dynamic servers.
    pub(super) async fn watch_haproxy(&mut self) {
        let infos = self.ctx.fleet.infos().await;
        let mut reconcile = None;
        for (i, (client, result)) in self.ctx.fleet.clients().iter().zip(infos).enumerate() {
            let addr = client.addr().to_string();
            match result {
                Ok(info) => {
                    self.ctx.metrics.set_haproxy_connected(&addr, true);
                    let now = WorkerIdentity {
                        pid: info.pid,
                        uptime_sec: info.uptime_sec,
                    };
                    match self.haproxy_workers[i] {
                        None => reconcile = Some("haproxy_connected"),
                        Some(before) if now.replaced(before) => {
                            self.ctx.metrics.reload_detected();
                            tracing::info!(haproxy = %addr, old_pid = before.pid, new_pid = now.pid, "HAProxy reload detected");
                            reconcile = Some("haproxy_reload");
                        }
                        Some(_) => {}
                    }
                    self.haproxy_workers[i] = Some(now);
                }
                Err(error) => {
                    if self.haproxy_workers[i].take().is_some() {
                        tracing::warn!(haproxy = %addr, %error, "HAProxy runtime API unreachable; retrying");
                    }
                    self.ctx.metrics.set_haproxy_connected(&addr, false);
                }
            }
        }
        if let Some(why) = reconcile {
            self.reconcile(why).await;
        }
    }

    /// Every HAProxy server joined with its container and owner; the reads happen off the hub.
    pub(super) fn status_views(&self) -> impl Future<Output = Vec<ServerView>> + Send + 'static {
        let fleet = self.ctx.fleet.clone();
        let shared: HashMap<ServerId, Arc<Mutex<ServerSnapshot>>> = self
            .servers
            .iter()
            .map(|(id, e)| (id.clone(), e.snapshot.clone()))
            .collect();
        async move {
            let mut views: Vec<ServerView> = Vec::new();
            let mut index: HashMap<ServerId, usize> = HashMap::new();
            for snapshot in fleet.snapshots().await.into_iter().flatten() {
                let states: HashMap<ServerId, _> =
                    snapshot.states.iter().map(|s| (s.id.clone(), s)).collect();
                for row in snapshot.stats.iter().filter(|r| r.kind == RowKind::Server) {
                    let id = ServerId::new(row.proxy.clone(), row.name.clone());
                    if let Some(&i) = index.get(&id) {
                        views[i].sessions += row.sessions;
                        continue;
                    }
                    let state = states.get(&id);
                    let snap = shared
                        .get(&id)
                        .and_then(|s| s.lock().ok().map(|s| s.clone()));
                    let weight = row.user_weight.or(row.weight).unwrap_or(0);
                    let operator_out = state
                        .is_some_and(|s| s.admin.is_maint() || s.admin.is_drain())
                        || weight == 0;
                    let owner = match &snap {
                        Some(s) => s.owner,
                        None if operator_out => Owner::Operator,
                        None => Owner::None,
                    };
                    let (addr, port) = match row.addr.rsplit_once(':') {
                        Some((a, p)) => (a.trim_matches(['[', ']']).to_string(), p.parse().ok()),
                        None => (row.addr.clone(), None),
                    };
                    index.insert(id, views.len());
                    views.push(ServerView {
                        backend: row.proxy.clone(),
                        server: row.name.clone(),
                        container: snap.as_ref().and_then(|s| s.container.clone()),
                        addr,
                        port,
                        state: row.status_text.clone(),
                        weight,
                        initial_weight: state.map_or(weight, |s| s.initial_weight),
                        sessions: row.sessions,
                        check: row.check_status.clone(),
                        owner,
                        phase: snap.map_or("unmapped", |s| s.phase.as_str()).to_string(),
                    });
                }
            }
            views
        }
    }
}
