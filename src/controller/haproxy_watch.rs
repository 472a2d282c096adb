//! One watcher per HAProxy, off the hub: `show info` every [`RELOAD_POLL_INTERVAL`] notices a
//! reload (a new worker lost every runtime change) or a HAProxy that answers again, and asks the
//! hub for a reconciliation.
//!
//! Each HAProxy has its own task so that one that answers slowly, or not at all, costs its own
//! timeout only: the hub keeps routing events and the other watchers keep their pace. The probe
//! also keeps the fleet's [`Reachability`](super::reachability::Reachability) current for a
//! HAProxy that is down and otherwise skipped.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Context, RELOAD_POLL_INTERVAL};
use crate::shutdown::Shutdown;

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

/// Why a watcher asks for a reconciliation (the `why` of the log line).
pub type ReconcileReason = &'static str;

/// Starts one watcher per HAProxy; the receiver gets their reconciliation requests.
pub fn spawn_watchers(ctx: &Arc<Context>, shutdown: &Shutdown) -> mpsc::Receiver<ReconcileReason> {
    // A full queue already holds a pending reconciliation, which reads everything anew.
    let (tx, rx) = mpsc::channel(8);
    for index in 0..ctx.fleet.clients().len() {
        tokio::spawn(watch(ctx.clone(), index, tx.clone(), shutdown.clone()));
    }
    rx
}

async fn watch(
    ctx: Arc<Context>,
    index: usize,
    tx: mpsc::Sender<ReconcileReason>,
    mut shutdown: Shutdown,
) {
    let addr = ctx.fleet.addr(index);
    let mut worker: Option<WorkerIdentity> = None;
    let mut was_up = true;
    let mut tick = tokio::time::interval(RELOAD_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => break,
        }
        let result = ctx.fleet.info(index).await;
        let up = ctx.fleet.is_up(index);
        if up != was_up {
            if up {
                tracing::info!(haproxy = %addr, "HAProxy answers again; drains include it");
            } else {
                tracing::warn!(haproxy = %addr, "HAProxy is down: drains and restores go on without it until it answers");
            }
            was_up = up;
        }
        match result {
            // A worker on its way out (soft-stop after a reload) still answers a connection it
            // accepted: it says nothing about the worker that serves now.
            Ok(info) if info.stopping => {}
            Ok(info) => {
                ctx.metrics.set_haproxy_connected(&addr, true);
                let now = WorkerIdentity {
                    pid: info.pid,
                    uptime_sec: info.uptime_sec,
                };
                let reason = match worker {
                    None => Some("haproxy_connected"),
                    Some(before) if now.replaced(before) => {
                        ctx.metrics.reload_detected();
                        tracing::info!(haproxy = %addr, old_pid = before.pid, new_pid = now.pid, "HAProxy reload detected");
                        Some("haproxy_reload")
                    }
                    Some(_) => None,
                };
                worker = Some(now);
                if let Some(reason) = reason {
                    let _ = tx.try_send(reason);
                }
            }
            Err(error) => {
                if worker.take().is_some() {
                    tracing::warn!(haproxy = %addr, %error, "HAProxy runtime API unreachable; retrying");
                }
                ctx.metrics.set_haproxy_connected(&addr, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pid_or_an_uptime_that_went_back_is_a_new_worker() {
        let before = WorkerIdentity {
            pid: 10,
            uptime_sec: 100,
        };
        let same = WorkerIdentity {
            pid: 10,
            uptime_sec: 101,
        };
        assert!(!same.replaced(before));
        assert!(WorkerIdentity { pid: 11, ..same }.replaced(before));
        assert!(WorkerIdentity {
            pid: 10,
            uptime_sec: 3
        }
        .replaced(before));
    }
}
