//! Which HAProxy server a container is: from its labels, else from the config's rules. Pure.
//!
//! Labels win over rules (a rule is for containers you cannot relabel); a label that is present
//! but wrong is an error for that container only — never a reason to stop handling the others.

use crate::config::{Config, DrainMode, ServerSettings};
use crate::duration;
use crate::haproxy::types::ServerId;
use std::collections::HashMap;

pub const LABEL_PREFIX: &str = "haproxy-drain.";
pub const LABEL_ENABLE: &str = "haproxy-drain.enable";
pub const LABEL_BACKEND: &str = "haproxy-drain.backend";
pub const LABEL_SERVER: &str = "haproxy-drain.server";
pub const LABEL_PORT: &str = "haproxy-drain.port";
pub const LABEL_DRAIN_TIMEOUT: &str = "haproxy-drain.drain-timeout";
pub const LABEL_MODE: &str = "haproxy-drain.mode";
pub const LABEL_NETWORK: &str = "haproxy-drain.network";
pub const LABEL_HEALTH_PATH: &str = "haproxy-drain.health-path";
pub const LABEL_WEIGHT: &str = "haproxy-drain.weight";
pub const LABEL_RAMP: &str = "haproxy-drain.ramp";
pub const LABEL_WATCH: &str = "haproxy-drain.watch";

/// A container's place in HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub server: ServerId,
    /// Port HAProxy should use; `None` keeps the port HAProxy already has.
    pub port: Option<u16>,
    pub settings: ServerSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container {container}: label or rule {field} = {value:?}: {message}; the container is skipped until this is fixed")]
pub struct MappingError {
    pub container: String,
    pub field: String,
    pub value: String,
    pub message: String,
}

impl MappingError {
    /// A bounded metrics label for the kind of mistake.
    pub fn kind(&self) -> &'static str {
        match self.field.as_str() {
            LABEL_PORT => "port",
            LABEL_DRAIN_TIMEOUT => "drain_timeout",
            LABEL_MODE => "mode",
            LABEL_ENABLE => "enable",
            LABEL_WEIGHT => "weight",
            "server" | LABEL_SERVER => "server",
            _ => "other",
        }
    }
}

/// Maps a container by name and labels; `Ok(None)` when it is not haproxy-drain's business.
pub fn resolve(
    container: &str,
    labels: &HashMap<String, String>,
    config: &Config,
) -> Result<Option<Mapping>, MappingError> {
    let error = |field: &str, value: &str, message: String| MappingError {
        container: container.to_string(),
        field: field.to_string(),
        value: value.to_string(),
        message,
    };
    if let Some(value) = labels.get(LABEL_ENABLE) {
        match value.trim().to_ascii_lowercase().as_str() {
            "false" | "0" | "no" | "off" => return Ok(None),
            "true" | "1" | "yes" | "on" => {}
            _ => return Err(error(LABEL_ENABLE, value, "expected true or false".into())),
        }
    }

    let (mut mapping, port_from) = if let Some(backend) = labels.get(LABEL_BACKEND) {
        let backend = backend.trim();
        if backend.is_empty() || backend.contains('/') || backend.contains(char::is_whitespace) {
            return Err(error(
                LABEL_BACKEND,
                backend,
                "not a HAProxy backend name".into(),
            ));
        }
        let server = labels
            .get(LABEL_SERVER)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| container.to_string());
        (
            Mapping {
                server: ServerId::new(backend, server),
                port: None,
                settings: config.defaults.clone(),
            },
            None,
        )
    } else if let Some(rule) = config
        .rules
        .iter()
        .find(|r| glob_match(&r.pattern, container))
    {
        let server = rule
            .server
            .render(container)
            .map_err(|m| error("server", rule.server.as_str(), m))?;
        (
            Mapping {
                server: ServerId::new(rule.backend.clone(), server),
                port: rule.port,
                settings: rule.settings.clone(),
            },
            rule.port,
        )
    } else {
        return Ok(None);
    };
    mapping.port = port_from;

    if let Some(server) = labels.get(LABEL_SERVER) {
        let server = server.trim();
        if server.is_empty() || server.contains('/') || server.contains(char::is_whitespace) {
            return Err(error(
                LABEL_SERVER,
                server,
                "not a HAProxy server name".into(),
            ));
        }
        mapping.server.server = server.to_string();
    }
    if let Some(value) = labels.get(LABEL_PORT) {
        let port = value
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| error(LABEL_PORT, value, "expected a port number 1-65535".into()))?;
        mapping.port = Some(port);
    }
    if let Some(value) = labels.get(LABEL_DRAIN_TIMEOUT) {
        mapping.settings.drain_timeout =
            duration::parse(value).map_err(|m| error(LABEL_DRAIN_TIMEOUT, value, m))?;
    }
    for (label, setting) in [
        (LABEL_RAMP, &mut mapping.settings.ramp),
        (LABEL_WATCH, &mut mapping.settings.watch),
    ] {
        if let Some(value) = labels.get(label) {
            *setting = duration::parse(value).map_err(|m| error(label, value, m))?;
        }
    }
    if let Some(value) = labels.get(LABEL_MODE) {
        mapping.settings.mode = DrainMode::parse(value)
            .ok_or_else(|| error(LABEL_MODE, value, "expected drain, weight or maint".into()))?;
    }
    if let Some(value) = labels.get(LABEL_WEIGHT) {
        mapping.settings.dynamic_weight = value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|w| *w <= 256)
            .ok_or_else(|| error(LABEL_WEIGHT, value, "expected a weight 0-256".into()))?;
    }
    if let Some(value) = labels.get(LABEL_NETWORK) {
        mapping.settings.network = Some(value.trim().to_string()).filter(|n| !n.is_empty());
    }
    if let Some(value) = labels.get(LABEL_HEALTH_PATH) {
        if !value.starts_with('/') {
            return Err(error(
                LABEL_HEALTH_PATH,
                value,
                "expected a path starting with /".into(),
            ));
        }
        mapping.settings.health_path = Some(value.clone());
    }
    Ok(Some(mapping))
}

