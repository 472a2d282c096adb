//! Configuration: the raw TOML file, validated into typed settings.
//!
//! Every field has a default, so haproxy-drain runs with no file at all (labels only). Unknown
//! keys are errors: a typo must not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::Path;
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
        }
    }
}

/// A rule mapping containers you cannot relabel to servers, e.g. `pxApp_*` → `pxapp_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Glob on the container name (`*` and `?`).
    pub pattern: String,
    pub backend: String,
    /// Template: `{name}` the container name, `{number}` the last run of digits in it.
    pub server: String,
    pub port: Option<u16>,
    pub settings: ServerSettings,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub defaults: ServerSettings,
    pub rules: Vec<Rule>,
    pub budget: Budget,
    pub backend_budgets: BTreeMap<String, Budget>,
    pub reconcile_interval: Duration,
    pub poll_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            defaults: ServerSettings::default(),
            rules: Vec::new(),
            budget: Budget::KeepOne,
            backend_budgets: BTreeMap::new(),
            reconcile_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
        }
    }
}

impl Config {
    pub fn budget_for(&self, backend: &str) -> Budget {
        self.backend_budgets
            .get(backend)
            .copied()
            .unwrap_or(self.budget)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.in_file(path))
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: String::new(),
            message: e.to_string(),
        })?;
        raw.validate()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: String::new(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn in_file(self, file: &Path) -> Self {
        let file = file.display().to_string();
        match self {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: file,
                message,
            },
            ConfigError::Invalid { field, message, .. } => ConfigError::Invalid {
                path: file,
                field,
                message,
            },
            other => other,
        }
    }
}

/// Parses `30s`, `500ms`, `2m`; the error says what was wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration like 30s or 500ms ({e})"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    rules: Vec<RawRule>,
    budget: Option<String>,
    #[serde(default)]
    backend_budgets: BTreeMap<String, String>,
    reconcile_interval: Option<String>,
    poll_interval: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    mode: Option<DrainMode>,
    drain_timeout: Option<String>,
    shutdown_sessions: Option<bool>,
    health_timeout: Option<String>,
    network: Option<String>,
    health_path: Option<String>,
    unhealthy: Option<UnhealthyAction>,
    dynamic_weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: String,
    backend: String,
    server: Option<String>,
    port: Option<u16>,
    #[serde(flatten)]
    settings: RawSettings,
}

impl RawSettings {
    fn apply(&self, base: &ServerSettings, field: &str) -> Result<ServerSettings, ConfigError> {
        let duration = |value: &Option<String>, name: &str, fallback: Duration| match value {
            Some(text) => {
                parse_duration(text).map_err(|m| ConfigError::invalid(format!("{field}.{name}"), m))
            }
            None => Ok(fallback),
        };
        let dynamic_weight = self.dynamic_weight.unwrap_or(base.dynamic_weight);
        if dynamic_weight > 256 {
            return Err(ConfigError::invalid(
                format!("{field}.dynamic_weight"),
                "HAProxy weights are 0..=256",
            ));
        }
        Ok(ServerSettings {
            mode: self.mode.unwrap_or(base.mode),
            drain_timeout: duration(&self.drain_timeout, "drain_timeout", base.drain_timeout)?,
            shutdown_sessions: self.shutdown_sessions.unwrap_or(base.shutdown_sessions),
            health_timeout: duration(&self.health_timeout, "health_timeout", base.health_timeout)?,
            network: self.network.clone().or_else(|| base.network.clone()),
            health_path: self
                .health_path
                .clone()
                .or_else(|| base.health_path.clone()),
            unhealthy: self.unhealthy.unwrap_or(base.unhealthy),
            dynamic_weight,
        })
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let base = Config::default();
        let defaults = self.defaults.apply(&base.defaults, "defaults")?;
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, raw) in self.rules.iter().enumerate() {
            let field = format!("rules[{i}]");
            if raw.pattern.is_empty() || raw.backend.is_empty() {
                return Err(ConfigError::invalid(
                    field,
                    "`match` and `backend` must not be empty",
                ));
            }
            let server = raw.server.clone().unwrap_or_else(|| "{name}".to_string());
            crate::mapping::check_template(&server)
                .map_err(|m| ConfigError::invalid(format!("{field}.server"), m))?;
            rules.push(Rule {
                pattern: raw.pattern.clone(),
                backend: raw.backend.clone(),
                server,
                port: raw.port,
                settings: raw.settings.apply(&defaults, &field)?,
            });
        }
        let budget_of = |text: &str, field: String| {
            Budget::parse(text).ok_or_else(|| {
                ConfigError::invalid(
                    field,
                    format!("'{text}' is not keep-one, a count or a percentage"),
                )
            })
        };
        let budget = match &self.budget {
            Some(text) => budget_of(text, "budget".into())?,
            None => base.budget,
        };
        let mut backend_budgets = BTreeMap::new();
        for (backend, text) in &self.backend_budgets {
            backend_budgets.insert(
                backend.clone(),
                budget_of(text, format!("backend_budgets.{backend}"))?,
            );
        }
        let interval = |value: &Option<String>, name: &str, fallback: Duration| match value {
            Some(text) => parse_duration(text)
                .map_err(|m| ConfigError::invalid(name, m))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(ConfigError::invalid(name, "must be greater than zero"))
                    } else {
                        Ok(d)
                    }
                }),
            None => Ok(fallback),
        };
        Ok(Config {
            defaults,
            rules,
            budget,
            backend_budgets,
            reconcile_interval: interval(
                &self.reconcile_interval,
                "reconcile_interval",
                base.reconcile_interval,
            )?,
            poll_interval: interval(&self.poll_interval, "poll_interval", base.poll_interval)?,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
