//! Typed values exchanged with HAProxy's runtime API.
//!
//! These are the shared vocabulary of the crate: the controller, the reconciler and the control
//! API speak in `ServerId`, `ServerState` and `StatRow`, never in raw socket text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `backend/server`, the way HAProxy names a server on the runtime API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerId {
    pub backend: String,
    pub server: String,
}

impl ServerId {
    pub fn new(backend: impl Into<String>, server: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            server: server.into(),
        }
    }

    /// Parses `backend/server`; `None` when there is no slash or either side is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let (backend, server) = text.split_once('/')?;
        if backend.is_empty() || server.is_empty() || server.contains('/') {
            return None;
        }
        Some(Self::new(backend, server))
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.backend, self.server)
    }
}

/// The administrative state set with `set server <b>/<s> state …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Ready,
    Drain,
    Maint,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `srv_admin_state` bit mask from `show servers state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AdminFlags(pub u32);

impl AdminFlags {
    pub const FORCED_MAINT: u32 = 0x01;
    pub const INHERITED_MAINT: u32 = 0x02;
    pub const CONFIG_MAINT: u32 = 0x04;
    pub const FORCED_DRAIN: u32 = 0x08;
    pub const INHERITED_DRAIN: u32 = 0x10;
    pub const RESOLUTION_MAINT: u32 = 0x20;
    pub const HOSTNAME_MAINT: u32 = 0x40;

    pub fn is_maint(self) -> bool {
        self.0
            & (Self::FORCED_MAINT
                | Self::INHERITED_MAINT
                | Self::CONFIG_MAINT
                | Self::RESOLUTION_MAINT
                | Self::HOSTNAME_MAINT)
            != 0
    }

    pub fn is_drain(self) -> bool {
        self.0 & (Self::FORCED_DRAIN | Self::INHERITED_DRAIN) != 0
    }

    /// The state a `set server … state` would have to restore to reproduce these flags.
    pub fn as_admin_state(self) -> AdminState {
        if self.is_maint() {
            AdminState::Maint
        } else if self.is_drain() {
            AdminState::Drain
        } else {
            AdminState::Ready
        }
    }
}

/// `srv_op_state` from `show servers state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    Stopped,
    Starting,
    Running,
    Stopping,
}

/// One server line of `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    pub backend_id: u32,
    pub id: ServerId,
    pub server_id: u32,
    /// Empty when HAProxy has no address (e.g. an unresolved hostname).
    pub addr: String,
    pub port: Option<u16>,
    pub op_state: OpState,
    pub admin: AdminFlags,
    /// Current (user) weight.
    pub weight: u32,
    /// Weight from the configuration.
    pub initial_weight: u32,
    pub check_result: u32,
    pub check_health: u32,
    pub check_state: u32,
}

/// The `status` column of `show stat`, for servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Up,
    Down,
    Maint,
    Drain,
    Nolb,
    NoCheck,
    /// `UP 1/3`-style: `base` with a health counter `current/needed` moving towards the other state.
    Transition {
        base: Box<ServerStatus>,
        current: u32,
        needed: u32,
    },
    /// Anything else HAProxy prints (`MAINT (resolution)`, `DOWN (agent)`, …), verbatim.
    Other(String),
}

/// What kind of proxy object a `show stat` row describes (`type` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    Frontend,
    Backend,
    Server,
    Listener,
}

/// One row of `show stat`, with the columns haproxy-drain uses, parsed by header name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatRow {
    pub proxy: String,
    pub name: String,
    pub kind: RowKind,
    pub status: ServerStatus,
    /// Raw status text as HAProxy printed it.
    pub status_text: String,
    /// Effective weight (`weight`).
    pub weight: Option<u32>,
    /// User weight (`uweight`), absent on HAProxy < 2.4.
    pub user_weight: Option<u32>,
    pub sessions: u64,
    pub queued: u64,
    pub total_sessions: u64,
    /// e.g. `L7OK`, `L4TOUT`, `* L4TOUT`; empty when checks are off.
    pub check_status: String,
    pub check_health: Option<u32>,
    pub check_rise: Option<u32>,
    pub check_fall: Option<u32>,
    /// Seconds since the last status change.
    pub last_change: Option<u64>,
    /// `ip:port` as HAProxy prints it.
    pub addr: String,
    /// Requests, errors and response time, for the post-restore watch.
    #[serde(default)]
    pub traffic: super::traffic::Traffic,
}

/// A subset of `show info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub pid: u32,
    pub uptime_sec: u64,
    pub version: String,
    pub stopping: bool,
}

/// `get weight` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weight {
    pub current: u32,
    pub initial: u32,
}

/// Argument of `set weight`: absolute (0..=256) or percent of the *initial* weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightSpec {
    Absolute(u32),
    Percent(u32),
}

impl fmt::Display for WeightSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightSpec::Absolute(w) => write!(f, "{w}"),
            WeightSpec::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Argument of `set server <b>/<s> health …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Stopping,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Stopping => "stopping",
            Health::Down => "down",
        }
    }
}

/// Argument of `set server <b>/<s> agent …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Up,
    Down,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Up => "up",
            AgentState::Down => "down",
        }
    }
}

impl fmt::Display for ServerStatus {
    /// Prints the status the way HAProxy does (`UP`, `UP 1/3`, `no check`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerStatus::Up => f.write_str("UP"),
            ServerStatus::Down => f.write_str("DOWN"),
            ServerStatus::Maint => f.write_str("MAINT"),
            ServerStatus::Drain => f.write_str("DRAIN"),
            ServerStatus::Nolb => f.write_str("NOLB"),
            ServerStatus::NoCheck => f.write_str("no check"),
            ServerStatus::Transition {
                base,
                current,
                needed,
            } => write!(f, "{base} {current}/{needed}"),
            ServerStatus::Other(text) => f.write_str(text),
        }
    }
}
