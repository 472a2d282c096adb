//! The drain state machine: events and time in, actions out. No I/O, no clocks of its own.
//!
//! One [`Machine`] per HAProxy server. The controller feeds it [`Input`]s (Docker events it has
//! already mapped, poll results, ground-truth snapshots) together with a [`Clock`] reading, then
//! executes the returned [`Action`]s in order and asks [`Machine::next_wakeup`] when to tick it.
//!
//! Beside the machine, the other pure decisions the controller applies: [`docker_input`] (which
//! Docker event means which input), [`budget`] (may one more server go out) and
//! [`server_options`] (how a weight or a dynamic server is said to HAProxy), [`poll_schedule`]
//! (when a drain polls its sessions next), [`agent_answer`] (what the agent check answers in pull
//! mode), [`ramp`] (the weight steps of a slow start) and [`watch`] (is a server that just came
//! back clearly worse than its peers).

mod after_restore;
pub mod agent_answer;
pub mod budget;
pub mod docker_input;
mod machine;
mod owner;
mod phase_name;
pub mod poll_schedule;
pub mod ramp;
pub mod server_options;
mod stop_request;
mod sync;
#[cfg(test)]
mod tests;
mod transitions;
mod trigger;
pub mod watch;

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use machine::Machine;
pub use owner::Owner;
pub use phase_name::PhaseName;
pub use stop_request::{StopRequest, DOCKER_DEFAULT_STOP_TIMEOUT};
pub use trigger::Trigger;

use crate::config::DrainMode;
use crate::haproxy::types::AdminState;

/// A reading of both clocks: monotonic for deadlines, wall-clock for what is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: Instant,
    pub unix_ms: u64,
}

/// What haproxy-drain persists for a server it took out of rotation, so that it restores exactly
/// what it took — and nothing an operator took — even across its own crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Ready, or Drain when an operator had drained it before its container died.
    pub prior_admin: AdminState,
    /// `None` when the weight was unknown; then the weight is left as it is.
    pub prior_weight: Option<u32>,
    /// Held until an explicit `ready` (API drains), not restored by a container start.
    pub sticky: bool,
    /// haproxy-drain added this server with `add server`; `del server` it on destroy.
    pub dynamic: bool,
    pub trigger: Trigger,
    pub since_unix_ms: u64,
    /// The container's run was asked to end: no restore until a run that started later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRequest>,
    /// Back in rotation, its weight ramping up to `prior_weight`: kept so that a restart in the
    /// middle of a ramp sets `prior_weight` at once rather than leaving a step behind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ramping: bool,
}

impl Ownership {
    /// The record of a server haproxy-drain added itself (`add server`, in MAINT): restored at
    /// the weight it was added with, deleted again when its container goes.
    pub fn dynamic_server(weight: u32, unix_ms: u64) -> Self {
        Self {
            prior_admin: AdminState::Ready,
            prior_weight: Some(weight),
            sticky: false,
            dynamic: true,
            trigger: Trigger::Reconcile,
            since_unix_ms: unix_ms,
            stop: None,
            ramping: false,
        }
    }
}

/// The container behind the server, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// `addr` is the container's IP and the port HAProxy should use (`None`: keep HAProxy's).
    /// `started_at_unix_nanos` is Docker's `State.StartedAt` when it was read (`None`: unknown;
    /// only needed while a [`StopRequest`] is pending).
    Running {
        addr: Option<(IpAddr, Option<u16>)>,
        started_at_unix_nanos: Option<i64>,
    },
    Stopped,
    Absent,
}

/// The server as HAProxy reports it (merged over every HAProxy: the least-out state wins, so a
/// single HAProxy that lost our state after a reload is corrected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub admin: AdminState,
    pub weight: u32,
    pub initial_weight: u32,
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// The backend runs health checks for this server.
    pub checks_enabled: bool,
}

impl Observed {
    pub fn in_rotation(&self) -> bool {
        self.admin == AdminState::Ready && self.weight > 0
    }
}

