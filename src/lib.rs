//! haproxy-drain: keeps HAProxy servers in step with the Docker containers behind them.
//!
//! # Layout
//!
//! I/O at the two edges, decisions in the middle, one shutdown signal everywhere.
//!
//! - [`agent`]: pull mode — HAProxy asks through its agent check, haproxy-drain answers with
//!   the controller's decisions (no admin socket needed).
//! - [`haproxy`]: the runtime API client (stats socket / master CLI), typed commands and pure
//!   reply parsers. The only code that talks to HAProxy.
//! - [`docker`]: bollard wrapper: list, inspect, the event stream with reconnect and replay, and
//!   recreating a container with another image. The only code that uses bollard (the [`gate`]
//!   forwards raw HTTP to the engine but decides nothing about containers by itself).
//! - [`config`]: the TOML file, validated; [`mapping`]: which server a container is (pure).
//! - [`drain`]: the drain state machine — events and time in, actions out, no I/O.
//! - [`controller`]: one task per mapped server running the machine and executing its actions on
//!   every HAProxy; the hub that routes events and requests; reconciliation from ground truth.
//!   [`controller::ControllerHandle`] is its public face.
//! - [`fleet_budget`]: the fleet-wide availability budget on etcd (`[fleet]`): slots under
//!   each host's lease, taken before a drain, released on restore.
//! - [`ownership`]: the state file recording what haproxy-drain took out and must restore.
//! - [`roll`]: drain → stop → recreate/restart → start → wait healthy, container after container.
//! - [`gate`]: the Docker API gate — a Unix socket speaking the Engine API that forwards to the
//!   engine, draining a mapped container's server before a request that would stop it.
//! - [`api`]: the control API (Unix socket, optional TCP with a token) and its client.
//! - [`metrics`]: Prometheus metrics, `/healthz`, `/readyz`.
//! - [`cli`]: the subcommands other than `run`; [`daemon`]: `run` itself, wiring it all together.
//! - [`shutdown`]: the one shutdown signal every task listens to; [`duration`]: durations as
//!   operators write them (`30s`) and as they travel (milliseconds).

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod docker;
pub mod drain;
pub mod duration;
pub mod fleet_budget;
pub mod gate;
pub mod haproxy;
pub mod mapping;
pub mod metrics;
pub mod ownership;
pub mod roll;
pub mod shutdown;
