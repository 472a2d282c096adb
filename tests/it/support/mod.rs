//! Shared fixtures: a real HAProxy in a temp dir, Docker test containers, unique names.
pub mod haproxy;
