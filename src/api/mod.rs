//! The control API: JSON over HTTP on a Unix socket (mode 0660), and optionally on TCP behind a
//! bearer token.
//!
//! | method + path | body | answer |
//! |---|---|---|
//! | `GET /v1/servers` | | `[ServerView]` |
//! | `POST /v1/drain` | [`wire::DrainBody`] | `DrainReport` |
//! | `POST /v1/ready` | [`wire::ReadyBody`] | `ReadyReport` |
//! | `POST /v1/rolls` | [`wire::RollBody`] | 202 [`wire::RollCreated`] |
//! | `GET /v1/rolls/{id}` | | [`crate::roll::RollProgress`] |
//!
//! Errors are `{"error": message, "detail": ControlError?}` with the status from
//! [`server::status_of`]: unknown target 404, budget 409, conflict 409, drain/ready timeout 504,
//! HAProxy failure 502, controller unavailable 503, bad request 400, missing/bad token 401.
//!
//! [`listen`] binds the sockets, [`server`] routes and maps errors, [`client`] is the CLI's side.

pub mod client;
pub mod listen;
pub mod server;
pub mod wire;

pub use client::{ClientError, ControlClient};
pub use listen::{
    bind_unix, resolve_group, serve_tcp, serve_unix, serve_unix_group, ListenError,
    DEFAULT_CONTROL_SOCKET, SOCKET_MODE,
};
pub use server::{router, ApiState};
