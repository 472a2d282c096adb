//! Pull mode: HAProxy asks haproxy-drain about each server through its agent check
//! (`agent-check agent-addr … agent-port … agent-send "backend/server\n"`) and obeys the answer,
//! so the sidecar needs no admin-level runtime API socket.
//!
//! - [`mode`]: [`Mode`] — push (admin socket), pull read-only (operator/user socket: sessions
//!   and checks from `show stat`) or pull blind (no socket), and what each cannot do.
//! - [`table`]: [`AgentTable`] — the answers: every admin-state and weight decision the
//!   controller makes is recorded here (the same decisions push mode sends as commands), and a
//!   decision waits until HAProxy has asked for it.
//! - [`blind`]: without a socket, the view of HAProxy the answers imply.
//! - [`responder`]: the TCP listener speaking the agent protocol (one line in, one line out).
//!
//! What HAProxy 2.6 does with each answer is written down in docs/agent-check.md; the words
//! themselves are [`crate::drain::agent_answer`].

pub mod blind;
pub mod mode;
pub mod responder;
pub mod table;

pub use mode::Mode;
pub use responder::{AgentError, Responder};
pub use table::AgentTable;
