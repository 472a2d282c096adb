//! A stats socket's privilege level, and how to learn it without changing anything: it decides
//! whether haproxy-drain may send commands (admin: push mode) or only read (pull mode).

use super::client::Client;
use super::error::{CommandError, HaproxyError};
use super::types::{ServerId, WeightSpec};

/// A backend no one has: `set weight` on it is refused for lack of privilege before HAProxy
/// looks the backend up, so the answer tells the level and nothing changes.
const PROBE_BACKEND: &str = "haproxy-drain-privilege-probe";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliLevel {
    Admin,
    Operator,
    User,
    /// `show cli level` unknown (not 2.6) and `set weight` refused: operator or user.
    BelowAdmin,
}

impl CliLevel {
    /// The reply of `show cli level`; `None` for anything else (an older HAProxy).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "admin" => Some(CliLevel::Admin),
            "operator" => Some(CliLevel::Operator),
            "user" => Some(CliLevel::User),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CliLevel::Admin => "admin",
            CliLevel::Operator => "operator",
            CliLevel::User => "user",
            CliLevel::BelowAdmin => "operator or user",
        }
    }

    /// What the level allows, for `check`.
    pub fn can(self) -> &'static str {
        match self {
            CliLevel::Admin => "can do everything",
            CliLevel::Operator => "can only read state and clear counters",
            CliLevel::User | CliLevel::BelowAdmin => "can only read state",
        }
    }

    pub fn is_admin(self) -> bool {
        self == CliLevel::Admin
    }
}

/// The level as `show cli level` names it; `None` where HAProxy does not know the command.
/// Sends nothing else: what the daemon uses before it knows it may send admin commands.
pub async fn reported_level(client: &Client) -> Result<Option<CliLevel>, HaproxyError> {
    Ok(CliLevel::parse(&client.raw("show cli level").await?))
}

/// `show cli level` names the level and changes nothing. Where it is unknown, `set weight` on a
/// backend no one has tells admin (`No such backend`) from below (`Permission denied`): the
/// privilege check comes before the look-up, so nothing changes either way.
pub async fn socket_level(client: &Client) -> Result<CliLevel, HaproxyError> {
    if let Some(level) = reported_level(client).await? {
        return Ok(level);
    }
    let probe = ServerId::new(PROBE_BACKEND, "none");
    match client.set_weight(&probe, WeightSpec::Absolute(1)).await {
        Ok(()) | Err(HaproxyError::Command(CommandError::NoSuchBackend { .. })) => {
            Ok(CliLevel::Admin)
        }
        Err(HaproxyError::Command(CommandError::PermissionDenied { .. })) => {
            Ok(CliLevel::BelowAdmin)
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_from_show_cli_level() {
        assert_eq!(CliLevel::parse("admin\n"), Some(CliLevel::Admin));
        assert_eq!(CliLevel::parse("operator\n\n"), Some(CliLevel::Operator));
        assert_eq!(CliLevel::parse("user"), Some(CliLevel::User));
        assert_eq!(CliLevel::parse("Unknown command"), None);
    }
}
