//! Shared fixtures: a real HAProxy in a temp dir, Docker test containers, unique names.
pub mod docker;
pub mod haproxy;
pub mod proxy;
pub mod wait;
pub mod daemon;
pub mod load;
pub mod stack;
