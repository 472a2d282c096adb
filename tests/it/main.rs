//! One integration-test binary (links once): real HAProxy, real Docker.

mod metrics_assets;
mod metrics_common;
mod metrics_prometheus;
mod support;
mod haproxy_client;
