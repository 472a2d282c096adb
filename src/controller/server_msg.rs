//! What the hub and the control path send to a server's task, and what a drain waiter hears.

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::container_ref::ContainerRef;
use crate::docker::ContainerEvent;
use crate::drain::{DrainResult, Input, Observed};
use crate::mapping::Mapping;

#[derive(Debug)]
pub enum ServerMsg {
    /// A Docker event of the server's current container (the hub drops replaced containers').
    Event(ContainerEvent),
    /// A container first seen through an event: read it and HAProxy, then treat it as ground
    /// truth. Done in the task, so the hub never waits on Docker or HAProxy.
    Discovered { container_id: String },
    /// Ground truth from reconciliation. `observed: None`: the server is missing in HAProxy.
    Sync {
        mapping: Box<Mapping>,
        container: Option<ContainerRef>,
        running: bool,
        observed: Option<Observed>,
        /// When the ground truth was read; older than the last event applied means stale.
        read_at: Instant,
    },
    Drain {
        input: Input,
        waiter: Option<oneshot::Sender<DrainOutcome>>,
    },
    Ready {
        waiter: Option<oneshot::Sender<()>>,
        /// See `ReadyRequest::withdraw_stop`.
        withdraw_stop: bool,
    },
    /// HAProxy's check of the container's address has just passed on another server (a surge
    /// copy's temporary server, checked every 100 ms): the server need not wait for its own.
    Checked,
}

/// How a drain request ended, for its waiter.
#[derive(Debug, Clone)]
pub enum DrainOutcome {
    Finished {
        result: DrainResult,
        sessions_left: u64,
    },
    /// Already out of rotation by haproxy-drain's hand.
    AlreadyOut,
    /// An operator holds it; haproxy-drain does not touch it.
    HeldByOperator,
}