/// True when any label is ours: such a container is meant to be mapped, so errors matter.
pub fn has_our_labels(labels: &HashMap<String, String>) -> bool {
    labels.keys().any(|k| k.starts_with(LABEL_PREFIX))
}

/// `*` matches any run of characters, `?` exactly one; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rules_config() -> Config {
        Config::parse(
            "[[rules]]\nmatch = \"pxApp_*\"\nbackend = \"pxapp_cluster\"\nserver = \"app_{number}\"\nport = 8080\n",
        )
        .unwrap()
    }

    #[test]
    fn table() {
        let config = rules_config();
        // (container, labels, expected Ok(Some((server, port))) / Ok(None) / Err(field))
        type Expect = Result<Option<(&'static str, Option<u16>)>, &'static str>;
        type Case = (&'static str, Vec<(&'static str, &'static str)>, Expect);
        let cases: Vec<Case> = vec![
            ("web1", vec![], Ok(None)),
            (
                "web1",
                vec![(LABEL_BACKEND, "be")],
                Ok(Some(("be/web1", None))),
            ),
            (
                "web1",
                vec![
                    (LABEL_BACKEND, "be"),
                    (LABEL_SERVER, "s1"),
                    (LABEL_PORT, "8080"),
                ],
                Ok(Some(("be/s1", Some(8080)))),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_ENABLE, "false")],
                Ok(None),
            ),
            (
                "pxApp_3",
                vec![],
                Ok(Some(("pxapp_cluster/app_3", Some(8080)))),
            ),
            (
                "pxApp_3",
                vec![(LABEL_PORT, "9090")],
                Ok(Some(("pxapp_cluster/app_3", Some(9090)))),
            ),
            ("pxApp_x", vec![], Err("server")),
            ("pxApp_3", vec![(LABEL_ENABLE, "0")], Ok(None)),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_PORT, "0")],
                Err(LABEL_PORT),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_PORT, "http")],
                Err(LABEL_PORT),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_DRAIN_TIMEOUT, "soon")],
                Err(LABEL_DRAIN_TIMEOUT),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_MODE, "gentle")],
                Err(LABEL_MODE),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_ENABLE, "maybe")],
                Err(LABEL_ENABLE),
            ),
            ("web1", vec![(LABEL_BACKEND, "b/e")], Err(LABEL_BACKEND)),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_SERVER, "")],
                Err(LABEL_SERVER),
            ),
            (
                "web1",
                vec![(LABEL_BACKEND, "be"), (LABEL_WEIGHT, "300")],
                Err(LABEL_WEIGHT),
            ),
        ];
        for (name, pairs, expected) in cases {
            let got = resolve(name, &labels(&pairs), &config);
            match (&got, expected) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(m)), Ok(Some((server, port)))) => {
                    assert_eq!(m.server.to_string(), server, "{name} {pairs:?}");
                    assert_eq!(m.port, port, "{name} {pairs:?}");
                }
                (Err(e), Err(field)) => assert_eq!(e.field, field, "{name} {pairs:?}: {e}"),
                _ => panic!("{name} {pairs:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn labels_override_settings() {
        let m = resolve(
            "w",
            &labels(&[
                (LABEL_BACKEND, "be"),
                (LABEL_MODE, "maint"),
                (LABEL_DRAIN_TIMEOUT, "5s"),
            ]),
            &Config::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.settings.mode, DrainMode::Maint);
        assert_eq!(m.settings.drain_timeout, Duration::from_secs(5));
    }

    #[test]
    fn globs() {
        for (p, t, ok) in [
            ("pxApp_*", "pxApp_12", true),
            ("pxApp_*", "pxapp_12", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "x", false),
        ] {
            assert_eq!(glob_match(p, t), ok, "{p} ~ {t}");
        }
    }

    /// Found by `make fuzz` (target labels_mapping): a multi-byte character before the digits
    /// made `{number}` slice inside it and panic.
    #[test]
    fn a_number_after_a_multibyte_character_does_not_panic() {
        let config = Config::parse(
            "[[rules]]\nmatch = \"pxApp_*\"\nbackend = \"b\"\nserver = \"app_{number}\"\n",
        )
        .unwrap();
        let crash = "pxApp_\u{fffd}\u{fffd}\u{fffd}12d";
        let found = resolve(crash, &HashMap::new(), &config).unwrap().unwrap();
        assert_eq!(found.server.server, "app_12");
    }
}
