//! The only module that talks to the Docker engine (through bollard).
//!
//! - [`client`] — [`DockerClient`]: connect, ping, list, inspect, stop/start.
//! - [`events`] — [`DockerClient::watch`]: the event stream with reconnect, backoff and replay.
//! - [`convert`], [`event_convert`], [`signal`] — pure bollard-model → [`types`] conversions:
//!   containers (health, networks), events, signal names.
//! - [`recreate`] — [`DockerClient::recreate`] and the preflight checks of a roll (container and
//!   image exist, pull); [`plan`] — the pure part: what to create the container again with;
//!   [`set_aside`] — the old container's name during the swap, and the recovery of a swap an
//!   earlier run was killed in.
//! - [`surge`] — `roll --surge`: the copy made beside a running container, the swap of names,
//!   and the recovery of a surge an earlier run was killed in; [`duplicable`] — the pure rule of
//!   what cannot run twice at once; [`healthcheck_exec`] — the container's own health check run
//!   on demand.
//! - [`filter`] — `run --filter label=…`: which containers this sidecar handles.
//! - [`backoff`] — the reconnect delay policy.
//! - [`watch_log`] — the watcher's log lines and counters ([`WatchStats`]).
//! - [`error`] — the typed [`DockerError`].

pub mod backoff;
pub mod client;
pub mod convert;
pub mod duplicable;
pub mod error;
pub mod event_convert;
pub mod events;
pub mod filter;
pub mod healthcheck_exec;
pub mod permissions;
pub mod plan;
pub mod recreate;
pub mod set_aside;
pub mod signal;
pub mod surge;
pub mod types;
pub mod watch_log;

pub use client::{DockerClient, DEFAULT_DOCKER_HOST};
pub use error::DockerError;
pub use events::WATCHED_ACTIONS;
pub use filter::{FilterError, LabelFilter, LabelFilters};
pub use signal::{parse_signal, parse_stop_signal, DEFAULT_STOP_SIGNAL};
pub use types::*;
pub use watch_log::WatchStats;
