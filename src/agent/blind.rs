//! Pull mode without any socket: the only view of HAProxy is what the agent told it. A server
//! HAProxy asked about exists there with the state of its last answer; weights are counted in
//! percent of the initial weight (100), which is how the agent says them anyway. Pure.

use crate::drain::agent_answer::AgentAnswer;
use crate::haproxy::{
    AdminFlags, AdminState, OpState, RowKind, ServerId, ServerState, ServerStatus, StatRow,
};

/// The initial weight a blind view assumes: weights then read as the agent's percentages.
pub const BLIND_INITIAL_WEIGHT: u32 = 100;
/// HAProxy's address for a server cannot be seen: shown as loopback without a port, which the
/// machine treats like a published port — an address it never moves (pull mode cannot) — and
/// the gate then probes the container itself.
const UNSEEN_ADDR: &str = "127.0.0.1";
/// `srv_check_state` "configured | enabled": HAProxy's own checks are assumed to run (the server
/// line needs `check` for the gate's meaning), so a restore passes through DRAIN first.
const CHECKS_CONFIGURED_AND_ENABLED: u32 = 0x6;

/// One `show servers state` line as HAProxy would have it after obeying `answer`.
pub fn server_state(id: &ServerId, answer: &AgentAnswer) -> ServerState {
    let admin = match answer.admin {
        Some(AdminState::Maint) => AdminFlags::FORCED_MAINT,
        Some(AdminState::Drain) => AdminFlags::FORCED_DRAIN,
        Some(AdminState::Ready) | None => 0,
    };
    let weight = answer.weight_percent.unwrap_or(100) * BLIND_INITIAL_WEIGHT / 100;
    ServerState {
        backend_id: 0,
        id: id.clone(),
        server_id: 0,
        addr: UNSEEN_ADDR.to_string(),
        port: None,
        op_state: if admin & AdminFlags::FORCED_MAINT != 0 {
            OpState::Stopped
        } else {
            OpState::Running
        },
        admin: AdminFlags(admin),
        weight,
        initial_weight: BLIND_INITIAL_WEIGHT,
        check_result: 0,
        check_health: 0,
        check_state: CHECKS_CONFIGURED_AND_ENABLED,
    }
}

/// The `show stat` BACKEND row of a backend HAProxy asked about: it exists there.
pub fn backend_row(backend: &str) -> StatRow {
    StatRow {
        proxy: backend.to_string(),
        name: "BACKEND".to_string(),
        kind: RowKind::Backend,
        status: ServerStatus::Up,
        status_text: "UP".to_string(),
        weight: None,
        user_weight: None,
        sessions: 0,
        queued: 0,
        total_sessions: 0,
        check_status: String::new(),
        check_health: None,
        check_rise: None,
        check_fall: None,
        last_change: None,
        addr: String::new(),
        traffic: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blind_view_is_the_last_answer() {
        let id = ServerId::new("be", "web1");
        let cases = [
            (None, None, AdminState::Ready, 100),
            (Some(AdminState::Drain), None, AdminState::Drain, 100),
            (Some(AdminState::Maint), Some(0), AdminState::Maint, 0),
            (Some(AdminState::Ready), Some(50), AdminState::Ready, 50),
        ];
        for (admin, weight_percent, seen, weight) in cases {
            let answer = AgentAnswer {
                admin,
                weight_percent,
            };
            let state = server_state(&id, &answer);
            assert_eq!(state.admin.as_admin_state(), seen, "{answer:?}");
            assert_eq!(state.weight, weight, "{answer:?}");
            assert!(state.checks_configured());
        }
    }
}