/// Settings for one server's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSettings {
    pub mode: DrainMode,
    pub drain_timeout: Duration,
    pub shutdown_sessions: bool,
    pub health_timeout: Duration,
    /// How often sessions/checks are polled (≤ 100 ms by default).
    pub poll_interval: Duration,
    /// How often the health gate probes a starting container.
    pub probe_interval: Duration,
    /// Slow start after a restore (zero: the weight comes back at once; see [`ramp`]).
    pub ramp: Duration,
    /// How long a restored server is compared with its peers (zero: not watched).
    pub watch: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Ground truth from a reconciliation pass (level-triggered).
    Sync {
        container: ContainerState,
        haproxy: Observed,
    },
    /// A fresh read of HAProxy alone, taken right before acting on an event, so that a change
    /// an operator made since the last reconciliation is respected.
    Observe(Observed),
    /// The container is going away (terminating kill, stop, unhealthy) or someone asked to drain.
    /// `stop` is set when the container's run itself was asked to end (a terminating signal, a
    /// roll), not for an unhealthy container or an API drain that leaves it running.
    Stopping {
        trigger: Trigger,
        sticky: bool,
        timeout: Option<Duration>,
        stop: Option<StopRequest>,
    },
    /// The container died (or was stopped after dying): no point waiting for sessions.
    Died,
    /// The container was removed.
    Destroyed,
    /// The container started; `addr` as in [`ContainerState::Running`].
    Started { addr: Option<(IpAddr, Option<u16>)> },
    /// Result of a health-gate probe (Docker health or our own connect/HTTP probe).
    Gate { passed: bool },
    /// Current sessions, summed over every HAProxy.
    Sessions(u64),
    /// HAProxy's own check result while warming up in DRAIN.
    HaproxyCheck { passed: bool },
    /// An explicit request to put the server back (API `ready`).
    ReadyRequested,
    /// The stop a roll or the gate drained for did not happen: the run goes on.
    StopWithdrawn,
    /// Time passed; see [`Machine::next_wakeup`].
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SetAdmin(AdminState),
    SetWeight(u32),
    /// A slow start's step: like `SetWeight`, but HAProxy refusing it (a static algorithm takes
    /// only 0% and 100%) is not a failed restore; the ramp sees the weight it got and yields.
    RampStep(u32),
    SetAddr(IpAddr, Option<u16>),
    ShutdownSessions,
    DelServer,
    /// Read current sessions and feed them back as [`Input::Sessions`].
    PollSessions,
    /// Run the health gate once and feed back [`Input::Gate`].
    Probe,
    /// Read HAProxy's check state and feed back [`Input::HaproxyCheck`].
    PollCheck,
    /// Read the server's state and weight and feed back [`Input::Observe`] (a ramp's step).
    ReadServer,
    /// Compare the server with its peers for this long (see [`watch`]); a clearly worse server
    /// comes back as an [`Input::Stopping`] with [`Trigger::Watch`].
    Watch(Duration),
    /// Persist this ownership record before anything else happens (write-ahead).
    Own(Ownership),
    /// Forget the ownership record.
    Disown,
    Report(Report),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainResult {
    /// Every HAProxy reported 0 sessions before the deadline.
    Drained,
    /// The deadline passed with sessions still open.
    TimedOut,
    /// The container died first (a crash, or an app that exits at once) while sessions were
    /// still counted at the last poll.
    Aborted,
}

impl DrainResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainResult::Drained => "drained",
            DrainResult::TimedOut => "timed_out",
            DrainResult::Aborted => "aborted",
        }
    }
}

/// Things worth a log line and a metric; the controller turns each into both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    DrainStarted {
        trigger: Trigger,
    },
    DrainFinished {
        trigger: Trigger,
        result: DrainResult,
        elapsed: Duration,
        sessions_left: u64,
    },
    Restored {
        start_to_rotation: Option<Duration>,
        out_of_rotation: Duration,
    },
    GateTimedOut {
        waited: Duration,
    },
    /// Reconciliation found HAProxy different from what it should be and corrected it.
    Correction(&'static str),
    /// The container was asked to stop but still runs the same run after the hold (an app
    /// that ignores a `docker kill -s TERM`): the server goes back through the gate.
    StopIgnored {
        held: Duration,
    },
    /// A ramp found a weight it did not set (an operator's) and left it as it is.
    RampYielded {
        expected: u32,
        found: u32,
    },
}
