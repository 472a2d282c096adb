//! `status`: every HAProxy server joined with its container and owner.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::handle::{Owner, ServerView};
use super::routes::Routes;
use super::snapshot::ServerSnapshot;
use crate::haproxy::{RowKind, ServerId};

/// Every HAProxy server joined with its container and owner; the reads happen off the hub.
pub fn status_views(routes: &Routes) -> impl Future<Output = Vec<ServerView>> + Send + 'static {
    let fleet = routes.ctx.fleet.clone();
    let shared: HashMap<ServerId, Arc<Mutex<ServerSnapshot>>> = routes
        .servers
        .iter()
        .map(|(id, e)| (id.clone(), e.snapshot.clone()))
        .collect();
    async move {
        let mut views: Vec<ServerView> = Vec::new();
        let mut index: HashMap<ServerId, usize> = HashMap::new();
        for (_, snapshot) in fleet.snapshots().await {
            let Ok(snapshot) = snapshot else { continue };
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
                let operator_out =
                    state.is_some_and(|s| s.admin.is_maint() || s.admin.is_drain()) || weight == 0;
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
