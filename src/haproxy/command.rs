//! Typed runtime API commands and how each renders to a line; [`super::reply`] classifies what
//! HAProxy answers.

use std::fmt;
use std::net::IpAddr;

use super::error::CommandError;
use super::types::{AdminState, AgentState, Health, ServerId, WeightSpec};

/// HAProxy closes the connection without a word on lines longer than its 16 KB buffer.
pub const MAX_LINE_BYTES: usize = 16_000;

/// One runtime API command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ShowInfo,
    /// `show stat`: every row (frontends, backends, servers).
    ShowStat,
    /// `show stat <backend> 4 -1`: the server rows of one backend (type 4 = servers, -1 = all).
    ShowStatServers(String),
    ShowServersState(Option<String>),
    ShowBackends,
    GetWeight(ServerId),
    SetWeight(ServerId, WeightSpec),
    SetState(ServerId, AdminState),
    /// Always rendered with the `port` keyword when a port is given (without it HAProxy silently
    /// ignores the port).
    SetAddr {
        server: ServerId,
        ip: IpAddr,
        port: Option<u16>,
    },
    SetHealth(ServerId, Health),
    SetAgent(ServerId, AgentState),
    ShutdownSessions(ServerId),
    AddServer {
        server: ServerId,
        addr: String,
        options: Vec<String>,
    },
    DelServer(ServerId),
    EnableHealth(ServerId),
    DisableHealth(ServerId),
    /// Master CLI only: `reload` (never prefixed with `@N`; HAProxy answers nothing).
    Reload,
    /// Any other command; the reply is returned verbatim, unclassified.
    Raw(String),
}

impl Command {
    /// Every [`Command::verb`], for metrics that are created at 0 before the first command.
    pub const VERBS: &'static [&'static str] = &[
        "show_info",
        "show_stat",
        "show_servers_state",
        "show_backends",
        "get_weight",
        "set_weight",
        "set_state",
        "set_addr",
        "set_health",
        "set_agent",
        "shutdown_sessions",
        "add_server",
        "del_server",
        "enable_health",
        "disable_health",
        "reload",
    ];

    /// A short name for logs and the `command` metrics label (never the arguments).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::ShowInfo => "show_info",
            Command::ShowStat | Command::ShowStatServers(_) => "show_stat",
            Command::ShowServersState(_) => "show_servers_state",
            Command::ShowBackends => "show_backends",
            Command::GetWeight(_) => "get_weight",
            Command::SetWeight(..) => "set_weight",
            Command::SetState(..) => "set_state",
            Command::SetAddr { .. } => "set_addr",
            Command::SetHealth(..) => "set_health",
            Command::SetAgent(..) => "set_agent",
            Command::ShutdownSessions(_) => "shutdown_sessions",
            Command::AddServer { .. } => "add_server",
            Command::DelServer(_) => "del_server",
            Command::EnableHealth(_) => "enable_health",
            Command::DisableHealth(_) => "disable_health",
            Command::Reload => "reload",
            Command::Raw(_) => "other",
        }
    }

    /// True for commands the master process runs itself (no `@N` worker prefix).
    pub fn is_master_command(&self) -> bool {
        matches!(self, Command::Reload)
    }

    /// The command line without newline, after checking every argument is a single safe word
    /// (a `;`, space or newline inside a name would run a different command).
    pub fn render(&self) -> Result<String, CommandError> {
        let line = self.to_string();
        let (names, words): (Vec<&str>, Vec<&str>) = match self {
            Command::ShowServersState(Some(backend)) | Command::ShowStatServers(backend) => {
                (vec![backend.as_str()], vec![])
            }
            Command::GetWeight(id)
            | Command::SetWeight(id, _)
            | Command::SetState(id, _)
            | Command::SetAddr { server: id, .. }
            | Command::SetHealth(id, _)
            | Command::SetAgent(id, _)
            | Command::ShutdownSessions(id)
            | Command::DelServer(id)
            | Command::EnableHealth(id)
            | Command::DisableHealth(id) => (vec![id.backend.as_str(), &id.server], vec![]),
            Command::AddServer {
                server,
                addr,
                options,
            } => {
                let mut words = vec![addr.as_str()];
                words.extend(options.iter().map(String::as_str));
                (vec![server.backend.as_str(), &server.server], words)
            }
            Command::Raw(text) if text.contains(['\n', '\r']) => {
                return Err(not_sent(&line, "the command contains a line break"));
            }
            _ => (vec![], vec![]),
        };
        let bad_name = names.iter().find(|w| !is_safe_word(w) || w.contains('/'));
        if let Some(bad) = bad_name.or_else(|| words.iter().find(|w| !is_safe_word(w))) {
            return Err(not_sent(
                &line,
                &format!("argument {bad:?} is empty or contains whitespace, `;`, a control character or (in a name) `/`"),
            ));
        }
        if line.len() >= MAX_LINE_BYTES {
            return Err(not_sent(
                &line,
                "the line is longer than HAProxy's 16 KB limit",
            ));
        }
        Ok(line)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::ShowInfo => f.write_str("show info"),
            Command::ShowStat => f.write_str("show stat"),
            Command::ShowStatServers(backend) => write!(f, "show stat {backend} 4 -1"),
            Command::ShowServersState(None) => f.write_str("show servers state"),
            Command::ShowServersState(Some(backend)) => write!(f, "show servers state {backend}"),
            Command::ShowBackends => f.write_str("show backend"),
            Command::GetWeight(id) => write!(f, "get weight {id}"),
            Command::SetWeight(id, weight) => write!(f, "set weight {id} {weight}"),
            Command::SetState(id, state) => write!(f, "set server {id} state {state}"),
            Command::SetAddr { server, ip, port } => {
                write!(f, "set server {server} addr {ip}")?;
                match port {
                    Some(port) => write!(f, " port {port}"),
                    None => Ok(()),
                }
            }
            Command::SetHealth(id, health) => {
                write!(f, "set server {id} health {}", health.as_str())
            }
            Command::SetAgent(id, agent) => write!(f, "set server {id} agent {}", agent.as_str()),
            Command::ShutdownSessions(id) => write!(f, "shutdown sessions server {id}"),
            Command::AddServer {
                server,
                addr,
                options,
            } => {
                write!(f, "add server {server} {addr}")?;
                options.iter().try_for_each(|option| write!(f, " {option}"))
            }
            Command::DelServer(id) => write!(f, "del server {id}"),
            Command::EnableHealth(id) => write!(f, "enable health {id}"),
            Command::DisableHealth(id) => write!(f, "disable health {id}"),
            Command::Reload => f.write_str("reload"),
            Command::Raw(text) => f.write_str(text),
        }
    }
}

