//! Control requests in the hub: resolve the target, check the availability budget, start the
//! drain or ready, and hand the waiting to a small task so the hub never blocks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::fleet_slot;
use super::handle::{
    ControlError, ControlRequest, DrainReport, DrainRequest, ReadyReport, ReadyRequest, Target,
};
use super::reconcile::Reconciler;
use super::routes::Routes;
use super::server_msg::{DrainOutcome, ServerMsg};
use super::snapshot::ServerSnapshot;
use super::status::status_views;
use super::surge;
use crate::drain::budget::{self, BudgetCount, BudgetVerdict};
use crate::drain::{DrainResult, Input};
use crate::haproxy::{AdminState, Command, OpState, Reply, ServerId, ServerState};

/// `requeue` brings a drain back to the hub once its fleet slot is held (`fleet_slot`).
pub async fn on_control(
    routes: &mut Routes,
    reconciler: &Reconciler,
    requeue: &mpsc::Sender<ControlRequest>,
    request: ControlRequest,
) {
    match request {
        ControlRequest::Status { reply } => {
            let views = status_views(routes);
            tokio::spawn(async move {
                let _ = reply.send(views.await);
            });
        }
        ControlRequest::Drain { request, reply } => {
            let Some((request, reply)) =
                fleet_slot::drain_after_slot(routes, requeue, request, reply).await
            else {
                return;
            };
            let result = start_drain(routes, reconciler, request).await;
            match result {
                Ok(wait) => {
                    tokio::spawn(async move {
                        let _ = reply.send(wait.await);
                    });
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            }
        }
        ControlRequest::Ready { request, reply } => match start_ready(routes, request).await {
            Ok(wait) => {
                tokio::spawn(async move {
                    let _ = reply.send(wait.await);
                });
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        },
        ControlRequest::SurgeAdd {
            container,
            copy_id,
            timeout,
            reply,
        } => {
            let target = Target::Container(container);
            let server = match routes.resolve(&target).await {
                Ok(server) => server,
                Err(error) => {
                    let _ = reply.send(Err(error));
                    return;
                }
            };
            let Some(mapping) = routes.servers.get(&server).map(|e| e.mapping.clone()) else {
                let _ = reply.send(Err(ControlError::NotFound(target.to_string())));
                return;
            };
            let ctx = routes.ctx.clone();
            tokio::spawn(async move {
                let added = surge::add_temp_server(&ctx, &server, &mapping, &copy_id, timeout);
                let _ = reply.send(added.await);
            });
        }
        ControlRequest::SurgeRemove {
            server,
            timeout,
            reply,
        } => {
            let ctx = routes.ctx.clone();
            tokio::spawn(async move {
                let temp = surge::temp_server(&server);
                let _ = reply.send(surge::remove_temp_server(&ctx, &temp, timeout).await);
            });
        }
        ControlRequest::Adopt { container, reply } => {
            let _ = reply.send(routes.adopt(&container).await);
        }
        ControlRequest::DrainHoldingSlot { request, reply } => {
            let target = request.target.clone();
            match start_drain(routes, reconciler, request).await {
                Ok(wait) => {
                    tokio::spawn(async move {
                        let _ = reply.send(wait.await);
                    });
                }
                Err(error) => {
                    let budget = routes.ctx.fleet_budget.clone();
                    if let (Some(budget), Ok(server)) = (budget, routes.resolve(&target).await) {
                        budget.cancel(&server);
                    }
                    let _ = reply.send(Err(error));
                }
            }
        }
        ControlRequest::FleetStatus { reply } => {
            let budget = routes.ctx.fleet_budget.clone();
            tokio::spawn(async move {
                let status = match budget {
                    Some(budget) => Some(budget.status().await),
                    None => None,
                };
                let _ = reply.send(status);
            });
        }
    }
}

/// Checks the budget, sends the drain, and returns the future that waits for its end.
async fn start_drain(
    routes: &mut Routes,
    reconciler: &Reconciler,
    request: DrainRequest,
) -> Result<impl std::future::Future<Output = Result<DrainReport, ControlError>>, ControlError> {
    let server = routes.resolve(&request.target).await?;
    if !request.force {
        check_budget(routes, reconciler, &server).await?;
    }
    let entry = routes
        .servers
        .get(&server)
        .ok_or_else(|| ControlError::NotFound(request.target.to_string()))?;
    if let Ok(mut shared) = entry.snapshot.lock() {
        shared.in_rotation = false;
    }
    let container = entry
        .current_container
        .as_ref()
        .and_then(|id| routes.containers.get(id))
        .map(|c| c.name.clone());
    let (tx, rx) = oneshot::channel();
    // The task adds the stop request a roll's drain carries (it knows the container).
    let input = Input::Stopping {
        trigger: request.trigger,
        sticky: request.sticky,
        timeout: Some(request.timeout),
        stop: None,
    };
    entry
        .tx
        .send(ServerMsg::Drain {
            input,
            waiter: Some(tx),
        })
        .await
        .map_err(|_| ControlError::Unavailable)?;
    let started = Instant::now();
    let wait = request.wait;
    let timeout = request.timeout + Duration::from_secs(2);
    Ok(async move {
        let report = |drained: bool, sessions_left: u64| DrainReport {
            server: server.clone(),
            container: container.clone(),
            drained,
            sessions_left,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        if !wait {
            return Ok(report(false, 0));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(DrainOutcome::Finished {
                result: DrainResult::TimedOut,
                sessions_left,
            })) => Err(ControlError::DrainTimeout {
                server: server.clone(),
                sessions_left,
                waited_ms: started.elapsed().as_millis() as u64,
            }),
            Ok(Ok(DrainOutcome::Finished { sessions_left, .. })) => {
                Ok(report(sessions_left == 0, sessions_left))
            }
            Ok(Ok(DrainOutcome::AlreadyOut)) => Ok(report(true, 0)),
            Ok(Ok(DrainOutcome::HeldByOperator)) => Err(ControlError::Conflict(format!(
                "{server} is held out of rotation by an operator; haproxy-drain leaves it alone"
            ))),
            Ok(Err(_)) => Err(ControlError::Unavailable),
            Err(_) => Err(ControlError::DrainTimeout {
                server: server.clone(),
                sessions_left: 0,
                waited_ms: started.elapsed().as_millis() as u64,
            }),
        }
    })
}

async fn start_ready(
    routes: &mut Routes,
    request: ReadyRequest,
) -> Result<impl std::future::Future<Output = Result<ReadyReport, ControlError>>, ControlError> {
    let server = routes.resolve(&request.target).await?;
    let entry = routes
        .servers
        .get(&server)
        .ok_or_else(|| ControlError::NotFound(request.target.to_string()))?;
    let container = entry
        .current_container
        .as_ref()
        .and_then(|id| routes.containers.get(id))
        .map(|c| c.name.clone());
    let (tx, rx) = oneshot::channel();
    let waiter = request.wait.then_some(tx);
    entry
        .tx
        .send(ServerMsg::Ready {
            waiter,
            withdraw_stop: request.withdraw_stop,
        })
        .await
        .map_err(|_| ControlError::Unavailable)?;
    let shared = entry.snapshot.clone();
    let started = Instant::now();
    Ok(async move {
        let in_rotation =
            |shared: &Mutex<ServerSnapshot>| shared.lock().map(|s| s.in_rotation).unwrap_or(false);
        if !request.wait {
            return Ok(ReadyReport {
                server,
                container,
                in_rotation: in_rotation(&shared),
                elapsed_ms: 0,
            });
        }
        match tokio::time::timeout(request.timeout, rx).await {
            Ok(Ok(())) => Ok(ReadyReport {
                server,
                container,
                in_rotation: true,
                elapsed_ms: started.elapsed().as_millis() as u64,
            }),
            Ok(Err(_)) => Err(ControlError::Unavailable),
            Err(_) => {
                let phase = shared.lock().map_or("unknown", |s| s.phase.as_str());
                Err(ControlError::ReadyTimeout {
                    server,
                    waited_ms: started.elapsed().as_millis() as u64,
                    reason: format!(
                        "still {phase}: the container is not running or not healthy yet"
                    ),
                })
            }
        }
    })
}

/// Refuses a drain that would hold more of the backend out than its budget allows. Reads
/// the backend fresh: a server that HAProxy reports DOWN is not "ready", whatever we think.
async fn check_budget(
    routes: &Routes,
    reconciler: &Reconciler,
    target: &ServerId,
) -> Result<(), ControlError> {
    let command = Command::ShowServersState(Some(target.backend.clone()));
    let mut fresh: HashMap<ServerId, Vec<ServerState>> = HashMap::new();
    for (_, reply) in routes.ctx.fleet.apply(&command).await {
        if let Ok(Reply::ServersState(states)) = reply {
            for state in states {
                fresh.entry(state.id.clone()).or_default().push(state);
            }
        }
    }
    let states = if fresh.is_empty() {
        &reconciler.last_states
    } else {
        &fresh
    };
    let up = |id: &ServerId| {
        states.get(id).is_some_and(|all| {
            all.iter()
                // A server in `slowstart` reports STARTING while it already takes traffic.
                .all(|s| matches!(s.op_state, OpState::Running | OpState::Starting) && s.weight > 0)
        })
    };
    let in_rotation = |id: &ServerId| match routes.servers.get(id) {
        Some(entry) => {
            entry
                .snapshot
                .lock()
                .map(|s| s.in_rotation)
                .unwrap_or(false)
                && up(id)
        }
        None => {
            up(id)
                && states.get(id).is_some_and(|all| {
                    all.iter()
                        .all(|s| s.admin.as_admin_state() == AdminState::Ready)
                })
        }
    };
    let backend: Vec<&ServerId> = states
        .keys()
        .filter(|id| id.backend == target.backend)
        .collect();
    let total = backend.len().max(1);
    let count = BudgetCount {
        total,
        ready: backend.iter().filter(|id| in_rotation(id)).count(),
        target_in_rotation: in_rotation(target),
        max_out: routes.ctx.config.budget_for(&target.backend).max_out(total),
    };
    match budget::verdict(count) {
        BudgetVerdict::Allowed => Ok(()),
        BudgetVerdict::Refused {
            ready_after,
            max_out,
        } => Err(ControlError::Budget {
            server: target.clone(),
            backend: target.backend.clone(),
            ready_after,
            max_out,
        }),
    }
}
