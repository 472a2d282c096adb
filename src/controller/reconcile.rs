//! Level-triggered reconciliation: list the containers, read every HAProxy, correct every
//! difference. Events are the fast path; this is the guarantee.
//!
//! It runs on start-up, whenever the Docker stream (re)connects, when a HAProxy reloads or comes
//! back, and every `reconcile_interval`. It never acts on partial truth: without a container list
//! or without any HAProxy answering, it does nothing. The reads ([`Truth::read`]) run in a task of
//! their own, so a slow `docker ps` or HAProxy never holds up the hub's routing of events; the
//! hub applies what they read ([`Reconciler::apply`]), skipping servers it routed an event for
//! since.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::time::Instant;

use super::container_ref::ContainerRef;
use super::fleet::{group_states, merge, Snapshot};
use super::routes::{KnownContainer, Routes};
use super::server_msg::ServerMsg;
use super::Context;
use crate::docker::ContainerInfo;
use crate::haproxy::{RowKind, ServerId, ServerState};
use crate::mapping::Mapping;

/// Level-triggered correction; what the last pass read.
#[derive(Default)]
pub struct Reconciler {
    /// `show servers state` of every HAProxy at the last pass, for the budget's fallback.
    pub last_states: HashMap<ServerId, Vec<ServerState>>,
}

/// What one pass read, off the hub: the container list and every HAProxy that answered.
pub struct Truth {
    pub why: &'static str,
    /// Taken before either read: a server whose events the hub routed later keeps its routes,
    /// and its task skips the pass (`ServerMsg::Sync::read_at`).
    pub read_at: Instant,
    containers: Vec<ContainerInfo>,
    answered: Vec<Snapshot>,
}

impl Truth {
    /// Lists the containers and reads every HAProxy that is up; `None` (logged) when either
    /// source has nothing to say, since a pass never acts on partial truth.
    pub async fn read(ctx: Arc<Context>, why: &'static str) -> Option<Truth> {
        let read_at = Instant::now();
        let containers = match ctx.docker.list_containers(true).await {
            Ok(list) => list,
            Err(error) => {
                ctx.metrics.set_docker_connected(false);
                tracing::warn!(%error, why, "reconciliation skipped: cannot list containers");
                return None;
            }
        };
        let mut answered = Vec::new();
        // A HAProxy that is down is not read (its watcher reports it); one that answers again
        // asks for a pass of its own.
        for (index, result) in ctx.fleet.snapshots().await {
            let addr = ctx.fleet.addr(index);
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
            return None;
        }
        Some(Truth {
            why,
            read_at,
            containers,
            answered,
        })
    }
}

impl Reconciler {
    /// Applies one pass in the hub: routes updated, one `ServerMsg::Sync` per server.
    pub async fn apply(&mut self, routes: &mut Routes, truth: Truth) {
        let Truth {
            why,
            read_at,
            containers,
            answered,
        } = truth;
        let ctx = routes.ctx.clone();
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
            .retain(|id, known| listed.contains(id.as_str()) || known.routed_at > read_at);
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
            if routes
                .servers
                .get(&server)
                .is_none_or(|entry| entry.routed_at.is_some_and(|at| at > read_at))
            {
                // An event routed since the read is fresher than this pass.
                continue;
            }
            let observed = grouped.get(&server).and_then(|s| merge(s));
            let (container, running) = match &info {
                Some(info) => {
                    let known = KnownContainer {
                        name: info.name.clone(),
                        server: server.clone(),
                        routed_at: read_at,
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
        ctx.metrics.reconciled();
        // From the start of the reads to the last server's Sync: the bench's reconciliation time.
        let elapsed_us = u64::try_from(read_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::debug!(
            why,
            servers = routes.servers.len(),
            elapsed_us,
            "reconciled"
        );
    }
}
