//! The fleet budget in the controller's control requests: a drain of a coordinated backend
//! first takes a fleet slot in a task of its own
//! (`drain_after_slot`) — the hub never waits for etcd — then comes back to the hub as
//! `ControlRequest::DrainHoldingSlot` for the local budget and the drain itself.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::handle::{ControlError, ControlRequest, DrainReport, DrainRequest};
use super::routes::Routes;
use crate::drain::Trigger;
use crate::fleet_budget::{FleetBudget, SlotWait};
use crate::haproxy::ServerId;

type DrainReply = oneshot::Sender<Result<DrainReport, ControlError>>;

/// How a drain waits for a slot: a roll, `drain --wait` and the gate wait; `drain` refuses;
/// `--force` takes one regardless (the gate's own `force` only skips the local budget).
pub fn slot_wait(request: &DrainRequest, wait_timeout: Duration) -> SlotWait {
    match request.trigger {
        Trigger::Roll => SlotWait::Wait(wait_timeout),
        // The gate answers the engine's client within the drain timeout anyway.
        Trigger::Gate => SlotWait::Wait(request.timeout.min(wait_timeout)),
        _ if request.force => SlotWait::Take,
        _ if request.wait => SlotWait::Wait(request.timeout.min(wait_timeout)),
        _ => SlotWait::Refuse,
    }
}

/// Hands the drain back (`Some`) when its backend has no fleet budget; otherwise takes the slot
/// in a task and requeues the drain to the hub once it is held.
pub async fn drain_after_slot(
    routes: &mut Routes,
    requeue: &mpsc::Sender<ControlRequest>,
    request: DrainRequest,
    reply: DrainReply,
) -> Option<(DrainRequest, DrainReply)> {
    let Some(budget) = routes.ctx.fleet_budget.clone() else {
        return Some((request, reply));
    };
    let server = match routes.resolve(&request.target).await {
        Ok(server) => server,
        Err(error) => {
            let _ = reply.send(Err(error));
            return None;
        }
    };
    if !budget.coordinates(&server.backend) {
        return Some((request, reply));
    }
    let requeue = requeue.clone();
    tokio::spawn(async move {
        let taken = take(&budget, &server, &request).await;
        match taken {
            Ok(()) => {
                let holding = ControlRequest::DrainHoldingSlot { request, reply };
                if requeue.send(holding).await.is_err() {
                    budget.cancel(&server);
                }
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    });
    None
}

async fn take(
    budget: &FleetBudget,
    server: &ServerId,
    request: &DrainRequest,
) -> Result<(), ControlError> {
    let mode = slot_wait(request, budget.wait_timeout());
    budget
        .acquire(server, request.trigger.as_str(), mode)
        .await
        .map(|_| ())
        .map_err(|error| ControlError::FleetBudget(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Target;

    #[test]
    fn who_waits_for_a_slot() {
        let long = Duration::from_secs(300);
        let request = |trigger, wait, force| DrainRequest {
            target: Target::Container("c".into()),
            wait,
            timeout: Duration::from_secs(30),
            force,
            trigger,
            sticky: false,
        };
        let table = [
            (Trigger::Roll, false, false, SlotWait::Wait(long)),
            (
                Trigger::Gate,
                true,
                true,
                SlotWait::Wait(Duration::from_secs(30)),
            ),
            (
                Trigger::Api,
                true,
                false,
                SlotWait::Wait(Duration::from_secs(30)),
            ),
            (Trigger::Api, false, false, SlotWait::Refuse),
            (Trigger::Api, false, true, SlotWait::Take),
            (Trigger::Api, true, true, SlotWait::Take),
        ];
        for (trigger, wait, force, expected) in table {
            assert_eq!(
                slot_wait(&request(trigger, wait, force), long),
                expected,
                "{trigger:?} wait={wait} force={force}"
            );
        }
    }
}
