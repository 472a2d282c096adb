//! haproxy-drain: keeps HAProxy servers in step with the Docker containers behind them.
//!
//! # Layout
//!
//! - [`haproxy`]: the runtime API client (stats socket / master CLI), typed commands and pure
//!   reply parsers. The only code that talks to HAProxy.
//! - [`docker`]: bollard wrapper: list, inspect, the event stream with reconnect and replay. The
//!   only code that talks to Docker.
//! - [`controller`]: one task per mapped server; executes the drain machine's actions against every
//!   HAProxy; reconciles from ground truth. [`controller::ControllerHandle`] is its public face.
//! - [`shutdown`]: the one shutdown signal every task listens to.

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod docker;
pub mod drain;
pub mod haproxy;
pub mod mapping;
pub mod metrics;
pub mod ownership;
pub mod roll;
pub mod shutdown;
