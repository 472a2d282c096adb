//! [`FleetBudget`]: the controller's handle on the fleet budget. `acquire` takes a slot for a
//! drain (waiting, refusing or taking it regardless), `track` tells it which servers this
//! sidecar has, and the keeper (`keeper.rs`) keeps the lease and the slots in step with them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::FleetError;
use super::etcd::{unix_ms, EtcdSlots};
use super::hold::{Hold, Holds, LocalState};
use super::slots::{verdict, Holder, SlotVerdict};
use super::status::{BackendStatus, FleetStatus};
use crate::config::{Budget, FleetConfig, Unreachable};
use crate::haproxy::ServerId;
use crate::metrics::Metrics;

/// How often a waiting drain reads the slots again.
const WAIT_POLL: Duration = Duration::from_millis(200);
/// After a lost race for a slot.
const CONFLICT_PAUSE: Duration = Duration::from_millis(10);

/// Reads one server's state from the controller (its snapshot), without waiting.
pub type LocalProbe = Box<dyn Fn() -> LocalState + Send + Sync>;

/// What a drain does when the budget is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotWait {
    /// Wait up to this long for a slot (a roll, `drain --wait`, the Docker API gate).
    Wait(Duration),
    /// Refuse at once, naming the holders (`drain` without `--wait`).
    Refuse,
    /// Take it whatever the count (`drain --force`): it still counts.
    Take,
}

/// How a drain may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// A slot is held for the server (taken now, or already).
    Slot,
    /// The backend has no fleet budget.
    NotCoordinated,
    /// etcd could not be asked; the local budget alone decides (`on_unreachable = "local"`).
    Fallback,
}

pub struct FleetBudget {
    pub(super) config: FleetConfig,
    pub(super) etcd: EtcdSlots,
    pub(super) metrics: Arc<Metrics>,
    pub(super) holds: Mutex<Holds>,
    pub(super) lease: Mutex<Option<i64>>,
    pub(super) local: Mutex<BTreeMap<ServerId, LocalProbe>>,
    pub(super) reachable: AtomicBool,
}

impl std::fmt::Debug for FleetBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBudget")
            .field("host", &self.config.host)
            .field("etcd", &self.etcd)
            .finish_non_exhaustive()
    }
}

pub fn budget_text(budget: Budget) -> String {
    match budget {
        Budget::KeepOne => "keep-one".to_string(),
        Budget::Count(n) => n.to_string(),
        Budget::Percent(p) => format!("{p}%"),
    }
}

impl FleetBudget {
    pub fn new(config: FleetConfig, etcd: EtcdSlots, metrics: Arc<Metrics>) -> Self {
        for backend in config.budgets.keys() {
            metrics.fleet.declare_backend(backend);
        }
        Self {
            config,
            etcd,
            metrics,
            holds: Mutex::default(),
            lease: Mutex::default(),
            local: Mutex::default(),
            reachable: AtomicBool::new(true),
        }
    }

    pub fn host(&self) -> &str {
        &self.config.host
    }

    pub fn wait_timeout(&self) -> Duration {
        self.config.wait_timeout
    }

    pub fn coordinates(&self, backend: &str) -> bool {
        self.config.budgets.contains_key(backend)
    }

    /// The controller has a task for `server`; `probe` reads its state.
    pub fn track(&self, server: ServerId, probe: LocalProbe) {
        if let Ok(mut local) = self.local.lock() {
            local.insert(server, probe);
        }
    }

