//! Which servers HAProxy runs an agent check for (`srv_agent_state` of `show servers state`):
//! pull mode reaches only those. Kept apart from [`super::parse`]'s `ServerState`, which the
//! push path does not need it in.

use std::collections::BTreeMap;

use super::client::Client;
use super::error::{HaproxyError, ParseError};
use super::types::ServerId;

/// `srv_agent_state` bit: an agent check is configured for the server.
const AGENT_CONFIGURED: u32 = 0x2;

/// Every server of `show servers state` text → whether it has an agent check.
pub fn parse_agent_checks(text: &str) -> Result<BTreeMap<ServerId, bool>, ParseError> {
    const WHAT: &str = "show servers state (agent)";
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .find(|l| l.starts_with("# "))
        .ok_or_else(|| ParseError::new(WHAT, "no header line"))?;
    let names: Vec<&str> = header.trim_start_matches("# ").split_whitespace().collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| ParseError::new(WHAT, format!("no `{name}` column")))
    };
    let (backend, server, agent) = (
        column("be_name")?,
        column("srv_name")?,
        column("srv_agent_state")?,
    );
    let mut checks = BTreeMap::new();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let (Some(b), Some(s), Some(state)) =
            (cells.get(backend), cells.get(server), cells.get(agent))
        else {
            return Err(ParseError::new(WHAT, format!("short line {line:?}")));
        };
        let state: u32 = state
            .parse()
            .map_err(|_| ParseError::new(WHAT, format!("`srv_agent_state` {state:?}")))?;
        checks.insert(ServerId::new(*b, *s), state & AGENT_CONFIGURED != 0);
    }
    Ok(checks)
}

/// One read of every server's agent-check setting (read-only: any socket level).
pub async fn agent_checks(client: &Client) -> Result<BTreeMap<ServerId, bool>, HaproxyError> {
    let text = client.raw("show servers state").await?;
    parse_agent_checks(&text).map_err(|source| {
        HaproxyError::Command(super::error::CommandError::UnexpectedReply {
            command: "show servers state".into(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from HAProxy 2.6.12: s1 with `agent-check`, s2 without.
    const REPLY: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 be 1 s1 127.0.0.1 2 0 50 50 0 6 3 4 6 22 0 0 - 28412 - 0 0 - 127.0.0.1 28413\n3 be 2 s2 127.0.0.1 2 0 50 50 0 6 3 4 6 0 0 0 - 28412 - 0 0 - - 0\n";

    #[test]
    fn servers_with_and_without_an_agent_check() {
        let checks = parse_agent_checks(REPLY).unwrap();
        assert_eq!(checks.get(&ServerId::new("be", "s1")), Some(&true));
        assert_eq!(checks.get(&ServerId::new("be", "s2")), Some(&false));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "1\n",
            "1\n# be_name srv_name\nbe s1\n",
            "1\n# be_name srv_name srv_agent_state\nbe s1 x\n",
            "1\n# be_name srv_name srv_agent_state\nbe\n",
        ] {
            assert!(parse_agent_checks(text).is_err(), "{text:?}");
        }
    }
}
