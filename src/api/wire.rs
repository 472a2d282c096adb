//! JSON bodies of the control API, shared by the server ([`super::server`]) and the CLI's client
//! ([`super::client`]) so the two cannot drift apart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::controller::handle::ControlError;

/// How long `POST /v1/drain` waits for sessions to reach 0 when the body gives no `timeout_ms`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `POST /v1/ready` waits for the server to be back in rotation by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `POST /v1/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainBody {
    /// A container name or `backend/server`.
    pub target: String,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyBody {
    pub target: String,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `POST /v1/rolls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollBody {
    pub containers: Vec<String>,
    /// Recreate each container with this image; restart it when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub pull: bool,
    /// How many containers may be out of rotation at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<usize>,
    /// Start each replacement beside the running container before it is drained.
    #[serde(default)]
    pub surge: bool,
    /// With `surge`: how many containers are replaced at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<usize>,
    /// Per-step limit for the drain wait and for the wait until back in rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Wait this long after each container for the post-restore watch's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_ms: Option<u64>,
    /// Put the previous image back on a container that fails (needs `image` and `watch_ms`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_on_failure: bool,
}

/// Answer to `POST /v1/rolls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollCreated {
    pub id: String,
}

/// Every error answer: a message for people, and the controller's typed error for programs
/// (the CLI reads `sessions_left` from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ControlError>,
}

impl ErrorBody {
    pub fn message(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            detail: None,
        }
    }
}

/// Milliseconds on the wire, [`Duration`] inside.
pub fn millis_or(timeout_ms: Option<u64>, default: Duration) -> Duration {
    timeout_ms.map(Duration::from_millis).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_body_defaults_and_rejects_typos() {
        let body: DrainBody = serde_json::from_str(r#"{"target":"web1"}"#).unwrap();
        assert_eq!(
            body,
            DrainBody {
                target: "web1".into(),
                wait: false,
                timeout_ms: None,
                force: false
            }
        );
        assert!(serde_json::from_str::<DrainBody>(r#"{"target":"web1","wiat":true}"#).is_err());
    }

    #[test]
    fn error_body_carries_the_typed_error() {
        let body = ErrorBody {
            error: "x".into(),
            detail: Some(ControlError::Unavailable),
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), body);
        assert_eq!(
            serde_json::to_string(&ErrorBody::message("m")).unwrap(),
            r#"{"error":"m"}"#
        );
    }
}
