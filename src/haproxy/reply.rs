//! What HAProxy answers, typed: [`Command::classify`] turns a [`RawReply`] into a [`Reply`] or a
//! [`CommandError`].
//!
//! Classification is against the exact texts HAProxy 2.6 prints (see the reference notes):
//! most `set` commands answer an empty line on success, but `set server … addr`, `add server` and
//! `del server` answer text on success too, so "non-empty means error" would be wrong.

use super::command::Command;
use super::error::CommandError;
use super::types::{Info, ServerState, StatRow, Weight};
use super::{parse, stat};

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
                parsed(stat::parse_stat(text).map(Reply::Stat))
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

/// Classification on the exact texts of HAProxy 2.6.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::types::{ServerId, WeightSpec};

    fn web1() -> ServerId {
        ServerId::new("be", "web1")
    }

    fn reply(text: &str) -> RawReply {
        RawReply {
            text: text.to_string(),
            terminated: true,
        }
    }

    fn classify(command: Command, text: &str) -> Result<Reply, CommandError> {
        command.classify(&reply(text), "unix:///run/admin.sock")
    }

    #[test]
    fn empty_replies_mean_success_for_set_commands() {
        assert_eq!(
            classify(Command::SetWeight(web1(), WeightSpec::Absolute(0)), "\n"),
            Ok(Reply::Done)
        );
        assert_eq!(classify(Command::EnableHealth(web1()), ""), Ok(Reply::Done));
        let odd = classify(
            Command::SetAgent(web1(), crate::haproxy::AgentState::Down),
            "agent checks are not enabled on this server.\n",
        );
        assert!(matches!(odd, Err(CommandError::Rejected { .. })));
    }

    /// Checks that a classified error is of the expected variant.
    type IsExpected = fn(&CommandError) -> bool;

    #[test]
    fn known_errors_are_typed_whatever_the_framing() {
        let set = || Command::SetWeight(web1(), WeightSpec::Absolute(1));
        let cases: [(&str, IsExpected); 10] = [
            ("Permission denied\n\n", |e| {
                matches!(e, CommandError::PermissionDenied { .. })
            }),
            ("No such backend.\n\n", |e| {
                matches!(e, CommandError::NoSuchBackend { .. })
            }),
            ("Can't find backend.\n", |e| {
                matches!(e, CommandError::NoSuchBackend { .. })
            }),
            ("No such server.\n", |e| {
                matches!(e, CommandError::NoSuchServer { .. })
            }),
            (
                "Unknown command, but maybe one of the following ones is a better match:\n  help\n",
                |e| matches!(e, CommandError::UnknownCommand { .. }),
            ),
            (
                "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n",
                |e| matches!(e, CommandError::StaticAlgorithm { .. }),
            ),
            ("Empty weight string empty or preceded by garbage\n", |e| {
                matches!(e, CommandError::InvalidArgument { .. })
            }),
            ("Trailing garbage in weight string\n", |e| {
                matches!(e, CommandError::InvalidArgument { .. })
            }),
            ("Require 'backend/server'.\n\n", |e| {
                matches!(e, CommandError::InvalidArgument { .. })
            }),
            (
                "Can't find the target PID matching the prefix '@!12345'\n",
                |e| matches!(e, CommandError::NoSuchWorker { .. }),
            ),
        ];
        for (text, is_expected) in cases {
            let error = classify(set(), text).unwrap_err();
            assert!(is_expected(&error), "{text:?} -> {error:?}");
            assert_eq!(error.command(), "set weight be/web1 1");
        }
        let denied = classify(set(), "Permission denied\n\n")
            .unwrap_err()
            .to_string();
        assert!(
            denied.contains("level admin") && denied.contains("unix:///run/admin.sock"),
            "{denied}"
        );
    }

    #[test]
    fn set_addr_success_texts_are_not_errors() {
        let cmd = || Command::SetAddr {
            server: web1(),
            ip: "172.18.0.2".parse().unwrap(),
            port: Some(8080),
        };
        for ok in [
            "IP changed from '172.18.0.4' to '172.18.0.2', no need to change the port by 'stats socket command'\n\n",
            "IP changed from '172.18.0.2' to '172.18.0.4' by 'stats socket command'\n\n",
            "no need to change the addr, no need to change the port by 'stats socket command'\n\n",
        ] {
            assert!(matches!(classify(cmd(), ok), Ok(Reply::Message(_))), "{ok}");
        }
        let invalid = classify(cmd(), "Invalid addr 'foo' by 'stats socket command'\n\n");
        assert!(matches!(invalid, Err(CommandError::InvalidArgument { .. })));
        let port = classify(cmd(), "no need to change the addr, problem converting port 'abc' to an int by 'stats socket command'\n\n");
        assert!(matches!(port, Err(CommandError::Rejected { .. })));
    }

    #[test]
    fn add_and_del_server_texts() {
        let add = || Command::AddServer {
            server: web1(),
            addr: "1.2.3.4:80".into(),
            options: vec![],
        };
        assert!(matches!(
            classify(add(), "New server registered.\n\n"),
            Ok(Reply::Message(_))
        ));
        assert!(matches!(
            classify(
                add(),
                "Already exists a server with the same name in backend.\n\n"
            ),
            Err(CommandError::AlreadyExists { .. })
        ));
        assert!(matches!(
            classify(
                add(),
                "Backend must use a dynamic load balancing to support dynamic servers.\n"
            ),
            Err(CommandError::StaticAlgorithm { .. })
        ));
        assert!(matches!(
            classify(
                add(),
                "unknown keyword 'foo'; did you mean 'tfo' maybe ?\n\n"
            ),
            Err(CommandError::InvalidArgument { .. })
        ));
        let del = || Command::DelServer(web1());
        assert!(matches!(
            classify(del(), "Server deleted.\n"),
            Ok(Reply::Message(_))
        ));
        assert!(matches!(
            classify(del(), "Only servers in maintenance mode can be deleted.\n"),
            Err(CommandError::NotInMaintenance { .. })
        ));
        assert!(matches!(
            classify(
                del(),
                "Server still has connections attached to it, cannot remove it.\n"
            ),
            Err(CommandError::StillHasConnections { .. })
        ));
        assert!(matches!(classify(del(), "This server cannot be removed at runtime due to other configuration elements pointing to it.\n"), Err(CommandError::Rejected { .. })));
    }

    #[test]
    fn a_closed_connection_is_no_reply_except_for_reload() {
        let closed = RawReply {
            text: String::new(),
            terminated: false,
        };
        let get = Command::GetWeight(web1()).classify(&closed, "a");
        assert!(matches!(get, Err(CommandError::NoReply { .. })));
        assert_eq!(Command::Reload.classify(&closed, "a"), Ok(Reply::Done));
    }

    #[test]
    fn garbage_replies_to_typed_reads_are_unexpected_not_panics() {
        let error = classify(Command::ShowInfo, "hello\n").unwrap_err();
        assert!(
            matches!(error, CommandError::UnexpectedReply { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("show info"), "{error}");
    }

    #[test]
    fn one_backends_server_rows_render_and_parse_as_show_stat() {
        let command = Command::ShowStatServers("web".into());
        assert_eq!(command.render().unwrap(), "show stat web 4 -1");
        assert!(Command::ShowStatServers("web 1".into()).render().is_err());
        let text = "# pxname,svname,qcur,scur,stot,status,weight,type,check_status,addr\n\
                web,web1,0,3,10,UP,1,2,L7OK,10.0.0.1:80\n";
        match command.classify(&reply(text), "test") {
            Ok(Reply::Stat(rows)) => assert_eq!(rows[0].sessions, 3),
            other => panic!("expected stat rows, got {other:?}"),
        }
        assert!(matches!(
            command.classify(&reply("No such backend.\n"), "test"),
            Err(CommandError::NoSuchBackend { .. })
        ));
    }
}
