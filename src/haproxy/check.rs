//! HAProxy health checks as the runtime API reports them: whether a server has checks and
//! whether one passed since it left MAINT. The bit and status texts are HAProxy 2.6's.

use super::types::{ServerState, StatRow};

/// `srv_check_state` bit of `show servers state`: health checks are configured for the server.
const CHECK_CONFIGURED: u32 = 0x2;

/// `check_status` values of `show stat` that mean the last check passed (layer 4, 6, 7 and
/// 7 with a custom check).
const PASSING: [&str; 4] = ["L4OK", "L6OK", "L7OK", "L7OKC"];

impl ServerState {
    /// True when the server has health checks configured (enabled or not).
    pub fn checks_configured(&self) -> bool {
        self.check_state & CHECK_CONFIGURED != 0
    }
}

impl StatRow {
    /// True when HAProxy runs health checks on this server (`check_status` is empty otherwise).
    pub fn has_checks(&self) -> bool {
        !self.check_status.is_empty()
    }

    /// True when a health check passed since the server left MAINT (or it has no checks).
    ///
    /// Leaving MAINT sets the health counter to `rise` ("DRAIN 1/2"); one passing check raises it
    /// to `rise + fall - 1`. So "a check passed since" is a passing status (`* ` marks a check in
    /// progress) with the counter at its top.
    pub fn check_passed(&self) -> bool {
        if !self.has_checks() {
            return true;
        }
        let status = self.check_status.trim_start_matches("* ");
        let at_top = match (self.check_health, self.check_rise, self.check_fall) {
            (Some(health), Some(rise), Some(fall)) => health >= rise + fall.saturating_sub(1),
            _ => true,
        };
        PASSING.contains(&status) && at_top
    }
}

#[cfg(test)]
mod tests {
    use crate::haproxy::types::{RowKind, ServerStatus, StatRow};

    fn row(status: &str, health: Option<u32>) -> StatRow {
        StatRow {
            proxy: "web".into(),
            name: "web1".into(),
            kind: RowKind::Server,
            status: ServerStatus::Drain,
            status_text: "DRAIN".into(),
            weight: Some(1),
            user_weight: Some(1),
            sessions: 0,
            queued: 0,
            total_sessions: 0,
            check_status: status.into(),
            check_health: health,
            check_rise: Some(2),
            check_fall: Some(3),
            last_change: None,
            addr: String::new(),
            traffic: Default::default(),
        }
    }

    #[test]
    fn a_check_passed_only_with_a_passing_status_at_the_top_of_the_counter() {
        let cases = [
            ("", None, true),
            ("L7OK", Some(4), true),
            ("* L4OK", Some(4), true),
            ("L7OKC", None, true),
            ("L7OK", Some(2), false),
            ("L4TOUT", Some(4), false),
            ("* L4CON", Some(4), false),
        ];
        for (status, health, passed) in cases {
            assert_eq!(
                row(status, health).check_passed(),
                passed,
                "{status} {health:?}"
            );
        }
    }
}
