//! Every server's state, as the fleet budget's keeper reads it: its phase, from the snapshot
//! its task keeps, so the keeper never asks the task or the hub.

use std::sync::{Arc, Mutex};

use super::snapshot::ServerSnapshot;
use super::Context;
use crate::drain::PhaseName;
use crate::fleet_budget::LocalState;
use crate::haproxy::ServerId;

/// Lets the keeper read the server's phase from its snapshot.
pub fn track(ctx: &Context, server: &ServerId, snapshot: &Arc<Mutex<ServerSnapshot>>) {
    let Some(budget) = &ctx.fleet_budget else {
        return;
    };
    let snapshot = snapshot.clone();
    budget.track(
        server.clone(),
        Box::new(move || {
            snapshot
                .lock()
                .map_or(LocalState::Unknown, |s| local_state(s.phase))
        }),
    );
}

/// Out of rotation for the fleet budget: any phase but serving and not-yet-known.
pub fn local_state(phase: PhaseName) -> LocalState {
    match phase {
        PhaseName::InRotation => LocalState::InRotation,
        PhaseName::Unknown => LocalState::Unknown,
        // Draining, held, gating, warming, or an operator's MAINT/DRAIN.
        _ => LocalState::Out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_as_the_keeper_sees_them() {
        use PhaseName::*;
        let table = [
            (InRotation, LocalState::InRotation),
            (Unknown, LocalState::Unknown),
            (Operator, LocalState::Out),
            (Draining, LocalState::Out),
            (Held, LocalState::Out),
            (Gating, LocalState::Out),
            (Warming, LocalState::Out),
        ];
        for (phase, expected) in table {
            assert_eq!(local_state(phase), expected, "{phase}");
        }
    }
}