fn is_safe_word(word: &str) -> bool {
    !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ';')
}

fn not_sent(command: &str, reason: &str) -> CommandError {
    CommandError::NotSent {
        command: command.to_string(),
        reason: reason.to_string(),
    }
}

/// Rendering on the exact texts of HAProxy 2.6.
#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::haproxy::types::{AdminState, Health, ServerId, WeightSpec};

    fn web1() -> ServerId {
        ServerId::new("be", "web1")
    }

    #[test]
    fn commands_render_as_haproxy_expects() {
        let v6: IpAddr = "::1".parse().unwrap();
        let cases = [
            (
                Command::SetWeight(web1(), WeightSpec::Percent(50)),
                "set weight be/web1 50%",
            ),
            (
                Command::SetState(web1(), AdminState::Drain),
                "set server be/web1 state drain",
            ),
            (
                Command::SetAddr {
                    server: web1(),
                    ip: v6,
                    port: Some(8080),
                },
                "set server be/web1 addr ::1 port 8080",
            ),
            (
                Command::SetAddr {
                    server: web1(),
                    ip: "10.0.0.1".parse().unwrap(),
                    port: None,
                },
                "set server be/web1 addr 10.0.0.1",
            ),
            (
                Command::SetHealth(web1(), Health::Stopping),
                "set server be/web1 health stopping",
            ),
            (
                Command::ShutdownSessions(web1()),
                "shutdown sessions server be/web1",
            ),
            (
                Command::AddServer {
                    server: web1(),
                    addr: "10.0.0.1:80".into(),
                    options: vec!["weight".into(), "5".into()],
                },
                "add server be/web1 10.0.0.1:80 weight 5",
            ),
            (
                Command::ShowServersState(Some("be".into())),
                "show servers state be",
            ),
            (Command::DisableHealth(web1()), "disable health be/web1"),
        ];
        for (command, line) in cases {
            assert_eq!(command.render().unwrap(), line);
        }
    }

    #[test]
    fn unsafe_arguments_are_never_sent() {
        let bad = [
            Command::GetWeight(ServerId::new("be", "a;b")),
            Command::GetWeight(ServerId::new("be x", "a")),
            Command::GetWeight(ServerId::new("", "a")),
            Command::DelServer(ServerId::new("be", "a\nshow info")),
            Command::AddServer {
                server: web1(),
                addr: "1.2.3.4:80".into(),
                options: vec!["check;".into()],
            },
            Command::Raw("show info\nshow stat".into()),
            Command::Raw("x".repeat(MAX_LINE_BYTES)),
        ];
        for command in bad {
            assert!(
                matches!(command.render(), Err(CommandError::NotSent { .. })),
                "{command:?}"
            );
        }
    }

    #[test]
    fn every_verb_is_listed_for_the_metrics() {
        use crate::haproxy::types::AgentState;
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let commands = [
            Command::ShowInfo,
            Command::ShowStat,
            Command::ShowServersState(None),
            Command::ShowBackends,
            Command::GetWeight(web1()),
            Command::SetWeight(web1(), WeightSpec::Absolute(1)),
            Command::SetState(web1(), AdminState::Ready),
            Command::SetAddr {
                server: web1(),
                ip,
                port: None,
            },
            Command::SetHealth(web1(), Health::Up),
            Command::SetAgent(web1(), AgentState::Up),
            Command::ShutdownSessions(web1()),
            Command::AddServer {
                server: web1(),
                addr: "10.0.0.1:80".into(),
                options: vec![],
            },
            Command::DelServer(web1()),
            Command::EnableHealth(web1()),
            Command::DisableHealth(web1()),
            Command::Reload,
        ];
        let verbs: Vec<&str> = commands.iter().map(Command::verb).collect();
        assert_eq!(verbs, Command::VERBS);
        // One backend's rows are still `show stat` for the metrics.
        assert_eq!(Command::ShowStatServers("web".into()).verb(), "show_stat");
    }
}
