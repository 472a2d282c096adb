//! Shared fixtures: a real HAProxy in a temp dir, Docker test containers, unique names.
pub mod bench;
pub mod campaign;
pub mod daemon;
pub mod docker;
pub mod haproxy;
pub mod load;
pub mod metrics;
pub mod proxy;
pub mod readonly_proxy;
pub mod roll;
pub mod rotation;
pub mod shutdown_world;
pub mod stack;
pub mod storm_engine;
pub mod wait;
