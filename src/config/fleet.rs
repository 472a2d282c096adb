//! `[fleet]`: the fleet-wide availability budget on etcd. Without the table nothing changes.
//!
//! ```toml
//! [fleet]
//! endpoints = ["http://127.0.0.1:2379"]
//! host = "host-a"            # default: the hostname
//! lease_ttl = "10s"          # a dead sidecar's slots vanish after this
//! wait_timeout = "5m"        # how long a roll, `drain --wait` or the gate waits for a slot
//! on_unreachable = "local"   # or "closed"
//! [fleet.budgets]
//! app = "1"                  # or "35%" of the fleet's servers of that backend
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::settings::Budget;
use crate::duration;

/// What a drain does when etcd cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unreachable {
    /// Go on under the local budget only (logged and counted).
    Local,
    /// A drain that needs a slot waits for etcd (up to its wait) or is refused.
    Closed,
}

/// The validated `[fleet]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    pub endpoints: Vec<String>,
    /// This sidecar's name in the fleet; unique per host (it is part of every key it writes).
    pub host: String,
    /// Backends with a fleet budget; the others are not coordinated.
    pub budgets: BTreeMap<String, Budget>,
    pub lease_ttl: Duration,
    pub wait_timeout: Duration,
    /// Each etcd call's bound: past it etcd counts as unreachable for that call.
    pub request_timeout: Duration,
    pub on_unreachable: Unreachable,
    /// The key prefix, so several fleets can share one etcd.
    pub prefix: String,
}

pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_PREFIX: &str = "/haproxy-drain/fleet";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    #[serde(default)]
    endpoints: Vec<String>,
    host: Option<String>,
    #[serde(default)]
    budgets: BTreeMap<String, String>,
    lease_ttl: Option<String>,
    wait_timeout: Option<String>,
    request_timeout: Option<String>,
    on_unreachable: Option<Unreachable>,
    prefix: Option<String>,
}

impl RawFleet {
    /// `Err((field, message))`; the caller names the file.
    pub(super) fn validate(self) -> Result<FleetConfig, (String, String)> {
        let invalid = |field: &str, message: String| Err((format!("fleet.{field}"), message));
        if self.endpoints.is_empty() {
            return invalid("endpoints", "name at least one etcd endpoint".into());
        }
        let host = match self.host {
            Some(host) => host,
            None => hostname().ok_or_else(|| {
                (
                    "fleet.host".to_string(),
                    "no hostname could be read: set `host`".to_string(),
                )
            })?,
        };
        if !is_key_part(&host) {
            return invalid(
                "host",
                format!("'{host}' must be non-empty and without '/'"),
            );
        }
        let mut budgets = BTreeMap::new();
        for (backend, text) in &self.budgets {
            if !is_key_part(backend) {
                return invalid("budgets", format!("backend '{backend}' contains '/'"));
            }
            match Budget::parse(text) {
                Some(budget) => budgets.insert(backend.clone(), budget),
                None => {
                    return invalid(
                        &format!("budgets.{backend}"),
                        format!("'{text}' is not a count or a percentage"),
                    )
                }
            };
        }
        let duration = |value: &Option<String>, name: &str, fallback: Duration| match value {
            Some(text) => match duration::parse(text) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err((format!("fleet.{name}"), "must be more than 0".to_string())),
                Err(message) => Err((format!("fleet.{name}"), message)),
            },
            None => Ok(fallback),
        };
        let lease_ttl = duration(&self.lease_ttl, "lease_ttl", DEFAULT_LEASE_TTL)?;
        if lease_ttl < Duration::from_secs(2) {
            return invalid(
                "lease_ttl",
                "etcd leases are whole seconds: at least 2s".into(),
            );
        }
        Ok(FleetConfig {
            endpoints: self.endpoints,
            host,
            budgets,
            lease_ttl,
            wait_timeout: duration(&self.wait_timeout, "wait_timeout", DEFAULT_WAIT_TIMEOUT)?,
            request_timeout: duration(
                &self.request_timeout,
                "request_timeout",
                DEFAULT_REQUEST_TIMEOUT,
            )?,
            on_unreachable: self.on_unreachable.unwrap_or(Unreachable::Local),
            prefix: self
                .prefix
                .map(|p| p.trim_end_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
        })
    }
}

fn is_key_part(text: &str) -> bool {
    !text.is_empty() && !text.contains('/')
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FleetConfig, (String, String)> {
        toml::from_str::<RawFleet>(text).unwrap().validate()
    }

    #[test]
    fn defaults_and_budgets() {
        let fleet = parse(
            "endpoints = [\"http://127.0.0.1:2379\"]\nhost = \"a\"\n[budgets]\napp = \"1\"\napi = \"35%\"\n",
        )
        .unwrap();
        assert_eq!(fleet.host, "a");
        assert_eq!(fleet.budgets["app"], Budget::Count(1));
        assert_eq!(fleet.budgets["api"], Budget::Percent(35));
        assert_eq!(fleet.lease_ttl, DEFAULT_LEASE_TTL);
        assert_eq!(fleet.on_unreachable, Unreachable::Local);
        assert_eq!(fleet.prefix, DEFAULT_PREFIX);
    }

    #[test]
    fn bad_values_name_their_field() {
        let table = [
            ("host = \"a\"", "fleet.endpoints"),
            ("endpoints = [\"x\"]\nhost = \"a/b\"", "fleet.host"),
            (
                "endpoints = [\"x\"]\nhost = \"a\"\n[budgets]\napp = \"lots\"",
                "fleet.budgets.app",
            ),
            (
                "endpoints = [\"x\"]\nhost = \"a\"\nlease_ttl = \"500ms\"",
                "fleet.lease_ttl",
            ),
            (
                "endpoints = [\"x\"]\nhost = \"a\"\nwait_timeout = \"0s\"",
                "fleet.wait_timeout",
            ),
        ];
        for (text, field) in table {
            let (got, _) = parse(text).unwrap_err();
            assert_eq!(got, field, "{text}");
        }
    }

    #[test]
    fn closed_mode_parses() {
        let fleet =
            parse("endpoints = [\"x\"]\nhost = \"a\"\non_unreachable = \"closed\"").unwrap();
        assert_eq!(fleet.on_unreachable, Unreachable::Closed);
    }
}
