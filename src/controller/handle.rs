//! The controller's public face: typed requests that the control API, `roll` and tests send.
//!
//! Everything here is message passing; the controller task owns all state.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use crate::drain::{Owner, Trigger};
use crate::haproxy::types::ServerId;

/// What a request names: a container (by name) or a HAProxy server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Container(String),
    Server(ServerId),
}

impl Target {
    /// `backend/server` names a server; anything else names a container.
    pub fn parse(text: &str) -> Self {
        match ServerId::parse(text) {
            Some(id) => Target::Server(id),
            None => Target::Container(text.to_string()),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Container(name) => write!(f, "container {name}"),
            Target::Server(id) => write!(f, "server {id}"),
        }
    }
}

/// One server as the controller sees it: HAProxy's state joined with its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    pub backend: String,
    pub server: String,
    pub container: Option<String>,
    pub addr: String,
    pub port: Option<u16>,
    /// HAProxy's status text (`UP`, `DRAIN`, `MAINT`, `DOWN 1/2`, …).
    pub state: String,
    pub weight: u32,
    pub initial_weight: u32,
    /// Current sessions, summed over every HAProxy.
    pub sessions: u64,
    pub check: String,
    pub owner: Owner,
    /// The controller's phase for this server (`in_rotation`, `draining`, `held`, `gating`, …).
    pub phase: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    pub target: Target,
    /// Wait until sessions reach 0 (or `timeout`) before answering.
    pub wait: bool,
    pub timeout: Duration,
    /// Ignore the availability budget.
    pub force: bool,
    pub trigger: Trigger,
    /// `true` (API drains): the server stays out until `ready`, even across container restarts.
    /// `false` (roll): it comes back by itself once its container is started and healthy.
    pub sticky: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainReport {
    pub server: ServerId,
    pub container: Option<String>,
    /// True once sessions reached 0 on every HAProxy.
    pub drained: bool,
    pub sessions_left: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyRequest {
    pub target: Target,
    /// Wait until the server is back in rotation (health-gated) before answering.
    pub wait: bool,
    pub timeout: Duration,
    /// The stop that a roll or the gate drained for did not happen (the engine refused it):
    /// the container's run goes on, so its stop request is withdrawn.
    #[serde(default)]
    pub withdraw_stop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReport {
    pub server: ServerId,
    pub container: Option<String>,
    pub in_rotation: bool,
    pub elapsed_ms: u64,
}

/// A surge copy's temporary server, in rotation (see `controller::surge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurgeAddReport {
    pub server: ServerId,
    pub weight: u32,
    /// Until the daemon's own probe of the copy passed.
    pub probe_ms: u64,
    /// From then until HAProxy's first check passed (0 without checks).
    pub check_ms: u64,
    pub elapsed_ms: u64,
}

/// Why a control request failed. Each maps to one HTTP status in the control API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ControlError {
    /// 404
    #[error("{0} is not mapped to any HAProxy server known to haproxy-drain")]
    NotFound(String),
    /// 409
    #[error("draining {server} would leave backend {backend} with {ready_after} ready server(s); the budget allows at most {max_out} out of rotation (use force to override)")]
    Budget {
        server: ServerId,
        backend: String,
        ready_after: usize,
        max_out: usize,
    },
    /// 504
    #[error("{server} still has {sessions_left} session(s) after {waited_ms} ms")]
    DrainTimeout {
        server: ServerId,
        sessions_left: u64,
        waited_ms: u64,
    },
    /// 504
    #[error("{server} is not back in rotation after {waited_ms} ms ({reason})")]
    ReadyTimeout {
        server: ServerId,
        waited_ms: u64,
        reason: String,
    },
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 409: the fleet budget (etcd) is full, a wait for a slot timed out, or etcd cannot be
    /// asked with `on_unreachable = "closed"`.
    #[error("{0}")]
    FleetBudget(String),
    /// 502
    #[error("HAProxy refused or failed: {0}")]
    Haproxy(String),
    /// 503
    #[error("haproxy-drain is shutting down or its controller is not running")]
    Unavailable,
}

/// Messages the controller task receives from outside.
#[derive(Debug)]
pub enum ControlRequest {
    Status {
        reply: oneshot::Sender<Vec<ServerView>>,
    },
    Drain {
        request: DrainRequest,
        reply: oneshot::Sender<Result<DrainReport, ControlError>>,
    },
    Ready {
        request: ReadyRequest,
        reply: oneshot::Sender<Result<ReadyReport, ControlError>>,
    },
    /// Adds and gates the temporary server of `copy_id`, the surge copy of `container`.
    SurgeAdd {
        container: String,
        copy_id: String,
        timeout: Duration,
        reply: oneshot::Sender<Result<SurgeAddReport, ControlError>>,
    },
    /// Drains and deletes the temporary server of `server` (a no-op when there is none).
    SurgeRemove {
        server: ServerId,
        timeout: Duration,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// The container now under `container`'s name (a surge copy swapped in) is the one behind
    /// its server: read like a `start` of it, even though it started before its name was taken.
    Adopt {
        container: String,
        reply: oneshot::Sender<Result<ServerId, ControlError>>,
    },
    /// A drain whose fleet slot is held (see `fleet_slot`): the local budget and the drain.
    DrainHoldingSlot {
        request: DrainRequest,
        reply: oneshot::Sender<Result<DrainReport, ControlError>>,
    },
    /// `status --fleet`: `None` without `[fleet]`.
    FleetStatus {
        reply: oneshot::Sender<Option<crate::fleet_budget::FleetStatus>>,
    },
}

/// A cloneable handle to the running controller.
#[derive(Debug, Clone)]
pub struct ControllerHandle {
    tx: mpsc::Sender<ControlRequest>,
}

impl ControllerHandle {
    pub fn new(tx: mpsc::Sender<ControlRequest>) -> Self {
        Self { tx }
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> ControlRequest,
    ) -> Result<T, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ControlError::Unavailable)?;
        rx.await.map_err(|_| ControlError::Unavailable)
    }

    pub async fn status(&self) -> Result<Vec<ServerView>, ControlError> {
        self.ask(|reply| ControlRequest::Status { reply }).await
    }

    /// The fleet budget's state in etcd; `None` without `[fleet]`.
    pub async fn fleet_status(
        &self,
    ) -> Result<Option<crate::fleet_budget::FleetStatus>, ControlError> {
        self.ask(|reply| ControlRequest::FleetStatus { reply })
            .await
    }

    pub async fn drain(&self, request: DrainRequest) -> Result<DrainReport, ControlError> {
        self.ask(|reply| ControlRequest::Drain { request, reply })
            .await?
    }

    pub async fn surge_add(
        &self,
        container: &str,
        copy_id: &str,
        timeout: Duration,
    ) -> Result<SurgeAddReport, ControlError> {
        let (container, copy_id) = (container.to_string(), copy_id.to_string());
        self.ask(|reply| ControlRequest::SurgeAdd {
            container,
            copy_id,
            timeout,
            reply,
        })
        .await?
    }

    pub async fn surge_remove(
        &self,
        server: &ServerId,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        let server = server.clone();
        self.ask(|reply| ControlRequest::SurgeRemove {
            server,
            timeout,
            reply,
        })
        .await?
    }

    pub async fn adopt(&self, container: &str) -> Result<ServerId, ControlError> {
        let container = container.to_string();
        self.ask(|reply| ControlRequest::Adopt { container, reply })
            .await?
    }

    pub async fn ready(&self, request: ReadyRequest) -> Result<ReadyReport, ControlError> {
        self.ask(|reply| ControlRequest::Ready { request, reply })
            .await?
    }
}
