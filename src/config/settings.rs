//! Per-server behaviour and the availability budget: what a rule, `[defaults]` or a label sets.

use std::time::Duration;

use serde::Deserialize;

/// How a server is taken out of rotation before its sessions are waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainMode {
    /// `set server … state drain`: no new load-balanced requests, checks keep running.
    Drain,
    /// `set weight … 0`.
    Weight,
    /// `set server … state maint`: also breaks cookie persistence.
    Maint,
}

impl DrainMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "drain" => Some(DrainMode::Drain),
            "weight" => Some(DrainMode::Weight),
            "maint" => Some(DrainMode::Maint),
            _ => None,
        }
    }
}

/// What to do when Docker reports `health_status: unhealthy` for a serving container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnhealthyAction {
    Drain,
    Ignore,
}

/// How many servers of one backend haproxy-drain may hold out of rotation at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Never take out the last ready server.
    KeepOne,
    Count(usize),
    Percent(u32),
}

impl Budget {
    /// `"keep-one"`, `"2"` or `"25%"`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text == "keep-one" {
            return Some(Budget::KeepOne);
        }
        if let Some(pct) = text.strip_suffix('%') {
            return pct
                .trim()
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .map(Budget::Percent);
        }
        text.parse().ok().map(Budget::Count)
    }

    /// The most servers out of `total` that this budget allows out of rotation at once.
    pub fn max_out(self, total: usize) -> usize {
        match self {
            Budget::KeepOne => total.saturating_sub(1),
            Budget::Count(n) => n,
            Budget::Percent(p) => total * p as usize / 100,
        }
    }
}

/// Per-server behaviour; defaults from `[defaults]`, overridden by a rule or labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub mode: DrainMode,
    pub drain_timeout: Duration,
    /// After the drain timeout, `shutdown sessions server` the stragglers.
    pub shutdown_sessions: bool,
    /// How long a started container may take to pass the health gate before we report it.
    pub health_timeout: Duration,
    /// Docker network whose address HAProxy should use; `None`: the container's only/first one.
    pub network: Option<String>,
    /// If set, the health gate GETs this path over HTTP instead of a bare TCP connect.
    pub health_path: Option<String>,
    pub unhealthy: UnhealthyAction,
    /// Weight for servers haproxy-drain adds dynamically (HAProxy's own default is 1).
    pub dynamic_weight: u32,
    /// Slow start: the weight comes back in steps over this period (zero: at once).
    pub ramp: Duration,
    /// How long after a restore the server is compared with its peers (zero: not watched).
    pub watch: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            mode: DrainMode::Drain,
            drain_timeout: Duration::from_secs(30),
            shutdown_sessions: false,
            health_timeout: Duration::from_secs(120),
            network: None,
            health_path: None,
            unhealthy: UnhealthyAction::Drain,
            dynamic_weight: 1,
            ramp: Duration::ZERO,
            watch: Duration::from_secs(30),
        }
    }
}
