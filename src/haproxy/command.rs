//! Typed runtime API commands: how each renders to a line and how its reply is classified.
//!
//! Classification is against the exact texts HAProxy 2.6 prints (see the reference notes):
//! most `set` commands answer an empty line on success, but `set server … addr`, `add server` and
//! `del server` answer text on success too, so "non-empty means error" would be wrong.

use std::fmt;
use std::net::IpAddr;

use super::error::CommandError;
use super::parse;
use super::types::{
    AdminState, AgentState, Health, Info, ServerId, ServerState, StatRow, Weight, WeightSpec,
};

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

/// A successful reply, typed by command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The command succeeded and printed nothing.
    Done,
    /// The command succeeded and HAProxy said something (`IP changed from …`, `Server deleted.`).
    Message(String),
    Info(Info),
    Stat(Vec<StatRow>),
    ServersState(Vec<ServerState>),
    Weight(Weight),
    Backends(Vec<String>),
    /// The reply text of a [`Command::Raw`].
    Raw(String),
}

/// One reply as cut out of the stream by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    pub text: String,
    /// False when HAProxy closed the connection instead of printing the next prompt.
    pub terminated: bool,
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

    /// Turns HAProxy's reply into a typed result. `addr` only names the socket in messages.
    pub fn classify(&self, reply: &RawReply, addr: &str) -> Result<Reply, CommandError> {
        let command = self.to_string();
        let text = reply.text.trim_end();
        if let Command::Raw(_) = self {
            return match reply.terminated || !text.is_empty() {
                true => Ok(Reply::Raw(reply.text.clone())),
                false => Err(CommandError::NoReply { command }),
            };
        }
        if !reply.terminated && text.is_empty() && !matches!(self, Command::Reload) {
            return Err(CommandError::NoReply { command });
        }
        if let Some(error) = known_error(&command, text, addr) {
            return Err(error);
        }
        let parsed = |result: Result<Reply, super::error::ParseError>| {
            result.map_err(|source| CommandError::UnexpectedReply {
                command: command.clone(),
                source,
            })
        };
        match self {
            Command::ShowInfo => parsed(parse::parse_info(text).map(Reply::Info)),
            Command::ShowStat | Command::ShowStatServers(_) => {
                parsed(parse::parse_stat(text).map(Reply::Stat))
            }
            Command::ShowServersState(_) => {
                parsed(parse::parse_servers_state(text).map(Reply::ServersState))
            }
            Command::ShowBackends => Ok(Reply::Backends(parse::parse_backends(text))),
            Command::GetWeight(_) => parsed(parse::parse_weight(text).map(Reply::Weight)),
            Command::SetAddr { .. } => classify_set_addr(command, text),
            Command::AddServer { .. } => expect_message(command, text, "New server registered."),
            Command::DelServer(_) => expect_message(command, text, "Server deleted."),
            Command::Raw(_) => Ok(Reply::Raw(reply.text.clone())),
            Command::Reload
            | Command::SetWeight(..)
            | Command::SetState(..)
            | Command::SetHealth(..)
            | Command::SetAgent(..)
            | Command::ShutdownSessions(_)
            | Command::EnableHealth(_)
            | Command::DisableHealth(_) => match text.is_empty() {
                true => Ok(Reply::Done),
                false => Err(rejected(command, text)),
            },
        }
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

fn rejected(command: String, text: &str) -> CommandError {
    CommandError::Rejected {
        command,
        message: text.trim().to_string(),
    }
}

/// Errors that mean the same thing whatever the command.
fn known_error(command: &str, text: &str, addr: &str) -> Option<CommandError> {
    let command = command.to_string();
    let message = text.trim().to_string();
    Some(match message.as_str() {
        "Permission denied" => CommandError::PermissionDenied {
            command,
            addr: addr.to_string(),
        },
        "No such backend." | "Can't find backend." => CommandError::NoSuchBackend { command },
        "No such server." => CommandError::NoSuchServer { command },
        "Already exists a server with the same name in backend." => {
            CommandError::AlreadyExists { command }
        }
        "Only servers in maintenance mode can be deleted." => {
            CommandError::NotInMaintenance { command }
        }
        "Server still has connections attached to it, cannot remove it." => {
            CommandError::StillHasConnections { command }
        }
        m if m.starts_with("Unknown command") => CommandError::UnknownCommand { command },
        m if m.starts_with("Can't find the target PID") => {
            CommandError::NoSuchWorker { command, message }
        }
        m if m.starts_with("Backend is using a static LB algorithm")
            || m.starts_with("Backend must use a dynamic load balancing") =>
        {
            CommandError::StaticAlgorithm { command, message }
        }
        m if m.starts_with("Require ")
            || m.starts_with("Absolute weight can only be")
            || m.contains("weight string")
            || m.starts_with("'set server <srv>")
            || m.starts_with("usage:")
            || m.starts_with("unknown keyword")
            || m.starts_with("'server' expects")
            || m.contains("is not accepted for dynamic server") =>
        {
            CommandError::InvalidArgument { command, message }
        }
        _ => return None,
    })
}

/// `set server … addr` succeeds with "IP changed from …" or "no need to change the addr…";
/// a failure to convert either part is reported in the same sentence.
fn classify_set_addr(command: String, text: &str) -> Result<Reply, CommandError> {
    let success = (text.starts_with("IP changed from") || text.starts_with("no need to change"))
        && !text.contains("problem")
        && !text.contains("Invalid");
    match success {
        true => Ok(Reply::Message(text.to_string())),
        false => Err(match text.starts_with("Invalid addr") {
            true => CommandError::InvalidArgument {
                command,
                message: text.to_string(),
            },
            false => rejected(command, text),
        }),
    }
}

fn expect_message(command: String, text: &str, success: &str) -> Result<Reply, CommandError> {
    match text.trim() == success {
        true => Ok(Reply::Message(success.to_string())),
        false => Err(rejected(command, text)),
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
