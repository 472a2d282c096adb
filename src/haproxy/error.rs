//! Errors of the runtime API client, worded for the operator who has to fix them.
//!
//! Two layers: [`HaproxyError`] when the conversation itself failed (connect, timeout, oversized
//! or malformed reply) and [`CommandError`] when HAProxy answered but refused one command. A batch
//! returns one `Result<Reply, CommandError>` per command, so one refusal does not hide the others.

use std::io;
use std::time::Duration;

use thiserror::Error;

/// A runtime API URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid HAProxy address `{url}`: {reason}; accepted forms: unix:///path/to/admin.sock, \
     tcp://host:port, and for the master CLI unix:///path/to/master.sock?worker=1 or ?worker=!PID"
)]
pub struct AddrError {
    pub url: String,
    pub reason: String,
}

/// A reply whose text did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unexpected `{what}` reply: {detail}")]
pub struct ParseError {
    /// Which reply was being parsed (`show stat`, `get weight`, …).
    pub what: &'static str,
    pub detail: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, detail: impl Into<String>) -> Self {
        Self {
            what,
            detail: detail.into(),
        }
    }
}

/// The conversation with HAProxy failed; no command result can be trusted.
#[derive(Debug, Error)]
pub enum HaproxyError {
    #[error("cannot connect to HAProxy runtime API at {addr}: {source}; {hint}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    #[error(
        "HAProxy runtime API at {addr} did not answer within {after:?}; HAProxy may be overloaded \
         or the address may point at something that is not a HAProxy stats socket"
    )]
    Timeout { addr: String, after: Duration },
    #[error("I/O error talking to HAProxy runtime API at {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "a reply from HAProxy runtime API at {addr} exceeded {limit} bytes; raise the client's \
         reply limit if this HAProxy really has that many servers"
    )]
    ReplyTooLarge { addr: String, limit: usize },
    #[error(
        "HAProxy runtime API at {addr} broke the protocol: {detail}; is this really a HAProxy \
         `stats socket` (or master CLI `-S` socket)?"
    )]
    Protocol { addr: String, detail: String },
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// HAProxy answered one command with a refusal (or an answer we could not read).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error(
        "HAProxy refused `{command}` on {addr}: Permission denied; haproxy-drain needs a socket \
         configured with `level admin` (e.g. `stats socket /run/haproxy/admin.sock mode 600 level admin`)"
    )]
    PermissionDenied { command: String, addr: String },
    #[error(
        "`{command}` failed: HAProxy has no such backend; check the backend name in haproxy.cfg"
    )]
    NoSuchBackend { command: String },
    #[error(
        "`{command}` failed: HAProxy has no such server in that backend; check the server name \
         (dynamic servers vanish on reload)"
    )]
    NoSuchServer { command: String },
    #[error("`{command}` failed: the master CLI has no such worker: {message}")]
    NoSuchWorker { command: String, message: String },
    #[error("HAProxy does not know the command `{command}` (wrong HAProxy version, or a master CLI socket used without ?worker=N?)")]
    UnknownCommand { command: String },
    #[error(
        "`{command}` failed: {message} (static algorithms such as static-rr or map-based hashing \
         only accept weights 0% and 100% and no dynamic servers; use a dynamic `balance`)"
    )]
    StaticAlgorithm { command: String, message: String },
    #[error("`{command}` failed: a server with that name already exists")]
    AlreadyExists { command: String },
    #[error("`{command}` failed: only servers in maintenance mode can be deleted; set state maint first")]
    NotInMaintenance { command: String },
    #[error("`{command}` failed: the server still has connections; wait or `shutdown sessions server` first")]
    StillHasConnections { command: String },
    #[error("`{command}` rejected by HAProxy: {message}")]
    InvalidArgument { command: String, message: String },
    #[error("`{command}` refused by HAProxy: {message}")]
    Rejected { command: String, message: String },
    #[error("`{command}` was not run: {reason}")]
    NotSent { command: String, reason: String },
    #[error("`{command}` got no answer: HAProxy closed the connection before replying (an earlier command in the same batch may have ended the session)")]
    NoReply { command: String },
    #[error("`{command}`: {source}")]
    UnexpectedReply {
        command: String,
        #[source]
        source: ParseError,
    },
}

impl CommandError {
    /// The command text (without any master CLI prefix) this error is about.
    pub fn command(&self) -> &str {
        match self {
            CommandError::PermissionDenied { command, .. }
            | CommandError::NoSuchBackend { command }
            | CommandError::NoSuchServer { command }
            | CommandError::NoSuchWorker { command, .. }
            | CommandError::UnknownCommand { command }
            | CommandError::StaticAlgorithm { command, .. }
            | CommandError::AlreadyExists { command }
            | CommandError::NotInMaintenance { command }
            | CommandError::StillHasConnections { command }
            | CommandError::InvalidArgument { command, .. }
            | CommandError::Rejected { command, .. }
            | CommandError::NotSent { command, .. }
            | CommandError::NoReply { command }
            | CommandError::UnexpectedReply { command, .. } => command,
        }
    }

    /// True when the target does not exist (backend, server or worker): retrying will not help.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CommandError::NoSuchBackend { .. }
                | CommandError::NoSuchServer { .. }
                | CommandError::NoSuchWorker { .. }
        )
    }
}

/// The hint shown with a connect failure, from the I/O error kind.
pub(crate) fn connect_hint(kind: io::ErrorKind, unix: bool) -> &'static str {
    match (kind, unix) {
        (io::ErrorKind::NotFound, true) => {
            "no socket file at this path: is HAProxy running and is `stats socket <path> level admin` configured at this path?"
        }
        (io::ErrorKind::PermissionDenied, _) => {
            "the socket file's owner/mode do not let this user connect: adjust `stats socket … mode/user/group` or run haproxy-drain as that user"
        }
        (io::ErrorKind::ConnectionRefused, true) => {
            "the socket file exists but nothing listens on it: HAProxy is probably stopped (stale socket)"
        }
        (io::ErrorKind::ConnectionRefused, false) => {
            "nothing listens there: is HAProxy running and is `stats socket ipv4@host:port level admin` configured?"
        }
        _ => "is HAProxy running and is `stats socket` configured at this address?",
    }
}
