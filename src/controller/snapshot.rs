//! What the hub and the control API can see of a server without asking its task.

use super::container_ref::ContainerRef;
use crate::drain::{Machine, Owner, PhaseName};
use crate::haproxy::{AdminState, ServerId};
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub phase: PhaseName,
    pub owner: Owner,
    /// For budgets: would a load balancer send this server new requests?
    pub in_rotation: bool,
    pub container: Option<String>,
}

impl Default for ServerSnapshot {
    fn default() -> Self {
        Self {
            phase: PhaseName::Unknown,
            owner: Owner::None,
            in_rotation: false,
            container: None,
        }
    }
}

impl ServerSnapshot {
    pub fn of(machine: &Machine, container: Option<&ContainerRef>) -> Self {
        Self {
            phase: machine.phase_name(),
            owner: machine.owner(),
            in_rotation: machine.in_rotation(),
            container: container.map(|c| c.name.clone()),
        }
    }
}

/// Who holds the server and the desired-vs-actual admin state, as gauges.
pub fn export_gauges(
    metrics: &Metrics,
    id: &ServerId,
    machine: &Machine,
    actual_admin: Option<AdminState>,
) {
    let (proxy, server) = (id.backend.as_str(), id.server.as_str());
    let owner = match machine.owner() {
        Owner::None => None,
        other => Some(other.as_str()),
    };
    metrics.set_out_of_rotation(proxy, server, owner);
    let desired = machine.desired_admin().map_or("unknown", |a| a.as_str());
    let actual = actual_admin.map_or("unknown", |a| a.as_str());
    metrics.set_server_state(proxy, server, desired, actual);
}
