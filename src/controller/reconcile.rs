//! Level-triggered reconciliation: list the containers, read every HAProxy, correct every
//! difference. Events are the fast path; this is the guarantee.
//!
//! It runs on start-up, whenever the Docker stream (re)connects, when a HAProxy reloads or comes
//! back, and every `reconcile_interval`. It never acts on partial truth: without a container list
//! or without any HAProxy answering, it does nothing.

use std::collections::{HashMap, HashSet};

use super::container_ref::ContainerRef;
use super::fleet::{group_states, merge};
use super::routes::{KnownContainer, Routes};
use super::server_msg::ServerMsg;
use crate::docker::ContainerInfo;
use crate::haproxy::{RowKind, ServerId, ServerState};
use crate::mapping::Mapping;

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

/// Level-triggered correction and reload detection; what the last pass read.
pub struct Reconciler {
    /// `show servers state` of every HAProxy at the last pass, for the budget's fallback.
    pub last_states: HashMap<ServerId, Vec<ServerState>>,
    /// The worker each HAProxy answered from last time (`None`: not answering).
    haproxy_workers: Vec<Option<WorkerIdentity>>,
}

impl Reconciler {
    pub fn new(haproxies: usize) -> Self {
        Self {
            last_states: HashMap::new(),
            haproxy_workers: vec![None; haproxies],
        }
    }

    pub async fn reconcile(&mut self, routes: &mut Routes, why: &'static str) {
        let ctx = routes.ctx.clone();
        let read_at = tokio::time::Instant::now();
        let containers = match ctx.docker.list_containers(true).await {
            Ok(list) => list,
            Err(error) => {
                ctx.metrics.set_docker_connected(false);
                tracing::warn!(%error, why, "reconciliation skipped: cannot list containers");
                return;
            }
        };
        let snapshots: Vec<_> = ctx.fleet.snapshots().await;
        let mut answered = Vec::new();
        for (client, result) in ctx.fleet.clients().iter().zip(snapshots) {
            let addr = client.addr().to_string();
            match result {
                Ok(snapshot) => {
                    ctx.metrics.set_haproxy_connected(&addr, true);
                    answered.push(snapshot);
                }
                Err(error) => {
                    ctx.metrics.set_haproxy_connected(&addr, false);
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
        if routes.backends.as_ref() != Some(&backends) {
            // A reload may have added the backend a container was skipped for.
            routes.unmappable_reported.clear();
            routes.backends = Some(backends);
        }

        // Containers removed while the event stream was down never sent `destroy`: forget them.
        let listed: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
        routes
            .containers
            .retain(|id, _| listed.contains(id.as_str()));
        routes
            .unmappable_reported
            .retain(|id| listed.contains(id.as_str()));

        // Each server's container: a running one wins over stopped leftovers.
        let mut wanted: HashMap<ServerId, (Mapping, Option<ContainerInfo>)> = HashMap::new();
        for info in containers {
            let Some(mapping) = routes.map_container(&info.id, &info.name, &info.labels) else {
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
        for (id, _) in ctx.store.all().await {
            wanted.entry(id.clone()).or_insert_with(|| {
                (
                    Mapping {
                        server: id,
                        port: None,
                        settings: ctx.config.defaults.clone(),
                    },
                    None,
                )
            });
        }

        for (server, (mapping, info)) in wanted {
            routes.ensure_task(&server, &mapping, None).await;
            let observed = grouped.get(&server).and_then(|s| merge(s));
            let (container, running) = match &info {
                Some(info) => {
                    let known = KnownContainer {
                        name: info.name.clone(),
                        server: server.clone(),
                    };
                    routes.containers.insert(info.id.clone(), known);
                    (Some(ContainerRef::from_info(info, &mapping)), info.running)
                }
                None => (None, false),
            };
            let Some(entry) = routes.servers.get_mut(&server) else {
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
        tracing::debug!(why, servers = routes.servers.len(), "reconciled");
    }

    /// Notices HAProxy reloads (pid or uptime changed) and reconnects, and reconciles at once:
    /// a reload resets runtime weights, states, addresses and dynamic servers.
    pub async fn watch_haproxy(&mut self, routes: &mut Routes) {
        let ctx = routes.ctx.clone();
        let infos = ctx.fleet.infos().await;
        let mut reconcile = None;
        for (i, (client, result)) in ctx.fleet.clients().iter().zip(infos).enumerate() {
            let addr = client.addr().to_string();
            match result {
                Ok(info) => {
                    ctx.metrics.set_haproxy_connected(&addr, true);
                    let now = WorkerIdentity {
                        pid: info.pid,
                        uptime_sec: info.uptime_sec,
                    };
                    match self.haproxy_workers[i] {
                        None => reconcile = Some("haproxy_connected"),
                        Some(before) if now.replaced(before) => {
                            ctx.metrics.reload_detected();
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
                    ctx.metrics.set_haproxy_connected(&addr, false);
                }
            }
        }
        if let Some(why) = reconcile {
            self.reconcile(routes, why).await;
        }
    }
}
