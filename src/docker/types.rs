//! What haproxy-drain needs to know about a container and its events, independent of bollard.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's own health check state (`State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as seen by `GET /containers/json` or `/containers/{id}/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// Container labels (image labels included, as Docker reports them).
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// `None` when the container has no health check.
    pub health: Option<HealthStatus>,
    /// Network name → IP address on that network (networks without an address are left out).
    pub networks: Vec<(String, IpAddr)>,
    /// The configured stop signal as a number (`Config.StopSignal`, default SIGTERM = 15).
    pub stop_signal: i32,
    pub image: String,
    /// `State.StartedAt` of the current (or last) run, Unix nanoseconds; inspect only (the
    /// list does not carry it), `None` for a container that never started.
    pub started_at_unix_nanos: Option<i64>,
    /// `Config.StopTimeout` (`--stop-timeout`); `None`: Docker's default applies.
    pub stop_timeout: Option<Duration>,
}

/// The container event kinds haproxy-drain acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// `kill`, with the signal number Docker reported.
    Kill {
        signal: i32,
    },
    /// `die`, with the exit code when Docker reported one.
    Die {
        exit_code: Option<i32>,
    },
    Stop,
    Start,
    Restart,
    Destroy,
    Healthy,
    Unhealthy,
    Pause,
    Unpause,
    /// Any other action, verbatim (`create`, `rename`, `exec_start: …`, …).
    Other(String),
}

/// One container event from the Docker event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvent {
    pub id: String,
    /// Container name without the leading slash.
    pub name: String,
    pub action: EventAction,
    /// Container labels flattened into the event's attributes (plus `image`, `name`, …).
    pub attributes: HashMap<String, String>,
    /// `timeNano`: nanoseconds since the Unix epoch.
    pub time_nano: i64,
}

/// What [`DockerClient::watch`](crate::docker::DockerClient::watch) hands to its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    /// A (re)subscription to `/events` is live. The consumer must relist containers now: replay
    /// from the daemon's 256-event ring is best-effort, so gaps cannot be ruled out.
    /// `replayed_since` is the `timeNano` replay started from (`None` on the first connection).
    Connected { replayed_since: Option<i64> },
    /// One container event, converted. Events arrive in daemon order; replayed duplicates of the
    /// last event seen before a reconnect are filtered out.
    Event(ContainerEvent),
    /// The event stream broke (daemon restart, socket cut, …); the watcher is reconnecting.
    Disconnected { error: String },
}
