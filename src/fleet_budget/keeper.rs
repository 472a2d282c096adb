//! The keeper: one task per sidecar that holds its etcd lease (granted, kept alive, granted
//! again when etcd forgot it) and keeps this host's slots and server counts in step with its
//! servers (`hold::step`), every [`TICK`].
//!
//! A dead sidecar stops renewing: its lease expires after `lease_ttl` and etcd deletes its
//! slots and server counts with it. A restarted sidecar adopts the slots its host still holds
//! and releases those whose server is back in rotation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::FleetBudget;
use super::etcd::unix_ms;
use super::hold::{self, Hold, LocalState, SlotChange};
use super::slots::Holder;
use crate::haproxy::ServerId;
use crate::shutdown::Shutdown;

/// How often the slots are brought in line with the servers.
pub const TICK: Duration = Duration::from_millis(200);
/// How long a slot taken for a drain waits for its server to go out.
const RESERVATION_GRACE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct KeeperState {
    lease: Option<i64>,
    renewed_at: Option<Instant>,
    adopted: bool,
    /// Server counts written under the current lease.
    counts: BTreeMap<String, usize>,
}

pub async fn run(budget: Arc<FleetBudget>, mut shutdown: Shutdown) {
    let mut state = KeeperState::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => break,
        }
        keep_lease(&budget, &mut state).await;
        sync_slots(&budget, state.lease).await;
        if let Some(lease) = state.lease {
            publish_counts(&budget, &mut state, lease).await;
        }
    }
    // No revoke: servers out of rotation now stay counted until the lease runs out, as after
    // a crash; a restart within the TTL adopts them.
}

async fn keep_lease(budget: &FleetBudget, state: &mut KeeperState) {
    let ttl = budget.config.lease_ttl;
    match state.lease {
        None => {
            let granted = budget.etcd.grant(ttl).await;
            budget.note(&granted);
            let Ok(lease) = granted else { return };
            tracing::info!(
                lease,
                ttl_s = ttl.as_secs(),
                host = budget.host(),
                "fleet budget: lease granted"
            );
            state.lease = Some(lease);
            state.renewed_at = Some(Instant::now());
            state.counts.clear();
            if let Ok(mut holds) = budget.holds.lock() {
                holds.values_mut().for_each(|h| h.written = false);
            }
            if !state.adopted {
                state.adopted = adopt(budget).await;
            }
        }
        Some(lease) => {
            if state.renewed_at.is_some_and(|at| at.elapsed() < ttl / 3) {
                return;
            }
            let renewed = budget.etcd.keep_alive(lease).await;
            budget.note(&renewed);
            match renewed {
                Ok(true) => state.renewed_at = Some(Instant::now()),
                Ok(false) => {
                    tracing::warn!(lease, "fleet budget: etcd forgot the lease (expired while unreachable?); granting a new one and writing the slots again");
                    state.lease = None;
                }
                // Unreachable: the lease may still be alive; try again next tick.
                Err(_) => {}
            }
        }
    }
    if let Ok(mut current) = budget.lease.lock() {
        *current = state.lease;
    }
}

/// The slots this host held before a restart; `false` when etcd could not be read.
async fn adopt(budget: &FleetBudget) -> bool {
    let own = budget.etcd.own_slots(budget.host()).await;
    budget.note(&own);
    let Ok(own) = own else { return false };
    let now = Instant::now();
    if let Ok(mut holds) = budget.holds.lock() {
        for (
            backend,
            Holder {
                server,
                since_unix_ms,
                reason,
                ..
            },
        ) in own
        {
            if budget.coordinates(&backend) {
                tracing::info!(
                    backend,
                    server,
                    reason,
                    "fleet budget: adopting a slot this host held before its restart"
                );
                holds
                    .entry(ServerId::new(backend, server))
                    .or_insert_with(|| Hold::adopted(&reason, now, since_unix_ms));
            }
        }
    }
    true
}

async fn sync_slots(budget: &FleetBudget, lease: Option<i64>) {
    let local: BTreeMap<ServerId, LocalState> = budget
        .local_states()
        .into_iter()
        .filter(|(id, _)| budget.coordinates(&id.backend))
        .collect();
    let changes = match budget.holds.lock() {
        Ok(mut holds) => hold::step(
            &mut holds,
            &local,
            Instant::now(),
            unix_ms(),
            RESERVATION_GRACE,
        ),
        Err(_) => return,
    };
    let host = budget.host().to_string();
    for change in changes {
        match change {
            SlotChange::Put(id) => {
                let Some(lease) = lease else { continue };
                let holder = budget.holds.lock().ok().and_then(|holds| {
                    holds.get(&id).map(|h| Holder {
                        host: host.clone(),
                        server: id.server.clone(),
                        since_unix_ms: h.since_unix_ms,
                        reason: h.reason.clone(),
                    })
                });
                let Some(holder) = holder else { continue };
                let put = budget
                    .etcd
                    .put_slot(&id.backend, &host, &id.server, &holder, lease)
                    .await;
                budget.note(&put);
                if put.is_ok() {
                    tracing::info!(server = %id, reason = holder.reason, "fleet budget: slot written");
                    if let Ok(mut holds) = budget.holds.lock() {
                        if let Some(hold) = holds.get_mut(&id) {
                            hold.written = true;
                        }
                    }
                }
            }
            SlotChange::Delete(id) => {
                let deleted = budget
                    .etcd
                    .delete_slot(&id.backend, &host, &id.server)
                    .await;
                budget.note(&deleted);
                if deleted.is_ok() {
                    tracing::info!(server = %id, "fleet budget: slot released");
                    if let Ok(mut holds) = budget.holds.lock() {
                        if holds.get(&id).is_some_and(|h| h.releasing) {
                            holds.remove(&id);
                        }
                    }
                }
            }
        }
    }
    let held: BTreeMap<String, usize> = match budget.holds.lock() {
        Ok(holds) => holds.keys().fold(BTreeMap::new(), |mut acc, id| {
            *acc.entry(id.backend.clone()).or_default() += 1;
            acc
        }),
        Err(_) => return,
    };
    for backend in budget.config.budgets.keys() {
        budget
            .metrics
            .fleet
            .set_slots_held(backend, held.get(backend).copied().unwrap_or(0));
    }
}

/// Each coordinated backend's server count on this host, for percentage budgets.
async fn publish_counts(budget: &FleetBudget, state: &mut KeeperState, lease: i64) {
    let local = budget.local_states();
    for backend in budget.config.budgets.keys() {
        let count = local.keys().filter(|id| &id.backend == backend).count();
        if state.counts.get(backend) == Some(&count) {
            continue;
        }
        let put = budget
            .etcd
            .put_host(backend, budget.host(), count, lease)
            .await;
        budget.note(&put);
        if put.is_ok() {
            state.counts.insert(backend.clone(), count);
        }
    }
}
