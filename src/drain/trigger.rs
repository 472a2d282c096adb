//! What started a drain: a metrics label and part of every decision log line.

use serde::{Deserialize, Serialize};

/// What started a drain; a metrics label and part of every decision log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    DockerEvent,
    Api,
    Roll,
    Reconcile,
    /// The Docker API gate, before it forwards a stop (see `src/gate`).
    Gate,
    /// The post-restore watch found the server clearly worse than its peers: it is failed and
    /// stays out (sticky) until `ready`.
    Watch,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::DockerEvent => "docker_event",
            Trigger::Api => "api",
            Trigger::Roll => "roll",
            Trigger::Reconcile => "reconcile",
            Trigger::Gate => "gate",
            Trigger::Watch => "watch",
        }
    }
}
