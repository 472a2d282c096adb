//! `check`'s account of the mode `run` will be in (push, pull read-only, pull blind) and of
//! what that mode cannot do.

use std::net::SocketAddr;

use crate::agent::Mode;
use crate::haproxy::ServerId;

/// `(ok, line)` for the mode, then one `(limited)` line per thing it cannot do.
pub fn mode_lines(mode: Mode, agent_listen: Option<SocketAddr>) -> Vec<(bool, String)> {
    let agent = agent_listen.map_or_else(String::new, |addr| addr.to_string());
    let how = match (mode, agent_listen) {
        (Mode::Push, None) => "runtime API commands over the admin socket(s)".to_string(),
        (Mode::Push, Some(_)) => format!(
            "runtime API commands over the admin socket(s); the agent on {agent} answers the same decisions"
        ),
        (Mode::PullReadOnly, _) => format!(
            "HAProxy asks the agent on {agent} and obeys it; sessions and checks are read through the read-only socket(s); no admin command is ever sent"
        ),
        (Mode::PullBlind, _) => format!(
            "HAProxy asks the agent on {agent} and obeys it; no socket: nothing is read back"
        ),
    };
    let mut lines = vec![(true, format!("{}: {how}", mode.as_str()))];
    lines.extend(
        mode.limits()
            .iter()
            .map(|limit| (true, format!("(limited) {limit}"))),
    );
    lines
}

/// A mapped server that some HAProxy (`lacking`, their URLs) runs no agent check for: pull mode
/// can neither drain nor restore it there.
pub fn agent_gap(container: &str, server: &ServerId, lacking: &[&str]) -> Option<String> {
    if lacking.is_empty() {
        return None;
    }
    Some(format!(
        "{container} → {server}: no agent check on {}: pull mode cannot drain or restore it; add `agent-check agent-addr … agent-port … agent-send \"{server}\\n\"` to its server line",
        lacking.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_says_what_it_cannot_do() {
        let agent = Some("127.0.0.1:5555".parse().unwrap());
        for (mode, listen, says) in [
            (Mode::Push, None, "admin socket"),
            (Mode::Push, agent, "answers the same"),
            (Mode::PullReadOnly, agent, "read-only"),
            (Mode::PullBlind, agent, "no socket"),
        ] {
            let lines = mode_lines(mode, listen);
            assert!(lines[0].1.contains(says), "{lines:?}");
            assert!(lines.len() > 1 && lines[1..].iter().all(|(_, l)| l.starts_with("(limited)")));
        }
        let web1 = ServerId::new("be", "web1");
        assert_eq!(agent_gap("web1", &web1, &[]), None);
        let gap = agent_gap("web1", &web1, &["unix:///a.sock"]).unwrap_or_default();
        assert!(
            gap.contains("agent-send \"be/web1\\n\"") && gap.contains("a.sock"),
            "{gap}"
        );
        assert!(mode_lines(Mode::PullBlind, agent)
            .iter()
            .any(|(_, l)| l.contains("no session count")));
    }
}
