//! Configuration: the raw TOML file, validated into typed settings.
//!
//! Every field has a default, so haproxy-drain runs with no file at all (labels only). Unknown
//! keys are errors: a typo must not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

mod fleet;
mod settings;
mod template;
mod watch_limits;

pub use fleet::{FleetConfig, Unreachable};
pub use settings::{Budget, DrainMode, ServerSettings, UnhealthyAction};
pub use template::ServerTemplate;
pub use watch_limits::WatchLimits;

/// A rule mapping containers you cannot relabel to servers, e.g. `pxApp_*` → `pxapp_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Glob on the container name (`*` and `?`).
    pub pattern: String,
    pub backend: String,
    pub server: ServerTemplate,
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
    /// `[fleet]`: the fleet-wide budget on etcd; `None` leaves every drain local.
    pub fleet: Option<FleetConfig>,
    pub watch_limits: WatchLimits,
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
            fleet: None,
            watch_limits: WatchLimits::default(),
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
    fleet: Option<fleet::RawFleet>,
    #[serde(default)]
    watch_limits: WatchLimits,
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
    ramp: Option<String>,
    watch: Option<String>,
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
            Some(text) => duration::parse(text)
                .map_err(|m| ConfigError::invalid(format!("{field}.{name}"), m)),
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
            ramp: duration(&self.ramp, "ramp", base.ramp)?,
            watch: duration(&self.watch, "watch", base.watch)?,
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
            let server = match &raw.server {
                Some(text) => ServerTemplate::parse(text)
                    .map_err(|m| ConfigError::invalid(format!("{field}.server"), m))?,
                None => ServerTemplate::default(),
            };
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
            Some(text) => duration::parse(text)
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
        if let Some((key, message)) = self.watch_limits.problem() {
            return Err(ConfigError::invalid(format!("watch_limits.{key}"), message));
        }
        Ok(Config {
            watch_limits: self.watch_limits,
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
            fleet: self
                .fleet
                .map(|raw| raw.validate())
                .transpose()
                .map_err(|(field, message)| ConfigError::invalid(field, message))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn full_file_is_validated() {
        let config = Config::parse(
            r#"
            budget = "25%"
            reconcile_interval = "5s"
            [defaults]
            mode = "weight"
            drain_timeout = "10s"
            [backend_budgets]
            api = "2"
            [[rules]]
            match = "pxApp_*"
            backend = "pxapp_cluster"
            server = "app_{number}"
            port = 8080
            drain_timeout = "20s"
            ramp = "10s"
            watch = "0s"
            [watch_limits]
            min_requests = 50
            "#,
        )
        .unwrap();
        assert_eq!(config.defaults.mode, DrainMode::Weight);
        assert_eq!(config.budget, Budget::Percent(25));
        assert_eq!(config.budget_for("api"), Budget::Count(2));
        assert_eq!(config.reconcile_interval, Duration::from_secs(5));
        let rule = &config.rules[0];
        assert_eq!(rule.settings.drain_timeout, Duration::from_secs(20));
        assert_eq!(rule.settings.mode, DrainMode::Weight, "inherits [defaults]");
        assert_eq!(rule.port, Some(8080));
        assert_eq!(rule.settings.ramp, Duration::from_secs(10));
        assert_eq!(rule.settings.watch, Duration::ZERO);
        assert_eq!(
            config.defaults.watch,
            Duration::from_secs(30),
            "watched by default"
        );
        assert_eq!(config.watch_limits.min_requests, 50);
        assert_eq!(config.watch_limits.max_error_rate, 0.2, "the rest default");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("bogus = 1", "unknown field"),
            (
                "[defaults]\ndrain_timeout = \"soon\"",
                "defaults.drain_timeout",
            ),
            ("[defaults]\nmode = \"gentle\"", "unknown variant"),
            ("budget = \"lots\"", "budget"),
            ("poll_interval = \"0s\"", "greater than zero"),
            ("[defaults]\nramp = \"slowly\"", "defaults.ramp"),
            (
                "[watch_limits]\nmin_requests = 0",
                "watch_limits.min_requests",
            ),
            ("[watch_limits]\nerror_rate = 0.5", "unknown field"),
            (
                "[[rules]]\nmatch = \"a*\"\nbackend = \"b\"\nserver = \"{nme}\"",
                "rules[0].server",
            ),
        ] {
            let err = Config::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
    }

    #[test]
    fn budget_limits() {
        assert_eq!(Budget::KeepOne.max_out(3), 2);
        assert_eq!(Budget::KeepOne.max_out(0), 0);
        assert_eq!(Budget::Percent(50).max_out(3), 1);
        assert_eq!(Budget::Count(2).max_out(10), 2);
        assert_eq!(Budget::parse("101%"), None);
    }
}
