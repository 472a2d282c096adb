//! One integration-test binary (links once): real HAProxy, real Docker.

mod control_access;
mod control_api;
mod control_check;
mod control_e2e;
mod control_fake;
mod daemon_lifecycle;
mod daemon_mapping;
mod daemon_recovery;
mod docker_client;
mod docker_events;
mod docker_fake_engine;
mod docker_reconnect;
mod docker_testapp;
mod haproxy_client;
mod haproxy_client_sockets;
mod haproxy_fake_socket;
mod haproxy_status_cli;
mod metrics_assets;
mod metrics_common;
mod metrics_daemon;
mod metrics_prometheus;
mod roll_e2e;
mod roll_recreate;
mod roll_world;
mod shutdown_matrix;
mod support;
