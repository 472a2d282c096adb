//! Label sets and the rules that keep label values bounded.
//!
//! Prometheus keeps one time series per label combination forever (until it goes stale), so a
//! label fed from outside (a Docker action, an error kind, a HAProxy URL) must never grow without
//! bound. Fixed vocabularies map unknown words to `other`; open vocabularies accept the first
//! [`OPEN_VOCABULARY_LIMIT`] distinct values and fold the rest into `other`.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;

/// Distinct values an open vocabulary (`kind`, `command`, `action`, `haproxy`) may take.
pub const OPEN_VOCABULARY_LIMIT: usize = 32;

/// The label value every unknown or over-the-limit value becomes.
pub const OTHER: &str = "other";

pub const TRIGGERS: &[&str] = &["docker_event", "api", "roll", "reconcile", "gate", "watch"];

pub const OWNERS: &[&str] = &["operator", "haproxy-drain"];

/// The label values known in advance, created at 0 when the daemon starts (or when a server is
/// first seen), so that `increase()` sees the first event and panels show 0, not "no data".
pub const REACTION_ACTIONS: &[&str] = &["take_out"];
pub const CORRECTION_KINDS: &[&str] = &[
    "address",
    "drain_lost",
    "held_server_not_in_maint",
    "stopped_container_in_rotation",
];
pub const CONFIG_ERROR_KINDS: &[&str] = &[
    "missing_backend",
    "port",
    "drain_timeout",
    "mode",
    "enable",
    "weight",
    "server",
];
pub const ROLL_RESULTS: &[&str] = &["ok", "failed"];

/// The admin states `haproxy_drain_server_{desired,actual}_state` enumerate.
pub const SERVER_STATES: &[&str] = &["ready", "drain", "maint"];

pub const DOCKER_ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "stop",
    "kill",
    "die",
    "destroy",
    "pause",
    "unpause",
    "healthy",
    "unhealthy",
    "oom",
];

/// `value` when it is in `vocabulary`, else `other`.
pub fn fixed(vocabulary: &'static [&'static str], value: &str) -> &'static str {
    vocabulary
        .iter()
        .find(|known| known.eq_ignore_ascii_case(value))
        .copied()
        .unwrap_or(OTHER)
}

/// Docker reports health changes as `health_status: healthy`; other actions may carry a suffix
/// too (`exec_start: sh -c …`), which must never reach a label.
pub fn docker_action(action: &str) -> &'static str {
    let action = action.trim();
    let word = match action.split_once(':') {
        Some(("health_status", status)) => status.trim(),
        Some((head, _)) => head.trim(),
        None => action,
    };
    fixed(DOCKER_ACTIONS, word)
}

/// An open vocabulary: remembers the values it has let through and caps their number.
#[derive(Debug, Default)]
pub struct BoundedVocabulary {
    seen: Mutex<HashSet<String>>,
}

impl BoundedVocabulary {
    /// The label value to use for `value`: the value itself (cleaned) while fewer than
    /// [`OPEN_VOCABULARY_LIMIT`] distinct values have been seen, `other` after that.
    pub fn admit(&self, value: &str) -> String {
        let cleaned = clean(value);
        if cleaned.is_empty() {
            return OTHER.to_string();
        }
        // A poisoned lock only means another thread panicked mid-insert; the set is still usable.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.contains(&cleaned) {
            return cleaned;
        }
        if seen.len() >= OPEN_VOCABULARY_LIMIT {
            return OTHER.to_string();
        }
        seen.insert(cleaned.clone());
        cleaned
    }
}

/// Label values may hold any UTF-8, but control characters and very long values only make
/// dashboards unreadable; keep them short and printable.
fn clean(value: &str) -> String {
    value
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub proxy: String,
    pub server: String,
}

impl ServerLabels {
    pub fn new(proxy: &str, server: &str) -> Self {
        Self {
            proxy: proxy.to_string(),
            server: server.to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerServerLabels {
    pub trigger: String,
    pub proxy: String,
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerResultServerLabels {
    pub trigger: String,
    pub result: String,
    pub proxy: String,
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultServerLabels {
    pub result: String,
    pub proxy: String,
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionServerLabels {
    pub action: String,
    pub proxy: String,
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OwnerServerLabels {
    pub proxy: String,
    pub server: String,
    pub owner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateServerLabels {
    pub proxy: String,
    pub server: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResultLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandResultLabels {
    pub command: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HaproxyLabels {
    pub haproxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_vocabularies_fold_unknown_words_into_other() {
        assert_eq!(fixed(TRIGGERS, "api"), "api");
        assert_eq!(fixed(TRIGGERS, "API"), "api");
        assert_eq!(fixed(TRIGGERS, "cron"), OTHER);
    }

    #[test]
    fn docker_actions_lose_their_suffixes() {
        assert_eq!(docker_action("health_status: healthy"), "healthy");
        assert_eq!(docker_action("health_status: unhealthy"), "unhealthy");
        assert_eq!(docker_action("exec_start: sh -c 'rm -rf /'"), OTHER);
        assert_eq!(docker_action("kill"), "kill");
        assert_eq!(docker_action("rename"), OTHER);
    }

    #[test]
    fn open_vocabularies_stop_growing_at_the_limit() {
        let vocabulary = BoundedVocabulary::default();
        for n in 0..OPEN_VOCABULARY_LIMIT {
            assert_eq!(vocabulary.admit(&format!("kind{n}")), format!("kind{n}"));
        }
        assert_eq!(vocabulary.admit("one_too_many"), OTHER);
        // Values admitted earlier keep their own label.
        assert_eq!(vocabulary.admit("kind0"), "kind0");
        assert_eq!(vocabulary.admit("  \n"), OTHER);
    }
}
