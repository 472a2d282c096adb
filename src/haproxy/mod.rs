//! The only module that talks to HAProxy's runtime API.
//!
//! - [`addr`]: `unix://` / `tcp://` URLs, master CLI worker targets.
//! - [`agent_state`]: which servers have an agent check (pull mode reaches only those).
//! - [`check`]: health-check facts (configured, passed since MAINT) read from replies.
//! - [`command`]: typed commands and how each renders; [`reply`]: how a reply is classified.
//! - [`stat`], [`parse`]: pure reply parsers (`show stat`; `show servers state`, `show info`, …).
//! - [`transport`]: one connection per call, prompt-mode framing, size bound.
//! - [`client`]: [`Client`], the typed calls and pipelined batches.
//! - [`level`]: a socket's privilege level ([`level::CliLevel`]), read without side effects.
//! - [`error`]: [`HaproxyError`] (the conversation failed) and [`CommandError`] (HAProxy refused).

pub mod addr;
pub mod agent_state;
pub mod check;
pub mod client;
pub mod command;
pub mod error;
pub mod level;
pub mod parse;
pub mod reply;
pub mod stat;
pub mod traffic;
pub mod transport;
pub mod types;

pub use addr::{Endpoint, HaproxyAddr, WorkerTarget};
pub use client::{Client, DEFAULT_MAX_REPLY_BYTES, DEFAULT_TIMEOUT};
pub use command::Command;
pub use error::{AddrError, CommandError, HaproxyError, ParseError};
pub use reply::{RawReply, Reply};
pub use traffic::Traffic;
pub use types::*;