    pub(super) fn local_states(&self) -> BTreeMap<ServerId, LocalState> {
        match self.local.lock() {
            Ok(local) => local
                .iter()
                .map(|(id, probe)| (id.clone(), probe()))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Logs a change of etcd's reachability once, and sets the gauge.
    pub(super) fn note<T>(&self, result: &Result<T, FleetError>) {
        let ok = match result {
            Ok(_) => true,
            Err(error) if error.is_unreachable() => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "fleet budget: etcd unreachable; drains follow on_unreachable ({:?})", self.config.on_unreachable);
                }
                false
            }
            Err(_) => true,
        };
        if ok && !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(
                etcd = self.etcd.endpoints(),
                "fleet budget: etcd answers again"
            );
        }
        self.metrics.fleet.set_etcd_reachable(ok);
    }

    /// Takes a fleet slot for `server` before its drain. `reason` is recorded with the slot.
    pub async fn acquire(
        &self,
        server: &ServerId,
        reason: &str,
        mode: SlotWait,
    ) -> Result<Acquired, FleetError> {
        let Some(&budget) = self.config.budgets.get(&server.backend) else {
            return Ok(Acquired::NotCoordinated);
        };
        let started = Instant::now();
        let mut waited = false;
        loop {
            let attempt = self.try_once(server, budget, reason, mode).await;
            self.note(&attempt);
            let error = match attempt {
                Ok(true) => {
                    tracing::info!(server = %server, reason, waited_ms = started.elapsed().as_millis() as u64, "fleet budget: slot taken");
                    return Ok(Acquired::Slot);
                }
                // The slots changed between the read and the transaction: read again (a
                // moment later, so that the other writer's change has landed).
                Ok(false) => {
                    tokio::time::sleep(CONFLICT_PAUSE).await;
                    continue;
                }
                Err(error) => error,
            };
            let wait_left = match mode {
                SlotWait::Wait(limit) => limit.saturating_sub(started.elapsed()),
                _ => Duration::ZERO,
            };
            // `--force` goes on whatever etcd says; the slot is written by the keeper once it can be.
            let fall_back =
                self.config.on_unreachable == Unreachable::Local || mode == SlotWait::Take;
            if error.is_unreachable() && fall_back {
                self.metrics.fleet.fell_back(&server.backend);
                tracing::warn!(server = %server, %error, "fleet budget: etcd unreachable; the drain goes on under the local budget only");
                return Ok(Acquired::Fallback);
            }
            if wait_left.is_zero() {
                self.metrics.fleet.refused(&server.backend);
                return Err(match (error, mode) {
                    (FleetError::Full { holders, .. }, SlotWait::Wait(_)) => {
                        FleetError::WaitTimedOut {
                            backend: server.backend.clone(),
                            server: server.to_string(),
                            waited_ms: started.elapsed().as_millis() as u64,
                            holders,
                        }
                    }
                    (error, _) => error,
                });
            }
            if !waited {
                waited = true;
                self.metrics.fleet.waited(&server.backend);
                tracing::info!(server = %server, reason, %error, "fleet budget: waiting for a slot");
            }
            tokio::time::sleep(WAIT_POLL.min(wait_left)).await;
        }
    }

    /// One read and, if a slot is free, one transaction. `Ok(false)`: lost a race, read again.
    async fn try_once(
        &self,
        server: &ServerId,
        budget: Budget,
        reason: &str,
        mode: SlotWait,
    ) -> Result<bool, FleetError> {
        let held_here = self
            .holds
            .lock()
            .map(|holds| holds.get(server).is_some_and(|h| !h.releasing))
            .unwrap_or(false);
        if held_here {
            return Ok(true);
        }
        let lease = self.lease.lock().ok().and_then(|l| *l);
        let Some(lease) = lease else {
            return Err(FleetError::NoLease {
                endpoints: self.etcd.endpoints().to_string(),
            });
        };
        let host = self.config.host.as_str();
        let holder = Holder {
            host: host.to_string(),
            server: server.server.clone(),
            since_unix_ms: unix_ms(),
            reason: reason.to_string(),
        };
        let (backend, name) = (server.backend.as_str(), server.server.as_str());
        // A server already out costs no new slot: record the one it should hold anyway.
        let already_out = self.local_states().get(server) == Some(&LocalState::Out);
        let taken = if mode == SlotWait::Take || already_out {
            self.etcd
                .put_slot(backend, host, name, &holder, lease)
                .await?;
            true
        } else {
            let (view, revision) = self.etcd.read_backend(backend).await?;
            match verdict(budget, &view, host, name) {
                SlotVerdict::AlreadyHeld => true,
                SlotVerdict::Free => {
                    self.etcd
                        .try_take(backend, host, name, &holder, lease, revision)
                        .await?
                }
                SlotVerdict::Full { max_out, held } => {
                    return Err(FleetError::Full {
                        backend: backend.to_string(),
                        server: server.to_string(),
                        max_out,
                        held,
                        holders: view.holders_text(),
                    })
                }
            }
        };
        if taken {
            if let Ok(mut holds) = self.holds.lock() {
                holds
                    .entry(server.clone())
                    // A release in flight may delete the key after this: write it again.
                    .and_modify(|h| {
                        h.releasing = false;
                        h.written = false;
                    })
                    .or_insert_with(|| {
                        Hold::reserved(reason, Instant::now(), holder.since_unix_ms)
                    });
            }
        }
        Ok(taken)
    }

    /// The drain a slot was taken for did not start: give the slot back unless the server is
    /// out anyway (the keeper deletes it at its next pass).
    pub fn cancel(&self, server: &ServerId) {
        let out = self.local_states().get(server) == Some(&LocalState::Out);
        if let Ok(mut holds) = self.holds.lock() {
            if let Some(hold) = holds.get_mut(server) {
                if !out && !hold.seen_out {
                    hold.releasing = true;
                }
            }
        }
    }

    /// Every coordinated backend's budget and holders, read from etcd now.
    pub async fn status(&self) -> FleetStatus {
        let mut status = FleetStatus {
            host: self.config.host.clone(),
            endpoints: self.etcd.endpoints().to_string(),
            backends: Vec::new(),
            error: None,
        };
        for (backend, budget) in &self.config.budgets {
            match self.etcd.read_backend(backend).await {
                Ok((view, _)) => status.backends.push(BackendStatus {
                    backend: backend.clone(),
                    budget: budget_text(*budget),
                    servers: view.total_servers(),
                    max_out: view.max_out(*budget),
                    holders: view.holders,
                }),
                Err(error) => {
                    status.error = Some(error.to_string());
                    status.backends.clear();
                    break;
                }
            }
        }
        status
    }
}
