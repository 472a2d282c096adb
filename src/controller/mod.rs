//! The controller: one task per mapped server, a hub that routes Docker events and control
//! requests to them, and reconciliation from ground truth.
//!
//! - [`handle`]: [`ControllerHandle`] and the request/response types of the control API.
//! - [`hub`]: the routing loop (Docker events, control requests, timers).
//! - `control`: control requests in the hub (targets, availability budget, waiters).
//! - [`reconcile`]: level-triggered correction from `docker ps` + `show servers state`.
//! - [`server_task`]: one task per server; runs the drain machine.
//! - `executor`: how a server task carries out the machine's actions.
//! - [`fleet`]: every HAProxy; one action goes to each that is up (`reachability`).
//! - `haproxy_watch`: one task per HAProxy noticing reloads and returns.
//! - [`probe`]: the health gate.
//! - [`pull`]: pull mode — decisions become agent answers, other changes are refused.
//! - `fleet_slot`: the fleet budget on etcd: a slot before a drain (off the hub);
//!   `fleet_track`: every server's phase for the keeper.
//! - `restore_watch`: a restored server compared with its peers for a while (`drain::watch`).
//! - [`surge`]: the temporary server of a `roll --surge` copy: added, gated, removed.

mod clock;
mod container_ref;
mod control;
mod executor;
pub mod fleet;
mod fleet_slot;
mod fleet_track;
pub mod handle;
mod haproxy_watch;
pub mod hub;
mod next_read;
pub mod probe;
pub mod pull;
mod reachability;
pub mod reconcile;
mod report;
mod restore_watch;
mod routes;
mod server_msg;
pub mod server_task;
mod single_flight;
mod snapshot;
mod status;
pub mod surge;

use std::sync::Arc;
use std::time::Duration;

pub use fleet::Fleet;
pub use handle::{ControllerHandle, Owner, ServerView, Target, Trigger};

use crate::config::Config;
use crate::docker::DockerClient;
use crate::drain::MachineSettings;
use crate::fleet_budget::FleetBudget;
use crate::mapping::Mapping;
use crate::metrics::Metrics;
use crate::ownership::OwnershipStore;

/// How often the health gate probes a starting container.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How often `show info` is read to notice HAProxy reloads and reconnects.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Everything the controller's tasks share.
pub struct Context {
    pub config: Config,
    pub fleet: Fleet,
    pub docker: DockerClient,
    pub store: Arc<OwnershipStore>,
    pub metrics: Arc<Metrics>,
    /// `[fleet]`: slots on etcd before a drain; `None` without the table.
    pub fleet_budget: Option<Arc<FleetBudget>>,
}

impl Context {
    pub fn machine_settings(&self, mapping: &Mapping) -> MachineSettings {
        MachineSettings {
            mode: mapping.settings.mode,
            drain_timeout: mapping.settings.drain_timeout,
            shutdown_sessions: mapping.settings.shutdown_sessions,
            health_timeout: mapping.settings.health_timeout,
            poll_interval: self.config.poll_interval,
            probe_interval: PROBE_INTERVAL,
            ramp: mapping.settings.ramp,
            watch: mapping.settings.watch,
        }
    }
}
